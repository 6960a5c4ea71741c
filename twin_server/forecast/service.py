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

from twin_server.forecast.engine import Forecast, _changeovers_so_far, _so_far, forecast
from twin_server.forecast.guard import (
    Calibration,
    apply_guard,
    apply_guard_total,
    fit_calibration,
    naive_median,
    naive_pools,
    observed_event,
    steady,
)
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

__all__ = ["ForecastError", "ForecastService", "calibration_rows", "day_off", "forecast_result", "guarded"]

log = logging.getLogger("twin_server.forecast")
CACHE_VERSION = 1
#: The guard learns from the forecasts of this many earlier days, made every CAL_STEP_S.
CAL_DAYS = 4
CAL_STEP_S = 600.0
#: How far (a share of the time left) a new median may stray before the shown end moves
#: (chosen on the tuning shops: the largest that kept their MAE within 1 %).
STEADY_BAND = 0.1


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


def forecast_result(
    site: Site, result: Result, history: list[DayRecords], at: float, params: ForecastParams | None = None
) -> Forecast:
    """Forecast at ``at`` from a day's analysis (cut at ``at`` here) and earlier days' records.

    Pure: the whole forecast of one moment, as the CLI, the API and the backtest make it.
    """
    day = local_day(at, site.timezone)
    known = truncate_result(result, at)
    today = records_of(site, known, day)
    p = params or ForecastParams()
    model = fit_model([*history, today], site.machine_ids, site.worker_ids, p, history_days=len(history))
    return forecast(
        model,
        known,
        today,
        at,
        timezone=site.timezone,
        shift=shift_window(site, day),
        off=day_off(site, day),
        day=day,
    )


def calibration_rows(
    site: Site,
    result: Result,
    history: list[DayRecords],
    day: str,
    params: ForecastParams | None = None,
    step_s: float = CAL_STEP_S,
) -> list[dict[str, Any]]:
    """The forecasts of one earlier day, every ``step_s`` of its shift, beside what happened
    (``observed``, from the day's analysis) and the naive median: what the guard learns from."""
    lo, hi = shift_window(site, day)
    out: list[dict[str, Any]] = []
    # what the shift end brought (as analysed): the site's running minutes and changeovers
    done = records_of(site, truncate_result(result, hi), day)
    ms = site.machine_ids
    totals = {
        "running_min": sum(_so_far(result, m, lo, hi) for m in ms) / 60.0,
        "changeovers": float(sum(_changeovers_so_far(done, result, m, lo, hi) for m in ms)),
    }
    t = lo + 60.0
    while t < hi:
        if result.window_start < t <= result.window_end:
            fc = forecast_result(site, result, history, t, params)
            if result.window_end >= hi:
                for name, q in (("running_min", fc.running_min), ("changeovers", fc.changeovers)):
                    out.append(
                        {
                            "t": t,
                            "event": name,
                            "lead_s": hi - t,
                            "p10": q[0],
                            "p50": q[1],
                            "p90": q[2],
                            "observed": totals[name],
                        }
                    )
            pools = naive_pools([*history, records_of(site, truncate_result(result, t), day)])
            for m in fc.machines:
                if m.event is None:
                    continue
                out.append(
                    {
                        "t": t,
                        "machine": m.machine,
                        "event": m.event,
                        "p10": m.p10,
                        "p50": m.p50,
                        "p90": m.p90,
                        "naive_med": naive_median(pools, m.machine, m.event, m.since, t),
                        "observed": observed_event(result, m.machine, t, m.event),
                    }
                )
        t += step_s
    return out


def guarded(fc: Forecast, cal: Calibration | None, pools, shown: dict | None = None) -> Forecast:
    """``fc`` with each machine's range corrected by the guard (in place) and the shown end held
    steady against the last one shown for the same run (``shown``: (machine, event, since) ->
    (at, p50), updated)."""
    fc.running_min = apply_guard_total(cal, "running_min", fc.shift_end - fc.at, fc.running_min)
    fc.changeovers = apply_guard_total(cal, "changeovers", fc.shift_end - fc.at, fc.changeovers)
    for m in fc.machines:
        if m.event is None or m.p50 is None:
            continue
        nm = naive_median(pools, m.machine, m.event, m.since, fc.at)
        m.p10, m.p50, m.p90 = apply_guard(cal, m.event, fc.at, m.p10, m.p50, m.p90, nm)
        if shown is not None:
            key = (m.machine, m.event, m.since)
            prev = shown.get(key)
            fresh = prev is not None and 0 < fc.at - prev[0] <= 90.0
            m.p50 = steady(prev[1] if fresh else None, m.p10, m.p50, m.p90, fc.at, STEADY_BAND)
            if m.p10 is not None and m.p50 is not None:
                m.p10 = min(m.p10, m.p50)
            if m.p90 is not None and m.p50 is not None:
                m.p90 = max(m.p90, m.p50)
            shown[key] = (fc.at, m.p50)
    return fc


def _records_to_json(rec: DayRecords) -> dict[str, Any]:
    return asdict(rec)


