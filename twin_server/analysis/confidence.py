"""Confidence that means something: calibration of zone probabilities, and how to check it.

A confidence is calibrated when, among the seconds given a confidence near ``c``, a share near
``c`` is right. :func:`reliability` bins seconds by confidence and :func:`expected_calibration_error`
summarises the gaps (weighted by the bins' sizes). :func:`calibrate` maps the smoother's raw
zone probability to a calibrated one with a monotone table fitted by isotonic regression on the
simulator family's tuning draws (``bench/analyze/calibration.py`` prints the tables); it is
checked, never fitted, on other draws and on real data. :func:`zone_confidence` applies the
table of the worker's zone source (:data:`TABLES`: ``rssi`` for RSSI-only workers, ``locator``
for workers with a locator stream) and gives seconds without any estimate (no packet heard
yet, shown as ``none``) the share of such seconds that were right (:data:`NOT_HEARD`). On a
floor without presence events, seconds of still dwells given a machine
(``rssi_zones.standing_at_machines``) take ``rssi_named`` or ``rssi_snapped`` second by second
instead (the analysis pipeline applies them).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: ``(raw, calibrated)`` knots of the monotone map (linear in between, clamped at the ends).
CALIBRATION: tuple[tuple[float, float], ...] = ((0.0, 0.0), (1.0, 1.0))
#: Per zone source, the fitted monotone map (``bench/analyze/calibration.py``: the first 20
#: small tuning draws, 1 h, each RSSI only and locator only; refitted after the RSSI lag
#: channel and the pressure baseline changed: held-out ECE 0.036 on 28 recordings, 0.044 on
#: the ble_tetam session). ``rssi`` is the position smoother alone: since the zone chain it
#: serves recordings without presence events (like ble_tetam), and is kept as fitted then (a
#: refit on the floor-aware smoother of the family draws gave ble_tetam ECE 0.060 with their
#: events and 0.091 without them). ``rssi_chain``: RSSI alone with the zone chain, fitted on
#: the same 20 draws after the chain and the receivers' floor (held out: ECE 0.035 on 10
#: RSSI-only recordings, 0.038 on all 28, 0.044 on ble_tetam). ``locator`` refitted after the
#: 20 s lag start and the lag chain (held out: ECE 0.044 -> 0.037 on the 18 recordings with a
#: locator, 0.036 -> 0.033 on all 28; the other tables as they were).
TABLES: dict[str, tuple[tuple[float, float], ...]] = {
    "rssi": (
        (0.0, 0.0),
        (0.5337, 0.4276),
        (0.6163, 0.5107),
        (0.6719, 0.6065),
        (0.7058, 0.6983),
        (0.7178, 0.7302),
        (0.7281, 0.7302),
        (0.7483, 0.7302),
        (0.7836, 0.7302),
        (0.8081, 0.7836),
        (0.8313, 0.7884),
        (0.8564, 0.8018),
        (0.8761, 0.8102),
        (0.8913, 0.8102),
        (0.9053, 0.8102),
        (0.9134, 0.8102),
        (0.9267, 0.8102),
        (0.9436, 0.8102),
        (0.9612, 0.8102),
        (0.972, 0.8102),
        (0.9781, 0.8534),
        (0.9848, 0.8647),
        (0.99, 0.8994),
        (0.9934, 0.9282),
        (0.9978, 0.9866),
        (1.0, 0.9866),
    ),
    "rssi_chain": (
        (0.0, 0.0),
        (0.6023, 0.2212),
        (0.731, 0.5052),
        (0.7735, 0.566),
        (0.7934, 0.566),
        (0.8076, 0.566),
        (0.8129, 0.566),
        (0.8202, 0.566),
        (0.8271, 0.8468),
        (0.8366, 0.864),
        (0.8482, 0.864),
        (0.8588, 0.864),
        (0.8751, 0.864),
        (0.8896, 0.864),
        (0.9101, 0.864),
        (0.9251, 0.864),
        (0.9409, 0.864),
        (0.9597, 0.864),
        (0.9719, 0.864),
        (0.9797, 0.864),
        (0.9891, 0.864),
        (0.9924, 0.864),
        (0.9951, 0.864),
        (0.9973, 0.9041),
        (0.9987, 0.9938),
        (1.0, 0.9938),
    ),
    "locator": (
        (0.0, 0.0),
        (0.6033, 0.7679),
        (0.8135, 0.8027),
        (0.9214, 0.8662),
        (0.9465, 0.8665),
        (0.9613, 0.8665),
        (0.9681, 0.8665),
        (0.9744, 0.9218),
        (0.9778, 0.9294),
        (0.9802, 0.9294),
        (0.9829, 0.9294),
        (0.9849, 0.9294),
        (0.9867, 0.9294),
        (0.9882, 0.9557),
        (0.9892, 0.9601),
        (0.9902, 0.9601),
        (0.991, 0.9601),
        (0.9918, 0.9601),
        (0.9929, 0.9601),
        (0.9937, 0.9601),
        (0.9947, 0.9601),
        (0.9955, 0.9601),
        (0.997, 0.9601),
        (0.9981, 0.9601),
        (1.0, 0.9601),
    ),
    # RSSI alone without presence events: still dwells named with their group
    # (``dwell_naming.name_groups``), by the naming's margin ``1 - exp(-margin / 18 dB^2)``
    # (margin: how much worse the best naming that names the group otherwise fits).
    # Fitted on the 30 development draws of bench/analyze/stops.py (real ble_tetam dwells,
    # seeds 0-29, 62,023 named seconds, 63.8 % right).
    "rssi_named": (
        (0.0, 0.3359),  # the first bin's value: a margin near 0 is still right 40 % of the time
        (0.1488, 0.3359),
        (0.384, 0.4989),
        (0.7236, 0.5713),
        (0.8976, 0.7366),
        (0.9765, 0.75),
        (0.9994, 0.9346),
        (1.0, 0.9346),
    ),
    # RSSI alone without presence events, where the dwells could not be named together: a
    # still beacon's ``none`` seconds given the most likely machine
    # (``rssi_zones.standing_at_machines``), by that machine's share of the
    # machine zones' probability (``rssi_zones.machine_share``). Fitted on the 10 development
    # draws of bench/analyze/stops.py (real ble_tetam dwells, seeds 0-9, 21,891 snapped
    # seconds, 48.9 % right, all snapped second by second then): the only labelled dwells
    # without events at hand.
    "rssi_snapped": (
        (0.0, 0.0),
        (0.6115, 0.2732),
        (0.8592, 0.2769),
        (0.9654, 0.3764),
        (0.992, 0.4308),
        (1.0, 0.4308),
    ),
    # ``rssi_still``: seconds of still dwells left as the smoother says because the worker stood
    # still at more places than there are machines (``rssi_zones.left_standing``), and
    # ``rssi_still_inside``: such dwells given the zone of a receiver standing in it
    # (``dwell_naming.loudest_inside``). On the 30 development draws of
    # ``bench/analyze/stops.py --layout wall-zones`` (real ble_tetam dwells, seeds 0-29; the
    # other layout's draws have none) 27,086 and 25,192 such seconds were 73.4 % and 83.2 %
    # right, whatever the smoother's probability: one value each. (Before the second rule,
    # 61,778 left seconds were 64.8 % right, 0.55-0.72 in every band of the smoother's
    # probability from 0.1 up; an isotonic table fitted on it gave ECE 0.104 on fresh seeds
    # 7000-7029, its top, 0.79, did not hold.)
    "rssi_still": ((0.0, 0.734), (1.0, 0.734)),
    "rssi_still_inside": ((0.0, 0.832), (1.0, 0.832)),
}
#: Per zone source, the confidence of a second without any estimate (shown as ``none``).
NOT_HEARD: dict[str, float] = {"rssi": 0.99, "rssi_chain": 0.99}  # measured 1,561 of 1,561 right; kept humble


def calibrate(raw: np.ndarray, table: tuple[tuple[float, float], ...] = CALIBRATION) -> np.ndarray:
    """Calibrated confidence of raw zone probabilities (monotone, piecewise linear)."""
    xs, ys = zip(*table, strict=True)
    out: npt.NDArray[np.float64] = np.interp(np.asarray(raw, dtype="float64"), xs, ys)
    return out


def zone_confidence(raw: np.ndarray, codes: np.ndarray, source: str) -> np.ndarray:
    """Calibrated per-second confidence of one worker's zones.

    Parameters
    ----------
    raw : numpy.ndarray
        ``(T,)`` raw zone probability of the chosen zone.
    codes : numpy.ndarray
        ``(T,)`` zone codes; negative = no estimate (reported as ``none``).
    source : str
        ``rssi`` (position smoother), ``rssi_chain`` (smoother mixed with the zone chain) or
        ``locator`` (see :data:`TABLES`); an unknown source keeps the raw values.
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
            out.append(
                Bin(b / bins, (b + 1) / bins, int(sel.sum()), float(c[sel].mean()), float(ok[sel].mean()))
            )
    return out


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Mean absolute gap between confidence and accuracy over the bins, weighted by their seconds."""
    table = reliability(confidence, correct, bins)
    total = sum(b.seconds for b in table)
    if total == 0:
        return float("nan")
    return sum(b.seconds * abs(b.mean_confidence - b.accuracy) for b in table) / total


def isotonic_table(raw: np.ndarray, correct: np.ndarray, knots: int = 24) -> tuple[tuple[float, float], ...]:
    """A monotone ``(raw, calibrated)`` table by isotonic regression (pool adjacent violators).

    The fitted step function is summarised at ``knots`` quantile bins of the raw values (each
    knot: the bin's mean raw value and mean fitted value), so the table is dense where the
    confidences are (most sit near 1) and short enough to keep in code; ``(0, 0)`` and
    ``(1, v)`` close it (``v``: the top bin's value).
    """
    r = np.asarray(raw, dtype="float64")
    ok = np.asarray(correct, dtype="float64")
    keep = np.isfinite(r)
    r, ok = r[keep], ok[keep]
    if len(r) == 0:
        return ((0.0, 0.0), (1.0, 1.0))
    order = np.argsort(r, kind="stable")
    r, ok = r[order], ok[order]
    # Pool adjacent violators on the outcomes sorted by raw confidence.
    vals: list[float] = []
    weights: list[int] = []
    for y in ok:
        vals.append(float(y))
        weights.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w = weights[-2] + weights[-1]
            vals[-2:] = [(vals[-2] * weights[-2] + vals[-1] * weights[-1]) / w]
            weights[-2:] = [w]
    fitted = np.repeat(vals, weights)
    edges = np.unique(np.quantile(np.arange(len(r)), np.linspace(0, 1, knots + 1)).round().astype(int))
    xs, ys = [0.0], [0.0]
    for a, b in itertools.pairwise(edges):
        b = b if b > a else a + 1
        x, y = float(r[a:b].mean()), float(fitted[a:b].mean())
        if x > xs[-1] + 1e-4:
            xs.append(x)
            ys.append(max(y, ys[-1]))
    if xs[-1] < 1.0:
        xs.append(1.0)
        ys.append(ys[-1])
    return tuple((round(x, 4), round(y, 4)) for x, y in zip(xs, ys, strict=True))
