"""Replay data for the browser viewer: site layout, shift windows and clipped analysis results.

Pure functions build the payload; :class:`FileReplayProvider` is the default source of
analysis results (a directory holding a site YAML and result/truth JSON files). The live
server can plug in its own provider with the same three methods (see :class:`ReplayProvider`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from twin_server.result import Result, ResultError, load_result
from twin_server.site import Site, SiteError, load_site

__all__ = [
    "FileReplayProvider",
    "ReplayError",
    "ReplayProvider",
    "break_windows",
    "clip_result",
    "local_day",
    "pick_window",
    "recording_of",
    "replay_payload",
    "shift_window",
    "site_layout",
    "to_json_bytes",
    "worker_days",
]

# Interval times are rounded to 0.1 s: finer than any sensor's timing, and it keeps the JSON
# of an 8-hour shift small.
_TIME_DECIMALS = 1
_INTERVAL_KEYS = ("machine_states", "worker_zones", "tasks", "beacon_lag")


class ReplayError(LookupError):
    """Unknown site, worker or shift, or no analysis covering the requested window."""


class ReplayProvider(Protocol):
    """Where the viewer's data comes from (files by default; the live server's journal later)."""

    def site(self, site_id: str) -> Site:
        """The site; raise :class:`ReplayError` if unknown."""
        ...

    def shifts(self, site_id: str) -> list[dict[str, Any]]:
        """Recorded shifts, oldest first: ``{"day": "YYYY-MM-DD", "start": s, "end": s}``."""
        ...

    def get_replay(self, site_id: str, start: float, end: float) -> dict[str, Any]:
        """A contract result document (``Result.to_dict()`` form) covering ``[start, end)``."""
        ...


def local_day(t_s: float, timezone: str) -> str:
    """Local calendar date (``YYYY-MM-DD``) of epoch seconds in the site's time zone."""
    return datetime.fromtimestamp(t_s, ZoneInfo(timezone)).date().isoformat()


def _at(day: date, clock: time, tz: ZoneInfo) -> float:
    return datetime.combine(day, clock, tzinfo=tz).timestamp()


def shift_window(site: Site, day: str) -> tuple[float, float]:
    """Epoch seconds of the site's shift start and end on a local day (``YYYY-MM-DD``)."""
    d = date.fromisoformat(day)
    tz = ZoneInfo(site.timezone)
    return _at(d, site.shift.start, tz), _at(d, site.shift.end, tz)


def break_windows(site: Site, day: str) -> list[dict[str, Any]]:
    """The shift's breaks on a local day as ``{"name", "start", "end"}`` in epoch seconds."""
    d = date.fromisoformat(day)
    tz = ZoneInfo(site.timezone)
    return [
        {
            "name": b.name,
            "name_ja": b.name_ja or b.name,
            "start": _at(d, b.start, tz),
            "end": _at(d, b.end, tz),
        }
        for b in site.shift.breaks
    ]


def _worker_doc(w: Any) -> dict[str, str]:
    return {"id": w.id, "name": w.name or w.id, "name_ja": w.name_ja or w.name or w.id}


def site_layout(site: Site) -> dict[str, Any]:
    """Everything the viewer draws that does not change over a shift, as plain JSON.

    Parameters
    ----------
    site : Site
        The validated site.

    Returns
    -------
    dict
        ``id, name, timezone, language, extent [xmin, ymin, xmax, ymax] (m), machines
        (id, name, name_ja, centre, rotation_deg, footprint, height_m, zone), workers (id, name,
        name_ja), markings (kind, points, color, width_m, label), shift (start, end, breaks as
        HH:MM with name and name_ja)``; ``name_ja`` is the Japanese display name, else ``name``.
    """
    return {
        "id": site.site,
        "name": site.name or site.site,
        "name_ja": site.name_ja or site.name or site.site,
        "timezone": site.timezone,
        "language": site.language,
        "extent": [round(v, 3) for v in site.floor_size()],
        "floor": list(site.floor) if site.floor else None,
        "machines": [
            {
                "id": m.id,
                "name": m.name or m.id,
                "name_ja": m.name_ja or m.name or m.id,
                "centre": [round(v, 3) for v in m.centre],
                "rotation_deg": m.rotation_deg,
                "footprint": list(m.footprint),
                "height_m": m.height_m,
                "zone": [list(p) for p in m.zone],
            }
            for m in site.machines
        ],
        "workers": [_worker_doc(w) for w in site.workers],
        "markings": [
            {
                "kind": mk.kind,
                "points": [list(p) for p in mk.points],
                "color": mk.color,
                "width_m": mk.width_m,
                "label": mk.label,
            }
            for mk in site.floor_markings
        ],
        "shift": {
            "start": site.shift.start.strftime("%H:%M"),
            "end": site.shift.end.strftime("%H:%M"),
            "breaks": [
                {
                    "name": b.name,
                    "name_ja": b.name_ja or b.name,
                    "start": b.start.strftime("%H:%M"),
                    "end": b.end.strftime("%H:%M"),
                }
                for b in site.shift.breaks
            ],
        },
    }


