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
        ({**CONTRACT_EXAMPLE, "tasks": [{"machine": "M3"}]}, r"missing key 'task' in tasks\[0\]"),
        (
            {**CONTRACT_EXAMPLE, "tasks": [{**CONTRACT_EXAMPLE["tasks"][0], "end": "1700000780"}]},
            r"tasks\[0\]\.end must be a finite number, got '1700000780'",
        ),
        (
            {
                **CONTRACT_EXAMPLE,
                "worker_zones": [{**CONTRACT_EXAMPLE["worker_zones"][0], "confidence": float("nan")}],
            },
            r"worker_zones\[0\]\.confidence must be a finite number, got nan",
        ),
        (
            {**CONTRACT_EXAMPLE, "beacon_lag": [{**CONTRACT_EXAMPLE["beacon_lag"][0], "lag_s": True}]},
            r"beacon_lag\[0\]\.lag_s must be a finite number, got True",
        ),
        ({**CONTRACT_EXAMPLE, "rejected_rows": 2.5}, "rejected_rows must be an integer, got 2.5"),
        ({**CONTRACT_EXAMPLE, "tasks": None}, "tasks must be a JSON list, got None"),
        ({**CONTRACT_EXAMPLE, "machine_states": ["M3"]}, r"machine_states\[0\] must be a JSON object"),
        ({**CONTRACT_EXAMPLE, "window": [0, 1]}, "window must be a JSON object"),
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


def test_bad_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    doc = {**CONTRACT_EXAMPLE, "tasks": [{**CONTRACT_EXAMPLE["tasks"][0], "start": None}]}
    p.write_text(json.dumps(doc))
    with pytest.raises(ResultError, match=rf"^{p}: tasks\[0\]\.start must be a finite number, got None$"):
        load_result(p)
    p.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ResultError, match="not JSON"):
        load_result(p)
    with pytest.raises(ResultError, match="cannot read"):
        load_result(tmp_path / "missing.json")


def test_lenient_where_the_old_reader_was() -> None:
    """Numeric ids read as text, a task without ``worker`` is unattributed, rows keep file order."""
    doc = {
        "site": 7,
        "window": {"start": 0, "end": 10},
        "tasks": [
            {"machine": 3, "task": "tool_change", "start": 5, "end": 6},
            {**CONTRACT_EXAMPLE["tasks"][0]},
        ],
    }
    r = Result.from_dict(doc)
    assert r.site == "7" and r.window_start == 0.0 and isinstance(r.window_start, float)
    assert r.tasks[0] == Task("3", "tool_change", None, 5.0, 6.0)
    assert r.tasks[1].machine == "M3"


def test_the_contract_documents_example_parses() -> None:
    """The Result example in docs/analyze-contract.md is what the parser reads."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "analyze-contract.md").read_text()
    block = text.split("## Result (JSON)", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    assert Result.from_dict(json.loads(block)).to_dict() == CONTRACT_EXAMPLE
