"""The scorer: per-second scores, baselines from the raw locator stream, the CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin_server.__main__ import main
from twin_server.evaluate import (
    baseline_results,
    label_grid,
    score,
    score_times,
    simple_rule,
    zone_stream_result,
)
from twin_server.result import BeaconLag, MachineState, Result, Task, WorkerZone
from twin_server.site import parse_site

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0

SITE = parse_site(
    {
        "site": "t",
        "machines": [
            {"id": "M3", "zone": [[0, 0], [2, 0], [2, 1], [0, 1]]},
            {"id": "M7", "zone": [[5, 0], [7, 0], [7, 1], [5, 1]]},
        ],
        "workers": [{"id": "W1", "beacon": "b-01"}],
    }
)


def _doc(**kw) -> Result:
    return Result(site="t", window_start=T0, window_end=T0 + 10, **kw)


def _truth() -> Result:
    return _doc(
        machine_states=[MachineState("M3", "stopped", T0, T0 + 10)],
        worker_zones=[WorkerZone("W1", "M3", T0, T0 + 5), WorkerZone("W1", "none", T0 + 5, T0 + 10)],
        tasks=[Task("M3", "jig_change", "W1", T0, T0 + 4)],
        beacon_lag=[BeaconLag("W1", 20.0, T0, T0 + 10)],
    )


def test_score_times_are_mid_second():
    t = score_times(T0, T0 + 3)
    np.testing.assert_allclose(t - T0, [0.5, 1.5, 2.5])
    assert len(score_times(T0, T0 + 0.4)) == 0


def test_truth_against_itself_is_perfect():
    s = score(_truth(), _truth())
    assert s.zone_accuracy == s.task_accuracy == s.task_macro_f1 == s.machine_state_accuracy == 1.0
    assert s.lag_mae_s == 0.0 and s.lag_coverage == 1.0
    assert s.task_f1["jig_change"] == 1.0 and s.task_f1["tool_change"] is None
    assert s.seconds == 10


def test_hand_built_case_has_known_scores():
    result = _doc(
        machine_states=[MachineState("M3", "stopped", T0, T0 + 5)],  # the rest is missing
        worker_zones=[WorkerZone("W1", "M3", T0, T0 + 3), WorkerZone("W1", "none", T0 + 3, T0 + 10)],
        tasks=[Task("M3", "jig_change", "W1", T0, T0 + 2), Task("M3", "tool_change", "W1", T0 + 2, T0 + 4)],
        beacon_lag=[BeaconLag("W1", 25.0, T0, T0 + 5)],
    )
    s = score(_truth(), result)
    assert s.zone_accuracy == pytest.approx(0.8)  # seconds 3 and 4 wrong
    assert s.task_accuracy == pytest.approx(0.8)  # seconds 2 and 3 wrong
    assert s.task_f1["jig_change"] == pytest.approx(2 * 2 / (4 + 2))
    assert s.task_f1["tool_change"] == 0.0
    assert s.task_f1["program_input"] is None
    assert s.task_macro_f1 == pytest.approx((2 / 3 + 0) / 2)
    assert s.machine_state_accuracy == pytest.approx(0.5)
    assert s.lag_mae_s == pytest.approx(5.0)
    assert s.lag_coverage == pytest.approx(0.5)
    assert s.zone_accuracy_by_worker == {"W1": pytest.approx(0.8)}
    assert s.task_accuracy_by_machine == {"M3": pytest.approx(0.8)}
    assert s.task_confusion["jig_change"]["jig_change"] == 2
    assert s.task_confusion["jig_change"]["tool_change"] == 2
    assert s.task_confusion["none"]["none"] == 6
    assert sum(sum(row.values()) for row in s.task_confusion.values()) == 10


def test_unknown_state_and_missing_workers_never_count_as_correct():
    result = _doc(machine_states=[MachineState("M3", "unknown", T0, T0 + 10)])
    s = score(_truth(), result)
    assert s.machine_state_accuracy == 0.0
    assert s.zone_accuracy == 0.0  # W1 not in the result at all
    assert s.lag_mae_s is None and s.lag_coverage == 0.0
    # No tasks in the result: the six "none" seconds are still right.
    assert s.task_accuracy == pytest.approx(0.6)
    assert s.task_f1["jig_change"] == 0.0


def test_label_grid_overlaps_later_start_wins():
    times = T0 + np.array([0.5, 1.5, 2.5, 3.5])
    out = label_grid([(T0, T0 + 4, "a"), (T0 + 1, T0 + 2, "b")], times, "-")
    assert list(out) == ["a", "b", "a", "a"]
    out = label_grid([(T0 + 1, T0 + 3, 7.0)], times, float("nan"))
    assert np.isnan(out[0]) and out[1] == 7.0 and np.isnan(out[3])


# -- hypothesis: scoring invariants -------------------------------------------------------------


@st.composite
def partitions(draw, labels: list[str], length: int = 60):
    cuts = sorted(set(draw(st.lists(st.floats(0.01, length - 0.01), max_size=8))))
    edges = [0.0, *cuts, float(length)]
    return [(T0 + a, T0 + b, draw(st.sampled_from(labels))) for a, b in itertools.pairwise(edges)]


def _result_from(zones, tasks, states, lags) -> Result:
    return Result(
        site="t",
        window_start=T0,
        window_end=T0 + 60,
        worker_zones=[WorkerZone("W1", z, a, b) for a, b, z in zones],
        tasks=[Task("M3", t, None, a, b) for a, b, t in tasks if t != "none"],
        machine_states=[MachineState("M3", s, a, b) for a, b, s in states],
        beacon_lag=[BeaconLag("W1", float(v), a, b) for a, b, v in lags],
    )


task_labels = ["none", "jig_change", "tool_change", "program_input", "material_setting"]


@settings(max_examples=60, deadline=None)
@given(
    zones=partitions(["M3", "M7", "none"]),
    tasks=partitions(task_labels),
    states=partitions(["running", "stopped"]),
    lags=partitions(["6", "20", "85"]),
    zones2=partitions(["M3", "M7", "none"]),
    tasks2=partitions(task_labels),
)
def test_scoring_invariants(zones, tasks, states, lags, zones2, tasks2):
    a = _result_from(zones, tasks, states, lags)
    b = _result_from(zones2, tasks2, states, lags)
    self_score = score(a, a)
    assert self_score.zone_accuracy == self_score.task_accuracy == self_score.machine_state_accuracy == 1.0
    assert self_score.lag_mae_s == 0.0
    assert self_score.task_macro_f1 in (None, 1.0)
    ab, ba = score(a, b), score(b, a)
    for s in (ab, ba):
        assert 0.0 <= s.zone_accuracy <= 1.0 and 0.0 <= s.task_accuracy <= 1.0
        assert s.task_macro_f1 is None or 0.0 <= s.task_macro_f1 <= 1.0
    # Accuracy and per-task F1 are symmetric when both documents cover the window.
    assert ab.zone_accuracy == pytest.approx(ba.zone_accuracy)
    assert ab.task_accuracy == pytest.approx(ba.task_accuracy)
    for name in task_labels[1:]:
        assert ab.task_f1[name] == ba.task_f1[name] or ab.task_f1[name] == pytest.approx(ba.task_f1[name])
    # Zone accuracy equals a direct per-second count.
    times = score_times(T0, T0 + 60)
    direct = np.mean(label_grid(zones, times, "?") == label_grid(zones2, times, "?"))
    assert ab.zone_accuracy == pytest.approx(direct)


# -- baselines -------------------------------------------------------------------------------------


def _zone_rows(rows: list[tuple[float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "t": [T0 + t for t, _ in rows],
            "kind": "zone",
            "source": "tagsys",
            "channel": "b-01",
            "value": np.nan,
            "label": [z for _, z in rows],
        }
    )


def test_zone_stream_baselines_take_reports_at_face_value():
    truth = Result(
        site="t",
        window_start=T0,
        window_end=T0 + 100,
        worker_zones=[WorkerZone("W1", "none", T0, T0 + 40), WorkerZone("W1", "M3", T0 + 40, T0 + 100)],
        beacon_lag=[BeaconLag("W1", 30.0, T0, T0 + 100)],
    )
    # The locator reports the change 30 s late.
    readings = _zone_rows([(0.0, "none"), (70.0, "M3")])
    raw = zone_stream_result(truth, readings, SITE)
    assert [(z.zone, z.start - T0, z.end - T0) for z in raw.worker_zones] == [
        ("none", 0, 70),
        ("M3", 70, 100),
    ]
    bases = baseline_results(truth, readings, SITE)
    s_raw = score(truth, bases["raw"], zones_only=True)
    s_shift = score(truth, bases["shifted_30s"], zones_only=True)
    assert s_raw.zone_accuracy == pytest.approx(0.7)
    assert s_shift.zone_accuracy == 1.0
    assert s_raw.lag_mae_s == pytest.approx(30.0) and s_shift.lag_mae_s == 0.0
    assert s_raw.task_accuracy is None and s_raw.machine_state_accuracy is None


def _rows(kind: str, source: str, channel: str, points: list[tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "t": [T0 + t for t, _ in points],
            "kind": kind,
            "source": source,
            "channel": channel,
            "value": [v for _, v in points],
            "label": "",
        }
    )


def test_simple_rule_states_and_tasks():
    light = [(k + 0.2, 200.0 if 30 <= k < 60 else 10.0) for k in range(100)]
    pressure = [(k + 0.4, 100.0 if 65 <= k < 80 else 500.0) for k in range(100)]
    readings = pd.concat(
        [
            _rows("light", "M3", "", light),
            _rows("pressure", "M3", "", pressure),
            # A bouncing tool-change press, then a clean program-input press.
            _rows("switch", "M3", "tool_change", [(5.0, 1), (5.01, 0), (5.03, 1), (5.3, 0)]),
            _rows("switch", "M3", "program_input", [(12.0, 1), (12.3, 0)]),
        ],
        ignore_index=True,
    )
    truth = Result(site="t", window_start=T0, window_end=T0 + 100)
    states, tasks = simple_rule(truth, readings, SITE)
    got = [(s.machine, s.state, round(s.start - T0, 1), round(s.end - T0, 1)) for s in states]
    assert got == [
        ("M3", "stopped", 0, 30.2),
        ("M3", "running", 30.2, 60.2),
        ("M3", "stopped", 60.2, 100),
        ("M7", "unknown", 0, 100),  # no light rows
    ]
    # A machine whose light never changes borrows the threshold of the machines that do vary.
    steady = pd.concat([readings, _rows("light", "M7", "", [(k + 0.5, 300.0) for k in range(100)])])
    states7 = [s for s in simple_rule(truth, steady, SITE)[0] if s.machine == "M7"]
    assert [(s.state, s.start, s.end) for s in states7] == [("running", T0, T0 + 100)]
    got = [(t.task, round(t.start - T0, 1), round(t.end - T0, 1), t.worker) for t in tasks]
    assert got == [
        ("tool_change", 5.0, 12.0, None),
        ("program_input", 12.0, 30.2, None),  # ends when the machine starts
        ("jig_change", 65.4, 100.0, None),  # pressure below half its median
    ]


def test_baseline_before_first_report_is_none():
    truth = Result(
        site="t", window_start=T0, window_end=T0 + 10, worker_zones=[WorkerZone("W1", "M7", T0, T0 + 10)]
    )
    raw = zone_stream_result(truth, _zone_rows([(4.0, "M7")]), SITE)
    assert [(z.zone, z.start - T0) for z in raw.worker_zones] == [("none", 0), ("M7", 4)]
    assert score(truth, raw, zones_only=True).zone_accuracy == pytest.approx(0.6)


# -- CLI on a real simulation -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    site = ROOT / "examples" / "pilot_site.yaml"
    assert main(["simulate", "--site", str(site), "--hours", "1", "--seed", "2", "--out", str(out)]) == 0
    return out


def test_cli_scores_truth_and_baselines(sim_dir, capsys):
    report_path = sim_dir / "scores.json"
    truth = str(sim_dir / "truth.json")
    assert main(["evaluate", "--truth", truth, "--result", truth, "--json", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "zone accuracy" in out and "raw locator" in out and "raw - 30 s" in out
    report = json.loads(report_path.read_text())
    assert report["scores"]["zone_accuracy"] == 1.0 and report["scores"]["task_macro_f1"] == 1.0
    raw = report["baselines"]["raw"]["zone_accuracy"]
    shifted = report["baselines"]["shifted_30s"]["zone_accuracy"]
    assert 0.5 < raw < 1.0 and 0.5 < shifted < 1.0
    # States and tasks of the baselines: the simple rule, the same for both.
    for name in ("raw", "shifted_30s"):
        base = report["baselines"][name]
        assert base["machine_state_accuracy"] > 0.9
        assert 0.5 < base["task_accuracy"] < 1.0
        assert base["task_accuracy"] == report["baselines"]["raw"]["task_accuracy"]
    # The raw stream's implied lag is 0 s, so its lag error is the mean true lag.
    truth_doc = json.loads((sim_dir / "truth.json").read_text())
    weights = np.array([b["end"] - b["start"] for b in truth_doc["beacon_lag"]])
    mean_lag = np.average([b["lag_s"] for b in truth_doc["beacon_lag"]], weights=weights)
    assert report["baselines"]["raw"]["lag_mae_s"] == pytest.approx(mean_lag, abs=0.5)


def test_cli_scores_a_degraded_result_lower(sim_dir, tmp_path):
    doc = json.loads((sim_dir / "truth.json").read_text())
    # Drop every task and shift every zone by a minute: the scores must fall.
    doc["tasks"] = []
    for z in doc["worker_zones"]:
        z["start"] = (
            min(z["start"] + 60, doc["window"]["end"]) if z["start"] > doc["window"]["start"] else z["start"]
        )
        z["end"] = min(z["end"] + 60, doc["window"]["end"])
    path = tmp_path / "result.json"
    path.write_text(json.dumps(doc))
    report_path = tmp_path / "r.json"
    readings = str(sim_dir / "readings.csv")
    assert (
        main(["evaluate", "--truth", str(sim_dir / "truth.json"), "--result", str(path),
              "--readings", readings, "--json", str(report_path)]) == 0
    )  # fmt: skip
    scores = json.loads(report_path.read_text())["scores"]
    assert scores["zone_accuracy"] < 1.0
    assert scores["task_macro_f1"] == 0.0
    assert scores["machine_state_accuracy"] == 1.0


def test_cli_bad_files_exit_2(tmp_path, sim_dir, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["evaluate", "--truth", str(bad), "--result", str(bad)]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert main(["evaluate", "--truth", str(tmp_path / "missing.json"), "--result", str(bad)]) == 2
    # No readings next to the truth: the scores still print, the baselines are skipped with a note.
    lone = tmp_path / "lone.json"
    lone.write_text((sim_dir / "truth.json").read_text())
    assert main(["evaluate", "--truth", str(lone), "--result", str(lone)]) == 0
    assert "baselines not computed" in capsys.readouterr().out
    # An explicit readings file that is missing, or a --json path that cannot be written: exit 2.
    args = ["evaluate", "--truth", str(lone), "--result", str(lone)]
    assert main([*args, "--readings", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err
    assert main([*args, "--json", str(tmp_path / "no" / "such" / "dir.json")]) == 2
