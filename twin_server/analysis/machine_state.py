"""Machine state (running / stopped / unknown) from the stack-light sensor.

The lamp's two levels are found from the data, per machine, in rolling windows (Otsu's
two-class split on each window, accepted only where the window is clearly bimodal), and the
threshold is interpolated in time between accepted windows. Slow ambient light drift moves
both levels together and is followed; the lamp switching is a step, which the split sees.
"""

from __future__ import annotations

import numpy as np

from twin_server.analysis.align import Grid, bin_mean, bounded_hold, hold_cells, step_labels
from twin_server.analysis.intervals import remove_short_runs

RUNNING, STOPPED, UNKNOWN = 1, 0, -1
STATE_NAMES = {RUNNING: "running", STOPPED: "stopped", UNKNOWN: "unknown"}


def otsu(values: np.ndarray, bins: int = 64) -> tuple[float, float]:
    """Otsu's threshold of a sample and its separability.

    Parameters
    ----------
    values : numpy.ndarray
        Finite samples.
    bins : int
        Histogram resolution.

    Returns
    -------
    threshold : float
        Level that best splits the sample into two classes.
    eta : float
        Between-class share of the variance, 0..1 (near 1 = two clean levels).
    """
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-12:
        return lo, 0.0
    hist, edges = np.histogram(values, bins=bins, range=(lo, hi))
    p = hist / hist.sum()
    mids = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m = np.cumsum(p * mids)
    mt = m[-1]
    w1 = 1 - w0
    with np.errstate(invalid="ignore", divide="ignore"):
        between = (mt * w0 - m) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = 0
    k = int(np.argmax(between[:-1])) if len(between) > 1 else 0
    total = float(np.var(values))
    eta = float(between[k] / total) if total > 0 else 0.0
    return float(edges[k + 1]), eta


def rolling_threshold(
    values: np.ndarray,
    window: int,
    *,
    min_eta: float = 0.75,
    min_share: float = 0.03,
    min_separation: float = 8.0,
) -> np.ndarray | None:
    """Per-cell lamp threshold from Otsu splits on overlapping windows.

    Parameters
    ----------
    values : numpy.ndarray
        Per-cell light level, NaN where unknown.
    window : int
        Window length in cells.
    min_eta : float
        Windows less bimodal than this are not trusted (one level only, or noise).
    min_share : float
        Each level must fill at least this share of the window.
    min_separation : float
        The two levels must be this many noise sd apart.

    Returns
    -------
    numpy.ndarray or None
        A threshold per cell, or None when no window shows two levels.
    """
    n = len(values)
    window = max(60, min(window, n))
    hop = max(30, window // 4)
    found: list[tuple[float, float, float]] = []  # (centre, threshold, separation)
    for s in range(0, max(1, n - window + hop), hop):
        seg = values[s : s + window]
        seg = seg[np.isfinite(seg)]
        if len(seg) < 30:
            continue
        thr, eta = otsu(seg)
        share = float(np.mean(seg > thr))
        if eta < min_eta or not min_share <= share <= 1 - min_share:
            continue
        lo, hi = seg[seg <= thr], seg[seg > thr]
        sep = float(hi.mean() - lo.mean())
        noise = float(np.sqrt(0.5 * (lo.var() + hi.var())))
        # Two clean levels far apart compared with the noise: a lamp step, not a slow
        # ambient ramp inside the window (which also splits in two, but weakly).
        if sep < min_separation * max(noise, 1e-9):
            continue
        found.append((s + min(window, n - s) / 2, 0.5 * (lo.mean() + hi.mean()), sep))
    # The lamp's contrast is a property of the machine: windows splitting much less than
    # the clearest one saw something else (ambient drift) and are dropped.
    if found:
        best = max(f[2] for f in found)
        found = [f for f in found if f[2] >= 0.5 * best]
    centres = [f[0] for f in found]
    thresholds = [f[1] for f in found]
    if not thresholds:
        return None
    return np.interp(np.arange(n), centres, thresholds)


def machine_state_codes(
    t: np.ndarray,
    level: np.ndarray,
    grid: Grid,
    *,
    window_s: float = 3600.0,
    max_hold_periods: float = 5.0,
    min_state_s: float = 3.0,
    fallback_threshold: float | None = None,
) -> tuple[np.ndarray, float | None]:
    """Per-cell machine state codes from raw stack-light samples.

    Parameters
    ----------
    t, level : numpy.ndarray
        Sample times (epoch s, sorted) and light levels of one machine.
    grid : Grid
        The common grid.
    window_s : float
        Rolling window of the two-level split.
    max_hold_periods : float
        Gaps longer than this many sample periods are ``UNKNOWN``.
    min_state_s : float
        Shorter runs are flicker and merge into their neighbours.
    fallback_threshold : float, optional
        Used when this machine's data never shows two levels (e.g. it ran all shift):
        typically the median threshold of the other machines.

    Returns
    -------
    codes : numpy.ndarray
        ``RUNNING``/``STOPPED``/``UNKNOWN`` per cell.
    threshold : float or None
        The median threshold used (for reports and as other machines' fallback).
    """
    binned = bin_mean(t, level, grid)
    held = bounded_hold(binned, hold_cells(t, grid.step_s, max_hold_periods))
    known = np.isfinite(held)
    codes = np.full(grid.n, UNKNOWN, dtype=np.int64)
    if not known.any():
        return codes, None
    thr = rolling_threshold(held, int(window_s / grid.step_s))
    if thr is None:
        if fallback_threshold is None:
            codes[known] = STOPPED  # one level all shift and nothing to compare with
            return codes, None
        thr = np.full(grid.n, fallback_threshold)
    codes[known] = np.where(held[known] > thr[known], RUNNING, STOPPED)
    min_cells = max(1, round(min_state_s / grid.step_s))
    codes = remove_short_runs(codes, min_cells, keep=UNKNOWN)
    return codes, float(np.median(thr))


def state_codes_from_binary(t: np.ndarray, value: np.ndarray, grid: Grid) -> np.ndarray:
    """Per-cell codes from edge-detected ``light_state`` rows (1 running, 0 stopped)."""
    codes = step_labels(t, value.astype(np.int64), grid, before=UNKNOWN)
    return np.where(codes == 1, RUNNING, np.where(codes == 0, STOPPED, UNKNOWN))
