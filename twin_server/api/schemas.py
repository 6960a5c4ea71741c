"""Response models of the server's JSON routes, so ``/openapi.json`` says what each returns.

The routes build plain dicts; FastAPI validates them through these models and serialises in
the model's field order, which is the order the routes write keys in (the bytes the browser
gets stay the same). Parts whose shape another module owns and grows (ingest counters, the
analysis diagnostics, the live sensor map) are typed as objects of that module's keys. The
editor's and the forecast's models sit next to their routes; the replay documents' in
:mod:`twin_server.store.replay_schema`; the contract result's in :mod:`twin_server.result`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from twin_server.result import ResultDocument
from twin_server.store.replay_schema import ShiftSpan

__all__ = [
    "AlignedOut",
    "AnalysisOut",
    "CommissioningDoc",
    "DeadLettersOut",
    "HealthOut",
    "LiveOut",
    "MachineView",
    "NoteOut",
    "Out",
    "ReadingsOut",
    "ShiftKpisOut",
    "ShiftOut",
    "ShiftReplayOut",
    "SiteSummary",
    "ViewerKpis",
    "ViewerSites",
    "file_responses",
]


class Out(BaseModel):
    """An answer's model: a key the route sends that the model lacks is an error (a 500 the
    tests see), not a key silently dropped from the answer."""

    model_config = ConfigDict(extra="forbid")


# A number as the journal or a counter stores it: an int stays an int in the JSON.
Number = int | float
# A KPI table: per machine (or worker) id, figure name -> value (minutes, shares, counts).
KpiTable = dict[str, dict[str, Any]]


# --- health, sites, series --------------------------------------------------------------------
class JournalHealth(Out):
    path: str
    readings: int
    size_bytes: int | None = None
    free_bytes: int | None = None
    max_bytes: int | None = None
    dead_letters: dict[str, int] = Field(description="dead letters received, per reason")
    devices: list[dict[str, Any]] = Field(description="the latest status message of each device")


class BrokerHealth(Out):
    host: str
    port: int
    connected: bool
    subscribed: bool
    client_id: str


class IngestHealth(Out):
    """The ingest's counters since the server started."""

    received: int
    accepted: int
    duplicates: int
    statuses: int
    dead_letters: int
    dead_by_reason: dict[str, int]
    batches: int
    connects: int
    connected: bool
    last_error: str | None
    last_received_ns: int | None
    last_commit_ns: int | None
    commit_failures: int
    commits_failing: bool = Field(description="the journal refuses commits now: nothing is acknowledged")
    failing_since_ns: int | None


class DeliveryHealth(Out):
    """Sequence tracking: readings missing now, declared lost, and the acknowledgements sent."""

    missing: int
    lost: int
    sensors: list[dict[str, Any]] = Field(description="per device and sensor: sequence state")
    lost_gaps: list[dict[str, Any]]
    acks_published: int
    last_error: str | None


class RetentionHealth(Out):
    retention_days: Number
    replay_days: Number
    pruned: int
    last_run_ns: int | None
    cutoff_ns: int | None
    waiting_for: str | None = Field(description="why nothing is pruned yet, if so")
    last_error: str | None


class InfluxHealth(Out):
    url: str
    db: str
    ok: bool | None
    last_error: str | None
    last_success_ns: int | None
    points_written: int
    pending: int | None = Field(description="journal rows not exported yet")
    rejected_batches: int
    retries: int
    reachable: bool


class AnalysisHealth(Out):
    runs: int
    last_run_s: float | None
    last_error: str | None


class HealthOut(Out):
    """``GET /health``: ingest counters, dead letters, clock offsets, broker and InfluxDB status."""

    status: str = Field(description="ok or degraded")
    problems: list[str]
    warnings: list[str]
    site: str
    uptime_s: float
    broker: BrokerHealth | None = Field(description="null without a broker")
    ingest: IngestHealth | None = Field(description="null without a broker")
    journal: JournalHealth
    clock_offsets: dict[str, dict[str, Any]] = Field(description="per site/device: the clock offset estimate")
    delivery: DeliveryHealth | None
    retention: RetentionHealth | None = Field(description="null without --retention-days")
    clock_suspects: dict[str, dict[str, Any]]
    influx: InfluxHealth | None = Field(description="null without InfluxDB")
    analysis: AnalysisHealth
    websocket_clients: int


class SiteSummary(Out):
    id: str
    name: str | None
    timezone: str
    machines: int
    workers: int


class ShiftOut(ShiftSpan):
    """A local day with readings, its readings count and the site's shift hours that day."""

    readings: int
    shift_start: float
    shift_end: float


class ReadingRow(Out):
    """A journal row (device time ``t_ns``, arrival ``received_ns``)."""

    id: int
    site: str
    device: str
    sensor: str
    seq: int
    kind: str
    t_ns: int
    received_ns: int
    source: str
    channel: str
    value: Number | None
    label: str
    unit: str
    count: int | None
    rssi_max_dbm: Number | None
    window_ms: int | None


class ReadingsOut(Out):
    site: str
    count: int
    truncated: bool = Field(description="true when limit rows were returned (there may be more)")
    readings: list[ReadingRow]


class AlignedOut(Out):
    """Samples at ``t``: per machine its state and task, per worker the corrected zone (null: none)."""

    site: str
    t: list[float]
    machine_state: dict[str, list[str | None]]
    task: dict[str, list[str | None]]
    worker_zone: dict[str, list[str | None]]