def clip_result(doc: dict[str, Any], start: float, end: float) -> dict[str, Any]:
    """Clip every interval list of a contract result to ``[start, end)`` and round times.

    Parameters
    ----------
    doc : dict
        Contract result (``Result.to_dict()`` form).
    start, end : float
        Window in epoch seconds; intervals outside are dropped, overlapping ones cut.

    Returns
    -------
    dict
        Same schema, ``window`` set to the clipped window, intervals sorted by start.
    """
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        raise ReplayError(f"empty or invalid window [{start}, {end})")
    out: dict[str, Any] = {
        "site": doc.get("site"),
        "window": {"start": round(start, _TIME_DECIMALS), "end": round(end, _TIME_DECIMALS)},
        "rejected_rows": doc.get("rejected_rows", 0),
    }
    for key in _INTERVAL_KEYS:
        rows = []
        for r in doc.get(key, []):
            s, e = max(r["start"], start), min(r["end"], end)
            if e <= s:
                continue
            row = {k: v for k, v in r.items() if k not in ("start", "end")}
            if key == "beacon_lag":
                row["lag_s"] = round(row["lag_s"], 1)
            row["start"] = round(s, _TIME_DECIMALS)
            row["end"] = round(e, _TIME_DECIMALS)
            rows.append(row)
        rows.sort(key=lambda r: r["start"])
        out[key] = rows
    return out


def replay_payload(
    site: Site,
    result_doc: dict[str, Any],
    start: float,
    end: float,
    shifts: list[dict[str, Any]],
    recording_day: str | bool | None = False,
) -> dict[str, Any]:
    """The ``GET /api/replay/{site}`` document: layout, the shift, its breaks and the result.

    ``recording_day``: the day whose readings are still arriving (a live server), None when
    none is; ``False`` for a source that cannot tell (files): ``shift.recording`` is then left out.
    """
    day = local_day(start, site.timezone)
    shift: dict[str, Any] = {"day": day, "start": start, "end": end}
    if recording_day is not False:
        shift["recording"] = recording_day == day
    return {
        "site": site_layout(site),
        "shift": shift,
        "breaks": break_windows(site, day),
        "shifts": shifts,
        "result": clip_result(result_doc, start, end),
    }


def recording_of(provider: Any, site_id: str) -> str | bool | None:
    """What :func:`replay_payload` needs to know of a provider: the day still being recorded (None
    if none), or False for a source that cannot tell (no ``recording_day`` method)."""
    recording = getattr(provider, "recording_day", None)
    return recording(site_id) if recording is not None else False


def worker_days(provider: ReplayProvider, site_id: str, worker_id: str) -> dict[str, Any]:
    """One worker's tasks per recorded day, and nothing of anyone else's.

    Raises
    ------
    ReplayError
        Unknown site or worker.
    """
    site = provider.site(site_id)
    worker = next((w for w in site.workers if w.id == worker_id), None)
    if worker is None:
        raise ReplayError(f"site {site_id!r} has no worker {worker_id!r}")
    days = []
    for sh in provider.shifts(site_id):
        doc = provider.get_replay(site_id, sh["start"], sh["end"])
        clipped = clip_result(doc, sh["start"], sh["end"])
        tasks = [
            {k: t[k] for k in ("machine", "task", "start", "end")}
            for t in clipped["tasks"]
            if t.get("worker") == worker_id
        ]
        days.append({"day": sh["day"], "start": sh["start"], "end": sh["end"], "tasks": tasks})
    return {"site": site_layout(site), "worker": _worker_doc(worker), "days": days}


@dataclass
class _Loaded:
    site: Site
    site_path: Path
    results: list[tuple[Path, Result]] = field(default_factory=list)


