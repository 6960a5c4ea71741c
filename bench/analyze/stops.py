"""Real BLE, a walker stopping at points: RSSI-alone zones on ble_tetam's stationary recordings.

The issue's real-BLE rows (a walker stopping 1-2 min at points like a worker at a machine,
zones 1.6 m squares around the points, receivers on the walls at 2.3 m, RSSI alone) are
recordings the team has not seen. This builds the nearest thing from the data at hand: the
dataset's stationary recordings (each point ~30 min, all 12 receivers, CC0) cut into stops
and joined into one session, heard by the wall dongles only (``sensorN1``/``sensorN2``,
2.30 m). Each draw picks a set, 4-8 stop points at least ``--spacing`` apart, one dongle
per group (4 receivers), a route of 20-30 stops of 60-120 s with 3-8 s walks between (no
packets while walking, or with ``--walk-packets`` a random stretch of one of the dataset's
moving tracks; those seconds are ``none``), and whether the floor outline is given.
The analysis sees the RSSI only, no survey; with ``--presses`` also a switch pressed once in
each stop (the presence events a working floor gives). Beside it, on the same seconds:
answering ``none`` always, and the strongest receiver -> nearest zone.

``--layout wall-zones`` builds the issue's other real-BLE row instead (6 receivers on the
walls, zones 2.4 m squares under 5 of them, RSSI only): set 1's points (it has one under
every wall dongle), 6 of the 8 dongles, a walker who stops in a zone (60-120 s) 45 % of the
time and else at one of 4-8 points outside every zone (20-120 s), real walking packets
between; about half the seconds are ``none``. ``--survey`` adds that row's survey made of
calibration walks on other days: the dataset's moving tracks (Feb 2020; set 1 is Sep 2019)
with their ground truth, as a fingerprint map.

This is a check, not a tuning set: seeds 0-29 were used to develop the zone fingerprints,
the still dwells without events and the wall-zones gate (docs/analysis.md); report fresh
seeds once, after the code is final (1000-1029, 2000-2029, 3000-3029, 4000-4029, 5000-5029,
6000-6029 up to 11000-11029, every thousand, were; 12000-12029 with ``--wall-set set_2``).

    .venv/bin/python bench/analyze/stops.py --draws 30 --seed 1000 --presses
    .venv/bin/python bench/analyze/stops.py --layout wall-zones --draws 30 --seed 9000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from twin_server.analysis import confidence as cf
from twin_server.analysis.bleeval import naive_zones, rssi_frame, truth_at
from twin_server.analysis.fingerprint_zones import FingerprintParams, build_map, walk_survey_points
from twin_server.analysis.params import AnalysisParams
from twin_server.analysis.pipeline import analyze
from twin_server.evaluate import label_grid, score_times
from twin_server.readings import validate_readings
from twin_server.site import Site, parse_site

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ble_tetam"
BEACON = "e78f135624ce"
FLOOR_M = (20.66, 17.64)


@dataclass
class Point:
    """A stationary recording: the beacon's position and its packets per receiver."""

    set_name: str
    x_m: float
    y_m: float
    packets: pd.DataFrame  # t_s (from the recording's start), receiver_id, rssi_dbm


