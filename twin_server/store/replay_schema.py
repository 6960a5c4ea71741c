"""Pydantic models of the documents :mod:`twin_server.store.replay_data` builds for the viewer.

They type the API (``/api/replay/{site}``, ``/api/worker/{site}/{worker}``, the worker's own
replay, the layout); the builders stay plain functions returning dicts. Field order is the
order the builders write keys in, so a response validated through a model keeps its bytes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from twin_server.result import BeaconLagRow, MachineStateRow, TaskRow, Window

__all__ = [
    "Break",
    "ClippedResult",
    "ClippedZoneRow",
    "Closed",
    "LayoutMachine",
    "LayoutShift",
    "Marking",
    "NamedSpan",
    "ReplayPayload",
    "ReplayShift",
    "ShiftSpan",
    "SiteLayout",
    "WorkerDay",
    "WorkerDays",
    "WorkerName",
    "WorkerTask",
]


class Closed(BaseModel):
    """A document's model: a key the builder writes that the model lacks is an error, not a
    key silently dropped from the answer."""

    model_config = ConfigDict(extra="forbid")


class WorkerName(Closed):
    """A worker's id and display names (``name_ja`` falls back to ``name``, then the id)."""

    id: str
    name: str
    name_ja: str


class LayoutMachine(Closed):
    """A machine as the viewer draws it (metres, degrees)."""

    id: str
    name: str
    name_ja: str
    centre: list[float]
    rotation_deg: float
    footprint: list[float]
    height_m: float
    zone: list[list[float]]


class Marking(Closed):
    """A floor marking: a line or an area."""

    kind: str
    points: list[list[float]]
    color: str
    width_m: float
    label: str | None


class NamedSpan(Closed):
    """A break: name and local clock times ``HH:MM``."""

    name: str
    name_ja: str
    start: str
    end: str


class LayoutShift(Closed):
    """The shift's local clock times ``HH:MM`` and its breaks."""

    start: str
    end: str
    breaks: list[NamedSpan]


class SiteLayout(Closed):
    """Everything the viewer draws that does not change over a shift (``site_layout``)."""

    id: str
    name: str
    name_ja: str
    timezone: str
    language: str
    extent: list[float] = Field(description="xmin, ymin, xmax, ymax in metres")
    floor: list[float] | None
    machines: list[LayoutMachine]
    workers: list[WorkerName]
    markings: list[Marking]
    shift: LayoutShift


class ShiftSpan(Closed):
    """A recorded shift: its local day and its span in epoch seconds."""

    day: str
    start: float
    end: float


class ReplayShift(ShiftSpan):
    """The shift shown; ``recording`` (left out by sources that cannot tell) is true while its
    readings still arrive."""

    recording: bool | None = None


class Break(Closed):
    """A break of the shown day, epoch seconds."""

    name: str
    name_ja: str
    start: float
    end: float


class ClippedZoneRow(Closed):
    """A worker-zone interval clipped to the window (``confidence`` left out when unknown)."""

    worker: str
    zone: str
    confidence: float | None = None
    start: float
    end: float


class ClippedResult(Closed):
    """A contract result clipped to the shown window, times rounded (``clip_result``)."""

    site: str | None
    window: Window
    rejected_rows: int
    machine_states: list[MachineStateRow]
    worker_zones: list[ClippedZoneRow]
    tasks: list[TaskRow]
    beacon_lag: list[BeaconLagRow]


class ReplayPayload(Closed):
    """The viewer's replay document (``replay_payload``)."""

    site: SiteLayout
    shift: ReplayShift
    breaks: list[Break]
    shifts: list[ShiftSpan]
    result: ClippedResult


class WorkerTask(Closed):
    """One task a worker did."""

    machine: str
    task: str
    start: float
    end: float


class WorkerDay(ShiftSpan):
    """A recorded day and the worker's own tasks in it."""

    tasks: list[WorkerTask]


class WorkerDays(Closed):
    """One worker's tasks per recorded day (``worker_days``); the layout lists only them."""

    site: SiteLayout
    worker: WorkerName
    days: list[WorkerDay]
