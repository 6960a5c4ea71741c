"""The scenario family: sites, radio, lag and behaviour drawn at random from wide ranges.

API: ``draw = draw_scenario(seed)`` (a :class:`Scenario`: site, ``SimParams``, window, sensing,
dropouts; deterministic per seed) and ``sim = simulate_scenario(draw)`` (a ``Simulation`` whose
readings have the dropouts cut out); ``TUNING_SEEDS`` may be used to tune, ``REPORT_SEEDS``
only to report (disjoint, never tuned on). ``fixed_scenario(site, seed, ...)`` draws the
conditions (radio, lag, behaviour) for a given site such as the pilot's.

Every range is written up in ``docs/simulator.md`` ("The scenario family").
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from twin_server.site import Site

from .core import Simulation, default_start, simulate
from .layouts import draw_layout
from .params import LAG_PROCESSES, SimParams
from .sensors import device_of, locator_id

__all__ = [
    "REPORT_SEEDS",
    "SENSINGS",
    "TUNING_SEEDS",
    "Dropout",
    "Scenario",
    "apply_dropouts",
    "draw_conditions",
    "draw_scenario",
    "fixed_scenario",
    "simulate_scenario",
]

#: Draws that may be looked at while developing and tuning the analysis.
TUNING_SEEDS = range(1_000, 1_200)
#: Draws for the accuracy report only: never used to tune (disjoint from TUNING_SEEDS).
REPORT_SEEDS = range(900_000, 901_000)
#: What a recording carries about the workers' location.
SENSINGS = ("locator", "rssi", "both")
#: Cap on the expected RSSI rows of one draw (the advert rate is lowered above it).
RSSI_ROW_BUDGET = 3_000_000


@dataclass(frozen=True)
class Dropout:
    """A device silent for ``[start, end)`` (epoch s): its rows are cut out of the recording.

    ``device`` is a machine id (its Pi: light, pressure, switches and any receiver attached to
    it), a receiver id, or the locator id (its zone reports are lost meanwhile).
    """

    device: str
    start: float
    end: float


@dataclass
class Scenario:
    """One draw of the family: enough to simulate it (``simulate_scenario``) and to describe it."""

    seed: int
    site: Site
    params: SimParams
    hours: float
    start: float
    sensing: str
    via: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    dropouts: list[Dropout] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def lag_process(self) -> str | None:
        """The locator lag process, or None when the recording has no locator."""
        return self.params.lag_process if self.params.locator else None


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def draw_conditions(rng: np.random.Generator, site: Site, hours: float, sensing: str | None = None,
                    lag_process: str | None = None) -> tuple[SimParams, str, dict[str, Any]]:
    """Radio, lag, behaviour and sensing for a site, as ``(params, sensing, facts)``.

    Ranges: RSSI at 1 m -75 .. -45 dBm, exponent 1.6 .. 3.5, per-receiver offsets up to
    +-8 dB, per-beacon up to +-6 dB, body shadowing 0 .. 12 dB, packet loss 10 .. 80 %,
    adverts 1 .. 10 Hz (log-uniform; lowered to keep under ``RSSI_ROW_BUDGET`` rows),
    multipath outliers on 0 .. 10 % of adverts; lag process one of ``LAG_PROCESSES``, some
    reports lost (0 .. 5 %), order kept or not; 0 .. 60 s from arrival to the first task,
    pauses 5 .. 20-120 s, cart trips 0 .. 40 %, tool-crib trips 0 .. 30 %, leaving 5 .. 120 s
    after the restart, 0 .. 15 % forgotten presses, 0 .. 50 % bouncing.
    """
    sensing = sensing or str(rng.choice(SENSINGS, p=[0.3, 0.3, 0.4]))
    lag_process = lag_process or str(rng.choice(LAG_PROCESSES, p=[0.2, 0.4, 0.2, 0.2]))
    adv_hz = math.exp(_u(rng, math.log(1.0), math.log(10.0)))
    loss = _u(rng, 0.1, 0.8)
    links = max(1, len(site.workers) * len(site.receivers))
    expected = links * hours * 3600.0 * adv_hz * (1 - loss)
    if expected > RSSI_ROW_BUDGET:
        adv_hz = max(0.5, adv_hz * RSSI_ROW_BUDGET / expected)
    params = SimParams(
        # radio
        tx_power_dbm=_u(rng, -75.0, -45.0),
        path_loss_exponent=_u(rng, 1.6, 3.5),
        receiver_gain_sd_db=0.0,
        receiver_gain_spread_db=_u(rng, 0.0, 8.0),
        beacon_tx_sd_db=0.0,
        beacon_tx_spread_db=_u(rng, 0.0, 6.0),
        body_loss_db=_u(rng, 0.0, 12.0),
        packet_loss=loss,
        adv_interval_s=1.0 / adv_hz,
        rssi_noise_db=_u(rng, 2.0, 6.0),
        rssi_fading_db=_u(rng, 1.0, 4.0),
        rssi_outlier_share=_u(rng, 0.0, 0.1),
        rssi_outlier_db=_u(rng, 10.0, 25.0),
        sensitivity_dbm=_u(rng, -100.0, -90.0),
        beacon_height_m=_u(rng, 1.0, 1.4),
        # lag
        lag_process=lag_process,
        lag_median_s=_u(rng, 12.0, 30.0),
        lag_drift_median_s=_u(rng, 10.0, 35.0),
        lag_drift_sigma=_u(rng, 0.2, 0.7),
        lag_drift_tau_min=_u(rng, 5.0, 60.0),
        lag_long_share=_u(rng, 0.02, 0.08),
        locator_loss_share=_u(rng, 0.0, 0.05),
        locator_keep_order=bool(rng.random() < 0.5),
        # behaviour
        first_task_delay_s=(0.0, _u(rng, 0.0, 60.0)),
        task_gap_s=(5.0, _u(rng, 20.0, 120.0)),
        fetch_share=_u(rng, 0.0, 0.4),
        crib_share=_u(rng, 0.0, 0.3),
        linger_s=(5.0, 120.0),
        reaction_s=(10.0, _u(rng, 60.0, 240.0)),
        visit_share=_u(rng, 0.02, 0.15),
        forgotten_share=_u(rng, 0.0, 0.15),
        bounce_share=_u(rng, 0.0, 0.5),
        press_delay_s=(0.0, _u(rng, 1.0, 5.0)),
        minor_stop_share=_u(rng, 0.05, 0.3),
        run_median_min=_u(rng, 20.0, 60.0),
        locator=sensing in ("locator", "both"),
        rssi=sensing in ("rssi", "both"),
    )
    facts = {"sensing": sensing, "adv_hz": round(adv_hz, 2)}
    return params, sensing, facts


def _draw_shift(rng: np.random.Generator) -> dict[str, Any]:
    """A shift calendar: start 06:00 .. 09:00, 8 .. 10 h, 0 .. 3 breaks of 10 .. 60 min."""
    start_min = int(rng.integers(6 * 60, 9 * 60 + 1) // 5 * 5)
    length_min = int(rng.integers(8 * 60, 10 * 60 + 1) // 5 * 5)
    breaks = []
    n = int(rng.integers(0, 4))
    cuts = np.sort(rng.uniform(0.15, 0.85, n)) * length_min
    last_end = start_min
    for c in cuts:
        b0 = int(start_min + c) // 5 * 5
        b1 = b0 + int(rng.choice([10, 15, 30, 45, 60]))
        if b0 > last_end + 20 and b1 < start_min + length_min - 20:
            breaks.append({"start": f"{b0 // 60:02d}:{b0 % 60:02d}", "end": f"{b1 // 60:02d}:{b1 % 60:02d}"})
            last_end = b1
    end = start_min + length_min
    return {"start": f"{start_min // 60:02d}:{start_min % 60:02d}", "end": f"{end // 60:02d}:{end % 60:02d}",
            "breaks": breaks}


def _draw_dropouts(rng: np.random.Generator, site: Site, t0: float, t1: float, sensing: str) -> list[Dropout]:
    """Sensor dropouts of 2 .. 20 min in 30 % of the draws (1 .. 2 devices)."""
    if rng.random() >= 0.3:
        return []
    devices = list(site.machine_ids)
    if sensing in ("rssi", "both"):
        devices += [r.id for r in site.receivers if r.machine is None]
    if sensing in ("locator", "both"):
        devices.append(locator_id(site))
    out = []
    for _ in range(int(rng.integers(1, 3))):
        dev = str(rng.choice(devices))
        length = _u(rng, 120.0, 1200.0)
        start = _u(rng, t0, max(t0, t1 - length))
        out.append(Dropout(dev, round(start, 3), round(min(t1, start + length), 3)))
    return out


def draw_scenario(seed: int, *, hours: float | None = None, sensing: str | None = None,
                  lag_process: str | None = None) -> Scenario:
    """One draw of the family (deterministic per ``seed``).

    Parameters
    ----------
    seed : int
        Draw number: take tuning draws from ``TUNING_SEEDS``, report draws from ``REPORT_SEEDS``.
    hours : float, optional
        Window length; by default 2 .. 4 h placed at random in the shift (breaks may fall in).
    sensing, lag_process : str, optional
        Force the location sensing (``SENSINGS``) or the lag process (``LAG_PROCESSES``).
    """
    rng = np.random.default_rng([seed, 77])
    layout = draw_layout(rng, site_id=f"family-{seed}")
    layout.site_dict["shift"] = _draw_shift(rng)
    site = layout.site()
    hours = hours if hours is not None else _u(rng, 2.0, 4.0)
    params, sensing, facts = draw_conditions(rng, site, hours, sensing, lag_process)
    shift_len_h = _shift_hours(site)
    start = default_start(site) + 60.0 * round(_u(rng, 0.0, max(0.0, shift_len_h - hours)) * 60.0)
    t1 = start + hours * 3600.0
    dropouts = _draw_dropouts(rng, site, start, t1, sensing)
    facts.update(layout.facts)
    facts.update(hours=round(hours, 3), lag_process=params.lag_process if params.locator else None,
                 dropouts=len(dropouts))
    return Scenario(seed, site, params, hours, start, sensing, layout.via, dropouts, facts)


def fixed_scenario(site: Site, seed: int, *, hours: float = 8.0, sensing: str | None = None,
                   lag_process: str | None = None, start: float | None = None,
                   via: dict[str, list[tuple[float, float]]] | None = None) -> Scenario:
    """The family's conditions (radio, lag, behaviour, dropouts) drawn for a given site."""
    rng = np.random.default_rng([seed, 78])
    params, sensing, facts = draw_conditions(rng, site, hours, sensing, lag_process)
    t0 = default_start(site) if start is None else start
    dropouts = _draw_dropouts(rng, site, t0, t0 + hours * 3600.0, sensing)
    facts.update(hours=hours, machines=len(site.machines), workers=len(site.workers),
                 receivers=len(site.receivers), lag_process=params.lag_process if params.locator else None,
                 dropouts=len(dropouts))
    return Scenario(seed, site, params, hours, t0, sensing, dict(via or {}), dropouts, facts)


