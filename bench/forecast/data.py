"""Days to backtest the forecast on: shops of the scenario family, and the demo's pilot.

A *shop* is one draw of the scenario family (``twin_server.simulate.family.draw_scenario``:
layout, shift calendar, workers, behaviour, lag) simulated over consecutive workdays, each day
a window from the shift start to 3 h after the shift end (machines finish their runs after the
workers leave), with the locator as the location sensing (the forecast needs machine states
and tasks; RSSI only slows the analysis down). On top of the family's draw, how runs arise:
75 % of shops make batches of parts (``run_model='parts'``: 1 .. 1-6 parts per machine, part
spread 0.3 .. 1.2, batch log-sd 0.05 .. 0.35, 0 .. 0.4 minor stops per running hour), 25 %
draw each run on its own (the simulator's default); workers' paces differ by log-sd 0 .. 0.4.
30 % of days have 1 .. 2 machines silent for 2 .. 20 min (their Pi's readings cut out).

The *demo* shop is the pilot site with the simulator's defaults (what ``python -m twin_server
demo`` replays), written into a journal as the ingest writes it and read back through the
live server's :class:`~twin_server.live.hub.AnalysisCache`.

Each day's analysis (and truth) is cached under ``--cache`` so a second run only forecasts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin_server.result import Result
from twin_server.simulate import SimParams, simulate
from twin_server.simulate.core import default_start
from twin_server.simulate.family import Dropout, apply_dropouts, draw_scenario
from twin_server.site import Site, load_site

ROOT = Path(__file__).resolve().parents[2]
FIRST_DAY = dt.date(2024, 4, 1)  # a Monday
AFTER_SHIFT_H = 3.0

#: Shops the forecast may be developed and tuned on (family tuning draws).
TUNING_SHOPS = (1000, 1001, 1002, 1003, 1008)  # 1003, 1008: independent runs
#: Shops for the report only (family report draws; never tuned on).
REPORT_SHOPS = tuple(range(900_000, 900_008))


@dataclass
class Shop:
    """A site simulated over several days."""

    name: str
    site: Site
    params: SimParams
    via: dict
    world: str  # 'parts' or 'lognormal'
    seed: int  # day k is simulated with seed ``seed * 100 + k``


def workdays(n: int, first: dt.date = FIRST_DAY) -> list[dt.date]:
    """``n`` consecutive Monday-Friday dates."""
    out, d = [], first
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def family_shop(seed: int) -> Shop:
    """A shop of the scenario family, with a run model drawn on top (see the module docstring)."""
    draw = draw_scenario(seed, hours=1.0, sensing="locator")
    rng = np.random.default_rng([seed, 15])
    parts = bool(rng.random() < 0.75)
    params = dataclasses.replace(
        draw.params,
        run_model="parts" if parts else "lognormal",
        parts_per_machine=(1.0, float(rng.integers(1, 7))),
        part_spread=float(rng.uniform(0.3, 1.2)),
        batch_sigma=float(rng.uniform(0.05, 0.35)),
        interruptions_per_h=float(rng.uniform(0.0, 0.4)),
        worker_speed_sd=float(rng.uniform(0.0, 0.4)),
        shop_seed=seed,
    )
    return Shop(f"family-{seed}", draw.site, params, draw.via, "parts" if parts else "lognormal", seed)


def demo_shop() -> Shop:
    """The demo's site and simulator settings (the pilot; independent runs)."""
    return Shop(
        "demo-pilot", load_site(ROOT / "examples" / "pilot_site.yaml"), SimParams(), {}, "lognormal", 7
    )


def _shift_hours(site: Site) -> float:
    s, e = site.shift.start, site.shift.end
    return ((e.hour * 60 + e.minute) - (s.hour * 60 + s.minute)) / 60.0


def _dropouts(rng: np.random.Generator, site: Site, t0: float, t1: float) -> list[Dropout]:
    if rng.random() >= 0.3:
        return []
    out = []
    for _ in range(int(rng.integers(1, 3))):
        dev = str(rng.choice(site.machine_ids))
        length = float(rng.uniform(120.0, 1200.0))
        start = float(rng.uniform(t0, t1 - length))
        out.append(Dropout(dev, start, start + length))
    return out


def simulate_day(shop: Shop, k: int, day: dt.date):
    """Day ``k`` of a shop: (readings with dropouts cut out, truth)."""
    hours = _shift_hours(shop.site) + AFTER_SHIFT_H
    start = default_start(shop.site, day)
    seed = shop.seed * 100 + k
    sim = simulate(shop.site, hours, seed, start=start, params=shop.params, via=shop.via)
    rng = np.random.default_rng([seed, 16])
    readings = apply_dropouts(sim.readings, shop.site, _dropouts(rng, shop.site, start, start + hours * 3600))
    return readings, sim.truth


def _save(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        json.dump(doc, f, allow_nan=False)
    tmp.replace(path)


def _load(path: Path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def _no_zones(truth: Result) -> dict:
    doc = truth.to_dict()
    doc["worker_zones"] = []  # not needed to score, large
    doc.pop("simulation", None)
    return doc


def family_days(shop: Shop, n_days: int, cache: Path, log=print) -> list[tuple[str, Result, Result]]:
    """``(day, analysis, truth)`` of the shop's first ``n_days`` days (analysed once, cached)."""
    from twin_server.analysis import analyze

    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for k, day in enumerate(workdays(n_days)):
        path = cache / f"{shop.name}-{k:02d}.json.gz"
        if path.exists():
            doc = _load(path)
        else:
            readings, truth = simulate_day(shop, k, day)
            result = analyze(readings, shop.site)
            doc = {"analysis": result.to_dict(), "truth": _no_zones(truth)}
            _save(path, doc)
            log(f"  {shop.name} day {k}: {len(readings)} readings analysed")
        out.append((day.isoformat(), Result.from_dict(doc["analysis"]), Result.from_dict(doc["truth"])))
    return out


def demo_journal(shop: Shop, n_days: int, cache: Path, log=print):
    """A journal of the demo shop's days (as the ingest writes it) and their truths.

    Returns ``(journal path, [(day, truth)])``.
    """
    from twin_server.ingest.publish import frame_to_wire
    from twin_server.store.journal import Journal

    cache.mkdir(parents=True, exist_ok=True)
    db = cache / "demo" / "journal.sqlite"
    truths_path = cache / "demo" / "truths.json.gz"
    days = workdays(n_days)
    if truths_path.exists() and db.exists():
        doc = _load(truths_path)
        if len(doc["days"]) == n_days:
            return db, [(d, Result.from_dict(t)) for d, t in doc["days"]]
    if db.exists():
        for p in db.parent.glob("journal.sqlite*"):
            p.unlink()
    journal = Journal(db)
    truths = []
    try:
        for k, day in enumerate(days):
            readings, truth = simulate_day(shop, k, day)
            # seq per sensor goes on from day to day, as a real agent's does
            wire = [
                dataclasses.replace(r, seq=r.seq + k * 10_000_000) for r in frame_to_wire(readings, shop.site)
            ]
            arrival = round(1e9 * (default_start(shop.site, day) + 12 * 3600))
            for i in range(0, len(wire), 50_000):
                journal.write_batch([(r, arrival) for r in wire[i : i + 50_000]])
            truths.append((day.isoformat(), _no_zones(truth)))
            log(f"  demo day {k}: {len(wire)} readings journalled")
    finally:
        journal.close()
    _save(truths_path, {"days": truths})
    return db, [(d, Result.from_dict(t)) for d, t in truths]


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)
