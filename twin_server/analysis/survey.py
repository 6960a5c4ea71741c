"""A site's RSSI survey (``survey:`` in the site file) as a fingerprint map for :func:`analyze`.

Reads the survey points CSV and the calibration walks named by the site file (paths relative
to it), keeps the walker off the ``blocked`` areas, and builds the
:class:`~twin_server.analysis.fingerprint_zones.FingerprintMap` that
``AnalysisParams(survey_map=...)`` takes. Used by ``python -m twin_server analyze`` and the
live server alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from twin_server.analysis.fingerprint_zones import (
    FingerprintMap,
    FingerprintParams,
    build_map,
    walk_survey_points,
)
from twin_server.geometry import polygon_mask
from twin_server.readings import ReadingsError, load_readings_any
from twin_server.site import Site

POINT_COLUMNS = ("x_m", "y_m", "z_m", "receiver_id", "rssi_dbm")


class SurveyError(ValueError):
    """A survey file that is missing or unusable; the message names the file and the problem."""


def _read_csv(path: Path, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype={"receiver_id": str, "source": str, "channel": str})
    except FileNotFoundError:
        raise SurveyError(f"survey: {what} {path} does not exist") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise SurveyError(f"survey: {what} {path} is not a CSV table: {exc}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SurveyError(f"survey: {what} {path} lacks column(s) {', '.join(missing)}")
    return table


def _numeric(table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Rows whose ``columns`` are all finite numbers (others dropped)."""
    out = table.copy()
    for c in columns:
        out[c] = pd.to_numeric(out[c], errors="coerce")
    return out[np.isfinite(out[list(columns)].to_numpy(dtype="float64")).all(axis=1)]


def survey_points(site: Site, base_dir: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """The survey's points plus its calibration walks as points.

    Returns
    -------
    points : pandas.DataFrame
        ``x_m, y_m, z_m, receiver_id, rssi_dbm``.
    dropped : dict
        Rows left out per reason (``bad_number``, ``unknown_receiver``, ``positive_rssi``, and
        ``bad_readings_row``: walk readings rows the readings loader rejected).
    """
    survey = site.survey
    if survey is None:
        raise SurveyError("the site has no survey")
    receivers = {r.id for r in site.receivers}
    dropped = {"bad_number": 0, "unknown_receiver": 0, "positive_rssi": 0, "bad_readings_row": 0}
    parts = []
    if survey.points is not None:
        raw = _read_csv(base_dir / survey.points, POINT_COLUMNS, "points file")
        pts = _numeric(raw, ("x_m", "y_m", "z_m", "rssi_dbm"))
        dropped["bad_number"] += len(raw) - len(pts)
        parts.append(pts[list(POINT_COLUMNS)])
    for i, walk in enumerate(survey.walks):
        try:
            loaded = load_readings_any(base_dir / walk.readings, site)
        except (ReadingsError, OSError) as exc:
            raise SurveyError(f"survey: walks[{i}].readings: {exc}") from None
        dropped["bad_readings_row"] += loaded.rejected_rows
        f = loaded.frame
        rows = f[(f["kind"] == "rssi") & ((walk.beacon is None) | (f["channel"] == walk.beacon))]
        rssi = _numeric(
            pd.DataFrame(
                {"t_seconds": rows["t"], "receiver_id": rows["source"].astype(str), "rssi_dbm": rows["value"]}
            ),
            ("t_seconds", "rssi_dbm"),
        )
        dropped["bad_number"] += len(rows) - len(rssi)
        track_raw = _read_csv(base_dir / walk.track, ("time", "x_m", "y_m"), f"walks[{i}].track")
        track = _numeric(track_raw.rename(columns={"time": "t_seconds"}), ("t_seconds", "x_m", "y_m"))
        dropped["bad_number"] += len(track_raw) - len(track)
        if len(track) < 2 or rssi.empty:
            raise SurveyError(
                f"survey: walks[{i}] has {len(rssi)} rssi row(s) and {len(track)} track "
                f"point(s); it needs rssi rows and >= 2 track points"
            )
        parts.append(walk_survey_points(rssi, track, z_m=survey.walk_height_m)[list(POINT_COLUMNS)])
    points = pd.concat(parts, ignore_index=True)
    known = points["receiver_id"].astype(str).isin(receivers)
    dropped["unknown_receiver"] = int((~known).sum())
    points = points[known]
    negative = points["rssi_dbm"] < 0
    dropped["positive_rssi"] = int((~negative).sum())
    points = points[negative]
    if points.empty:
        raise SurveyError(
            "survey: no usable point (every row dropped: "
            + ", ".join(f"{k}={v}" for k, v in dropped.items() if v)
            + ")"
        )
    return points.reset_index(drop=True), dropped


def survey_map(
    site: Site,
    base_dir: str | Path,
    params: FingerprintParams | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[FingerprintMap, FingerprintParams] | None:
    """``(map, params)`` for ``AnalysisParams(survey_map=...)``, or None without a survey.

    ``say`` receives one line: how many points were read and how many rows were left out.

    Raises
    ------
    SurveyError
        A survey file is missing, not a CSV, lacks columns, or leaves no usable point.
    """
    if site.survey is None or (site.survey.points is None and not site.survey.walks):
        return None  # no survey, or only the blocked areas drawn so far
    fparams = params or FingerprintParams()
    points, dropped = survey_points(site, Path(base_dir))
    if say is not None:
        left_out = ", ".join(f"{k}={v}" for k, v in dropped.items() if v) or "none"
        say(f"survey: {len(points)} receiver-point(s) from {base_dir}, rows left out: {left_out}")
    blocked = site.survey.blocked

    def walkable(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        free = np.ones(x.shape, dtype=bool)
        for poly in blocked:
            free &= ~polygon_mask(x, y, poly)
        return free

    if site.floor is not None:
        extent: tuple[float, ...] = (0.0, 0.0, *site.floor)
    else:
        extent = site.floor_size()
    try:
        fmap = build_map(points, site, fparams, extent, walkable=walkable)
    except ValueError as exc:
        raise SurveyError(f"survey: {exc}") from None
    return fmap, fparams
