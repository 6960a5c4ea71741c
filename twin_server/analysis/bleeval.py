"""Scoring RSSI zone estimation on a position-annotated BLE recording (e.g. ble_tetam).

The recording's stations become circular zones (radius ``radius_m`` around each station's
receiver); every receiver becomes a site receiver. The RSSI rows run through the same
:func:`twin_server.analysis.analyze` as everything else; the per-second zone is compared
with the labelled truth, and the method's delay is the time shift that best aligns the
estimate with the truth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from twin_server.analysis.fingerprint_zones import FingerprintMap, FingerprintParams
from twin_server.analysis.params import AnalysisParams
from twin_server.analysis.pipeline import analyze
from twin_server.evaluate import label_grid, score_times
from twin_server.readings import validate_readings
from twin_server.site import Site, parse_site


def circle(x: float, y: float, r: float, n: int = 96) -> list[list[float]]:
    """Polygon approximating a circle."""
    return [[x + r * math.cos(2 * math.pi * i / n), y + r * math.sin(2 * math.pi * i / n)] for i in range(n)]


def station_site(
    receivers: pd.DataFrame,
    stations: dict[str, str],
    beacon: str,
    *,
    radius_m: float = 2.5,
    floor_m: tuple[float, float] | None = None,
    use: list[str] | None = None,
) -> Site:
    """A site whose machines are the stations' circles.

    Parameters
    ----------
    receivers : pandas.DataFrame
        Columns ``receiver_id, x_m, y_m, z_m``.
    stations : dict
        Station (zone) name -> receiver id at its centre.
    beacon : str
        The beacon id (one worker ``W`` carries it).
    radius_m : float
        Zone radius.
    floor_m : tuple, optional
        Floor size.
    use : list of str, optional
        Receiver ids to use (default all).
    """
    pos = receivers.set_index("receiver_id")
    machines = [
        {"id": name, "zone": circle(float(pos.loc[rid, "x_m"]), float(pos.loc[rid, "y_m"]), radius_m)}
        for name, rid in stations.items()
    ]
    recs = [
        {"id": str(rid), "position": [float(r.x_m), float(r.y_m), float(r.z_m)]}
        for rid, r in pos.iterrows()
        if use is None or rid in use
    ]
    doc: dict[str, Any] = {
        "site": "ble-eval",
        "machines": machines,
        "workers": [{"id": "W", "beacon": beacon}],
        "receivers": recs,
    }
    if floor_m is not None:
        doc["floor"] = list(floor_m)
    return parse_site(doc)


def load_occupancy(path: str | Path) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Floor plan from an occupancy grid file (ble_tetam ``occ/*.occ``) as ``walkable(x_m, y_m)``.

    The file is a header line ``[[xmin, ymin], [xmax, ymax]]::resolution`` then one
    ``[x, y]::v`` line per cell. The dataset's README says ``v = 1`` marks traversable cells,
    but 99-100 % of eight ground-truth tracks and 83 % of the ninth lie on ``v = 0`` cells
    (the aisles of ``map/tetam.png``), so ``0`` is taken as walkable here.

    Raises
    ------
    ValueError
        On a line that does not parse (names the line) or a file without cells.
    """
    lines = Path(path).read_text().splitlines()
    xy, val = [], []
    for no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            cell, v = line.split("::")
            x, y = (float(c) for c in cell.strip().strip("[]").split(","))
            val.append(int(v))
        except ValueError as exc:
            raise ValueError(f"{path}: line {no} is not '[x, y]::0|1': {line[:60]!r}") from exc
        xy.append((x, y))
    if not xy:
        raise ValueError(f"{path}: no cells")
    tree = cKDTree(np.asarray(xy))
    free = np.asarray(val) == 0

    def walkable(x_m: np.ndarray, y_m: np.ndarray) -> np.ndarray:
        _, i = tree.query(np.column_stack([np.ravel(x_m), np.ravel(y_m)]))
        inside: np.ndarray = free[i].reshape(np.shape(x_m))
        return inside

    return walkable


def rssi_frame(rssi: pd.DataFrame, site: Site) -> pd.DataFrame:
    """Readings frame from ``t_seconds, receiver_id, beacon_id, rssi_dbm`` rows (validated)."""
    frame = pd.DataFrame(
        {
            "t": rssi["t_seconds"],
            "kind": "rssi",
            "source": rssi["receiver_id"].astype(str),
            "channel": rssi["beacon_id"].astype(str),
            "value": rssi["rssi_dbm"],
        }
    )
    # Physically impossible positive RSSI (logging glitches) are bad rows.
    frame = frame[pd.to_numeric(frame["value"], errors="coerce") < 0]
    return validate_readings(frame, site).frame


@dataclass
class TrackScore:
    """Per-second zone accuracy of one track and the method's delay."""

    seconds: int
    accuracy: float
    delay_s: float
    accuracy_at_delay: float
    always_none: float = float("nan")  # the same seconds answered ``none``
    naive: float = float("nan")  # strongest receiver -> nearest zone, ``none`` below -70 dBm


def truth_at(zones: pd.DataFrame, times: np.ndarray, zone_names: dict[str, str] | None = None) -> np.ndarray:
    """Truth label at each time from ``t_seconds, zone`` rows (each holds until the next)."""
    mapping = zone_names or {}
    zt = zones["t_seconds"].to_numpy(dtype="float64")
    zl = np.array([mapping.get(z, z) for z in zones["zone"].astype(str)], dtype=object)
    pos = np.searchsorted(zt, times, side="right") - 1
    return np.where(pos >= 0, zl[np.maximum(pos, 0)], "none")


