"""Result JSON: the contract's schema round-trips; bad documents name the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twin_server.result import BeaconLag, MachineState, Result, ResultError, Task, WorkerZone, load_result

CONTRACT_EXAMPLE = {
    "site": "demo",
    "window": {"start": 1700000000.0, "end": 1700028800.0},
    "machine_states": [{"machine": "M3", "state": "running", "start": 1700000000.0, "end": 1700000600.0}],
    "worker_zones": [{"worker": "W1", "zone": "M3", "start": 1700000000.0, "end": 1700000035.0}],
    "tasks": [
        {"machine": "M3", "task": "tool_change", "worker": "W1", "start": 1700000600.0, "end": 1700000780.0}
    ],
    "beacon_lag": [{"worker": "W1", "lag_s": 27.5, "start": 1700000000.0, "end": 1700028800.0}],
    "rejected_rows": 0,
}


def test_contract_example_round_trips(tmp_path: Path) -> None:
    r = Result.from_dict(CONTRACT_EXAMPLE)
    assert r.tasks == [Task("M3", "tool_change", "W1", 1700000600.0, 1700000780.0)]
    assert r.beacon_lag == [BeaconLag("W1", 27.5, 1700000000.0, 1700028800.0)]
    path = tmp_path / "r.json"
    r.write(path)
    assert json.loads(path.read_text()) == CONTRACT_EXAMPLE
    assert load_result(path) == r


def test_extra_keys_and_confidence_survive() -> None:
    r = Result(
        "s",
        0.0,
        10.0,
        [MachineState("M", "unknown", 0, 10)],
        [WorkerZone("W", "none", 0, 10, 0.8)],
        extra={"rejected_by_reason": {"bad_time": 2}},
    )
    doc = r.to_dict()
    assert doc["worker_zones"][0]["confidence"] == 0.8
    assert Result.from_dict(doc).extra == {"rejected_by_reason": {"bad_time": 2}}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ([], "must be a JSON object"),
        ({"site": "s"}, "missing key 'window'"),
        ({**CONTRACT_EXAMPLE, "window": {"start": "a", "end": 1}}, "window.start must be a finite number"),
        ({**CONTRACT_EXAMPLE, "tasks": [{"machine": "M3"}]}, "missing key 'task'"),
    ],
)
def test_bad_documents(doc, expected: str) -> None:
    with pytest.raises(ResultError, match=expected):
        Result.from_dict(doc)


def test_bad_files(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    p.write_text("{not json")
    with pytest.raises(ResultError, match="not JSON"):
        load_result(p)