def load_points(cache: Path, receiver_ids: list[str]) -> list[Point]:
    """Every stationary point of both sets, packets of ``receiver_ids`` only (cached as a gzipped CSV)."""
    cache.mkdir(parents=True, exist_ok=True)
    flat = cache / "stops_points.csv.gz"
    if not flat.exists():
        rows = []
        with tarfile.open(DATA / "raw" / "hst" / "hst_mbd_set_1_set_2.tar.xz") as tar:
            for m in tar:
                if not m.isfile() or not m.name.endswith(".mbd"):
                    continue
                parts = Path(m.name).stem.split("_")
                set_name = Path(m.name).parent.name
                f = tar.extractfile(m)
                assert f is not None
                d = pd.read_csv(
                    f, header=None, names=["t", "rid", "bid", "rssi"], dtype={"rid": str, "bid": str}
                )
                d = d[d["rid"].isin(receiver_ids) & (d["bid"] == BEACON)]
                d = d.assign(set=set_name, x=float(parts[1]), y=float(parts[2]))
                rows.append(d[["set", "x", "y", "t", "rid", "rssi"]])
        pd.concat(rows, ignore_index=True).to_csv(flat, index=False)
    d = pd.read_csv(flat, dtype={"rid": str, "set": str})
    out = []
    for (s, x, y), g in d.groupby(["set", "x", "y"]):
        g = g.sort_values("t")
        pk = pd.DataFrame(
            {
                "t_s": g["t"].to_numpy() - g["t"].min(),
                "receiver_id": g["rid"].astype(str),
                "rssi_dbm": g["rssi"],
            }
        )
        out.append(Point(str(s), float(x), float(y), pk.reset_index(drop=True)))
    return out


def square(x: float, y: float, side_m: float) -> list[list[float]]:
    """A square zone of side ``side_m`` centred on ``(x, y)``."""
    h = side_m / 2
    return [[x - h, y - h], [x + h, y - h], [x + h, y + h], [x - h, y + h]]


def load_walks() -> list[pd.DataFrame]:
    """The dataset's moving tracks (a walker carrying the beacon; tidy CSVs, all receivers):
    ``t_s`` from each track's start, ``receiver_id``, ``rssi_dbm``."""
    tidy = DATA / "tidy"
    names = pd.read_csv(tidy / "tracks_summary.csv").iloc[:, 0].astype(str)
    out = []
    for name in names:
        d = pd.read_csv(tidy / f"{name}_rssi.csv", dtype={"receiver_id": str, "beacon_id": str})
        d = d[d["beacon_id"] == BEACON]
        out.append(
            pd.DataFrame(
                {
                    "t_s": d["t_seconds"] - d["t_seconds"].min(),
                    "receiver_id": d["receiver_id"],
                    "rssi_dbm": d["rssi_dbm"],
                }
            )
        )
    return out


def walk_rows(
    rng: np.random.Generator, walks: list[pd.DataFrame], use: list[str], t: float, gap_s: float
) -> pd.DataFrame:
    """``gap_s`` seconds of a real walk (a random stretch of a moving track) placed at ``t``."""
    w = walks[int(rng.integers(len(walks)))]
    start = float(rng.uniform(0, max(float(w["t_s"].max()) - gap_s, 0.0)))
    pk = w[(w["t_s"] >= start) & (w["t_s"] < start + gap_s) & w["receiver_id"].isin(use)]
    return pd.DataFrame(
        {
            "t_seconds": pk["t_s"].to_numpy() - start + t,
            "receiver_id": pk["receiver_id"].to_numpy(),
            "beacon_id": BEACON,
            "rssi_dbm": pk["rssi_dbm"].to_numpy(),
        }
    )


def stop_rows(rng: np.random.Generator, p: Point, use: list[str], t: float, stay_s: float) -> pd.DataFrame:
    """``stay_s`` seconds of point ``p``'s recording (a random stretch, receivers ``use``) placed at ``t``."""
    start = float(rng.uniform(0, p.packets["t_s"].max() - stay_s))
    pk = p.packets[(p.packets["t_s"] >= start) & (p.packets["t_s"] < start + stay_s)]
    pk = pk[pk["receiver_id"].isin(use)]
    return pd.DataFrame(
        {
            "t_seconds": pk["t_s"].to_numpy() - start + t,
            "receiver_id": pk["receiver_id"].to_numpy(),
            "beacon_id": BEACON,
            "rssi_dbm": pk["rssi_dbm"].to_numpy(),
        }
    )