class FileReplayProvider:
    """Replay data from directories, each holding one site YAML and result/truth JSON files.

    ``DIR/site.yaml`` (or the only ``*.yaml``) plus any number of ``DIR/*.json`` results, e.g.
    one per day. Files are re-read when their modification time changes, so dropping a new
    ``result.json`` in makes it visible without a restart.

    Raises
    ------
    ReplayError
        A directory without a site file. A JSON file that is not a result is skipped and
        listed in :attr:`skipped` (never a crash of the viewer).
    """

    def __init__(self, *directories: str | Path) -> None:
        if not directories:
            raise ReplayError("FileReplayProvider needs at least one directory")
        self.directories = [Path(d) for d in directories]
        self.skipped: dict[str, str] = {}
        self._cache: dict[Path, tuple[tuple[Any, ...], _Loaded]] = {}

    def _site_file(self, d: Path) -> Path:
        named = d / "site.yaml"
        if named.is_file():
            return named
        found = sorted([*d.glob("*.yaml"), *d.glob("*.yml")])
        if len(found) != 1:
            raise ReplayError(f"{d}: expected site.yaml (or exactly one *.yaml), found {len(found)}")
        return found[0]

    def _load(self, d: Path) -> _Loaded:
        site_path = self._site_file(d)
        jsons = sorted(d.glob("*.json"))
        stamp = tuple((p.name, p.stat().st_mtime_ns) for p in [site_path, *jsons])
        cached = self._cache.get(d)
        if cached and cached[0] == stamp:
            return cached[1]
        loaded = _Loaded(site=load_site(site_path), site_path=site_path)
        for p in jsons:
            try:
                res = load_result(p)
            except ResultError as exc:
                self.skipped[str(p)] = str(exc)
                continue
            if res.site != loaded.site.site:
                self.skipped[str(p)] = f"result is for site {res.site!r}, not {loaded.site.site!r}"
                continue
            loaded.results.append((p, res))
        self._cache[d] = (stamp, loaded)
        return loaded

    def _find(self, site_id: str) -> _Loaded:
        for d in self.directories:
            loaded = self._load(d)
            if loaded.site.site == site_id:
                return loaded
        raise ReplayError(f"unknown site {site_id!r}")

    def site_ids(self) -> list[str]:
        """Ids of every readable site; a directory whose site file is missing or invalid is
        left out and listed in :attr:`skipped` (the list of sites must not fail on one)."""
        ids = []
        for d in self.directories:
            try:
                ids.append(self._load(d).site.site)
            except (ReplayError, SiteError) as exc:
                self.skipped[str(d)] = str(exc)
        return ids

    def site_path(self, site_id: str) -> Path:
        """Path of the site's YAML file (for ``models3d scene``)."""
        return self._find(site_id).site_path

    def site(self, site_id: str) -> Site:
        return self._find(site_id).site

    def shifts(self, site_id: str) -> list[dict[str, Any]]:
        loaded = self._find(site_id)
        by_day: dict[str, list[float]] = {}
        for _, res in loaded.results:
            day = local_day(res.window_start, loaded.site.timezone)
            lo_hi = by_day.setdefault(day, [res.window_start, res.window_end])
            lo_hi[0] = min(lo_hi[0], res.window_start)
            lo_hi[1] = max(lo_hi[1], res.window_end)
        return [{"day": day, "start": lo, "end": hi} for day, (lo, hi) in sorted(by_day.items())]

    def get_replay(self, site_id: str, start: float, end: float) -> dict[str, Any]:
        loaded = self._find(site_id)
        parts = [res for _, res in loaded.results if res.window_start < end and res.window_end > start]
        if not parts:
            raise ReplayError(f"no analysis of site {site_id!r} covers the requested window")
        doc: dict[str, Any] = {
            "site": site_id,
            "window": {
                "start": max(start, min(r.window_start for r in parts)),
                "end": min(end, max(r.window_end for r in parts)),
            },
            "rejected_rows": sum(r.rejected_rows for r in parts),
        }
        for key in _INTERVAL_KEYS:
            doc[key] = [row for r in parts for row in r.to_dict()[key]]
        return doc


def pick_window(
    shifts: list[dict[str, Any]], day: str | None, start: float | None, end: float | None
) -> tuple[float, float]:
    """The window a replay request asks for: explicit start/end, else the day's shift, else the latest.

    Raises
    ------
    ReplayError
        No recorded shift, or an unknown day.
    """
    if start is not None and end is not None:
        return start, end
    if not shifts:
        raise ReplayError("no recorded shift")
    if day is not None:
        match = [s for s in shifts if s["day"] == day]
        if not match:
            raise ReplayError(f"no recorded shift on {day}")
        sh = match[0]
    else:
        sh = shifts[-1]
    lo = sh["start"] if start is None else start
    hi = sh["end"] if end is None else end
    return lo, hi


def to_json_bytes(doc: Any) -> bytes:
    """Compact JSON (no spaces) of a payload; NaN/inf are refused rather than sent."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
