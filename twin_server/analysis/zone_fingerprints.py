"""What each receiver hears in each machine zone, learned from the presence events (RSSI alone).

The path-loss model (:mod:`twin_server.analysis.radio_fit`) says what a receiver should hear
from a place. Real rooms add multipath: at a given spot a receiver is several dB off the
model, and it stays off for as long as the worker stands there. Over a minute's dwell the
smoother then finds some place outside a small zone that fits the model better than the
zone's own cells, and answers ``none`` with confidence. On real BLE (ble_tetam's stationary
recordings cut into stops at 1.6 m zones, 4 wall receivers, a press at each stop;
``bench/analyze/stops.py``) the analysis answered ``none`` for 73 % of a session spent 94 %
in zones.

Every presence event (a press, a pressure excursion, a restart) given to a worker says what
each receiver hears at that machine: the seconds around it are a labelled fingerprint. Per
machine zone and receiver, the mean residual of those seconds from the model's prediction is
kept, shrunk by empirical Bayes: the spread of the zone means beyond what the spread between
events of one zone explains is the prior variance ``tau^2``. Where the path loss is right
(``tau`` near 0) little changes; where spots sit several dB off it, the zone's
cells take the learned fingerprint, flat over the zone, so a dwell there fits its zone at
least as well as any place outside.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # radio_fit imports this module
    from twin_server.analysis.position_smoother import FloorGrid
    from twin_server.analysis.radio_fit import RadioModel


@dataclass
class ZoneFingerprint:
    """Per machine zone and receiver: the learned residual from the path loss and its weight."""

    residual_db: np.ndarray  # (Z - 1, R) mean residual of the events' seconds from the model
    weight: np.ndarray  # (Z - 1, R) 0: the path loss stands; 1: the zone takes the learned mean
    info: dict[str, float] = field(default_factory=dict)


def heard_means(model: RadioModel, grid: FloorGrid, worker: str, beacon_height_m: float) -> np.ndarray:
    """``(F * cells, R)`` mean RSSI of the packets of ``worker``'s beacon heard at each state."""
    mean = model.mean_map(worker, grid.log_distance(beacon_height_m), grid.shadow(model.facings))
    out: np.ndarray = mean.reshape(-1, len(grid.receivers))
    return out


def zone_average(per_state: np.ndarray, occupancy: np.ndarray) -> np.ndarray:
    """``(Z - 1, R)`` a per-state quantity averaged over each machine zone by its occupancy."""
    occ = occupancy[:, :-1] / np.maximum(occupancy[:, :-1].sum(axis=0, keepdims=True), 1e-12)
    out: np.ndarray = occ.T @ per_state
    return out


def fit_zone_fingerprint(
    mats: Mapping[str, np.ndarray],
    clamps: Mapping[str, np.ndarray | None],
    expected: Mapping[str, np.ndarray],
    *,
    around_s: int = 5,
) -> ZoneFingerprint:
    """Each machine zone's fingerprint from the seconds around the presence events.

    Parameters
    ----------
    mats : dict
        Worker -> ``(T, R)`` per-second mean RSSI (NaN = not heard).
    clamps : dict
        Worker -> ``(T,)`` zone of a presence event given to that worker, else -1 (or None).
    expected : dict
        Worker -> ``(Z - 1, R)`` the model's mean RSSI of the packets heard in each machine
        zone (:func:`zone_average` of :func:`heard_means`).
    around_s : int
        Seconds on each side of an event taken to be at the same spot (the worker stands at
        the machine to press, and a pressure excursion lasts).

    Returns
    -------
    ZoneFingerprint
        Zero weight everywhere when there are too few events to tell the spread between
        zones from the spread between events (fewer than 5 degrees of freedom).
    """
    first = next(iter(expected.values()))
    zs: list[np.ndarray] = []
    resid: list[np.ndarray] = []
    for w, clamp in clamps.items():
        if clamp is None or w not in expected:
            continue
        ks = np.flatnonzero(clamp >= 0)
        if len(ks) == 0:
            continue
        rssi = mats[w]
        t = np.clip(ks[:, None] + np.arange(-around_s, around_s + 1)[None, :], 0, len(rssi) - 1)
        y = rssi[t]  # (E, 2a + 1, R)
        # A neighbour labelled at another machine is not at this spot.
        y[(clamp[t] >= 0) & (clamp[t] != clamp[ks][:, None])] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a receiver that heard none of them
            per_event = np.nanmean(y, axis=1)  # (E, R)
        zs.append(clamp[ks])
        resid.append(per_event - expected[w][clamp[ks]])
    zero = np.zeros_like(first, dtype=np.float64)
    if not zs:
        return ZoneFingerprint(zero, zero.copy(), {"events": 0.0})
    ez, er = np.concatenate(zs), np.concatenate(resid)
    heard = np.isfinite(er)
    res = np.where(heard, er, 0.0)
    n, total = zero.copy(), zero.copy()
    np.add.at(n, ez, heard.astype(np.float64))
    np.add.at(total, ez, res)
    mean = total / np.maximum(n, 1)
    # The spread between events of one zone (pooled): the noise of one event's mean.
    dev = np.where(heard, res - mean[ez], 0.0)
    dof = float((n - 1).clip(min=0).sum())
    if dof < 5:
        return ZoneFingerprint(mean, zero, {"events": float(len(ez))})
    s2 = float((dev * dev).sum() / dof)
    seen = n >= 1
    tau2 = max(0.0, float(np.mean(mean[seen] ** 2 - s2 / n[seen])))
    weight = zero.copy()
    weight[seen] = tau2 / (tau2 + s2 / n[seen])
    info = {"events": float(len(ez)), "tau_db": float(np.sqrt(tau2)), "event_sd_db": float(np.sqrt(s2))}
    return ZoneFingerprint(mean, weight, info)


def apply_zone_fingerprint(
    mean: np.ndarray, share: np.ndarray, expected: np.ndarray, fingerprint: ZoneFingerprint
) -> np.ndarray:
    """``mean`` ``(S, R)`` (states: facings x cells, cells last) with each machine zone's cells
    drawn to its learned fingerprint ``expected + residual`` by its weight (flat over the zone;
    a cell partly in a zone is drawn by its share). ``share``: the grid's ``(cells, Z)``."""
    target = expected + fingerprint.residual_db  # (Z - 1, R)
    cells = share.shape[0]
    m = mean.reshape(-1, cells, mean.shape[-1])
    pulled = share[:, :-1] @ fingerprint.weight  # (cells, R): how far each cell is drawn
    out: np.ndarray = m * (1 - pulled)[None] + (share[:, :-1] @ (fingerprint.weight * target))[None]
    return out.reshape(mean.shape)
