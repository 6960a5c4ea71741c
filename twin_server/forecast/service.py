"""Forecasts of one site from its journal: what the live server, the API and the CLI call.

Earlier days are analysed once (through the server's :class:`~twin_server.live.hub.AnalysisCache`)
and only what the forecast learns from them is kept, in memory and in
``DATA_DIR/forecast-history.json`` keyed by the day's change marker, so a restarted server
does not analyse twenty days again. Today's analysis is cut at the moment asked for, so a
forecast for 10:40 of a past day uses only what was known at 10:40.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from twin_server.forecast.engine import Forecast, forecast
from twin_server.forecast.history import (
    Batch,
    DayRecords,
    StopRecord,
    TaskRecord,
    day_records,
    truncate_result,
)
from twin_server.forecast.model import ForecastParams, fit_model
from twin_server.live.hub import AnalysisCache
from twin_server.result import Result
from twin_server.site import Site
from twin_server.store.replay_data import break_windows, local_day, shift_window

__all__ = ["ForecastError", "ForecastService", "day_off", "forecast_result"]

log = logging.getLogger("twin_server.forecast")
CACHE_VERSION = 1


class ForecastError(LookupError):
    """No forecast possible (no readings that day, a moment outside the recording)."""


def day_off(site: Site, day: str) -> list[tuple[float, float]]:
    """The breaks of a local day, epoch seconds, sorted."""
    return sorted((b["start"], b["end"]) for b in break_windows(site, day))


def records_of(site: Site, result: Result, day: str) -> DayRecords:
    """What a forecast learns from one day's analysis."""
    lo, hi = shift_window(site, day)
    off = [(-float("inf"), lo), *day_off(site, day), (hi, float("inf"))]
    return day_records(result, site.machine_ids, site.worker_ids, site.timezone, off)


def forecast_result(site: Site, result: Result, history: list[DayRecords], at: float,
                    params: ForecastParams | None = None) -> Forecast:
    """Forecast at ``at`` from a day's analysis (cut at ``at`` here) and earlier days' records.

    Pure: the whole forecast of one moment, as the CLI, the API and the backtest make it.
    """
    day = local_day(at, site.timezone)
    known = truncate_result(result, at)
    today = records_of(site, known, day)
    p = params or ForecastParams()
    model = fit_model([*history, today], site.machine_ids, site.worker_ids, p, history_days=len(history))
    return forecast(model, known, today, at, timezone=site.timezone, shift=shift_window(site, day),
                    off=day_off(site, day), day=day)


def _records_to_json(rec: DayRecords) -> dict[str, Any]:
    return asdict(rec)


def _records_from_json(doc: dict[str, Any]) -> DayRecords:
    return DayRecords(
        site=doc["site"], day_start=doc["day_start"],
        batches=[Batch(**b) for b in doc["batches"]],
        stops=[StopRecord(s["machine"], s["stop"], s["restart"], tuple(TaskRecord(**t) for t in s["tasks"]),
                          s["worker_free"], s["on_shift"]) for s in doc["stops"]],
        tasks=[TaskRecord(**t) for t in doc["tasks"]],
    )


class ForecastService:
    """Forecasts of one site; thread-safe.

    Parameters
    ----------
    site : Site
    analysis : AnalysisCache
        Analyses a day of the journal (cached by the day's change marker).
    params : ForecastParams, optional
    cache_path : Path, optional
        JSON file keeping earlier days' records across restarts (None: memory only).
    """

    def __init__(self, site: Site, analysis: AnalysisCache, params: ForecastParams | None = None,
                 cache_path: Path | None = None) -> None:
        self.site = site
        self.analysis = analysis
        self.params = params or ForecastParams()
        self.cache_path = cache_path
        self._lock = threading.Lock()
        self._records: dict[str, tuple[list[float], DayRecords]] = {}
        self.last: Forecast | None = None
        self.last_error: str | None = None
        self._load_cache()

    # -- the earlier days ------------------------------------------------------------------
    def _load_cache(self) -> None:
        if self.cache_path is None or not self.cache_path.exists():
            return
        try:
            doc = json.loads(self.cache_path.read_text(encoding="utf-8"))
            if doc.get("version") != CACHE_VERSION or doc.get("site") != self.site.site:
                return
            for day, item in doc["days"].items():
                self._records[day] = (list(item["marker"]), _records_from_json(item["records"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("forecast history cache %s ignored (%s): days will be analysed again",
                        self.cache_path, exc)
            self._records.clear()

    def _save_cache(self) -> None:
        if self.cache_path is None:
            return
        with self._lock:
            doc = {"version": CACHE_VERSION, "site": self.site.site,
                   "days": {d: {"marker": m, "records": _records_to_json(r)}
                            for d, (m, r) in self._records.items()}}
        tmp = self.cache_path.with_name(self.cache_path.name + ".tmp")
        try:
            # numpy scalars (an analysis' times) as plain numbers
            text = json.dumps(doc, allow_nan=False, separators=(",", ":"), default=lambda o: o.item())
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(self.cache_path)
        except (OSError, ValueError) as exc:
            log.warning("forecast history cache not written: %s", exc)

    def day_records(self, day: str, marker: list[float] | None = None) -> DayRecords | None:
        """The records of one recorded day (analysed again only when its readings changed).

        ``marker``: the day's ``[readings, last reading]`` from the journal's day index
        (looked up when not given).
        """
        if marker is None:
            marker = next(([d["readings"], d["end"]] for d in self.analysis.days() if d["day"] == day), None)
            if marker is None:
                return None
        with self._lock:
            hit = self._records.get(day)
        if hit is not None and hit[0] == marker:
            return hit[1]
        got = self.analysis.get(day)
        if got is None:
            return None
        rec = records_of(self.site, got[0], day)
        with self._lock:
            self._records[day] = (marker, rec)
        self._save_cache()
        return rec

    def history(self, day: str) -> list[DayRecords]:
        """Records of up to ``params.history_days`` recorded days before ``day``, oldest first."""
        earlier = [d for d in self.analysis.days() if d["day"] < day]
        out = []
        for d in earlier[-self.params.history_days:]:
            rec = self.day_records(d["day"], [d["readings"], d["end"]])
            if rec is not None:
                out.append(rec)
        return out

    # -- forecasts ---------------------------------------------------------------------------
    def forecast_at(self, at: float | None = None) -> Forecast:
        """The forecast at ``at`` (default: the newest reading of the day being recorded).

        Raises
        ------
        ForecastError
            No readings on that day, or ``at`` before the day's first reading.
        """
        if at is None:
            day = self.analysis.current_day()
            if day is None:
                raise ForecastError(f"no readings of site {self.site.site!r} yet")
        else:
            day = local_day(at, self.site.timezone)
        date.fromisoformat(day)
        # A moment the cached analysis already covers needs no new analysis (a replay of the
        # day being recorded asks often; the live loop keeps the analysis fresh).
        got = self.analysis.cached(day)
        if got is None or at is None or at > got[0].window_end:
            got = self.analysis.get(day)
        if got is None:
            raise ForecastError(f"no readings of site {self.site.site!r} on {day}")
        result = got[0]
        if at is None:
            at = result.window_end
        if at < result.window_start:
            raise ForecastError(f"{day}: the recording starts at {result.window_start:.0f}, after {at:.0f}")
        at = min(at, result.window_end)
        fc = forecast_result(self.site, result, self.history(day), at, self.params)
        self.last = fc
        return fc
