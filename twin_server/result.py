"""Result of analysing a recorded shift (docs/analyze-contract.md), also the simulator's truth.

Every list holds half-open ``[start, end)`` intervals in epoch seconds. The JSON form is the
contract's; extra keys (``confidence``, ``rejected_by_reason``, ``kpis`` ...) are allowed.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from twin_contract import vocabulary as vocab

__all__ = [
    "BeaconLag",
    "MachineState",
    "Result",
    "ResultError",
    "Task",
    "WorkerZone",
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
        if not isinstance(doc, dict):
            raise ResultError("result must be a JSON object")
        try:
            window = doc["window"]
            known = {
                "site",
                "window",
                "machine_states",
                "worker_zones",
                "tasks",
                "beacon_lag",
                "rejected_rows",
            }
            return cls(
                site=str(doc["site"]),
                window_start=_num(window["start"], "window.start"),
                window_end=_num(window["end"], "window.end"),
                machine_states=[
                    MachineState(
                        str(r["machine"]), str(r["state"]), _num(r["start"], "start"), _num(r["end"], "end")
                    )
                    for r in doc.get("machine_states", [])
                ],
                worker_zones=[
                    WorkerZone(
                        str(r["worker"]),
                        str(r["zone"]),
                        _num(r["start"], "start"),
                        _num(r["end"], "end"),
                        r.get("confidence"),
                    )
                    for r in doc.get("worker_zones", [])
                ],
                tasks=[
                    Task(
                        str(r["machine"]),
                        str(r["task"]),
                        None if r.get("worker") is None else str(r["worker"]),
                        _num(r["start"], "start"),
                        _num(r["end"], "end"),
                    )
                    for r in doc.get("tasks", [])
                ],
                beacon_lag=[
                    BeaconLag(
                        str(r["worker"]),
                        _num(r["lag_s"], "lag_s"),
                        _num(r["start"], "start"),
                        _num(r["end"], "end"),
                    )
                    for r in doc.get("beacon_lag", [])
                ],
                rejected_rows=int(doc.get("rejected_rows", 0)),
                extra={k: v for k, v in doc.items() if k not in known},
            )
        except KeyError as exc:
            raise ResultError(f"missing key {exc.args[0]!r}") from None
        except (TypeError, AttributeError) as exc:
            raise ResultError(f"malformed result: {exc}") from None


def _num(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ResultError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def load_result(path: str | Path) -> Result:
    """Read a result or truth JSON file."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResultError(f"{p}: not JSON: {exc}") from None
    try:
        return Result.from_dict(doc)
    except ResultError as exc:
        raise ResultError(f"{p}: {exc}") from None
