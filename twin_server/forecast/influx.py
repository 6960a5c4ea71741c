"""The ``forecast`` measurement: one point per machine and one for the site per forecast.

Pure (line protocol only); the live server queues the lines in the journal's InfluxDB outbox,
so they survive an InfluxDB outage like every derived series (``docs/integrators.md``).
"""

from __future__ import annotations

from twin_server.forecast.engine import Forecast
from twin_server.store.influx.line_protocol import point

__all__ = ["MEASUREMENT", "forecast_lines"]

MEASUREMENT = "forecast"


def forecast_lines(fc: Forecast) -> list[str]:
    """Line protocol of a forecast, stamped at the moment it was made (``fc.at``).

    Tags ``site``, ``shift`` (local day), ``machine`` (``_site`` for the shift-end point) and
    ``event`` (``run_end``, ``restart`` or ``shift_end``). Times are epoch seconds (``p10_s``,
    ``p50_s``, ``p90_s``); ``p50_in_min`` is the median time from the forecast to the event.
    """
    t_ns = round(fc.at * 1e9)
    base = {"site": fc.site, "shift": fc.day}
    out = []
    for m in fc.machines:
        if m.event is None:
            continue
        fields = {
            "phase": m.phase,
            "p10_s": m.p10,
            "p50_s": m.p50,
            "p90_s": m.p90,
            "p50_in_min": None if m.p50 is None else (m.p50 - fc.at) / 60.0,
            "p_after_shift": float(m.p_after_shift),
            "cold": bool(m.cold),
            "basis": int(m.basis),
            "p_need": float(m.p_need),
            "need_at_s": m.need_at,
            "wait_p50_min": m.wait_p50_min,
            "wait_p90_min": m.wait_p90_min,
            "running_min_p50": m.running_min[1] if m.running_min else None,
            "changeovers_p50": m.changeovers[1] if m.changeovers else None,
        }
        out.append(point(MEASUREMENT, {**base, "machine": m.machine, "event": m.event}, fields, t_ns))
    r, c = fc.running_min, fc.changeovers
    out.append(
        point(
            MEASUREMENT,
            {**base, "machine": "_site", "event": "shift_end"},
            {
                "shift_end_s": float(fc.shift_end),
                "running_min_p10": r[0],
                "running_min_p50": r[1],
                "running_min_p90": r[2],
                "changeovers_p10": c[0],
                "changeovers_p50": c[1],
                "changeovers_p90": c[2],
                "running_min_so_far": float(fc.running_min_so_far),
                "changeovers_so_far": int(fc.changeovers_so_far),
                "history_days": int(fc.history_days),
                "cold": bool(fc.cold),
            },
            t_ns,
        )
    )
    return out