def _shift_hours(site: Site) -> float:
    s, e = site.shift.start, site.shift.end
    return ((e.hour * 60 + e.minute) - (s.hour * 60 + s.minute)) / 60.0


def apply_dropouts(readings: pd.DataFrame, site: Site, dropouts: list[Dropout]) -> pd.DataFrame:
    """The readings with every row of a silent device inside its dropout removed."""
    if not dropouts:
        return readings
    t = readings["t"].to_numpy(dtype="float64")
    names, inverse = np.unique(readings["source"].to_numpy(dtype=str), return_inverse=True)
    dev = np.array([device_of(site, str(s)) for s in names], dtype=object)[inverse]
    cut = np.zeros(len(readings), dtype=bool)
    for d in dropouts:
        cut |= (dev == d.device) & (t >= d.start) & (t < d.end)
    return readings.loc[~cut].reset_index(drop=True)


def simulate_scenario(draw: Scenario) -> Simulation:
    """Simulate a draw: the readings (dropouts cut out) and the truth (true time, whole window)."""
    sim = simulate(draw.site, draw.hours, draw.seed, start=draw.start, params=draw.params, via=draw.via)
    readings = apply_dropouts(sim.readings, draw.site, draw.dropouts)
    extra = sim.truth.extra.setdefault("simulation", {})
    extra["family"] = {**draw.facts, "dropouts": [dataclasses.asdict(d) for d in draw.dropouts]}
    return Simulation(readings, sim.truth, sim.schedule, sim.facts)
