"""Machine-side events: debounced switch presses and pressure excursions (jig changes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin_server.analysis.align import Grid, bin_mean, bounded_hold, hold_cells


@dataclass(frozen=True)
class Press:
    """One (debounced) press of a task switch at a machine."""

    machine: str
    task: str
    t: float


def debounce_presses(t: np.ndarray, value: np.ndarray, debounce_s: float) -> np.ndarray:
    """Times of distinct presses of one switch.

    A bouncing contact gives several 1-rows within a fraction of a second; a real second
    press of the same task's button comes minutes later. Presses closer than
    ``debounce_s`` to the previous kept press are dropped.

    Parameters
    ----------
    t, value : numpy.ndarray
        Sorted sample times and switch values (1 pressed, 0 released).
    debounce_s : float
        Minimum spacing of distinct presses.

    Returns
    -------
    numpy.ndarray
        Press times.
    """
    pressed = np.sort(t[value >= 0.5])
    kept: list[float] = []
    for x in pressed:
        if not kept or x - kept[-1] >= debounce_s:
            kept.append(float(x))
    return np.asarray(kept)


def pressure_excursions(
    t: np.ndarray,
    level: np.ndarray,
    grid: Grid,
    *,
    z: float = 6.0,
    merge_s: float = 20.0,
    min_s: float = 10.0,
    max_hold_periods: float = 5.0,
    baseline_s: float = 10800.0,
    pad_s: float = 0.0,
) -> list[tuple[float, float]]:
    """Intervals where the pressure leaves its normal level (jig changes).

    The normal level and its noise are found from the data (median and MAD of the
    recording, after removing a slow baseline with a rolling median), so no threshold is
    configured.

    Parameters
    ----------
    t, level : numpy.ndarray
        Sorted sample times and pressure levels of one machine.
    grid : Grid
        Common grid.
    z : float
        Robust z-score beyond which a second counts as "away from normal".
    merge_s : float
        Excursions separated by less than this are one jig change (clamp released and
        re-applied).
    min_s : float
        Shorter excursions are knocks, not jig changes.
    max_hold_periods : float
        Gaps longer than this many sample periods are unknown.
    baseline_s : float
        Window of the rolling median that follows the normal level's slow drift.
    pad_s : float
        The clamp is released a little after the jig change starts and re-applied a little
        before it ends: each interval is widened by this much on both sides.

    Returns
    -------
    list of (start, end)
        Half-open intervals in epoch seconds.
    """
    from scipy.ndimage import median_filter

    binned = bounded_hold(bin_mean(t, level, grid), hold_cells(t, grid.step_s, max_hold_periods))
    known = np.isfinite(binned)
    if known.sum() < 10:
        return []
    filled = np.where(known, binned, np.nanmedian(binned))
    # Slow baseline: a 3 h rolling median (a jig change lasts minutes, well under half the
    # window, so the median stays at the normal level); a 10 s decimation keeps this cheap.
    dec = max(1, int(10 / grid.step_s))
    coarse = filled[::dec]
    # Near the ends the window is kept whole inside the recording (the median of the first or
    # last window): padding with the edge value made a jig change still open at the window's
    # end the baseline there, and mirroring counted the last minutes twice (a tool change
    # ending a 1 h recording then raised the baseline and made a jig change of the level
    # before it). A recording shorter than the window has one baseline, its median.
    size = max(3, int(baseline_s / (grid.step_s * dec)) | 1)
    if size >= len(coarse):
        slow = np.full(len(coarse), np.median(coarse))
    else:
        slow = median_filter(coarse, size=size, mode="nearest")
        half = size // 2
        slow[:half] = np.median(coarse[:size])
        slow[len(coarse) - half :] = np.median(coarse[-size:])
    base = np.repeat(slow, dec)[: grid.n]
    dev = filled - base
    mad = np.median(np.abs(dev[known] - np.median(dev[known])))
    sigma = 1.4826 * mad if mad > 0 else (np.std(dev[known]) or 1.0)
    away = known & (np.abs(dev) > z * sigma)
    idx = np.flatnonzero(away)
    if len(idx) == 0:
        return []
    merge = max(1, int(merge_s / grid.step_s))
    out: list[tuple[int, int]] = []  # grid cells
    s = e = int(idx[0])
    for k in idx[1:]:
        k = int(k)
        if k - e <= merge:
            e = k
        else:
            out.append((s, e + 1))
            s = e = k
    out.append((s, e + 1))
    min_cells = min_s / grid.step_s
    return [(float(grid.time(a)) - pad_s, float(grid.time(b)) + pad_s) for a, b in out if b - a >= min_cells]
