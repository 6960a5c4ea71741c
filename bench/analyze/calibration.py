"""Confidence calibration of the worker zones: fit the tables, check them, draw the plot.

Run: ``nice -n 10 .venv/bin/python bench/analyze/calibration.py [--fit 20] [--check 16]
[--hours 1.0] [--jobs 2] [--png docs/img/calibration.png]``

Fit: the first ``--fit`` small tuning draws (``TUNING_SEEDS``, at most 8 machines and 4
workers) analysed twice, RSSI only and locator only, with calibration off; per zone source
(``rssi_chain``: RSSI alone decoded with the zone chain, as every draw with presence events
is; ``rssi``: the smoother alone, for draws whose fit had too few labelled windows, when at
least 5 are;
``locator``) the isotonic table of per-second correctness against the reported
interval confidence (:func:`twin_server.analysis.confidence.isotonic_table`) and the share of
right seconds among those without any estimate. The tables are printed as Python to paste into
``twin_server/analysis/confidence.py``.

Check (never fitted on): the next ``--check`` small tuning draws with their drawn sensing, the
pilot and 8 x 4 sites under the family's conditions, and the real ble_tetam session (its nine
tracks as one recording, RSSI alone, self-fitted, no survey, no events), analysed with the
tables in the code; prints reliability tables and the expected calibration error (ECE), and
writes the reliability plot (PNG).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from twin_server.analysis import analyze
from twin_server.analysis import confidence as cf
from twin_server.analysis.bleeval import rssi_frame, station_site
from twin_server.evaluate import label_grid, score_times
from twin_server.simulate import synthetic_site
from twin_server.simulate.family import TUNING_SEEDS, draw_scenario, fixed_scenario, simulate_scenario
from twin_server.site import load_site

ROOT = Path(__file__).resolve().parents[2]
TETAM = Path("/work/shared/data/ble_tetam/tidy")


def small_tuning_seeds() -> list[int]:
    """Tuning draws with at most 8 machines and 4 workers (fast to analyse)."""
    out = []
    for s in TUNING_SEEDS:
        d = draw_scenario(s)
        if len(d.site.machines) <= 8 and len(d.site.workers) <= 4:
            out.append(s)
    return out


def per_second(truth, result, site) -> tuple[np.ndarray, np.ndarray]:
    """Reported confidence and correctness of every scored (worker, second)."""
    t = score_times(truth.window_start, truth.window_end)
    conf, ok = [], []
    for w in site.worker_ids:
        true_iv = [(z.start, z.end, z.zone) for z in truth.worker_zones if z.worker == w]
        tz = label_grid(true_iv, t, "<missing>")
        mine = [z for z in result.worker_zones if z.worker == w]
        rz = label_grid([(z.start, z.end, z.zone) for z in mine], t, "<none>")
        c_iv = [(z.start, z.end, np.nan if z.confidence is None else z.confidence) for z in mine]
        rc = label_grid(c_iv, t, np.nan)
        keep = tz != "<missing>"
        conf.append(rc[keep])
        ok.append(rz[keep] == tz[keep])
    return np.concatenate(conf), np.concatenate(ok)


def run(job: tuple) -> dict:
    """One draw: ``(group, seed, hours, sensing, raw)``; ``raw`` turns calibration off."""
    group, seed, hours, sensing, raw = job
    if group == "family":
        draw = draw_scenario(seed, hours=hours, sensing=sensing)
    else:
        site = load_site(ROOT / "examples" / "pilot_site.yaml") if group == "pilot" else synthetic_site(8, 4)
        draw = fixed_scenario(site, seed, hours=hours, sensing=sensing)
    sim = simulate_scenario(draw)
    if raw:
        cf.TABLES.clear()
        cf.NOT_HEARD.clear()
    res = analyze(sim.readings, draw.site)
    conf, ok = per_second(sim.truth, res, draw.site)
    chained = bool(res.extra["analysis"].get("rssi_zone_chain"))
    return {
        "group": group,
        "seed": seed,
        "sensing": draw.sensing,
        "source": ("rssi_chain" if chained else "rssi") if draw.sensing == "rssi" else "locator",
        "conf": conf,
        "ok": ok,
    }


def tetam_session() -> tuple[np.ndarray, np.ndarray] | None:
    """ble_tetam's nine tracks as one recording (12 receivers, RSSI alone, self-fitted)."""
    if not TETAM.is_dir():
        return None
    tracks = [ln.split(",")[0] for ln in (TETAM / "tracks_summary.csv").read_text().splitlines()[1:] if ln]
    receivers = pd.read_csv(TETAM / "receivers.csv")
    pis = receivers[receivers["alias"].str.endswith("0")]
    site = station_site(
        receivers,
        dict(zip(pis["group"], pis["receiver_id"], strict=True)),
        "e78f135624ce",
        floor_m=(20.66, 17.64),
    )
    frames = {tr: pd.read_csv(TETAM / f"{tr}_rssi.csv") for tr in tracks}
    session = pd.concat(frames.values(), ignore_index=True).sort_values("t_seconds")
    res = analyze(rssi_frame(session, site), site)
    conf, ok = [], []
    for tr in tracks:
        zones = pd.read_csv(TETAM / f"{tr}_zones.csv")
        t = score_times(float(frames[tr]["t_seconds"].min()), float(frames[tr]["t_seconds"].max()))
        zt = zones["t_seconds"].to_numpy(dtype="float64")
        zl = np.array(["none" if z == "aisle" else z for z in zones["zone"].astype(str)], dtype=object)
        pos = np.searchsorted(zt, t, side="right") - 1
        truth = np.where(pos >= 0, zl[np.maximum(pos, 0)], "none")
        conf.append(label_grid([(z.start, z.end, z.confidence) for z in res.worker_zones], t, np.nan))
        ok.append(label_grid([(z.start, z.end, z.zone) for z in res.worker_zones], t, "none") == truth)
    return np.concatenate(conf), np.concatenate(ok)