def _records_from_json(doc: dict[str, Any]) -> DayRecords:
    return DayRecords(
        site=doc["site"],
        day_start=doc["day_start"],
        batches=[Batch(**b) for b in doc["batches"]],
        stops=[
            StopRecord(
                s["machine"],
                s["stop"],
                s["restart"],
                tuple(TaskRecord(**t) for t in s["tasks"]),
                s["worker_free"],
                s["on_shift"],
            )
            for s in doc["stops"]
        ],
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

    def __init__(
        self,
        site: Site,
        analysis: AnalysisCache,
        params: ForecastParams | None = None,
        cache_path: Path | None = None,
    ) -> None:
        self.site = site
        self.analysis = analysis
        self.params = params or ForecastParams()
        self.cache_path = cache_path
        self._lock = threading.Lock()
        self._records: dict[str, tuple[list[float], DayRecords]] = {}
        self.last: Forecast | None = None
        self._cal_rows: dict[str, tuple[list[float], list[dict[str, Any]]]] = {}
        self._cal: dict[str, tuple[list[Any], Calibration]] = {}
        self._shown: dict[tuple[str, str, float], tuple[float, float]] = {}
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
            log.warning(
                "forecast history cache %s ignored (%s): days will be analysed again", self.cache_path, exc
            )
            self._records.clear()

    def _save_cache(self) -> None:
        if self.cache_path is None:
            return
        with self._lock:
            doc = {
                "version": CACHE_VERSION,
                "site": self.site.site,
                "days": {
                    d: {"marker": m, "records": _records_to_json(r)} for d, (m, r) in self._records.items()
                },
            }
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
        for d in earlier[-self.params.history_days :]:
            rec = self.day_records(d["day"], [d["readings"], d["end"]])
            if rec is not None:
                out.append(rec)
        return out

    def calibration(self, day: str) -> Calibration:
        """The guard's rules for ``day``, from the forecasts of the recorded days before it
        (each day's forecasts made once and kept while its readings do not change)."""
        earlier = [d for d in self.analysis.days() if d["day"] < day][-CAL_DAYS:]
        markers = [[d["day"], d["readings"], d["end"]] for d in earlier]
        with self._lock:
            known = self._cal.get(day)
        if known is not None and known[0] == markers:
            return known[1]  # fitted once per day (and again when an earlier day's readings change)
        rows: list[dict[str, Any]] = []
        for d in earlier:
            marker = [d["readings"], d["end"]]
            with self._lock:
                hit = self._cal_rows.get(d["day"])
            if hit is None or hit[0] != marker:
                got = self.analysis.get(d["day"])
                if got is None:
                    continue
                hit = (
                    marker,
                    calibration_rows(self.site, got[0], self.history(d["day"]), d["day"], self.params),
                )
                with self._lock:
                    self._cal_rows[d["day"]] = hit
                    while len(self._cal_rows) > 3 * CAL_DAYS:  # a replay wandering over months
                        self._cal_rows.pop(next(iter(self._cal_rows)))
            rows += hit[1]
        cal = fit_calibration(rows, len(earlier))
        with self._lock:
            self._cal[day] = (markers, cal)
            while len(self._cal) > 3 * CAL_DAYS:
                self._cal.pop(next(iter(self._cal)))
        return cal

    # -- forecasts ---------------------------------------------------------------------------
    def forecast_at(self, at: float | None = None, guard: bool = True) -> Forecast:
        """The forecast at ``at`` (default: the newest reading of the day being recorded, held
        steady like the live view's), corrected by the guard unless ``guard`` is False.

        Raises
        ------
        ForecastError
            No readings on that day, or ``at`` before the day's first reading.
        """
        live = at is None
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
        history = self.history(day)
        fc = forecast_result(self.site, result, history, at, self.params)
        if guard:
            self._guard(fc, day, result, history, steady_end=live)
        self.last = fc
        return fc

    def forecast_live(self, day: str, result: Result) -> Forecast:
        """The live view's forecast at the newest reading of ``result`` (the day being
        recorded): guarded, the shown ends held steady against the last live forecast."""
        history = self.history(day)
        fc = forecast_result(self.site, result, history, result.window_end, self.params)
        self._guard(fc, day, result, history, steady_end=True)
        self.last = fc
        return fc

    def _guard(
        self, fc: Forecast, day: str, result: Result, history: list[DayRecords], steady_end: bool
    ) -> None:
        """Correct ``fc`` by the guard; ``steady_end``: hold the shown ends against the last live
        forecast (a moment asked for explicitly gets the same answer whatever was asked before)."""
        pools = naive_pools([*history, records_of(self.site, truncate_result(result, fc.at), day)])
        if not steady_end:
            guarded(fc, self.calibration(day), pools)
            return
        with self._lock:
            shown = dict(self._shown)
        guarded(fc, self.calibration(day), pools, shown)
        with self._lock:
            self._shown = {k: v for k, v in shown.items() if fc.at - v[0] <= 90.0}
