"""Score an analysis result against a ground truth (docs/analyze-contract.md, "How results are scored").

Once per second, at ``window.start + k + 0.5`` of the truth's window, every worker's zone,
every machine's task label (a task name or ``none``) and every machine's state are looked up
in both documents and compared. :func:`score` returns the numbers; :func:`baseline_results`
turns the raw commercial-locator zone stream of a recording into result documents (taken at
face value, and shifted 30 s earlier like the pilot did), with machine states and tasks from
a simple sensor rule (:func:`simple_rule`), so they can be scored the same way. The rules
are written up in ``docs/scoring.md``.

``python -m twin_server evaluate --truth truth.json --result result.json`` prints the table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twin_contract import vocabulary as vocab
from twin_server.result import BeaconLag, MachineState, Result, ResultError, Task, WorkerZone, load_result
from twin_server.site import Site, SiteError, load_site

__all__ = [
    "BASELINE_SHIFT_S",
    "TASKS",
    "Scores",
    "add_arguments",
    "baseline_results",
    "evaluate_files",
    "format_table",
    "label_grid",
    "run",
    "score",
    "score_times",
    "simple_rule",
    "zone_stream_result",
]

TASKS = vocab.TASKS
BASELINE_SHIFT_S = 30.0  # the pilot's manual correction
_MISSING = "<missing>"  # label of a second the scored document does not cover: never correct


@dataclass
class Scores:
    """Per-second scores of one result against the truth; ``None`` = not applicable / not known.

    Attributes
    ----------
    zone_accuracy : float or None
        Share of (worker, second) pairs whose zone matches.
    task_accuracy : float or None
        Share of (machine, second) pairs whose label (task name or ``none``) matches.
    task_macro_f1 : float or None
        Mean F1 over the four tasks (per-second labels); tasks absent from both truth and
        result are left out of the mean.
    task_f1 : dict
        F1 per task (``None`` where absent from both).
    machine_state_accuracy : float or None
        Share of (machine, second) pairs whose state matches (``unknown`` never matches).
    lag_mae_s : float or None
        Mean absolute error of ``beacon_lag`` over (worker, second) pairs where both give a lag.
    lag_coverage : float or None
        Share of the truth's (worker, second) lag pairs for which the result gives a lag.
    seconds : int
        Number of scored seconds.
    zone_accuracy_by_worker, task_accuracy_by_machine : dict
        The same accuracies per worker / per machine.
    task_confusion : dict
        ``{true label: {predicted label: seconds}}`` over (machine, second) pairs, labels being
        the four tasks and ``none``.
    """

    zone_accuracy: float | None = None
    task_accuracy: float | None = None
    task_macro_f1: float | None = None
    task_f1: dict[str, float | None] = field(default_factory=dict)
    machine_state_accuracy: float | None = None
    lag_mae_s: float | None = None
    lag_coverage: float | None = None
    seconds: int = 0
    zone_accuracy_by_worker: dict[str, float] = field(default_factory=dict)
    task_accuracy_by_machine: dict[str, float] = field(default_factory=dict)
    task_confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


# -- pure scoring ---------------------------------------------------------------------------------


def score_times(window_start: float, window_end: float) -> np.ndarray:
    """The scoring instants ``window_start + k + 0.5`` inside ``[window_start, window_end)``."""
    n = max(0, math.ceil(window_end - window_start - 0.5))
    return window_start + np.arange(n, dtype="float64") + 0.5


def label_grid(
    intervals: Iterable[tuple[float, float, object]], times: np.ndarray, default: object
) -> np.ndarray:
    """Label of each time from half-open ``(start, end, label)`` intervals.

    Intervals are painted in order of their start, so where two overlap the later-starting one
    wins; times no interval covers get ``default``.

    Parameters
    ----------
    intervals : iterable of (float, float, label)
        Half-open intervals in epoch seconds.
    times : numpy.ndarray
        Sorted times.
    default : object
        Label where no interval applies (``np.nan`` for numeric grids).
    """
    numeric = isinstance(default, float)
    out = np.full(times.shape, default, dtype="float64" if numeric else object)
    for start, end, label in sorted(intervals, key=lambda iv: (iv[0], iv[1])):
        i0, i1 = np.searchsorted(times, [start, end], side="left")
        if i1 > i0:
            out[i0:i1] = label
    return out


def _group(items: Iterable[tuple[str, float, float, object]]) -> dict[str, list[tuple[float, float, object]]]:
    groups: dict[str, list[tuple[float, float, object]]] = {}
    for key, start, end, label in items:
        groups.setdefault(key, []).append((start, end, label))
    return groups


def _f1(truth: np.ndarray, pred: np.ndarray, label: str) -> float | None:
    t = truth == label
    p = pred == label
    tp = int(np.sum(t & p))
    denom = int(np.sum(t)) + int(np.sum(p))
    return None if denom == 0 else 2 * tp / denom


def score(truth: Result, result: Result, *, zones_only: bool = False) -> Scores:
    """Score ``result`` against ``truth`` once per second of the truth's window.

    Parameters
    ----------
    truth : Result
        The ground truth (e.g. a simulator's ``truth.json``).
    result : Result
        The document to score (an analysis result, or a baseline).
    zones_only : bool
        Score only zones and lag (task and machine-state scores are ``None``): for baselines
        made from location data alone.

    Returns
    -------
    Scores
        Accuracies in [0, 1]; ``None`` where nothing could be scored.
    """
    times = score_times(truth.window_start, truth.window_end)
    out = Scores(seconds=len(times))
    if len(times) == 0:
        return out

    # Zones: every worker of the truth, every second.
    t_zones = _group((z.worker, z.start, z.end, z.zone) for z in truth.worker_zones)
    r_zones = _group((z.worker, z.start, z.end, z.zone) for z in result.worker_zones)
    if t_zones:
        hits = {
            w: label_grid(iv, times, _MISSING) == label_grid(r_zones.get(w, []), times, _MISSING + "r")
            for w, iv in t_zones.items()
        }
        out.zone_accuracy = float(np.mean(np.concatenate(list(hits.values()))))
        out.zone_accuracy_by_worker = {w: float(np.mean(h)) for w, h in sorted(hits.items())}

    # Lag: where both truth and result give one.
    t_lag = _group((b.worker, b.start, b.end, b.lag_s) for b in truth.beacon_lag)
    r_lag = _group((b.worker, b.start, b.end, b.lag_s) for b in result.beacon_lag)
    errors, known = [], 0
    for w, iv in t_lag.items():
        tl = label_grid(iv, times, math.nan)
        rl = label_grid(r_lag.get(w, []), times, math.nan)
        both = np.isfinite(tl) & np.isfinite(rl)
        known += int(np.isfinite(tl).sum())
        errors.append(np.abs(tl[both] - rl[both]))
    err = np.concatenate(errors) if errors else np.zeros(0)
    out.lag_mae_s = float(err.mean()) if len(err) else None
    out.lag_coverage = len(err) / known if known else None

    if zones_only:
        return out

    machines = sorted({s.machine for s in truth.machine_states} | {tk.machine for tk in truth.tasks})
    # Tasks: label per machine-second is the task name, or "none" between tasks.
    t_tasks = _group((tk.machine, tk.start, tk.end, tk.task) for tk in truth.tasks)
    r_tasks = _group((tk.machine, tk.start, tk.end, tk.task) for tk in result.tasks)
    if machines:
        truth_lab = np.concatenate([label_grid(t_tasks.get(m, []), times, "none") for m in machines])
        pred_lab = np.concatenate([label_grid(r_tasks.get(m, []), times, "none") for m in machines])
        out.task_accuracy = float(np.mean(truth_lab == pred_lab))
        per_machine = (truth_lab == pred_lab).reshape(len(machines), len(times))
        out.task_accuracy_by_machine = {m: float(per_machine[i].mean()) for i, m in enumerate(machines)}
        labels = ["none", *TASKS]
        out.task_confusion = {
            a: {b: int(np.sum((truth_lab == a) & (pred_lab == b))) for b in labels} for a in labels
        }
        out.task_f1 = {name: _f1(truth_lab, pred_lab, name) for name in TASKS}
        defined = [v for v in out.task_f1.values() if v is not None]
        out.task_macro_f1 = float(np.mean(defined)) if defined else None

    t_states = _group((s.machine, s.start, s.end, s.state) for s in truth.machine_states)
    r_states = _group((s.machine, s.start, s.end, s.state) for s in result.machine_states)
    if t_states:
        hits = []
        for m, iv in t_states.items():
            tl = label_grid(iv, times, _MISSING)
            rl = label_grid(r_states.get(m, []), times, "unknown")
            hits.append((tl == rl) & (rl != "unknown"))
        out.machine_state_accuracy = float(np.mean(np.concatenate(hits)))
    return out


# -- baselines from the raw locator stream -----------------------------------------------------------


def zone_stream_result(truth: Result, readings: pd.DataFrame, site: Site, shift_s: float = 0.0) -> Result:
    """A result whose zones are the locator's ``zone`` rows taken at face value, moved ``shift_s`` earlier.

    Each report holds until the beacon's next report; before the first report the zone is
    ``none``. The implied lag is the constant ``shift_s`` over the window. Tasks and machine
    states are left empty (score with ``zones_only=True``).

    Parameters
    ----------
    truth : Result
        Gives the window.
    readings : pandas.DataFrame
        A readings frame (:mod:`twin_server.readings`); only ``zone`` rows are used.
    site : Site
        Maps beacon ids to workers.
    shift_s : float
        Seconds to move every report earlier (the pilot used 30).
    """
    t0, t1 = truth.window_start, truth.window_end
    zones = readings[readings["kind"] == "zone"]
    out_zones: list[WorkerZone] = []
    for w in site.workers:
        rows = zones[zones["channel"] == w.beacon].sort_values("t", kind="stable")
        t = rows["t"].to_numpy(dtype="float64") - shift_s
        labels = rows["label"].to_numpy(dtype=object)
        cursor, current = t0, "none"
        for ti, lab in zip(t, labels, strict=True):
            if ti > cursor and ti < t1:
                out_zones.append(WorkerZone(w.id, current, cursor, ti))
                cursor = ti
            current = str(lab)
        if cursor < t1:
            out_zones.append(WorkerZone(w.id, current, cursor, t1))
    lags = [BeaconLag(w.id, shift_s, t0, t1) for w in site.workers]
    return Result(site=truth.site, window_start=t0, window_end=t1, worker_zones=out_zones, beacon_lag=lags)


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last + 1)`` index runs of equal consecutive values."""
    if len(values) == 0:
        return []
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    edges = [0, *change.tolist(), len(values)]
    return list(itertools.pairwise(edges))


def simple_rule(truth: Result, readings: pd.DataFrame, site: Site) -> tuple[list[MachineState], list[Task]]:
    """Machine states and tasks by the baselines' simple rule (no location data, no tuning).

    - **State**: a stack-light sample above the machine's threshold means ``running``, else
      ``stopped``; a state holds from its sample to the next (the first from the window
      start). The threshold is the midpoint of the machine's 10th and 90th light percentiles;
      for a machine whose light barely varies (90th - 10th percentile < 10 % of the 90th) it
      is the median threshold of the machines that do vary. A machine without light rows, or
      with no varying machine to borrow from, is ``unknown``.
    - **Tasks**: a task starts at each button press (``1`` rows, presses within 1 s of the
      previous press of that button are bounces) and, for ``jig_change``, where the pressure
      falls below half its median for at least 3 samples. A task lasts until the machine's
      next task start or next start of running, whichever comes first (or the window end).
      The worker is left unknown.
    """
    t0, t1 = truth.window_start, truth.window_end
    states: list[MachineState] = []
    tasks: list[Task] = []
    kind = readings["kind"].to_numpy(dtype=object)
    source = readings["source"].to_numpy(dtype=object)
    lights = {
        m: readings[(source == m) & (kind == "light")].sort_values("t", kind="stable")
        for m in site.machine_ids
    }
    thresholds: dict[str, float | None] = {}
    for m, light in lights.items():
        v = light["value"].to_numpy(dtype="float64")
        lo, hi = np.percentile(v, [10, 90]) if len(v) else (0.0, 0.0)
        thresholds[m] = float(lo + hi) / 2 if len(v) and hi - lo >= 0.1 * abs(hi) else None
    varying = [x for x in thresholds.values() if x is not None]
    borrowed = float(np.median(varying)) if varying else None
    for m in site.machine_ids:
        mine = source == m
        light = lights[m]
        run_starts: list[float] = []
        v = light["value"].to_numpy(dtype="float64")
        threshold = thresholds[m] if thresholds[m] is not None else borrowed
        if len(v) == 0 or threshold is None:
            states.append(MachineState(m, "unknown", t0, t1))
        else:
            t = light["t"].to_numpy(dtype="float64")
            on = v > threshold
            for i, j in _runs(on):
                start = t0 if i == 0 else max(t0, float(t[i]))
                end = t1 if j == len(on) else min(t1, float(t[j]))
                if end > start:
                    states.append(MachineState(m, "running" if on[i] else "stopped", start, end))
                    if on[i] and i > 0:
                        run_starts.append(start)
        starts: list[tuple[float, str]] = []
        switch = readings[mine & (kind == "switch")]
        for channel, rows in switch.groupby("channel"):
            t = np.sort(rows.loc[rows["value"] == 1.0, "t"].to_numpy(dtype="float64"))
            keep = np.concatenate([[True], np.diff(t) > 1.0]) if len(t) else np.zeros(0, dtype=bool)
            starts += [(float(x), str(channel)) for x in t[keep]]
        pressure = readings[mine & (kind == "pressure")].sort_values("t", kind="stable")
        if len(pressure):
            pv = pressure["value"].to_numpy(dtype="float64")
            pt = pressure["t"].to_numpy(dtype="float64")
            low = pv < 0.5 * np.median(pv)
            starts += [(float(pt[i]), "jig_change") for i, j in _runs(low) if low[i] and j - i >= 3]
        starts.sort()
        stops = sorted([*run_starts, *(x for x, _ in starts)])
        for x, name in starts:
            if not t0 <= x < t1:
                continue
            nxt = stops[int(np.searchsorted(stops, x, side="right"))] if stops and x < stops[-1] else t1
            tasks.append(Task(m, name, None, x, min(nxt, t1)))
    return states, tasks


def baseline_results(truth: Result, readings: pd.DataFrame, site: Site) -> dict[str, Result]:
    """The two baselines: ``raw`` (zone stream as is) and ``shifted_30s`` (30 s earlier).

    Their zones and lag come from the locator stream alone; their machine states and tasks
    from :func:`simple_rule` (the same for both).
    """
    states, tasks = simple_rule(truth, readings, site)
    out = {
        "raw": zone_stream_result(truth, readings, site, 0.0),
        "shifted_30s": zone_stream_result(truth, readings, site, BASELINE_SHIFT_S),
    }
    for res in out.values():
        res.machine_states = list(states)
        res.tasks = list(tasks)
    return out


# -- CLI ---------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``evaluate`` command."""
    parser.add_argument("--truth", type=Path, required=True, help="ground truth JSON (e.g. from simulate)")
    parser.add_argument("--result", type=Path, required=True, help="result JSON to score (e.g. from analyze)")
    parser.add_argument(
        "--readings",
        type=Path,
        help="readings CSV for the baselines (default: readings.csv next to the truth)",
    )
    parser.add_argument(
        "--site",
        type=Path,
        help="site YAML (default: the site recorded in the truth, or site.yaml next to it)",
    )
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")


def _default_site(truth: Result, truth_path: Path) -> Path | None:
    sim = truth.extra.get("simulation") if isinstance(truth.extra, dict) else None
    recorded = sim.get("site_file") if isinstance(sim, dict) else None
    # A relative recorded path is relative to the truth file's folder.
    for cand in ([truth_path.parent / str(recorded)] if recorded else []) + [truth_path.parent / "site.yaml"]:
        if cand.is_file():
            return cand
    return None


def evaluate_files(
    truth_path: Path, result_path: Path, readings_path: Path | None = None, site_path: Path | None = None
) -> dict:
    """Score a result file and the baselines; returns the JSON-ready report.

    Raises
    ------
    ResultError, SiteError, ReadingsError
        On files that cannot be used (the CLI turns these into one line and exit code 2).
    """
    from twin_server.readings import load_readings_csv

    truth = load_result(truth_path)
    result = load_result(result_path)
    report: dict = {
        "truth": str(truth_path),
        "result": str(result_path),
        "window": {"start": truth.window_start, "end": truth.window_end},
        "scores": score(truth, result).to_dict(),
        "baselines": {},
        "notes": [],
    }
    # An explicit --readings must exist; the default next to the truth is optional.
    explicit = readings_path is not None
    readings_path = readings_path or truth_path.parent / "readings.csv"
    site_path = site_path or _default_site(truth, truth_path)
    if not explicit and not readings_path.is_file():
        report["notes"].append(f"baselines not computed: no readings file {readings_path}")
    elif site_path is None:
        report["notes"].append("baselines not computed: no site file (pass --site)")
    else:
        site = load_site(site_path)
        loaded = load_readings_csv(readings_path, site)
        if not (loaded.frame["kind"] == "zone").any():
            report["notes"].append(f"baselines not computed: {readings_path} has no zone rows")
        else:
            for name, base in baseline_results(truth, loaded.frame, site).items():
                report["baselines"][name] = score(truth, base).to_dict()
        if loaded.rejected_rows:
            report["notes"].append(f"{loaded.rejected_rows} readings rows rejected while loading")
    return report


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(report: dict) -> str:
    """The scores beside the baselines as a fixed-width text table."""
    cols: list[tuple[str, dict]] = [("result", report["scores"])]
    titles = {"raw": "raw locator", "shifted_30s": "raw - 30 s"}
    cols += [(titles.get(k, k), v) for k, v in report["baselines"].items()]
    rows: Sequence[tuple[str, str, int]] = [
        ("zone accuracy", "zone_accuracy", 3),
        ("task accuracy", "task_accuracy", 3),
        ("task macro-F1", "task_macro_f1", 3),
        *[(f"  F1 {t}", f"task_f1.{t}", 3) for t in TASKS],
        ("machine-state accuracy", "machine_state_accuracy", 3),
        ("lag MAE (s)", "lag_mae_s", 1),
        ("lag coverage", "lag_coverage", 3),
    ]
    width = 24
    lines = [f"{'metric':<{width}}" + "".join(f"{name:>14}" for name, _ in cols)]
    for title, key, digits in rows:
        cells = []
        for _, sc in cols:
            if "." in key:
                outer, inner = key.split(".")
                value = (sc.get(outer) or {}).get(inner)
            else:
                value = sc.get(key)
            cells.append(f"{_fmt(value, digits):>14}")
        lines.append(f"{title:<{width}}" + "".join(cells))
    lines.append(
        f"scored seconds: {report['scores']['seconds']}  (baselines: zones from the locator stream; "
        "states and tasks by the simple rule of docs/scoring.md)"
    )
    lines += [f"note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the table (and write ``--json``); exit code 2 on unusable files."""
    from twin_server.readings import ReadingsError

    try:
        report = evaluate_files(args.truth, args.result, args.readings, args.site)
    except (ResultError, SiteError, ReadingsError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    print(format_table(report))
    if args.json is not None:
        try:
            args.json.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
        except OSError as exc:
            print(f"evaluate: cannot write {args.json}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    return 0
