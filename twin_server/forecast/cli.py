"""``python -m twin_server forecast --site SITE --journal DIR [--at TIME]``: a forecast from a journal.

Prints, per machine, when its run ends or when it runs again (median and 80 % range), the
operator's next hour and the shift end; ``--json`` prints the API's document instead.
Exit code 2 with one line naming the problem for a bad site, journal or time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from twin_server.site import Site, SiteError, load_site

__all__ = ["add_arguments", "format_text", "parse_at", "run"]

COLD_TEXT = {
    "first_day": "no earlier day yet: a rough range from priors",
    "machine_never_seen_running": (
        "this machine was never seen running: range from the other machines and priors"
    ),
    "few_runs": "few runs of this machine yet: wide range",
    "few_stops": "few stops of this machine yet: wide range",
    "worker_unknown": "the worker is not in the site file",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``forecast`` command."""
    parser.add_argument("--site", required=True, help="site YAML file")
    parser.add_argument(
        "--journal",
        required=True,
        metavar="DIR",
        help="the server's data dir (holding journal.sqlite) or the journal file itself",
    )
    parser.add_argument(
        "--at",
        default=None,
        metavar="TIME",
        help="moment of the forecast: YYYY-MM-DDTHH:MM[:SS] in the site's time zone, or "
        "epoch seconds (default: the newest reading)",
    )
    parser.add_argument(
        "--history-days", type=int, default=20, help="earlier days to learn from (default 20)"
    )
    parser.add_argument("--samples", type=int, default=200, help="Monte Carlo draws (default 200)")
    parser.add_argument("--json", action="store_true", help="print the forecast as JSON")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="do not read or write DIR/forecast-history.json (earlier days' learnt records)",
    )


def parse_at(text: str | None, site: Site) -> float | None:
    """``--at``: epoch seconds, or an ISO date-time in the site's time zone (None: the newest reading)."""
    if text is None:
        return None
    try:
        v = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(v):
            raise ValueError(f"--at {text!r}: not a finite time")
        return v
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--at {text!r}: expected YYYY-MM-DDTHH:MM (site time) or epoch seconds") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=ZoneInfo(site.timezone))
    return d.timestamp()


def _hm(t: float | None, tz: ZoneInfo) -> str:
    return "--:--" if t is None else datetime.fromtimestamp(t, tz).strftime("%H:%M")


def format_text(doc: dict, site: Site) -> str:
    """A forecast document (``Forecast.to_dict()``) as a few lines for a terminal."""
    tz = ZoneInfo(site.timezone)
    at = datetime.fromtimestamp(doc["at"], tz)
    lines = [
        f"forecast of {doc['site']} at {at:%Y-%m-%d %H:%M} ({site.timezone}); "
        f"learnt from {doc['history_days']} earlier day(s)"
    ]
    if doc["cold"]:
        lines.append("  no earlier day to learn from: ranges come from priors and today so far (wide)")
    for m in doc["machines"]:
        if m["event"] is None:
            lines.append(f"  {m['machine']:<8} state unknown: no forecast")
            continue
        verb = "ends" if m["event"] == "run_end" else "runs again"
        if m["p50"] is None:
            when = f"{verb} after the shift ({m['p_after_shift']:.0%} of draws)"
        else:
            when = f"{verb} ~{_hm(m['p50'], tz)} ({_hm(m['p10'], tz)}-{_hm(m['p90'], tz)})"
        phase = m["phase"] + (f" {m['task']}" if m.get("task") else "")
        notes = [
            COLD_TEXT.get(c, c.replace("worker_no_history:", "worker with no history: ")) for c in m["cold"]
        ]
        lines.append(f"  {m['machine']:<8} {phase:<28} {when}" + (f"  [{'; '.join(notes)}]" if notes else ""))
    lines.append("operator's next hour:")
    if not doc["queue"]:
        lines.append("  no machine is likely to need the operator")
    for q in doc["queue"]:
        wait = q["wait_p50_min"]
        how = f"will wait ~{wait:.0f} min (up to {q['wait_p90_min']:.0f})" if wait >= 1 else "served at once"
        lines.append(f"  {_hm(q['need_at'], tz)}  {q['machine']} {how}")
    r, c = doc["running_min"], doc["changeovers"]
    lines.append(
        f"shift end {_hm(doc['shift_end'], tz)}: running {r[1]:.0f} min ({r[0]:.0f}-{r[2]:.0f}), "
        f"changeovers {c[1]:.0f} ({c[0]:.0f}-{c[2]:.0f}); "
        f"so far {doc['running_min_so_far']:.0f} min, {doc['changeovers_so_far']}"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from twin_server.forecast.model import ForecastParams
    from twin_server.forecast.service import ForecastError, ForecastService
    from twin_server.live.hub import AnalysisCache
    from twin_server.store.journal import Journal

    def fail(msg: str) -> int:
        print(f"forecast: {msg}", file=sys.stderr)
        return 2

    try:
        site = load_site(args.site)
    except SiteError as exc:
        return fail(str(exc))
    try:
        at = parse_at(args.at, site)
    except ValueError as exc:
        return fail(str(exc))
    if args.history_days < 0 or args.samples < 10:
        return fail("--history-days must be >= 0 and --samples >= 10")
    path = Path(args.journal)
    db = path / "journal.sqlite" if path.is_dir() else path
    if not db.is_file():
        return fail(f"{args.journal}: no journal (expected DIR/journal.sqlite or a journal file)")
    journal = Journal(db)
    try:
        if journal.count(site.site) == 0:
            return fail(f"{db}: no readings of site {site.site!r} (is it the right site file?)")
        cache = AnalysisCache(site, journal, simulated_clock=True)
        params = ForecastParams(samples=args.samples, history_days=args.history_days)
        cache_file = None if args.no_cache else db.parent / "forecast-history.json"
        service = ForecastService(site, cache, params, cache_file)
        try:
            fc = service.forecast_at(at)
        except ForecastError as exc:
            return fail(str(exc))
        doc = fc.to_dict()
        print(json.dumps(doc, indent=1) if args.json else format_text(doc, site))
        return 0
    finally:
        journal.close()