# --- analysis ----------------------------------------------------------------------------------
class MachineKpis(Out):
    """A machine's shift in minutes (``twin_server.kpis.compute_kpis``)."""

    running_min: float
    stopped_min: float
    unknown_min: float
    utilisation: float | None = Field(description="running share of the time with a known state; null: none")
    changeover_min: float
    task_count: int
    idle_min: float = Field(description="stopped with no changeover going on")
    changeover_jig_change_min: float
    changeover_tool_change_min: float
    changeover_program_input_min: float
    changeover_material_setting_min: float


class KpiTotals(Out):
    running_min: float
    stopped_min: float
    changeover_min: float
    idle_min: float
    task_count: int
    utilisation: float | None


class ShiftKpis(Out):
    """KPIs of a shift, per machine and over the machines."""

    machines: dict[str, MachineKpis]
    totals: KpiTotals


class AnalysisOut(ResultDocument):
    """The contract result of a shift with the live analysis' extra keys, its KPIs and its day."""

    analysis: dict[str, Any] | None = Field(None, description="diagnostics: light thresholds, lag visits ...")
    rejected_by_reason: dict[str, int] | None = Field(None, description="rows skipped, per reason")
    kpis: ShiftKpis
    day: str


class ShiftKpisOut(Out):
    """KPIs of a shift, per machine and over the machines."""

    site: str
    day: str
    machines: dict[str, MachineKpis]
    totals: KpiTotals


class ShiftReplayOut(Out):
    """The analysis of a shift with per-second worker positions (zone centroids, null: none)."""

    site: str
    day: str
    result: ResultDocument
    kpis: ShiftKpis
    step_s: float
    t0: float
    positions: dict[str, list[list[float] | None]]


class DeadLetterRow(Out):
    id: int
    topic: str
    device: str
    payload: str = Field(description="the payload's prefix as text")
    payload_bytes: int
    payload_truncated: bool
    reason: str
    detail: str
    received_ns: int


class DeadLettersOut(Out):
    counts: dict[str, int] = Field(description="every dead letter received, per reason")
    kept: int = Field(description="rows stored within the caps")
    dead_letters: list[DeadLetterRow]
    next_before_id: int | None = Field(description="pass as before_id for the next page; null: last page")


class LiveReading(Out):
    """The newest reading of a sensor (by device time ``t``, epoch seconds)."""

    device: str
    sensor: str
    seq: int
    kind: str
    t: float
    source: str
    channel: str
    value: Number | str = Field(description="a level, or a zone for zone readings")
    received_ns: int


class LiveDevice(Out):
    online: bool
    t_ns: int | None
    received_ns: int
    clock_synced: bool | None


class LiveAnalysis(Out):
    """The newest live analysis: its day, window [start, end] (epoch s), KPIs and task count."""

    day: str
    window: list[float]
    kpis: ShiftKpis
    tasks: int


class LiveOut(Out):
    """Latest value of every sensor and device status, and the current analysis summary."""

    site: str
    sensors: dict[str, LiveReading] = Field(description="per kind/source/channel")
    devices: dict[str, LiveDevice] = Field(description="per site/device: the latest status message")
    analysis: LiveAnalysis | None


# --- viewer ------------------------------------------------------------------------------------
class ViewerSites(Out):
    sites: list[str]
    names: dict[str, str]
    names_ja: dict[str, str]


class NoteOut(Out):
    """A stored coaching note."""

    id: int
    site: str
    t: float
    target_kind: str = Field(description="machine or worker")
    target: str
    text: str
    author: str
    created: float


class ViewerKpis(Out):
    """The viewer's KPI strip: the shift's figures per machine and worker, and a trend."""

    day: str
    machines: KpiTable
    workers: KpiTable
    trend: list[dict[str, Any]] = Field(description="day, machines, workers of up to days shifts")
    shift: ShiftSpan


# --- commissioning -----------------------------------------------------------------------------
class SensorView(Out):
    id: str
    kind: str
    channel: str
    value: Number | None
    unit: str | None
    age_s: float | None
    min: Number | None
    max: Number | None
    states_seen: list[Any]
    presses: int
    first_press_ns: int | None


class BeaconView(Out):
    receiver: str
    beacon: str
    worker: str | None
    rssi_dbm: Number | None
    rssi_max_dbm: Number | None
    adverts: int
    age_s: float | None


class DeviceView(Out):
    online: bool
    clock_synced: bool | None
    agent_version: str | None
    age_s: float | None


class ChecklistItem(Out):
    key: str
    check: str
    status: str
    code: str
    args: dict[str, Any]
    reason: str


class MachineView(Out):
    """One machine's commissioning checklist and what its device sent."""

    id: str
    name: str | None
    name_ja: str | None
    device: str | None
    started_ns: int
    status: str
    device_status: DeviceView | None
    last_seen_age_s: float | None
    sensors: list[SensorView]
    beacons: list[BeaconView]
    rejected: dict[str, int]
    checklist: list[ChecklistItem]


class CommissioningDoc(Out):
    site: str
    name: str | None
    language: str
    timezone: str
    now_ns: int
    skipped_rows: int
    machines: list[MachineView]


def file_responses(description: str, *media_types: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses=`` of a route that answers with a file, not JSON."""
    schema = {"type": "string", "format": "binary"}
    return {200: {"description": description, "content": {m: {"schema": schema} for m in media_types}}}
