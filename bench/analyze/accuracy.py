"""Accuracy of the analysis against the simulator's truth, beside the two baselines.

Run: ``.venv/bin/python bench/analyze/accuracy.py [--seeds 10] [--hours 8] [--no-sim]
[--no-fingerprint] [--family-rssi 20]``

For both site sizes (the pilot's 3 machines / 2 workers, and a synthetic 8 machines /
4 workers) and seeds 1..N it simulates a shift (5 % of presses forgotten, the simulator's
default), analyses it with :func:`twin_server.analysis.analyze` and scores it with
:func:`twin_server.evaluate.score`; the raw locator zones and the same shifted 30 s are scored
as baselines. It repeats this for RSSI-only recordings (no locator stream) and for the
switch-free mode (priors learned from the first half of the seeds, analysed with switches;
scored on the held-out second half). Last, the per-second zone accuracy from RSSI alone on
the real ble_tetam tracks (``/work/shared/data/ble_tetam``, else the excerpt in
``tests/data/ble_tetam``), with the path-loss analysis and with the survey fingerprint map
and the dataset's floor plan (settings chosen by leave-one-track-out cross-validation), alone
and with a calibration walk made of the other tracks of a different shape, each track alone
and all tracks as one session, beside always ``none`` and the strongest receiver.
``--family-rssi N``: RSSI-only zone accuracy on the first N small tuning draws of the
scenario family forced to RSSI-only sensing (1 h each) and on the pilot and 8 x 4 sites under
the family's conditions, beside the strongest receiver. Prints markdown tables
(docs/accuracy.md is made from them).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

from twin_server.analysis import AnalysisParams, analyze
from twin_server.analysis import confidence as cf
from twin_server.analysis.bleeval import load_occupancy, score_session, score_track, station_site
from twin_server.analysis.fingerprint_zones import FingerprintParams, build_map, walk_survey_points
from twin_server.analysis.priors import learn_priors
from twin_server.analysis.rssi_zones import calibrate_from_survey
from twin_server.baselines import strongest_receiver_result
from twin_server.evaluate import baseline_results, score
from twin_server.simulate import SimParams, simulate, synthetic_site
from twin_server.simulate.family import TUNING_SEEDS, draw_scenario, fixed_scenario, simulate_scenario
from twin_server.site import load_site

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("zone_accuracy", "task_accuracy", "task_macro_f1", "machine_state_accuracy", "lag_mae_s")


def _sites():
    return {
        "3 machines / 2 workers (pilot)": load_site(ROOT / "examples" / "pilot_site.yaml"),
        "8 machines / 4 workers": synthetic_site(8, 4),
    }


def _fmt(v: float | None, key: str) -> str:
    if v is None:
        return "n/a"
    return f"{v:.2f} s" if key.endswith("_s") else f"{100 * v:.2f} %"


def run_sites(seeds: list[int], hours: float, log) -> dict:
    out: dict = {}
    for name, site in _sites().items():
        for mode in ("locator + RSSI", "RSSI only"):
            params = SimParams() if mode == "locator + RSSI" else SimParams(locator=False)
            rows, raw, shifted, sf_rows = [], [], [], []
            train_tasks = []
            for seed in seeds:
                sim = simulate(site, hours, seed, params=params)
                t0 = time.perf_counter()
                res = analyze(sim.readings, site)
                dt = time.perf_counter() - t0
                s = score(sim.truth, res).to_dict()
                rows.append(s)
                log(
                    f"{name} | {mode} | seed {seed}: "
                    + ", ".join(f"{k}={_fmt(s[k], k)}" for k in KEYS)
                    + f" ({dt:.1f} s)"
                )
                if mode == "locator + RSSI":
                    base = baseline_results(sim.truth, sim.readings, site)
                    raw.append(score(sim.truth, base["raw"], zones_only=True).to_dict())
                    shifted.append(score(sim.truth, base["shifted_30s"], zones_only=True).to_dict())
                # Switch-free: learn priors on the first half (analysed with switches), test on the rest.
                if seed in seeds[: len(seeds) // 2]:
                    for m in site.machine_ids:
                        train_tasks.append([(t.task, t.start, t.end) for t in res.tasks if t.machine == m])
                else:
                    pri = learn_priors(train_tasks)
                    res_sf = analyze(sim.readings, site, params=AnalysisParams(switch_free=True, priors=pri))
                    sf = score(sim.truth, res_sf).to_dict()
                    sf_rows.append(sf)
                    log(
                        f"   switch-free seed {seed}: task {_fmt(sf['task_accuracy'], 'x')}, "
                        f"F1 {_fmt(sf['task_macro_f1'], 'x')}"
                    )
            out[(name, mode)] = {"analysis": rows, "raw": raw, "shifted": shifted, "switch_free": sf_rows}
    return out


def tetam(log, fingerprint: bool = True) -> list[dict]:
    shared = Path("/work/shared/data/ble_tetam/tidy")
    if shared.is_dir():
        base = shared
        tracks = [ln.split(",")[0] for ln in (base / "tracks_summary.csv").read_text().splitlines()[1:] if ln]
        survey = pd.read_csv(base / "fingerprints_summary.csv")
    else:
        base = ROOT / "tests" / "data" / "ble_tetam"
        tracks = ["rectangular_without_rotation"]
        survey = pd.read_csv(base / "survey_points.csv")
    survey = survey.rename(columns={"rssi_mean": "rssi_dbm"})
    receivers = pd.read_csv(base / "receivers.csv")
    pis = receivers[receivers["alias"].str.endswith("0")]
    stations = dict(zip(pis["group"], pis["receiver_id"], strict=True))
    out = []
    for label, use in (("12 receivers", None), ("4 Pi receivers", list(pis["receiver_id"]))):
        site = station_site(receivers, stations, "e78f135624ce", floor_m=(20.66, 17.64), use=use)
        p0, n = calibrate_from_survey(survey, [r.id for r in site.receivers], site)
        for calib, params in (
            ("survey-calibrated", AnalysisParams(rssi_p0_by_receiver=p0, rssi_exponent=n)),
            ("self-fitted", AnalysisParams()),
        ):
            secs = acc = nones = naive = 0.0
            delays = []
            for tr in tracks:
                s = score_track(
                    pd.read_csv(base / f"{tr}_rssi.csv"),
                    pd.read_csv(base / f"{tr}_zones.csv"),
                    site,
                    params=params,
                    zone_names={"aisle": "none"},
                )
                secs += s.seconds
                acc += s.accuracy * s.seconds
                nones += s.always_none * s.seconds
                naive += s.naive * s.seconds
                delays.append(s.delay_s)
            row = {
                "receivers": label,
                "calibration": f"{calib}, each track alone",
                "tracks": len(tracks),
                "seconds": int(secs),
                "accuracy": acc / secs,
                "always_none": nones / secs,
                "naive": naive / secs,
                "delay_median_s": statistics.median(delays),
                "delay_abs_mean_s": statistics.fmean(abs(d) for d in delays),
            }
            log(f"ble_tetam {row}")
            out.append(row)
            # The nine tracks as one recording (one session on one floor): the self-calibration
            # sees all of it, as it does on a working floor watched for hours.
            ses = score_session(
                [
                    (pd.read_csv(base / f"{tr}_rssi.csv"), pd.read_csv(base / f"{tr}_zones.csv"))
                    for tr in tracks
                ],
                site,
                params=params,
                zone_names={"aisle": "none"},
            )
            row = {
                "receivers": label,
                "calibration": f"{calib}, all tracks as one session",
                "tracks": len(tracks),
                "seconds": ses.seconds,
                "accuracy": ses.accuracy,
                "always_none": ses.always_none,
                "naive": ses.naive,
                "ece": cf.expected_calibration_error(ses.confidence, ses.correct),
            }
            log(f"ble_tetam {row}")
            out.append(row)
    if not fingerprint:
        return out
    site = station_site(receivers, stations, "e78f135624ce", floor_m=(20.66, 17.64))
    data = {
        tr: (pd.read_csv(base / f"{tr}_rssi.csv"), pd.read_csv(base / f"{tr}_zones.csv")) for tr in tracks
    }
    occ = Path("/work/shared/data/ble_tetam/raw/occ/tetam_0.1.occ")
    walkable = load_occupancy(occ if occ.is_file() else ROOT / "tests/data/ble_tetam/tetam_0.2.occ")
    gt = {tr: pd.read_csv(base / f"{tr}_gt.csv") for tr in tracks if (base / f"{tr}_gt.csv").is_file()}
    plans = [("survey fingerprint + floor plan + walking model", lambda tr: survey)]
    if len(gt) == len(tracks) and len({_family(t) for t in tracks}) > 1:

        def with_walk(tr: str) -> pd.DataFrame:
            walks = [walk_survey_points(data[u][0], gt[u]) for u in tracks if _family(u) != _family(tr)]
            return pd.concat([survey, *walks], ignore_index=True)

        plans.append(("same + calibration walk (other track shapes)", with_walk))
    for label, survey_for in plans:
        for row in tetam_fingerprint(site, survey_for, walkable, data, log):
            row.update(receivers="12 receivers", calibration=f"{label}, {row.pop('mode')} (LOTO-CV)")
            log(f"ble_tetam {row}")
            out.append(row)
    return out


def family_rssi(seeds: list[int], hours: float, jobs: int, log) -> list[str]:
    """RSSI-only zone accuracy on tuning draws of the family forced to RSSI-only sensing.

    Small draws (at most 8 machines and 4 workers) of ``TUNING_SEEDS`` and the pilot and 8 x 4
    sites under the family's conditions; beside the strongest-receiver method on the same file.
    """
    small = [s for s in TUNING_SEEDS if _small(draw_scenario(s))][: len(seeds)]
    work = [("family", s, hours) for s in small]
    work += [(g, s, hours) for g in ("pilot", "8x4") for s in (101, 102)]
    with mp.Pool(max(1, min(jobs, 2)), initializer=os.nice, initargs=(10,)) as pool:
        rows = list(pool.imap_unordered(_rssi_draw, work))
    for r in rows:
        log(f"RSSI only {r}")
    out = [
        "| draws | RSSI-only zone acc. mean (worst decile) | strongest receiver | below it | "
        "every zone with a receiver within 2 m |",
        "|---|---|---|---|---|",
    ]
    for name in ("family", "pilot", "8x4"):
        rs = [r for r in rows if r["group"] == name]
        acc = [r["zone"] for r in rs]
        near = [r["zone"] for r in rs if r["near_2m"]]
        worst = sorted(acc)[len(acc) // 10]
        below = sum(r["zone"] < r["naive"] for r in rs)
        near_cell = f"{statistics.fmean(near):.3f} ({len(near)})" if near else "-"
        out.append(
            f"| {name} ({len(rs)}) | {statistics.fmean(acc):.3f} ({worst:.3f}) | "
            f"{statistics.fmean(r['naive'] for r in rs):.3f} | {below} | {near_cell} |"
        )
    return out


def _small(draw) -> bool:
    return len(draw.site.machines) <= 8 and len(draw.site.workers) <= 4


def _rssi_draw(job: tuple[str, int, float]) -> dict:
    group, seed, hours = job
    if group == "family":
        draw = draw_scenario(seed, hours=hours, sensing="rssi")
    else:
        site = _sites()["3 machines / 2 workers (pilot)" if group == "pilot" else "8 machines / 4 workers"]
        draw = fixed_scenario(site, seed, hours=hours, sensing="rssi")
    sim = simulate_scenario(draw)
    res = analyze(sim.readings, draw.site)
    naive = strongest_receiver_result(sim.truth, sim.readings, draw.site)
    return {
        "group": group,
        "seed": seed,
        "zone": score(sim.truth, res, zones_only=True).zone_accuracy,
        "naive": score(sim.truth, naive, zones_only=True).zone_accuracy,
        "near_2m": draw.facts.get("zones_without_receiver_within_2m", 1) == 0,
    }


def _family(track: str) -> str:
    """Track shape (``straight``, ``rectangular``, ``zigzagging``): a calibration walk never shares it."""
    return track.split("_")[0]


FP_GRID = [
    dict(kernel_m=k, zone_weight=w, map_sigma_db=m)
    for k in (0.5, 0.8)
    for w in (1.5, 2.0, 3.0)
    for m in (2.0, 3.0)
]


def tetam_fingerprint(site, survey_for, walkable, data: dict, log) -> list[dict]:
    """Fingerprint smoother on every track, its setting chosen leave-one-track-out from FP_GRID.

    ``survey_for(track)`` gives the survey used for that track (never containing it).
    Offline scores choose the setting; the fixed-lag and causal rows reuse each track's choice.
    """
    maps = {}

    def fmap(tr: str, fp: FingerprintParams):
        key = (tr, fp.kernel_m)
        if key not in maps:
            maps[key] = build_map(survey_for(tr), site, fp, (20.66, 17.64), walkable=walkable)
        return maps[key]

    def one(tr: str, fp: FingerprintParams):
        rssi, zones = data[tr]
        return score_track(rssi, zones, site, zone_names={"aisle": "none"}, fingerprint=(fmap(tr, fp), fp))

    per = {}  # config index -> track -> TrackScore
    for i, g in enumerate(FP_GRID):
        per[i] = {tr: one(tr, FingerprintParams(**g)) for tr in data}
        log(f"   ble_tetam setting {g}: {pooled(per[i], list(data)):.4f} in-sample")
    choice = {tr: max(per, key=lambda i: pooled(per[i], [u for u in data if u != tr])) for tr in data}
    rows = []
    for mode, lag_s in (("offline", None), ("fixed lag 3 s", 3), ("causal", 0)):
        got = {
            tr: per[choice[tr]][tr]
            if lag_s is None
            else one(tr, FingerprintParams(**FP_GRID[choice[tr]], lag_s=lag_s))
            for tr in data
        }
        delays = [s.delay_s for s in got.values()]
        rows.append(
            {
                "mode": mode,
                "tracks": len(data),
                "seconds": sum(s.seconds for s in got.values()),
                "accuracy": pooled(got, list(data)),
                "delay_median_s": statistics.median(delays),
                "delay_abs_mean_s": statistics.fmean(abs(d) for d in delays),
            }
        )
    return rows


def pooled(scores: dict, tracks: list[str]) -> float:
    """Per-second accuracy pooled over tracks."""
    secs = sum(scores[t].seconds for t in tracks)
    return sum(scores[t].accuracy * scores[t].seconds for t in tracks) / secs


def markdown(res: dict, tet: list[dict], seeds: list[int], hours: float) -> str:
    lines = [
        f"Seeds {seeds[0]}..{seeds[-1]} ({len(seeds)}), {hours:g} h each, 5 % of presses forgotten.",
        "Mean over seeds (worst seed in brackets).",
        "",
        "| site | recording | method | zone acc. | task acc. | task macro-F1 | machine state | lag MAE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (name, mode), r in res.items():

        def cells(rows, keys=KEYS):
            out = []
            for k in KEYS:
                if k not in keys or not rows:
                    out.append("-")
                    continue
                vals = [x[k] for x in rows if x.get(k) is not None]
                if not vals:
                    out.append("n/a")
                    continue
                worst = max(vals) if k.endswith("_s") else min(vals)
                out.append(f"{_fmt(statistics.fmean(vals), k)} ({_fmt(worst, k)})")
            return " | ".join(out)

        lines.append(f"| {name} | {mode} | **analysis** | {cells(r['analysis'])} |")
        if r["raw"]:
            zl = ("zone_accuracy", "lag_mae_s")
            lines.append(f"| {name} | {mode} | raw locator | {cells(r['raw'], zl)} |")
            lines.append(
                f"| {name} | {mode} | raw shifted 30 s | "
                f"{cells(r['shifted'], ('zone_accuracy', 'lag_mae_s'))} |"
            )
        if r["switch_free"]:
            lines.append(f"| {name} | {mode} | switch-free (held-out seeds) | {cells(r['switch_free'])} |")
    lines += [
        "",
        "| ble_tetam receivers | calibration | tracks | seconds | zone acc. (per second) |"
        " always none | strongest receiver | ECE | delay, median | delay, mean abs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def opt(t: dict, key: str, fmt: str) -> str:
        return fmt.format(t[key]) if t.get(key) is not None else "-"

    for t in tet:
        lines.append(
            f"| {t['receivers']} | {t['calibration']} | {t['tracks']} | {t['seconds']} | "
            f"{100 * t['accuracy']:.1f} % | {opt(t, 'always_none', '{:.1%}')} | "
            f"{opt(t, 'naive', '{:.1%}')} | {opt(t, 'ece', '{:.3f}')} | "
            f"{opt(t, 'delay_median_s', '{:+.0f} s')} | {opt(t, 'delay_abs_mean_s', '{:.1f} s')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--no-sim", action="store_true", help="only the ble_tetam part")
    ap.add_argument(
        "--family-rssi",
        type=int,
        default=0,
        metavar="N",
        help="also N small tuning draws forced to RSSI only (1 h each), and fixed sites",
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument(
        "--no-fingerprint",
        action="store_true",
        help="leave out the survey fingerprint rows of ble_tetam (their settings search is slow)",
    )
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    seeds = list(range(1, args.seeds + 1))
    res = {} if args.no_sim else run_sites(seeds, args.hours, log)
    print(markdown(res, tetam(log, not args.no_fingerprint), seeds, args.hours))
    if args.family_rssi:
        print("\n" + "\n".join(family_rssi(list(range(args.family_rssi)), 1.0, args.jobs, log)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
