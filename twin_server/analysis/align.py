"""Time alignment: one common grid for every stream, clock offsets, gaps kept as gaps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Grid:
    """A regular time grid: cell ``k`` covers ``[start + k*step, start + (k+1)*step)``."""

    start: float
    step_s: float
    n: int

    @property
    def end(self) -> float:
        """End of the last cell."""
        return self.start + self.n * self.step_s

    def centres(self) -> np.ndarray:
        """Cell centres (epoch seconds) - where the contract's scorer samples."""
        return self.start + (np.arange(self.n) + 0.5) * self.step_s

    def index(self, t: np.ndarray | float) -> np.ndarray:
        """Cell index of each time (may fall outside ``[0, n)``)."""
        return np.floor((np.asarray(t, dtype="float64") - self.start) / self.step_s).astype(np.int64)

    def time(self, k: int | np.ndarray) -> np.ndarray | float:
        """Start time of cell ``k``."""
        return self.start + np.asarray(k) * self.step_s


def apply_clock_offsets(frame: pd.DataFrame, offsets_s: dict[str, float]) -> pd.DataFrame:
    """Add a per-device clock offset to the timestamps of its rows.

    Parameters
    ----------
    frame : pandas.DataFrame
        Readings frame (columns ``t, kind, source, channel, value, label``).
    offsets_s : dict
        Source id (machine, receiver or locator id) -> seconds to add.

    Returns
    -------
    pandas.DataFrame
        A time-sorted copy with corrected ``t`` (the input is not modified).
    """
    if not offsets_s:
        return frame
    out = frame.copy()
    shift = out["source"].map(offsets_s).fillna(0.0).to_numpy(dtype="float64")
    out["t"] = out["t"].to_numpy(dtype="float64") + shift
    return out.sort_values("t", kind="stable", ignore_index=True)


def make_grid(t_min: float, t_max: float, step_s: float = 1.0) -> Grid:
    """The grid spanning ``[t_min, t_max]`` (at least one cell)."""
    n = max(1, math.ceil((t_max - t_min) / step_s - 1e-9))
    return Grid(start=float(t_min), step_s=float(step_s), n=int(n))


def median_period_s(t: np.ndarray) -> float:
    """Median spacing of sorted sample times (``inf`` with fewer than two samples)."""
    if len(t) < 2:
        return math.inf
    d = np.diff(np.sort(t))
    d = d[d > 0]
    return float(np.median(d)) if len(d) else math.inf


def bin_mean(t: np.ndarray, value: np.ndarray, grid: Grid) -> np.ndarray:
    """Mean of the samples falling in each grid cell.

    Parameters
    ----------
    t, value : numpy.ndarray
        Sample times (epoch s) and values.
    grid : Grid
        Target grid.

    Returns
    -------
    numpy.ndarray
        ``grid.n`` floats; NaN where a cell holds no sample.
    """
    k = grid.index(t)
    ok = (k >= 0) & (k < grid.n) & np.isfinite(value)
    total = np.bincount(k[ok], weights=value[ok], minlength=grid.n)
    count = np.bincount(k[ok], minlength=grid.n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def bounded_hold(values: np.ndarray, max_cells: int) -> np.ndarray:
    """Forward-fill NaN cells from the last value, but over at most ``max_cells`` cells.

    Longer gaps stay NaN: a sensor that went silent is unknown, not frozen.
    """
    out = np.asarray(values, dtype="float64").copy()
    n = len(out)
    if n == 0 or max_cells <= 0:
        return out
    valid = np.isfinite(out)
    idx = np.where(valid, np.arange(n), -1)
    last = np.maximum.accumulate(idx)
    fill = (~valid) & (last >= 0) & (np.arange(n) - last <= max_cells)
    out[fill] = out[last[fill]]
    return out


def hold_cells(t: np.ndarray, step_s: float, max_hold_periods: float) -> int:
    """How many cells a value may be held: a few median sample periods, at least one cell."""
    period = median_period_s(t)
    if not math.isfinite(period):
        return 1
    return max(1, math.ceil(max_hold_periods * period / step_s))


def step_labels(t: np.ndarray, codes: np.ndarray, grid: Grid, *, before: int = -1) -> np.ndarray:
    """Per-cell code of a stream whose reports hold until the next report.

    Parameters
    ----------
    t : numpy.ndarray
        Sorted report times.
    codes : numpy.ndarray
        Integer code of each report.
    grid : Grid
        Target grid; a cell takes the last report at or before its centre.
    before : int
        Code for cells before the first report.

    Returns
    -------
    numpy.ndarray
        ``grid.n`` integer codes.
    """
    centres = grid.centres()
    pos = np.searchsorted(t, centres, side="right") - 1
    return np.where(pos >= 0, np.asarray(codes)[np.maximum(pos, 0)], before).astype(np.int64)
