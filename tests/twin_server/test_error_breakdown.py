"""Where a result is wrong: task error kinds and per-move lag error on hand-made documents."""

from __future__ import annotations

import pytest

from twin_server.error_breakdown import TASK_ERROR_KINDS, lag_error_by_move, task_error_kinds
from twin_server.evaluate import score
from twin_server.result import BeaconLag, Result, Task, WorkerZone


def _doc(tasks=(), lags=(), zones=()) -> Result:
    return Result("s", 0.0, 1000.0, tasks=list(tasks), beacon_lag=list(lags), worker_zones=list(zones))


def test_task_errors_are_sorted_by_kind_and_add_up_to_the_wrong_seconds() -> None:
    truth = _doc(
        [
            Task("M1", "tool_change", "W1", 100.0, 200.0),
            Task("M1", "program_input", "W1", 300.0, 400.0),
            Task("M2", "tool_change", "W1", 100.0, 200.0),
        ]
    )
    result = _doc(
        [
            Task("M1", "tool_change", "W1", 110.0, 190.0),  # 10 s late, 10 s early at the end
            Task("M1", "tool_change", "W1", 200.0, 220.0),  # 20 s past the true end
            Task("M1", "program_input", "W1", 290.0, 300.0),  # 10 s before the next true start
            Task("M1", "tool_change", "W1", 300.0, 350.0),  # the program input never found
            Task("M1", "material_setting", "W1", 800.0, 810.0),  # 400 s from any true task
            Task("M2", "tool_change", "W1", 100.0, 200.0),
            Task("M2", "material_setting", "W1", 140.0, 150.0),  # wrong task inside a found one
        ]
    )
    kinds = task_error_kinds(truth, result)
    assert list(kinds) == list(TASK_ERROR_KINDS)
    assert kinds == {
        "missed_task": 100,
        "wrong_task": 10,
        "start_late": 10,
        "end_early": 10,
        "start_early": 10,
        "end_late": 20,
        "spurious": 10,
    }
    s = score(truth, result)
    machine_seconds = 2 * 1000
    assert sum(kinds.values()) == round((1 - s.task_accuracy) * machine_seconds)


def test_a_perfect_result_has_no_task_errors() -> None:
    truth = _doc([Task("M1", "jig_change", None, 10.0, 90.0)])
    assert set(task_error_kinds(truth, truth).values()) == {0}


def test_lag_error_per_move_weights_to_the_contract_lag_mae() -> None:
    truth = _doc(
        lags=[BeaconLag("W1", 20.0, 0.0, 500.0), BeaconLag("W1", 80.0, 500.0, 1000.0)],
        zones=[WorkerZone("W1", "M1", 0.0, 500.0), WorkerZone("W1", "none", 500.0, 1000.0)],
    )
    result = _doc(lags=[BeaconLag("W1", 20.0, 0.0, 1000.0)])
    moves = lag_error_by_move(truth, result)
    assert [(m.zone, m.true_lag_s, m.seconds) for m in moves] == [("M1", 20.0, 500), ("none", 80.0, 500)]
    assert [m.mean_abs_error_s for m in moves] == pytest.approx([0.0, 60.0])
    weighted = sum(m.mean_abs_error_s * m.seconds for m in moves) / sum(m.seconds for m in moves)
    assert weighted == pytest.approx(score(truth, result).lag_mae_s)


def test_a_move_without_an_estimate_is_left_out() -> None:
    truth = _doc(lags=[BeaconLag("W1", 20.0, 0.0, 1000.0)])
    assert lag_error_by_move(truth, _doc()) == []


def _bench():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "analyze" / "errors.py"
    spec = importlib.util.spec_from_file_location("bench_errors", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_bench_breaks_down_a_tuning_draw(tmp_path, capsys) -> None:
    bench = _bench()
    out = tmp_path / "rows.jsonl"
    argv = ["--draws", "1", "--hours", "0.5", "--sensing", "locator", "--jobs", "1", "--out", str(out)]
    assert bench.main(argv) == 0
    text = capsys.readouterr().out
    assert "1 tuning draws" in text and "missed_task" in text and "lag MAE" in text
    import json

    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["seed"] == 1000 and set(row["task_errors"]) == set(TASK_ERROR_KINDS)


def test_the_bench_refuses_draws_outside_the_tuning_seeds(capsys) -> None:
    with pytest.raises(SystemExit):
        _bench().main(["--skip", "500"])
    assert "no tuning draws" in capsys.readouterr().err
