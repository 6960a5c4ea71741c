"""Render sensor readings from a simulated shift's ground truth (pure, vectorised).

Each ``render_*`` function takes the :class:`~twin_server.simulate.shift.Schedule`, the site,
the parameters and its own numpy ``Generator`` and returns a readings frame piece (columns
``t, kind, source, channel, value, label`` of :mod:`twin_server.readings`). Times are the
device's sampling times: true time plus the device's clock offset.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from twin_server.readings import COLUMNS, empty_readings
from twin_server.site import Site

from .params import SimParams
from .shift import Schedule

__all__ = [
    "clock_offsets",
    "device_of",
    "locator_id",
    "ou_series",
    "render_light",
    "render_pressure",
    "render_readings",
    "render_rssi",
    "render_switches",
    "render_zones",
]


def _same(n: int, text: str) -> np.ndarray:
    """An object array holding ``n`` references to one string.

    ``np.full(n, text, dtype=object)`` would make ``n`` separate string objects (about 70
    bytes each): hundreds of MB for a day of RSSI.
    """
    out = np.empty(n, dtype=object)
    out[:] = text
    return out


def _piece(
    t: np.ndarray,
    kind: str,
    source: str,
    channel: str | np.ndarray,
    value: np.ndarray,
    label: np.ndarray | str = "",
) -> pd.DataFrame:
    n = len(t)
    return pd.DataFrame(
        {
            "t": np.asarray(t, dtype="float64"),
            "kind": _same(n, kind),
            "source": _same(n, source),
            "channel": _same(n, channel) if isinstance(channel, str) else channel,
            "value": np.asarray(value, dtype="float64"),
            "label": _same(n, label) if isinstance(label, str) else label,
        },
        columns=COLUMNS,
    )


def ou_series(rng: np.random.Generator, n: int, sd: float, tau_steps: float) -> np.ndarray:
    """Slowly varying noise: ``n`` steps of an AR(1)/Ornstein-Uhlenbeck process.

    Stationary from the first step, with standard deviation ``sd`` and correlation time
    ``tau_steps`` (in steps). Computed as white noise filtered by the AR(1)'s exponential
    impulse response (truncated at 8 correlation times), which keeps it vectorised.
    """
    if n <= 0:
        return np.zeros(0)
    tau = max(tau_steps, 1e-9)
    kernel = np.exp(-np.arange(min(math.ceil(8 * tau), 100_000) + 1) / tau)
    kernel *= sd / math.sqrt(np.sum(kernel**2))
    eps = rng.standard_normal(n + len(kernel) - 1)
    return np.convolve(eps, kernel, mode="valid")


def _sample_times(rng: np.random.Generator, t0: float, t1: float, period_s: float) -> np.ndarray:
    """Regular sampling with a small random phase and jitter (a Pi's timer), inside ``[t0, t1)``."""
    n = max(0, math.floor((t1 - t0) / period_s))
    t = t0 + np.arange(n) * period_s + rng.uniform(0.0, min(0.02, period_s / 10), n)
    return t[t < t1]


def _state_at(intervals: list[tuple[float, float]], t: np.ndarray) -> np.ndarray:
    """True where ``t`` lies in one of the sorted, disjoint ``[start, end)`` intervals."""
    if not intervals:
        return np.zeros(t.shape, dtype=bool)
    starts = np.array([a for a, _ in intervals])
    ends = np.array([b for _, b in intervals])
    i = np.searchsorted(starts, t, side="right") - 1
    return (i >= 0) & (t < ends[np.clip(i, 0, None)])


def device_of(site: Site, source: str) -> str:
    """The device (clock) that stamps a source's readings: a receiver at a machine uses its Pi."""
    for r in site.receivers:
        if r.id == source and r.machine is not None:
            return r.machine
    return source


def locator_id(site: Site) -> str:
    """The locator system id used for ``zone`` rows."""
    return site.locators[0] if site.locators else "locator"


def clock_offsets(site: Site, params: SimParams, rng: np.random.Generator) -> dict[str, float]:
    """A constant clock offset (seconds) per device; all zero unless ``clock_offset_sd_s > 0``."""
    devices = [*site.machine_ids, *[r.id for r in site.receivers if r.machine is None], locator_id(site)]
    draws = rng.standard_normal(len(devices)) * params.clock_offset_sd_s
    return {d: float(round(v, 3)) + 0.0 for d, v in zip(devices, draws, strict=True)}  # + 0.0: no -0.0


# -- machine sensors ----------------------------------------------------------------------


def render_light(
    sched: Schedule, site: Site, params: SimParams, rng: np.random.Generator, offsets: dict[str, float]
) -> list[pd.DataFrame]:
    """Stack-light level per machine: two lamp levels over a drifting ambient, plus noise."""
    grid_s = 60.0
    n_grid = math.ceil((sched.t1 - sched.t0) / grid_s) + 2
    grid_t = sched.t0 + np.arange(n_grid) * grid_s
    ambient = params.ambient_lux + ou_series(rng, n_grid, params.ambient_sd_lux, params.ambient_tau_min)
    ambient = np.maximum(ambient, 0.1 * params.ambient_lux)
    out = []
    for m in site.machines:
        off_lux = _uniform(rng, params.light_off_lux)
        on_lux = off_lux + _uniform(rng, params.light_on_extra_lux)
        gain = _uniform(rng, params.ambient_gain)
        t = _sample_times(rng, sched.t0, sched.t1, params.light_period_s)
        running = _state_at(sched.runs[m.id], t)
        level = gain * np.interp(t, grid_t, ambient) + np.where(running, on_lux, off_lux)
        level += rng.standard_normal(len(t)) * params.light_noise_share * on_lux
        out.append(_piece(t + offsets.get(m.id, 0.0), "light", m.id, "", np.round(level, 2)))
    return out


def render_pressure(
    sched: Schedule, site: Site, params: SimParams, rng: np.random.Generator, offsets: dict[str, float]
) -> list[pd.DataFrame]:
    """Pressure per machine: noise around a slowly drifting normal level; a drop during jig changes."""
    grid_s = 60.0
    n_grid = math.ceil((sched.t1 - sched.t0) / grid_s) + 2
    grid_t = sched.t0 + np.arange(n_grid) * grid_s
    tau = params.pressure_tau_s
    out = []
    for m in site.machines:
        normal = _uniform(rng, params.pressure_normal)
        drift = ou_series(rng, n_grid, params.pressure_drift_share, 60.0)
        t = _sample_times(rng, sched.t0, sched.t1, params.pressure_period_s)
        factor = np.ones(len(t))
        for tk in sched.tasks:
            if tk.machine != m.id or tk.task != "jig_change":
                continue
            low = _uniform(rng, params.pressure_jig_share)
            a = tk.start + _uniform(rng, params.pressure_jig_delay_s)
            b = max(a + 1.0, tk.end - _uniform(rng, params.pressure_jig_delay_s))
            i0, i1 = np.searchsorted(t, [a, b + 8 * tau])
            seg = t[i0:i1]
            # First-order ramps down at a and back up at b (a valve and a hydraulic line).
            g = np.where(
                seg < b,
                1 - np.exp(-np.clip(seg - a, 0, None) / tau),
                (1 - math.exp(-(b - a) / tau)) * np.exp(-np.clip(seg - b, 0, None) / tau),
            )
            factor[i0:i1] = np.minimum(factor[i0:i1], 1 - (1 - low) * g)
        level = normal * (1 + np.interp(t, grid_t, drift)) * factor
        level += rng.standard_normal(len(t)) * params.pressure_noise_share * normal
        out.append(_piece(t + offsets.get(m.id, 0.0), "pressure", m.id, "", np.round(level, 2)))
    return out


def render_switches(
    sched: Schedule, site: Site, params: SimParams, rng: np.random.Generator, offsets: dict[str, float]
) -> tuple[list[pd.DataFrame], dict[str, int]]:
    """Button presses at task starts (not jig change): some forgotten, some bouncing.

    Returns the frame pieces and counts ``{"expected": ..., "forgotten": ..., "bounced": ...}``.
    """
    ts: list[float] = []
    src: list[str] = []
    ch: list[str] = []
    val: list[float] = []
    counts = {"expected": 0, "forgotten": 0, "bounced": 0}
    for tk in sorted(sched.tasks, key=lambda k: (k.start, k.machine)):
        if tk.task == "jig_change":
            continue
        # Always draw the same numbers per task so one parameter does not reshuffle the others.
        u_forget, u_delay, u_bounce, b1, b2 = rng.random(5)
        hold = max(0.1, params.press_hold_s + 0.08 * rng.standard_normal())
        counts["expected"] += 1
        if u_forget < params.forgotten_share:
            counts["forgotten"] += 1
            continue
        lo, hi = params.press_delay_s
        t_press = min(tk.start + lo + (hi - lo) * u_delay, tk.end - 0.5)
        t_press = max(t_press, tk.start)
        events = [(t_press, 1.0)]
        if u_bounce < params.bounce_share:
            counts["bounced"] += 1
            events += [(t_press + 0.005 + 0.015 * b1, 0.0), (t_press + 0.025 + 0.025 * b2, 1.0)]
        events.append((t_press + max(hold, 0.06), 0.0))
        off = offsets.get(tk.machine, 0.0)
        for te, v in events:
            ts.append(te + off)
            src.append(tk.machine)
            ch.append(tk.task)
            val.append(v)
    if not ts:
        return [], counts
    frame = pd.DataFrame(
        {"t": ts, "kind": "switch", "source": src, "channel": ch, "value": val, "label": ""}, columns=COLUMNS
    )
    return [frame], counts


# -- worker location ----------------------------------------------------------------------


def render_rssi(
    sched: Schedule, site: Site, params: SimParams, rng: np.random.Generator, offsets: dict[str, float]
) -> tuple[list[pd.DataFrame], dict[str, dict[str, float]]]:
    """RSSI of each beacon advert at each receiver (log-distance path loss, body shadowing, noise, loss).

    Returns the frame pieces and the constant device offsets drawn (``beacon_tx_dbm`` per
    beacon, ``receiver_gain_db`` per receiver).
    """
    out = []
    # Constant per-device offsets: no two beacons or receivers are quite alike.
    tx_dbm = params.tx_power_dbm + params.beacon_tx_sd_db * rng.standard_normal(len(site.workers))
    gain_db = params.receiver_gain_sd_db * rng.standard_normal(len(site.receivers))
    # Extra draws only when asked for, so the defaults keep their random stream.
    if params.beacon_tx_spread_db > 0:
        tx_dbm = tx_dbm + rng.uniform(-params.beacon_tx_spread_db, params.beacon_tx_spread_db, len(tx_dbm))
    if params.receiver_gain_spread_db > 0:
        s = params.receiver_gain_spread_db
        gain_db = gain_db + rng.uniform(-s, s, len(gain_db))
    for wi, w in enumerate(site.workers):
        path = sched.paths[w.id]
        n = math.ceil((sched.t1 - sched.t0) / params.adv_interval_s) + 1
        # BLE adds a random 0-10 ms delay to every advertising interval.
        steps = params.adv_interval_s + rng.uniform(0.0, 0.01, n)
        t = sched.t0 + rng.uniform(0.0, params.adv_interval_s) + np.cumsum(steps) - steps[0]
        t = t[t < sched.t1]
        x, y, face = path.sample(t)
        n_fade = math.ceil(sched.t1 - sched.t0) + 2
        fade_t = sched.t0 + np.arange(n_fade, dtype="float64")
        away = path.away_mask(t)
        for ri, r in enumerate(site.receivers):
            rx, ry, rz = r.position
            d = np.sqrt((x - rx) ** 2 + (y - ry) ** 2 + (params.beacon_height_m - rz) ** 2)
            bearing = np.arctan2(ry - y, rx - x)
            shadow = params.body_loss_db * (1 - np.cos(bearing - face)) / 2
            # Slow fading of the link (people and carts moving, doors), sampled on a 1 s grid.
            fading = ou_series(rng, n_fade, params.rssi_fading_db, params.rssi_fading_tau_s)
            rssi = (
                np.interp(t, fade_t, fading)
                + tx_dbm[wi]
                + gain_db[ri]
                - 10 * params.path_loss_exponent * np.log10(np.maximum(d, 0.1))
                - shadow
                + params.rssi_noise_db * rng.standard_normal(len(t))
            )
            if params.rssi_outlier_share > 0:
                # Multipath: now and then an advert arrives by a reflection (mostly weaker).
                hit = rng.random(len(t)) < params.rssi_outlier_share
                big = params.rssi_outlier_db
                rssi = rssi + np.where(hit, rng.uniform(-big, big / 2, len(t)), 0.0)
            keep = (rng.random(len(t)) >= params.packet_loss) & (rssi >= params.sensitivity_dbm) & ~away
            off = offsets.get(device_of(site, r.id), 0.0)
            out.append(_piece(t[keep] + off, "rssi", r.id, w.beacon, np.round(rssi[keep])))
    drawn = {
        "beacon_tx_dbm": {w.beacon: round(float(v), 2) for w, v in zip(site.workers, tx_dbm, strict=True)},
        "receiver_gain_db": {r.id: round(float(v), 2) for r, v in zip(site.receivers, gain_db, strict=True)},
    }
    return out, drawn


def render_zones(
    sched: Schedule,
    site: Site,
    params: SimParams,
    rng: np.random.Generator,
    offsets: dict[str, float],
    delays: dict[str, list[tuple[float, float, float]]] | None = None,
) -> list[pd.DataFrame]:
    """The commercial locator's zone reports: every true zone change, reported late by the lag.

    A change at true time ``tau`` is reported at ``tau + lag(tau)``; reports keep their order
    (a report never overtakes the previous one: it waits for it) unless
    ``locator_keep_order`` is false, and reports after the window are lost, as are
    ``locator_loss_share`` of the others. Optionally visits shorter than
    ``locator_min_dwell_s`` go unreported and spurious short reports of a wrong zone appear
    (``locator_flicker_per_h``). ``delays``, when given, receives per worker the actual delay
    of every reported change as ``(start, next start, delay_s)`` in true time.
    """
    loc = locator_id(site)
    off = offsets.get(loc, 0.0)
    out = []
    for w in site.workers:
        zones = _seen_by_locator(sched.zones(site, w.id), params.locator_min_dwell_s)
        lag = sched.lag[w.id]
        lag_starts = np.array([a for a, _, _ in lag])
        lag_vals = np.array([v for _, _, v in lag])
        lost = (
            rng.random(len(zones)) < params.locator_loss_share
            if params.locator_loss_share > 0
            else np.zeros(len(zones), dtype=bool)
        )
        times, labels = [], []
        actual: list[tuple[float, float, float]] = []
        last = -math.inf
        for k, (zone, start, _end) in enumerate(zones):
            i = int(np.searchsorted(lag_starts, start, side="right") - 1)
            lag_k = float(lag_vals[max(i, 0)])
            if k == 0:
                rep = sched.t0  # the locator's state at the start of the recording
            else:
                rep = start + lag_k
                if params.locator_keep_order:
                    rep = max(rep, last + 0.5)
            nxt = zones[k + 1][1] if k + 1 < len(zones) else sched.t1
            actual.append((start, nxt, round(lag_k if k == 0 or lost[k] else rep - start, 2)))
            if rep >= sched.t1:
                if params.locator_keep_order:
                    break
                continue
            if k > 0 and lost[k]:
                continue
            times.append(rep)
            labels.append(zone)
            last = rep
        if delays is not None:
            delays[w.id] = actual
        if not params.locator_keep_order:
            order = np.argsort(times, kind="stable")
            times = [times[i] for i in order]
            labels = [labels[i] for i in order]
        if params.locator_flicker_per_h > 0 and times:
            times, labels = _flicker(rng, params, sched, site, times, labels)
        t = np.array(times, dtype="float64") + off
        out.append(
            _piece(
                np.round(t, 3), "zone", loc, w.beacon, np.full(len(t), np.nan), np.array(labels, dtype=object)
            )
        )
    return out


def _seen_by_locator(
    zones: list[tuple[str, float, float]], min_dwell_s: float
) -> list[tuple[str, float, float]]:
    """True zone runs as the locator sees them: short visits vanish into their neighbours."""
    if min_dwell_s <= 0:
        return zones
    kept = [z for k, z in enumerate(zones) if k == 0 or z[2] - z[1] >= min_dwell_s]
    merged: list[tuple[str, float, float]] = []
    for zone, start, end in kept:
        if merged and merged[-1][0] == zone:
            merged[-1] = (zone, merged[-1][1], end)
        else:
            merged.append((zone, start, end))
    return merged


def _flicker(
    rng: np.random.Generator,
    params: SimParams,
    sched: Schedule,
    site: Site,
    times: list[float],
    labels: list[str],
) -> tuple[list[float], list[str]]:
    """Insert spurious short reports of a wrong zone between the real reports."""
    hours = (sched.t1 - sched.t0) / 3600.0
    n = int(rng.poisson(params.locator_flicker_per_h * hours))
    when = np.sort(rng.uniform(sched.t0, sched.t1, n))
    length = rng.uniform(3.0, 15.0, n)
    picks = rng.random(n)
    rep_t = np.array(times)
    choices = [*site.machine_ids, "none"]
    extra: list[tuple[float, str]] = []
    for tf, d, u in zip(when, length, picks, strict=True):
        i = int(np.searchsorted(rep_t, tf, side="right") - 1)
        nxt = rep_t[i + 1] if i + 1 < len(rep_t) else sched.t1
        if i < 0 or tf + d + 0.5 >= nxt:
            continue  # keep flickers between real reports
        current = labels[i]
        others = [c for c in choices if c != current]
        extra += [(float(tf), others[int(u * len(others))]), (float(tf + d), current)]
    merged = sorted([*zip(times, labels, strict=True), *extra], key=lambda r: r[0])
    return [r[0] for r in merged], [r[1] for r in merged]


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def render_readings(sched: Schedule, site: Site, params: SimParams, seed: int) -> tuple[pd.DataFrame, dict]:
    """All readings of a simulated shift, sorted by time, and a few facts about them.

    Every sensor family draws from its own generator (spawned from ``seed``), so switching the
    RSSI or the locator off leaves the other readings unchanged.
    """
    rngs = [np.random.default_rng([seed, 1, k]) for k in range(6)]
    offsets = clock_offsets(site, params, rngs[0])
    pieces = render_light(sched, site, params, rngs[1], offsets)
    pieces += render_pressure(sched, site, params, rngs[2], offsets)
    switch_pieces, presses = render_switches(sched, site, params, rngs[3], offsets)
    pieces += switch_pieces
    facts: dict = {"clock_offsets_s": offsets, "presses": presses}
    if params.rssi and site.receivers:
        rssi_pieces, facts["rssi_devices"] = render_rssi(sched, site, params, rngs[4], offsets)
        pieces += rssi_pieces
    if params.locator:
        delays: dict[str, list[tuple[float, float, float]]] = {}
        pieces += render_zones(sched, site, params, rngs[5], offsets, delays)
        if params.lag_process != "stretches":
            facts["locator_lag"] = delays
    pieces = [p for p in pieces if len(p)]
    if not pieces:
        return empty_readings(), facts
    # One stable sort by time over plain arrays: far fewer copies than concat + sort_values.
    t = np.concatenate([p["t"].to_numpy() for p in pieces])
    order = np.argsort(t, kind="stable")
    columns = {"t": t[order]}
    for col in COLUMNS[1:]:
        columns[col] = np.concatenate([p[col].to_numpy() for p in pieces])[order]
    del pieces
    return pd.DataFrame(columns, columns=COLUMNS), facts
