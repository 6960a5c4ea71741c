"""Result of analysing a recorded shift (docs/analyze-contract.md), also the simulator's truth.

Every list holds half-open ``[start, end)`` intervals in epoch seconds. The JSON form is the
contract's; extra keys (``confidence``, ``rejected_by_reason``, ``kpis`` ...) are allowed.

Two forms: the dataclasses (:class:`Result` and its rows), which the analysis and the simulator
build and read, and the pydantic models of the JSON document (:class:`ResultDocument` and its
rows), which parse files (:func:`load_result`, :meth:`Result.from_dict`) and type the API.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, NotRequired

from pydantic import AllowInfNan, BaseModel, ConfigDict, Strict, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic needs this TypedDict before Python 3.12

from twin_contract import vocabulary as vocab

__all__ = [
    "BeaconLag",
    "BeaconLagRow",
    "MachineState",
    "MachineStateRow",
    "Result",
    "ResultDocument",
    "ResultError",
    "Task",
    "TaskRow",
    "Window",
    "WorkerZone",
    "WorkerZoneRow",
    "load_result",
]

TASK_NAMES = vocab.TASKS
MACHINE_STATES = ("running", "stopped", "unknown")


class ResultError(ValueError):
    """A result/truth JSON that does not follow the schema."""


@dataclass
class MachineState:
    """``running``, ``stopped`` or ``unknown`` over ``[start, end)``."""

    machine: str
    state: str
    start: float
    end: float


@dataclass
class WorkerZone:
    """A worker at a machine's zone (or ``none``) over ``[start, end)``, in true time."""

    worker: str
    zone: str
    start: float
    end: float
    confidence: float | None = None


@dataclass
class Task:
    """One changeover task on one machine."""

    machine: str
    task: str
    worker: str | None
    start: float
    end: float


@dataclass
class BeaconLag:
    """Estimated lag of a worker's location data over ``[start, end)``."""

    worker: str
    lag_s: float
    start: float
    end: float


@dataclass
class Result:
    """The contract's result document."""

    site: str
    window_start: float
    window_end: float
    machine_states: list[MachineState] = field(default_factory=list)
    worker_zones: list[WorkerZone] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    beacon_lag: list[BeaconLag] = field(default_factory=list)
    rejected_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON object."""

        def rows(items: list[Any], drop_none: tuple[str, ...] = ()) -> list[dict[str, Any]]:
            out = []
            for it in items:
                d = asdict(it)
                for k in drop_none:
                    if d.get(k) is None:
                        d.pop(k, None)
                out.append(d)
            return out

        doc: dict[str, Any] = {
            "site": self.site,
            "window": {"start": self.window_start, "end": self.window_end},
            "machine_states": rows(self.machine_states),
            "worker_zones": rows(self.worker_zones, ("confidence",)),
            "tasks": rows(self.tasks),
            "beacon_lag": rows(self.beacon_lag),
            "rejected_rows": self.rejected_rows,
        }
        doc.update(self.extra)
        return doc

    def write(self, path: str | Path) -> None:
        """Write the JSON document (atomically: a reader never sees half a file)."""
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        tmp.replace(p)

    @classmethod
    def from_dict(cls, doc: Any) -> Result:
        """Parse a contract JSON object; raise :class:`ResultError` naming the bad key."""
        try:
            parsed = ResultDocument.model_validate(doc)
        except ValidationError as exc:
            raise ResultError(_first_error(exc)) from None
        return parsed.to_result()


# --- the JSON document ----------------------------------------------------------------------
# A number that is a JSON number (not a string or a bool) and finite, as the contract needs.
FiniteNumber = Annotated[float, Strict(), AllowInfNan(False)]


# Rows are TypedDicts: parsed as dicts in pydantic's core, 2-4x faster than a model per row on
# a day's tens of thousands of rows; a key left out of a row (``confidence``) stays out of the
# JSON a row is written back to.
_IDS_AS_TEXT = ConfigDict(coerce_numbers_to_str=True)  # str() before: a numeric id 3 reads as "3"


class Window(BaseModel):
    """The span of the readings, epoch seconds."""

    start: FiniteNumber
    end: FiniteNumber


@with_config(_IDS_AS_TEXT)
class MachineStateRow(TypedDict):
    """``running``, ``stopped`` or ``unknown`` over ``[start, end)``."""

    machine: str
    state: str
    start: FiniteNumber
    end: FiniteNumber


@with_config(_IDS_AS_TEXT)
class WorkerZoneRow(TypedDict):
    """A worker at a machine's zone (or ``none``) over ``[start, end)``, in true time;
    ``confidence`` left out when unknown."""

    worker: str
    zone: str
    start: FiniteNumber
    end: FiniteNumber
    confidence: NotRequired[FiniteNumber | None]


@with_config(_IDS_AS_TEXT)
class TaskRow(TypedDict):
    """One changeover task on one machine; ``worker`` null (or left out) if unknown."""

    machine: str
    task: str
    worker: NotRequired[str | None]
    start: FiniteNumber
    end: FiniteNumber


@with_config(_IDS_AS_TEXT)
class BeaconLagRow(TypedDict):
    """Estimated lag of a worker's location data over ``[start, end)``."""

    worker: str
    lag_s: FiniteNumber
    start: FiniteNumber
    end: FiniteNumber


