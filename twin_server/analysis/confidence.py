"""Confidence that means something: calibration of zone probabilities, and how to check it.

A confidence is calibrated when, among the seconds given a confidence near ``c``, a share near
``c`` is right. :func:`reliability` bins seconds by confidence and :func:`expected_calibration_error`
summarises the gaps (weighted by the bins' sizes). :func:`calibrate` maps the smoother's raw
zone probability to a calibrated one with a monotone table fitted by isotonic regression on the
simulator family's tuning draws (``bench/analyze/calibration.py`` prints the tables); it is
checked, never fitted, on other draws and on real data. :func:`zone_confidence` applies the
table of the worker's zone source (:data:`TABLES`: ``rssi`` for RSSI-only workers, ``locator``
for workers with a locator stream) and gives seconds without any estimate (no packet heard
yet, shown as ``none``) the share of such seconds that were right (:data:`NOT_HEARD`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ``(raw, calibrated)`` knots of the monotone map (linear in between, clamped at the ends).
CALIBRATION: tuple[tuple[float, float], ...] = ((0.0, 0.0), (1.0, 1.0))
#: Per zone source, the fitted monotone map (``bench/analyze/calibration.py``).
TABLES: dict[str, tuple[tuple[float, float], ...]] = {}
#: Per zone source, the confidence of a second without any estimate (shown as ``none``).
NOT_HEARD: dict[str, float] = {}


def calibrate(raw: np.ndarray, table: tuple[tuple[float, float], ...] = CALIBRATION) -> np.ndarray:
    """Calibrated confidence of raw zone probabilities (monotone, piecewise linear)."""
    xs, ys = zip(*table, strict=True)
    return np.interp(np.asarray(raw, dtype="float64"), xs, ys)


def zone_confidence(raw: np.ndarray, codes: np.ndarray, source: str) -> np.ndarray:
    """Calibrated per-second confidence of one worker's zones.

    Parameters
    ----------
    raw : numpy.ndarray
        ``(T,)`` raw zone probability of the chosen zone.
    codes : numpy.ndarray
        ``(T,)`` zone codes; negative = no estimate (reported as ``none``).
    source : str
        ``rssi`` or ``locator`` (see :data:`TABLES`); an unknown source keeps the raw values.
    """
    out = calibrate(raw, TABLES.get(source, CALIBRATION))
    return np.where(np.asarray(codes) < 0, NOT_HEARD.get(source, 0.0), out)


@dataclass(frozen=True)
class Bin:
    """One confidence bin of a reliability table."""

    lo: float
    hi: float
    seconds: int
    mean_confidence: float
    accuracy: float


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> list[Bin]:
    """Seconds binned by confidence (``bins`` equal-width bins over 0..1; empty bins left out).

    Parameters
    ----------
    confidence : numpy.ndarray
        Confidence given to each second (NaN seconds are ignored).
    correct : numpy.ndarray
        Whether each second's zone was right.
    bins : int
        Number of bins.
    """
    c = np.asarray(confidence, dtype="float64")
    ok = np.asarray(correct, dtype=bool)
    keep = np.isfinite(c)
    c, ok = np.clip(c[keep], 0.0, 1.0), ok[keep]
    idx = np.minimum((c * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        sel = idx == b
        if sel.any():
            out.append(Bin(b / bins, (b + 1) / bins, int(sel.sum()), float(c[sel].mean()),
                           float(ok[sel].mean())))
    return out


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Mean absolute gap between confidence and accuracy over the bins, weighted by their seconds."""
    table = reliability(confidence, correct, bins)
    total = sum(b.seconds for b in table)
    if total == 0:
        return float("nan")
    return sum(b.seconds * abs(b.mean_confidence - b.accuracy) for b in table) / total


def isotonic_table(raw: np.ndarray, correct: np.ndarray, knots: int = 21) -> tuple[tuple[float, float], ...]:
    """A monotone ``(raw, calibrated)`` table by isotonic regression (pool adjacent violators).

    The fitted step function is read at ``knots`` raw values (0, 0.05, ..., 1) so the table
    stays short enough to keep in code.
    """
    r = np.asarray(raw, dtype="float64")
    ok = np.asarray(correct, dtype="float64")
    keep = np.isfinite(r)
    r, ok = r[keep], ok[keep]
    order = np.argsort(r, kind="stable")
    r, ok = r[order], ok[order]
    # Pool adjacent violators on the sorted outcomes.
    vals: list[float] = []
    weights: list[float] = []
    ends: list[float] = []
    for x, y in zip(r, ok, strict=True):
        vals.append(y)
        weights.append(1.0)
        ends.append(x)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w = weights[-2] + weights[-1]
            v = (vals[-2] * weights[-2] + vals[-1] * weights[-1]) / w
            vals[-2:] = [v]
            weights[-2:] = [w]
            ends[-2:] = [ends[-1]]
    grid = np.linspace(0.0, 1.0, knots)
    if not vals:
        return tuple((float(g), float(g)) for g in grid)
    pos = np.minimum(np.searchsorted(np.asarray(ends), grid, side="left"), len(vals) - 1)
    fitted = np.maximum.accumulate(np.asarray(vals)[pos])
    return tuple((round(float(g), 3), round(float(v), 4)) for g, v in zip(grid, fitted, strict=True))