def naive_zones(
    rssi: pd.DataFrame, site: Site, times: np.ndarray, *, none_below_dbm: float = -70.0, hold_s: float = 3.0
) -> np.ndarray:
    """The naive method at each time: the zone nearest to the loudest receiver of that second.

    Per second (``times`` are second centres) the mean RSSI of each receiver; the loudest one's
    nearest zone (by zone centroid), ``none`` below ``none_below_dbm``; a second without
    packets keeps the previous answer for up to ``hold_s``.
    """
    frame = rssi_frame(rssi, site)
    pos = {r.id: np.asarray(r.position[:2], dtype="float64") for r in site.receivers}
    cent = {m.id: np.asarray(m.zone, dtype="float64").mean(axis=0) for m in site.machines}
    near = {r: min(cent, key=lambda m: float(np.linalg.norm(cent[m] - xy))) for r, xy in pos.items()}
    k = np.floor(frame["t"].to_numpy(dtype="float64") - (times[0] - 0.5)).astype(np.int64)
    per = pd.DataFrame(
        {"k": k, "r": frame["source"].to_numpy(), "v": frame["value"].to_numpy(dtype="float64")}
    )
    per = per[(per["k"] >= 0) & (per["k"] < len(times))].groupby(["k", "r"])["v"].mean().reset_index()
    out = np.full(len(times), "none", dtype=object)
    last = -(10**9)  # no second heard yet
    best = per.loc[per.groupby("k")["v"].idxmax()].set_index("k") if len(per) else per
    for i in range(len(times)):
        if i in best.index:
            r, v = best.loc[i, "r"], float(best.loc[i, "v"])
            out[i] = near[r] if v >= none_below_dbm else "none"
            last = i
        elif i - last <= hold_s:
            out[i] = out[last]
    return out


def score_track(
    rssi: pd.DataFrame,
    zones: pd.DataFrame,
    site: Site,
    *,
    params: AnalysisParams | None = None,
    zone_names: dict[str, str] | None = None,
    max_shift_s: int = 10,
    fingerprint: tuple[FingerprintMap, FingerprintParams] | None = None,
) -> TrackScore:
    """Analyse a track's RSSI and score the zones once per second.

    Parameters
    ----------
    rssi : pandas.DataFrame
        ``t_seconds, receiver_id, beacon_id, rssi_dbm``.
    zones : pandas.DataFrame
        ``t_seconds, zone`` truth labels (each holds until the next).
    site : Site
        From :func:`station_site`.
    zone_names : dict, optional
        Truth label -> zone id (e.g. ``aisle`` -> ``none``).
    max_shift_s : int
        Delay search range.
    fingerprint : tuple, optional
        A survey's fingerprint map and smoother parameters (``AnalysisParams.survey_map``):
        :func:`analyze` takes its RSSI zones from the fingerprint smoother.
    """
    if fingerprint is not None:
        params = replace(params or AnalysisParams(), survey_map=fingerprint)
    result = analyze(rssi_frame(rssi, site), site, params=params)
    times = score_times(result.window_start, result.window_end)
    pred_iv = [(z.start, z.end, z.zone) for z in result.worker_zones]
    truth = truth_at(zones, times, zone_names)
    pred = label_grid(pred_iv, times, "none")
    acc = float(np.mean(pred == truth))
    # Delay: estimate at t + d best matches truth at t.
    best = (acc, 0)
    for d in range(-max_shift_s, max_shift_s + 1):
        inside = (times + d >= result.window_start) & (times + d < result.window_end)
        a = float(np.mean(label_grid(pred_iv, times[inside] + d, "none") == truth[inside]))
        if a > best[0] + 1e-9:
            best = (a, d)
    return TrackScore(
        seconds=len(times),
        accuracy=acc,
        delay_s=float(best[1]),
        accuracy_at_delay=best[0],
        always_none=float(np.mean(truth == "none")),
        naive=float(np.mean(naive_zones(rssi, site, times) == truth)),
    )


@dataclass
class SessionScore:
    """Per-second scores of tracks analysed together as one recording."""

    seconds: int
    accuracy: float
    always_none: float
    naive: float
    confidence: np.ndarray  # per scored second, the reported interval confidence
    correct: np.ndarray  # per scored second, whether the zone was right


def score_session(
    tracks: list[tuple[pd.DataFrame, pd.DataFrame]],
    site: Site,
    *,
    params: AnalysisParams | None = None,
    zone_names: dict[str, str] | None = None,
) -> SessionScore:
    """Analyse several tracks' RSSI as one recording and score each track's seconds.

    A floor is watched for hours, so the self-calibration sees all of it at once; here the
    tracks (``(rssi, zones)`` pairs as for :func:`score_track`, recorded on the same floor) are
    concatenated, analysed once, and every track's own seconds are scored.
    """
    rssi = pd.concat([r for r, _ in tracks], ignore_index=True).sort_values("t_seconds", kind="stable")
    result = analyze(rssi_frame(rssi, site), site, params=params)
    pred_iv = [(z.start, z.end, z.zone) for z in result.worker_zones]
    conf_iv = [
        (z.start, z.end, np.nan if z.confidence is None else z.confidence) for z in result.worker_zones
    ]
    right, nones, naive, conf, ok = [], [], [], [], []
    for rs, zs in tracks:
        times = score_times(float(rs["t_seconds"].min()), float(rs["t_seconds"].max()))
        truth = truth_at(zs, times, zone_names)
        hit = label_grid(pred_iv, times, "none") == truth
        right.append(hit)
        ok.append(hit)
        conf.append(label_grid(conf_iv, times, np.nan))
        nones.append(truth == "none")
        naive.append(naive_zones(rs, site, times) == truth)
    cat = np.concatenate
    return SessionScore(
        len(cat(right)),
        float(cat(right).mean()),
        float(cat(nones).mean()),
        float(cat(naive).mean()),
        cat(conf),
        cat(ok),
    )