def stops_site(name: str, machines: list[dict], receivers: pd.DataFrame, outline: bool) -> Site:
    """The site of a draw: its machines, one worker carrying the beacon, ``receivers`` (rows of
    ``receivers.csv``) and, with ``outline``, the floor's size."""
    doc: dict = {
        "site": name,
        "machines": machines,
        "workers": [{"id": "W", "beacon": BEACON}],
        "receivers": [
            {"id": str(r.receiver_id), "position": [float(r.x_m), float(r.y_m), float(r.z_m)]}
            for r in receivers.itertuples()
        ],
    }
    if outline:
        doc["floor"] = list(FLOOR_M)
    return parse_site(doc)


def route(
    rng: np.random.Generator,
    visits: Iterator[tuple[Point, str, float]],
    use: list[str],
    walks: list[pd.DataFrame] | None,
    walk_rng: np.random.Generator | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The session of ``visits`` (point, truth zone, stay in s, drawn as they are consumed): its
    RSSI rows, its truth (``t_seconds, zone``) and a press during each stop in a zone. Walks of
    3-8 s between the stops are silent, or carry real walking packets (``walks``, drawn from
    ``walk_rng`` so the stops are the same draw either way)."""
    t = 1_700_000_000.0
    rows, truth, stays = [], [], []
    for p, zone, stay in visits:
        rows.append(stop_rows(rng, p, use, t, stay))
        truth.append((t, zone))
        if zone != "none":
            stays.append((t, stay, zone))
        t += stay
        truth.append((t, "none"))
        gap = float(rng.uniform(3, 8))
        if walks:
            rows.append(walk_rows(walk_rng or rng, walks, use, t, gap))
        t += gap
    rssi = pd.concat(rows, ignore_index=True)
    zones = pd.DataFrame(truth, columns=["t_seconds", "zone"])
    # A switch pressed once during each stop in a zone (drawn last: the session is the same either way).
    presses = pd.DataFrame(
        [(a + float(rng.uniform(5, 0.6 * d)), m) for a, d, m in stays], columns=["t_seconds", "machine"]
    )
    return rssi, zones, presses


def draw_session(
    rng: np.random.Generator,
    points: list[Point],
    receivers: pd.DataFrame,
    *,
    spacing_m: float,
    side_m: float,
    walks: list[pd.DataFrame] | None = None,
    walk_rng: np.random.Generator | None = None,
) -> tuple[Site, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """One draw: the site, the session's RSSI rows, its truth (``t_seconds, zone``), a press
    per stop (``t_seconds, machine``) and what was drawn. With ``walks`` the walks between
    stops carry real walking packets (drawn from ``walk_rng``, so the stops are the same
    draw either way); without, they are silent."""
    set_name = str(rng.choice(["set_1", "set_2"]))
    pool = [p for p in points if p.set_name == set_name and p.packets["t_s"].max() > 600]
    k = int(rng.integers(4, 9))
    chosen: list[Point] = []
    for i in rng.permutation(len(pool)):
        p = pool[i]
        if all(np.hypot(p.x_m - q.x_m, p.y_m - q.y_m) >= spacing_m for q in chosen):
            chosen.append(p)
        if len(chosen) == k:
            break
    # Receivers: one wall dongle per group, 4 in all, as in the row.
    dongles = receivers[receivers["z_m"] > 2.0]
    use = []
    for _, g in dongles.groupby("group"):
        ids = list(g["receiver_id"].astype(str))
        rng.shuffle(ids)
        use.append(ids[0])
    outline = bool(rng.random() < 0.5)
    names = {id(p): f"M{i + 1}" for i, p in enumerate(chosen)}
    machines = [{"id": names[id(p)], "zone": square(p.x_m, p.y_m, side_m)} for p in chosen]
    site = stops_site("ble-stops", machines, dongles[dongles["receiver_id"].astype(str).isin(use)], outline)

    def visits() -> Iterator[tuple[Point, str, float]]:
        prev = None
        for _ in range(int(rng.integers(20, 31))):
            p = chosen[int(rng.integers(len(chosen)))]
            while p is prev:
                p = chosen[int(rng.integers(len(chosen)))]
            prev = p
            yield p, names[id(p)], float(rng.uniform(60, 120))

    rssi, zones, presses = route(rng, visits(), use, walks, walk_rng)
    info = {"set": set_name, "points": len(chosen), "receivers": len(use), "outline": outline}
    return site, rssi, zones, presses, info


def draw_wall_zones(
    rng: np.random.Generator,
    points: list[Point],
    receivers: pd.DataFrame,
    *,
    side_m: float,
    walks: list[pd.DataFrame] | None = None,
    walk_rng: np.random.Generator | None = None,
    set_name: str = "set_1",
) -> tuple[Site, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """One draw of the issue's other real-BLE row: 6 receivers on the walls (2.3 m), zones
    ``side_m`` squares under 5 of them, a walker who also stops away from every zone.

    Set 1 has a stationary point under every wall dongle; set 2 (recorded nine months later)
    under 4 of them, so its draws have zones under those 4 and 2 receivers without a zone.
    Each stop is in a zone with probability 0.45 (60-120 s), else at a point outside every
    zone (20-120 s), so about half the seconds are ``none``. Same return values as
    :func:`draw_session`.
    """
    pool = [p for p in points if p.set_name == set_name and p.packets["t_s"].max() > 600]
    dongles = receivers[receivers["z_m"] > 2.0].reset_index(drop=True)
    half = side_m / 2

    def inside(p: Point, r) -> bool:
        return abs(p.x_m - float(r.x_m)) <= half and abs(p.y_m - float(r.y_m)) <= half

    # In a random order: the first 5 dongles with a point under them get zones, and the first
    # 6 dongles with those 5 among them are heard (set 1: the first 5 and the 6th).
    order = [dongles.iloc[[i]] for i in rng.permutation(len(dongles))]
    under = [r for r in order if any(inside(p, r.iloc[0]) for p in pool)][:5]
    rest = [r for r in order if not any(r is u for u in under)][: 6 - len(under)]
    zone_rows = pd.concat(under)
    use_rows = pd.concat([*under, *rest])
    use = [str(r) for r in use_rows["receiver_id"]]

    zone_points: list[tuple[str, Point]] = []
    machines = []
    for i, r in enumerate(zone_rows.itertuples()):
        name = f"M{i + 1}"
        machines.append({"id": name, "zone": square(float(r.x_m), float(r.y_m), side_m)})
        cands = [p for p in pool if inside(p, r)]
        zone_points.append((name, cands[int(rng.integers(len(cands)))]))
    away = [p for p in pool if not any(inside(p, r) for r in zone_rows.itertuples())]
    off: list[Point] = []
    k = int(rng.integers(4, 9))
    for i in rng.permutation(len(away)):
        if all(np.hypot(away[i].x_m - q.x_m, away[i].y_m - q.y_m) >= 3.0 for q in off):
            off.append(away[i])
        if len(off) == k:
            break
    outline = bool(rng.random() < 0.5)
    site = stops_site("ble-wall-zones", machines, use_rows, outline)

    def visits() -> Iterator[tuple[Point, str, float]]:
        prev = None
        for _ in range(int(rng.integers(20, 31))):
            while True:
                if rng.random() < 0.45:
                    zone, p = zone_points[int(rng.integers(len(zone_points)))]
                    stay = float(rng.uniform(60, 120))
                else:
                    zone, p = "none", off[int(rng.integers(len(off)))]
                    stay = float(rng.uniform(20, 120))
                if p is not prev:
                    break
            prev = p
            yield p, zone, stay

    rssi, zones, presses = route(rng, visits(), use, walks, walk_rng)
    info = {"set": set_name, "points": len(zone_points) + len(off), "receivers": len(use), "outline": outline}
    return site, rssi, zones, presses, info


def walk_survey(site: Site) -> tuple:
    """A survey made of calibration walks on another day: every moving track of the dataset
    (Feb 2020; the stops are set 1, Sep 2019) as a walk with its ground truth, as
    ``AnalysisParams.survey_map``."""
    tidy = DATA / "tidy"
    use = {r.id for r in site.receivers}
    parts = []
    for name in pd.read_csv(tidy / "tracks_summary.csv").iloc[:, 0].astype(str):
        rssi = pd.read_csv(tidy / f"{name}_rssi.csv", dtype={"receiver_id": str, "beacon_id": str})
        rssi = rssi[(rssi["beacon_id"] == BEACON) & rssi["receiver_id"].isin(use)]
        track = pd.read_csv(tidy / f"{name}_gt.csv")
        parts.append(walk_survey_points(rssi, track))
    fp = FingerprintParams()
    fmap = build_map(pd.concat(parts, ignore_index=True), site, fp, (0.0, 0.0, *FLOOR_M))
    return fmap, fp


def readings(site: Site, rssi: pd.DataFrame, presses: pd.DataFrame | None) -> pd.DataFrame:
    """The analysis's input: the RSSI rows, and the presses (down, up 2 s later) if given."""
    frame = rssi_frame(rssi, site)
    if presses is None or presses.empty:
        return frame
    sw = pd.DataFrame(
        {
            "t": np.concatenate([presses["t_seconds"], presses["t_seconds"] + 2.0]),
            "kind": "switch",
            "source": np.concatenate([presses["machine"], presses["machine"]]),
            "channel": "program_input",
            "value": np.repeat([1.0, 0.0], len(presses)),
        }
    )
    both = pd.concat([frame[["t", "kind", "source", "channel", "value"]], sw], ignore_index=True)
    return validate_readings(both.sort_values("t", kind="stable"), site).frame


def score(
    site: Site,
    rssi: pd.DataFrame,
    zones: pd.DataFrame,
    params: AnalysisParams | None = None,
    presses: pd.DataFrame | None = None,
) -> dict:
    """Zone accuracy and calibration of one draw, beside always ``none`` and the naive method
    (``seconds``: each scored second's confidence and whether it was right)."""
    result = analyze(readings(site, rssi, presses), site, params=params)
    times = score_times(float(rssi["t_seconds"].min()), float(rssi["t_seconds"].max()))
    truth = truth_at(zones, times)
    pred = label_grid([(z.start, z.end, z.zone) for z in result.worker_zones], times, "none")
    conf = label_grid(
        [(z.start, z.end, np.nan if z.confidence is None else z.confidence) for z in result.worker_zones],
        times,
        np.nan,
    ).astype("float64")
    in_zone = truth != "none"
    return {
        "zone": float(np.mean(pred == truth)),
        "in_zone_right": float(np.mean(pred[in_zone] == truth[in_zone])),
        "answered_none": float(np.mean(pred == "none")),
        "always_none": float(np.mean(truth == "none")),
        "naive": float(np.mean(naive_zones(rssi, site, times) == truth)),
        "mean_confidence": float(np.nanmean(conf)),
        "ece": cf.expected_calibration_error(conf, pred == truth),
        "seconds": (conf, pred == truth),  # for the ECE over all draws' seconds
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="first draw's seed (draw i uses seed + i)")
    ap.add_argument("--spacing", type=float, default=3.0, help="least distance between stop points, m")
    ap.add_argument("--side", type=float, help="zone square side, m (default 1.6, wall-zones 2.4)")
    ap.add_argument(
        "--layout",
        choices=("points", "wall-zones"),
        default="points",
        help="points: zones around 4-8 stop points, 4 receivers; wall-zones: 6 wall receivers,"
        " zones under 5 of them, stops away from every zone too (then --walk-packets is implied)",
    )
    ap.add_argument(
        "--wall-set",
        choices=("set_1", "set_2"),
        default="set_1",
        help="wall-zones: the stationary recordings to stop at (set_2: zones under 4 receivers)",
    )
    ap.add_argument(
        "--survey",
        action="store_true",
        help="wall-zones: a survey of calibration walks on another day (the dataset's moving tracks)",
    )
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "factory-twin",
        help="for the unpacked recordings",
    )
    ap.add_argument("--out", type=Path)
    ap.add_argument("--presses", action="store_true", help="a switch pressed once in each stop (labels)")
    ap.add_argument(
        "--walk-packets",
        action="store_true",
        help="the walks between stops carry packets of the dataset's moving tracks (else silent)",
    )
    ap.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="an AnalysisParams field"
    )
    args = ap.parse_args(argv)
    if not (DATA / "raw" / "hst" / "hst_mbd_set_1_set_2.tar.xz").is_file():
        ap.error(f"the ble_tetam dataset is not at {DATA} (its raw/hst archive is needed)")
    try:
        params = AnalysisParams(**{k: json.loads(v) for k, v in (a.split("=", 1) for a in args.set)})
    except (ValueError, TypeError) as exc:
        ap.error(f"--set takes NAME=JSON with NAME a field of AnalysisParams: {exc}")
    if args.side is None:
        args.side = 2.4 if args.layout == "wall-zones" else 1.6
    if (args.survey or args.wall_set != "set_1") and args.layout != "wall-zones":
        ap.error("--survey and --wall-set go with --layout wall-zones")
    if args.layout == "wall-zones":
        args.walk_packets = True
    if args.draws < 1 or args.side <= 0 or args.spacing < 0:
        ap.error("--draws must be at least 1, --side positive and --spacing not negative")
    receivers = pd.read_csv(DATA / "tidy" / "receivers.csv", dtype={"receiver_id": str})
    print(f"reading the stationary recordings (cached in {args.cache})", file=sys.stderr, flush=True)
    points = load_points(args.cache, list(receivers["receiver_id"].astype(str)))
    walks = load_walks() if args.walk_packets else None
    rows = []
    pooled = []  # each draw's (confidence, right) per second
    for i in range(args.draws):
        rng = np.random.default_rng(args.seed + i)
        walk_rng = np.random.default_rng([args.seed + i, 1])
        if args.layout == "wall-zones":
            site, rssi, zones, presses, info = draw_wall_zones(
                rng,
                points,
                receivers,
                side_m=args.side,
                walks=walks,
                walk_rng=walk_rng,
                set_name=args.wall_set,
            )
        else:
            site, rssi, zones, presses, info = draw_session(
                rng,
                points,
                receivers,
                spacing_m=args.spacing,
                side_m=args.side,
                walks=walks,
                walk_rng=walk_rng,
            )
        draw_params = params
        if args.survey:
            draw_params = dataclasses.replace(params, survey_map=walk_survey(site))
        t0 = time.perf_counter()
        s = (
            score(site, rssi, zones, draw_params, presses if args.presses else None)
            | info
            | {"seed": args.seed + i, "seconds_run": time.perf_counter() - t0}
        )
        pooled.append(s.pop("seconds"))
        rows.append(s)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in s.items()}), flush=True)
    df = pd.DataFrame(rows)
    if args.out:
        df.to_csv(args.out, index=False)
    for col in ("zone", "in_zone_right", "answered_none", "always_none", "naive", "mean_confidence", "ece"):
        worst = df[col].quantile(0.9 if col == "ece" else 0.1)  # ECE: higher is worse
        print(f"{col:15s} mean {df[col].mean():.3f}  worst decile {worst:.3f}")
    print(f"below the naive method: {int((df['zone'] < df['naive']).sum())} of {len(df)}")
    conf = np.concatenate([c for c, _ in pooled])
    right = np.concatenate([r for _, r in pooled])
    print(f"ECE over all seconds of all draws: {cf.expected_calibration_error(conf, right):.3f}")
    for b in cf.reliability(conf, right):
        print(
            f"  confidence {b.lo:.1f}-{b.hi:.1f}: {b.seconds:6d} s,"
            f" mean {b.mean_confidence:.3f}, right {b.accuracy:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