def fit_tables(rows: list[dict]) -> tuple[dict, dict]:
    tables, not_heard = {}, {}
    for src in ("rssi", "rssi_chain", "locator"):
        mine = [r for r in rows if r["source"] == src]
        if len(mine) < (5 if src == "rssi" else 1):  # a table from one or two draws would be noise
            continue
        c = np.concatenate([r["conf"] for r in mine])
        ok = np.concatenate([r["ok"] for r in mine])
        none = c == 0.0
        tables[src] = cf.isotonic_table(c[~none], ok[~none])
        not_heard[src] = round(float(ok[none].mean()), 3) if none.any() else 0.0
    return tables, not_heard


def reliability_lines(name: str, conf: np.ndarray, ok: np.ndarray) -> list[str]:
    ece = cf.expected_calibration_error(conf, ok)
    out = [
        f"**{name}**: {int(np.isfinite(conf).sum())} seconds, accuracy {ok.mean():.3f}, ECE {ece:.3f}",
        "",
        "| confidence | seconds | mean confidence | share right |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {b.lo:.1f}-{b.hi:.1f} | {b.seconds} | {b.mean_confidence:.3f} | {b.accuracy:.3f} |"
        for b in cf.reliability(conf, ok)
    ]
    return [*out, ""]


def plot(panels: list[tuple[str, np.ndarray, np.ndarray]], path: Path) -> None:
    """Reliability diagram per panel: share right per confidence bin against the diagonal."""
    from PIL import Image, ImageDraw

    size, pad = 360, 50
    img = Image.new("RGB", (len(panels) * (size + pad) + pad, size + 2 * pad + 20), "white")
    draw = ImageDraw.Draw(img)
    for i, (name, conf, ok) in enumerate(panels):
        x0, y0 = pad + i * (size + pad), pad
        draw.rectangle([x0, y0, x0 + size, y0 + size], outline="black")
        draw.line([x0, y0 + size, x0 + size, y0], fill=(150, 150, 150), width=1)
        bins = cf.reliability(conf, ok)
        total = sum(b.seconds for b in bins)
        for b in bins:
            bx0, bx1 = x0 + b.lo * size, x0 + b.hi * size
            draw.rectangle(
                [bx0 + 2, y0 + size - b.accuracy * size, bx1 - 2, y0 + size],
                fill=(70, 120, 200),
                outline=(30, 60, 120),
            )
            share = b.seconds / total
            draw.rectangle(
                [bx0 + 2, y0 + size + 4, bx0 + 2 + (bx1 - bx0 - 4) * min(1.0, 4 * share), y0 + size + 10],
                fill=(200, 120, 60),
            )
            mx = x0 + b.mean_confidence * size
            draw.ellipse(
                [
                    mx - 3,
                    y0 + size - b.mean_confidence * size - 3,
                    mx + 3,
                    y0 + size - b.mean_confidence * size + 3,
                ],
                fill="black",
            )
        ece = cf.expected_calibration_error(conf, ok)
        draw.text((x0, y0 - 34), name, fill="black")
        draw.text((x0, y0 - 20), f"ECE {ece:.3f}, {total} s, accuracy {ok.mean():.3f}", fill="black")
        for v in (0.0, 0.5, 1.0):
            draw.text((x0 + v * size - 6, y0 + size + 14), f"{v:.1f}", fill="black")
            draw.text((x0 - 24, y0 + size - v * size - 6), f"{v:.1f}", fill="black")
    draw.text(
        (pad, size + 2 * pad),
        "x: confidence given; bars: share right per bin (dots: mean confidence; "
        "grey: perfect calibration; orange: seconds per bin)",
        fill="black",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--fit", type=int, default=20, help="small tuning draws to fit on (each RSSI only and locator only)"
    )
    ap.add_argument("--check", type=int, default=16, help="further small tuning draws to check on")
    ap.add_argument("--fixed", type=int, default=2, help="pilot and 8 x 4 draws to check on, each sensing")
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-fit", action="store_true", help="only check the tables in the code")
    ap.add_argument(
        "--raw", type=Path, help="keep the fit draws' raw per-second rows in this .npz (reused if present)"
    )
    ap.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "calibration.png")
    args = ap.parse_args(argv)
    seeds = small_tuning_seeds()
    fit_seeds, check_seeds = seeds[: args.fit], seeds[args.fit : args.fit + args.check]

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    with mp.Pool(max(1, min(args.jobs, 2)), initializer=os.nice, initargs=(10,)) as pool:
        if not args.no_fit:
            if args.raw and args.raw.is_file():
                got = np.load(args.raw, allow_pickle=True)
                rows = list(got["rows"])
            else:
                jobs = [
                    ("family", s, args.hours, sensing, True)
                    for s in fit_seeds
                    for sensing in ("rssi", "locator")
                ]
                rows = list(pool.imap_unordered(run, jobs))
                if args.raw:
                    np.savez(args.raw, rows=np.array(rows, dtype=object))
            tables, not_heard = fit_tables(rows)
            print("TABLES = {")
            for src, tab in tables.items():
                print(f"    {src!r}: {tab!r},")
            print("}")
            print(f"NOT_HEARD = {not_heard!r}")
            for src in tables:
                mine = [r for r in rows if r["source"] == src]
                c = np.concatenate([r["conf"] for r in mine])
                ok = np.concatenate([r["ok"] for r in mine])
                log("\n".join(reliability_lines(f"fit draws, {src}, raw", c, ok)))
            cf.TABLES.update(tables)
            cf.NOT_HEARD.update(not_heard)
    # A new pool: its processes start after the tables are set.
    with mp.Pool(max(1, min(args.jobs, 2)), initializer=os.nice, initargs=(10,)) as pool:
        jobs = [("family", s, args.hours, None, False) for s in check_seeds]
        jobs += [
            (g, s, args.hours, sensing, False)
            for g in ("pilot", "8x4")
            for s in range(101, 101 + args.fixed)
            for sensing in ("rssi", "locator", "both")
        ]
        checks = list(pool.imap_unordered(run, jobs))
    panels = []
    lines = [
        f"Check draws: tuning seeds {check_seeds}, pilot and 8 x 4 seeds 101..{100 + args.fixed}, "
        f"{args.hours:g} h each.",
        "",
    ]
    for name, sel in (
        ("family and fixed sites, RSSI only", lambda r: r["sensing"] == "rssi"),
        ("family and fixed sites, with a locator", lambda r: r["sensing"] != "rssi"),
        ("family and fixed sites, all", lambda r: True),
    ):
        mine = [r for r in checks if sel(r)]
        if mine:
            c = np.concatenate([r["conf"] for r in mine])
            ok = np.concatenate([r["ok"] for r in mine])
            lines += reliability_lines(f"{name} ({len(mine)} recordings)", c, ok)
            panels.append((f"{name} ({len(mine)})", c, ok))
    tet = tetam_session()
    if tet is not None:
        lines += reliability_lines("ble_tetam, 9 tracks as one session, RSSI alone, self-fitted", *tet)
        panels.append(("ble_tetam, RSSI alone, self-fitted", *tet))
    print("\n".join(lines))
    plot(panels, args.png)
    log(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
