"""Naming a worker's still dwells without labels: which machine each group of dwells is at.

On a floor that sends no presence event, nothing labels a second. A worker standing still for
a minute or more is taken to be at a machine (:func:`still_dwells` finds such stretches in the
RSSI alone). Real rooms put each spot several dB off any path loss (multipath), constant for
as long as the beacon stands there, so a dwell's own position estimate may lie a metre or
more from its machine; but dwells at the same spot repeat the same RSSI, so they group well
(:func:`group_dwells`). The groups are then named together (:func:`name_groups`): each group
goes to a different machine, and the assignment chosen is the one under which one path loss
(a level per receiver and an exponent) explains the groups' mean RSSI best. A wrong naming
must bend the path loss to fit, a right one does not, which a single dwell cannot show.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import squareform

from twin_server.geometry import polygon_centroid, polygon_mask
from twin_server.site import Site

#: Least packets-seconds a receiver needs in a dwell for its mean to count.
MIN_HEARD = 3
#: Exponents the naming may fit (indoor BLE: 1.5-3.5, with margin).
EXPONENT_RANGE = (1.0, 4.0)
#: Fewest receivers (each hearing every group) for the groups to be named together.
MIN_COMMON = 3
#: Largest number of assignments tried one by one; beyond it, coordinate descent.
MAX_EXHAUSTIVE = 50_000


def still_dwells(rssi: np.ndarray, half_cells: int, max_drift_db: float, min_cells: int) -> np.ndarray:
    """Stretches in which the beacon stands still, from the RSSI alone.

    Parameters
    ----------
    rssi : numpy.ndarray
        ``(T, R)`` per-second mean RSSI at each receiver (NaN = not heard).
    half_cells : int
        Each second compares the mean RSSI of the ``half_cells`` before it with that of the
        ``half_cells`` from it on, per receiver heard at least :data:`MIN_HEARD` times in both.
    max_drift_db : float
        Largest root-mean-square change over those receivers (at least 2) of a still beacon.
        On ble_tetam a walker's changes 2.5 dB or more in 9 of 10 seconds; a beacon standing
        still changes 0.3-1.5 dB in most.
    min_cells : int
        Shortest dwell kept (a walker pausing is not at a machine).

    Returns
    -------
    numpy.ndarray
        ``(T,)`` dwell number of each second (0, 1, ... in time order), -1 where not still.
        A run of still centres ``[a, b)`` means the beacon stood still over
        ``[a - half_cells, b + half_cells)``; two dwells that close in on each other split
        the seconds between them.
    """
    n_t = len(rssi)
    out = np.full(n_t, -1, dtype=np.int64)
    h = half_cells
    if n_t < 2 * h + 1:
        return out
    heard = np.isfinite(rssi)
    zero = np.zeros((1, rssi.shape[1]))
    cs = np.vstack([zero, np.cumsum(np.where(heard, rssi, 0.0), axis=0)])
    cn = np.vstack([zero, np.cumsum(heard, axis=0)])
    t = np.arange(h, n_t - h + 1)
    n1, n2 = cn[t] - cn[t - h], cn[t + h] - cn[t]
    ok = (n1 >= MIN_HEARD) & (n2 >= MIN_HEARD)
    d = (cs[t] - cs[t - h]) / np.maximum(n1, 1) - (cs[t + h] - cs[t]) / np.maximum(n2, 1)
    k = ok.sum(axis=1)
    rms = np.sqrt(np.where(ok, d * d, 0.0).sum(axis=1) / np.maximum(k, 1))
    still = np.zeros(n_t, dtype=bool)
    still[t[(k >= 2) & (rms <= max_drift_db)]] = True
    edges = np.flatnonzero(np.diff(np.concatenate([[0], still.astype(np.int8), [0]])))
    runs = [(a, b) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a + 2 * h >= min_cells]
    for i, (a, b) in enumerate(runs):
        lo = a - h if i == 0 else max(a - h, (runs[i - 1][1] + a) // 2)
        hi = b + h if i == len(runs) - 1 else min(b + h, (b + runs[i + 1][0]) // 2)
        out[max(lo, 0) : min(hi, n_t)] = i
    return out


def dwell_means(rssi: np.ndarray, dwells: np.ndarray) -> np.ndarray:
    """``(D, R)`` mean RSSI of each dwell at each receiver (NaN: heard in fewer than
    :data:`MIN_HEARD` of its seconds)."""
    n_d = int(dwells.max()) + 1 if len(dwells) else 0
    inside = dwells >= 0
    heard = np.isfinite(rssi[inside])
    total = np.zeros((n_d, rssi.shape[1]))
    count = np.zeros((n_d, rssi.shape[1]))
    np.add.at(total, dwells[inside], np.where(heard, rssi[inside], 0.0))
    np.add.at(count, dwells[inside], heard)
    return np.where(count >= MIN_HEARD, total / np.maximum(count, 1), np.nan)


def zone_log_distances(site: Site, receiver_xyz: np.ndarray, beacon_height_m: float) -> np.ndarray:
    """``(Z, R)`` ``10 log10`` of the distance (m) from each machine zone's centre, at the
    beacon's height, to each receiver (``receiver_xyz``: ``(R, 3)``)."""
    centres = np.array([polygon_centroid(m.zone) for m in site.machines], dtype=np.float64).reshape(-1, 2)
    flat = ((centres[:, None, :] - receiver_xyz[None, :, :2]) ** 2).sum(axis=2)
    height = (receiver_xyz[None, :, 2] - beacon_height_m) ** 2
    out: np.ndarray = 10.0 * np.log10(np.sqrt(np.maximum(flat + height, 0.01)))
    return out