class ResultDocument(BaseModel):
    """The contract's result JSON (docs/analyze-contract.md); other top-level keys are kept."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    site: str
    window: Window
    machine_states: list[MachineStateRow] = []
    worker_zones: list[WorkerZoneRow] = []
    tasks: list[TaskRow] = []
    beacon_lag: list[BeaconLagRow] = []
    rejected_rows: int = 0

    def to_result(self) -> Result:
        """The dataclass form (rows in file order, extra keys in ``extra``)."""
        return Result(
            site=self.site,
            window_start=self.window.start,
            window_end=self.window.end,
            machine_states=[
                MachineState(r["machine"], r["state"], r["start"], r["end"]) for r in self.machine_states
            ],
            worker_zones=[
                WorkerZone(r["worker"], r["zone"], r["start"], r["end"], r.get("confidence"))
                for r in self.worker_zones
            ],
            tasks=[Task(r["machine"], r["task"], r.get("worker"), r["start"], r["end"]) for r in self.tasks],
            beacon_lag=[BeaconLag(r["worker"], r["lag_s"], r["start"], r["end"]) for r in self.beacon_lag],
            rejected_rows=self.rejected_rows,
            extra=dict(self.model_extra or {}),
        )


def _first_error(exc: ValidationError) -> str:
    """One line naming the first bad key, e.g. ``tasks[3].start must be a finite number, got 'a'``."""
    err = exc.errors(include_url=False)[0]
    loc = err["loc"]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    kind = err["type"]
    if kind == "missing":
        return f"missing key {loc[-1]!r}" + (f" in {path.rsplit('.', 1)[0]}" if len(loc) > 1 else "")
    got = f"got {err.get('input')!r}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{path or 'result'} must be a JSON object, {got}"
    if kind == "list_type":
        return f"{path} must be a JSON list, {got}"
    if kind in ("float_type", "finite_number", "float_parsing"):
        return f"{path} must be a finite number, {got}"
    if kind.startswith("int_"):
        return f"{path} must be an integer, {got}"
    if kind == "string_type":
        return f"{path} must be a string, {got}"
    return f"{path}: {err['msg']}, {got}"


def load_result(path: str | Path) -> Result:
    """Read a result or truth JSON file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ResultError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        parsed = ResultDocument.model_validate_json(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        if err["type"] == "json_invalid":
            raise ResultError(f"{p}: not JSON: {err['ctx'].get('error', err['msg'])}") from None
        raise ResultError(f"{p}: {_first_error(exc)}") from None
    return parsed.to_result()