def group_means(rssi: np.ndarray, dwells: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``(G, R)`` mean RSSI of each group of dwells (all its seconds), as :func:`dwell_means`."""
    if len(groups) == 0:
        return np.full((0, rssi.shape[1]), np.nan)
    return dwell_means(rssi, np.where(dwells >= 0, groups[np.maximum(dwells, 0)], -1))


def receivers_inside(site: Site, receiver_xyz: np.ndarray) -> np.ndarray:
    """``(R,)`` machine index of the zone each receiver stands in (seen from above), else -1."""
    out = np.full(len(receiver_xyz), -1, dtype=np.int64)
    for z, m in enumerate(site.machines):
        inside = polygon_mask(receiver_xyz[:, 0], receiver_xyz[:, 1], m.zone)
        out[(out < 0) & inside] = z
    return out


def loudest_inside(
    means: np.ndarray, inside: np.ndarray, min_margin_db: float, top_within_db: float = np.inf
) -> np.ndarray:
    """``(D,)`` zone of each dwell whose loudest receiver stands in that zone and is louder than
    every other receiver by at least ``min_margin_db`` (a beacon within a metre or so of a
    receiver), else -1.

    Parameters
    ----------
    means : numpy.ndarray
        ``(D, R)`` mean RSSI of each dwell at each receiver (NaN = not heard enough).
    inside : numpy.ndarray
        ``(R,)`` from :func:`receivers_inside`.
    min_margin_db : float
        Least lead of the loudest receiver over the second.
    top_within_db : float
        The dwell must also be within this of the loudest any dwell was at that receiver (the
        spot nearest to it, not a far one that happens to lead).
    """
    n_d = len(means)
    if n_d == 0 or means.shape[1] < 2:
        return np.full(n_d, -1, dtype=np.int64)
    loud = np.where(np.isfinite(means), means, -np.inf)
    order = np.argsort(-loud, axis=1)
    top = order[:, 0]
    first = loud[np.arange(n_d), top]
    second = loud[np.arange(n_d), order[:, 1]]
    lead = first - second  # inf when only one receiver heard the dwell
    best = loud.max(axis=0)  # (R,) loudest any dwell was at each receiver
    ok = (
        np.isfinite(first)
        & (lead >= min_margin_db)
        & (inside[top] >= 0)
        & (first >= best[top] - top_within_db)
    )
    return np.where(ok, inside[top], -1).astype(np.int64)


def top_groups_share(dwells: np.ndarray, groups: np.ndarray, n_top: int) -> float:
    """Share of the still seconds (``dwells`` >= 0) spent in the ``n_top`` groups holding most
    of them (1.0 when there are no more groups than that, or no still second)."""
    still = dwells >= 0
    if not still.any() or len(groups) <= 0:
        return 1.0
    per_group = np.bincount(groups[dwells[still]], minlength=int(groups.max()) + 1)
    top = np.sort(per_group)[::-1][:n_top].sum()
    return float(top / per_group.sum())


def group_dwells(means: np.ndarray, max_apart_db: float) -> np.ndarray:
    """``(D,)`` group of each dwell: average-linkage clusters of the dwells' mean RSSI, at most
    ``max_apart_db`` apart (root mean square over the receivers heard in both, at least 2;
    dwells sharing fewer are never grouped)."""
    n_d = len(means)
    if n_d < 2:
        return np.zeros(n_d, dtype=np.int64)
    diff = means[:, None, :] - means[None, :, :]  # (D, D, R), NaN where either is unheard
    both = np.isfinite(diff)
    k = both.sum(axis=2)
    rms = np.sqrt(np.where(both, diff * diff, 0.0).sum(axis=2) / np.maximum(k, 1))
    dist = np.where(k >= 2, rms, 1e3)
    np.fill_diagonal(dist, 0.0)
    labels = fcluster(linkage(squareform(dist, checks=False), "average"), max_apart_db, "distance")
    _, groups = np.unique(labels, return_inverse=True)
    return np.asarray(groups, dtype=np.int64)


def _fit(values: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares of ``values ~ level[r] - n * g`` for a batch of assignments.

    ``values``: ``(G, R)``, every group heard at every receiver; ``g``: ``(P, G, R)``
    ``10 log10`` distances of each assignment. Returns the residual sum of squares ``(P,)``
    and the exponents ``(P,)`` (clipped to :data:`EXPONENT_RANGE`).
    """
    dv = values[None] - values.mean(axis=0)[None, None]
    dg = g - g.mean(axis=1, keepdims=True)
    n = -(dv * dg).sum(axis=(1, 2)) / np.maximum((dg * dg).sum(axis=(1, 2)), 1e-9)
    n = np.clip(n, *EXPONENT_RANGE)
    res = ((dv + n[:, None, None] * dg) ** 2).sum(axis=(1, 2))
    return res, n


def _costs(values: np.ndarray, log_dist: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``(G, Z)`` squared misfit of each group at each zone, under the path loss fitted to ``z``."""
    n = _fit(values, log_dist[z][None])[1][0]
    level = (values + n * log_dist[z]).mean(axis=0)  # (R,)
    err = values[:, None] - (level[None, None] - n * log_dist[None])  # (G, Z, R)
    out: np.ndarray = (err * err).sum(axis=2)
    return out


def name_groups(values: np.ndarray, log_dist: np.ndarray, rng_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The machine of each group of dwells: distinct machines, the path loss fitting best.

    Parameters
    ----------
    values : numpy.ndarray
        ``(G, R)`` mean RSSI of each group at each receiver (NaN = not heard enough).
    log_dist : numpy.ndarray
        ``(Z, R)`` ``10 log10`` of the distance (m) from each machine zone's centre, at the
        beacon's height, to each receiver.
    rng_seed : int
        Seed of the random starts of the coordinate descent (when there are too many
        assignments to try them all).

    Returns
    -------
    zone : numpy.ndarray
        ``(G,)`` machine index of each group; -1 for every group where there are more groups
        than machines, fewer than 3 groups, fewer than :data:`MIN_COMMON` receivers, or a
        receiver that hears some groups and not others (a level per receiver then fits a
        wrong naming as well as the right one).
    margin_db2 : numpy.ndarray
        ``(G,)`` how much worse (residual sum of squares, dB^2) the best naming fits that
        gives the group another machine; by coordinate descent, how much worse the group's
        best other machine fits it under the chosen path loss. 0 where not named.
    """
    n_g, n_z = len(values), len(log_dist)
    none = (np.full(n_g, -1, dtype=np.int64), np.zeros(n_g))
    # Every receiver that hears a group must hear them all: each receiver's level is fitted,
    # so one that hears only some groups bends to whatever naming is tried (on simulated
    # floors of 7-34 receivers that made the naming worse than the smoother's).
    heard = np.isfinite(values)
    used = heard.any(axis=0)
    if n_g < 3 or n_g > n_z or used.sum() < MIN_COMMON or not heard[:, used].all():
        return none
    values, log_dist = values[:, used], log_dist[:, used]
    n_perm = float(np.prod(np.arange(n_z - n_g + 1, n_z + 1, dtype=np.float64)))
    if n_perm <= MAX_EXHAUSTIVE:
        perms = np.array(list(itertools.permutations(range(n_z), n_g)), dtype=np.int64)
        res = _fit(values, log_dist[perms])[0]
        k = int(res.argmin())
        best = perms[k]
        # Each group's margin: how much worse the best naming that names it otherwise fits.
        margin = np.array([np.min(res[perms[:, g] != best[g]], initial=np.inf) - res[k] for g in range(n_g)])
        return best, np.where(np.isfinite(margin), margin, 0.0)
    rng = np.random.default_rng(rng_seed)
    best, best_res = None, np.inf
    for _ in range(30):
        z = rng.permutation(n_z)[:n_g]
        for _step in range(20):
            rows, cols = linear_sum_assignment(_costs(values, log_dist, z))
            new = cols[np.argsort(rows)]
            if np.array_equal(new, z):
                break
            z = new
        r = float(_fit(values, log_dist[z][None])[0][0])
        if r < best_res:
            best, best_res = z, r
    assert best is not None
    # Too many namings to compare: each group against its best other machine, the rest kept.
    cost = _costs(values, log_dist, best)
    own = cost[np.arange(n_g), best]
    other = np.where(np.arange(n_z)[None] == best[:, None], np.inf, cost).min(axis=1)
    return best.astype(np.int64), np.maximum(other - own, 0.0)
