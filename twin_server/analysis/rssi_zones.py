"""Zones from RSSI at several receivers: a self-calibrated path-loss model and a position smoother.

Each worker's beacon is heard by the receivers; per second we keep the mean RSSI at each
receiver (:func:`rssi_matrix`). The path-loss model (level per beacon and receiver, exponent,
body loss, noise) is fitted from the recording itself by
:func:`twin_server.analysis.radio_fit.fit_radio`, using presence events (a press, a pressure
excursion, a restart at machine M: someone is in M's zone) as labelled seconds where there are
any, or given by a survey (:func:`calibrate_from_survey`). :func:`estimate_zones` then runs the
position smoother of :mod:`twin_server.analysis.position_smoother` over the floor with that
model and sums the position posterior per zone: the most probable zone each second and its
probability (the confidence). Where the evidence is weak the answer is the most probable zone
with a low probability, never a confident ``none`` by area.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from twin_server.analysis.align import Grid, bin_mean
from twin_server.analysis.position_smoother import FloorGrid, Motion, Track, smooth
from twin_server.analysis.zone_fingerprints import ZoneFingerprint, apply_zone_fingerprint
from twin_server.site import Site

if TYPE_CHECKING:
    from twin_server.analysis.radio_fit import RadioModel

#: Log-likelihood cost per second of a machine zone while no receiver has heard the beacon for
#: a whole pooling window (a beacon near any receiver is heard several times a second).
SILENCE_PENALTY = 2.0
SILENCE_WINDOW_S = 5
#: Weight of each second's RSSI log-likelihood in the smoother: neighbouring seconds' errors are
#: correlated (slow fading, the body's facing), so they are not independent looks.
EVIDENCE_WEIGHT = 0.5


def rssi_matrix(
    t: np.ndarray, receiver: np.ndarray, rssi_dbm: np.ndarray, receivers: list[str], grid: Grid
) -> np.ndarray:
    """Per-cell mean RSSI of one beacon at each receiver, NaN where nothing was heard.

    Returns
    -------
    numpy.ndarray
        Shape ``(grid.n, len(receivers))``.
    """
    out = np.full((grid.n, len(receivers)), np.nan)
    for j, r in enumerate(receivers):
        sel = receiver == r
        if sel.any():
            out[:, j] = bin_mean(t[sel], rssi_dbm[sel], grid)
    return out


def rssi_stats(rssi: np.ndarray, window: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sufficient statistics of the Gaussian RSSI likelihood, summed over a time window.

    Returns ``(sum w r^2, sum w r, sum w)`` per second (``(T,)``, ``(T, R)``, ``(T, R)``),
    ``w`` = heard. Summing the statistics over a centred window equals summing the
    per-second log-likelihoods of every cell over it, at a tiny fraction of the cost.
    """
    w = np.isfinite(rssi).astype("float64")
    r = np.where(w > 0, rssi, 0.0)
    s_rr, s_r, s_w = (w * r * r).sum(axis=1), w * r, w
    if window > 1:
        from scipy.ndimage import uniform_filter1d

        # uniform_filter1d averages; times window = sum over the window.
        s_rr = uniform_filter1d(s_rr, window, mode="constant") * window
        s_r = uniform_filter1d(s_r, window, axis=0, mode="constant") * window
        s_w = uniform_filter1d(s_w, window, axis=0, mode="constant") * window
    return s_rr, s_r, s_w


def forward_backward(log_em: np.ndarray, log_a: np.ndarray) -> np.ndarray:
    """Posterior state probabilities of an HMM (scaled forward-backward, uniform start).

    Parameters
    ----------
    log_em : numpy.ndarray
        ``(T, K)`` log emission likelihoods.
    log_a : numpy.ndarray
        ``(K, K)`` log transition matrix (row = from).

    Returns
    -------
    numpy.ndarray
        ``(T, K)`` posteriors, rows summing to one.
    """
    t_n, k = log_em.shape
    em = np.exp(log_em - log_em.max(axis=1, keepdims=True))
    a = np.exp(log_a)
    alpha = np.empty((t_n, k))
    prev = np.full(k, 1.0 / k)
    for i in range(t_n):
        v = (prev @ a) * em[i]
        v /= v.sum()
        alpha[i] = v
        prev = v
    beta = np.ones(k)
    post = np.empty((t_n, k))
    post[-1] = alpha[-1]
    for i in range(t_n - 2, -1, -1):
        beta = a @ (em[i + 1] * beta)
        beta /= beta.sum()
        p = alpha[i] * beta
        post[i] = p / p.sum()
    return post


def viterbi(log_em: np.ndarray, log_a: np.ndarray) -> np.ndarray:
    """Most likely state path of an HMM (uniform start).

    Returns
    -------
    numpy.ndarray
        ``(T,)`` state indices.
    """
    t_n, k = log_em.shape
    back = np.empty((t_n, k), dtype=np.int64)
    score = log_em[0].copy()
    buf = np.empty((k, k))
    cols = np.arange(k)
    # The loop is sequential by nature; preallocated buffers keep each step a few calls.
    for i in range(1, t_n):
        np.add(score[:, None], log_a, out=buf)
        bi = buf.argmax(axis=0)
        back[i] = bi
        score = buf[bi, cols] + log_em[i]
    path = np.empty(t_n, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for i in range(t_n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def calibrate_from_survey(
    points: pd.DataFrame,
    receivers: list[str],
    site: Site,
) -> tuple[dict[str, float], float]:
    """Path-loss model from a site survey (a beacon held still at known positions).

    Parameters
    ----------
    points : pandas.DataFrame
        Columns ``x_m, y_m, z_m, receiver_id, rssi_dbm`` (e.g. the mean RSSI of each
        survey point at each receiver).
    receivers : list of str
        Receiver ids to calibrate.
    site : Site
        Receiver positions.

    Returns
    -------
    p0_by_receiver : dict
        RSSI at 1 m per receiver (median residual), dBm.
    exponent : float
        Path-loss exponent common to all receivers (least squares).
    """
    pos = {r.id: r.position for r in site.receivers}
    pts = points[points["receiver_id"].astype(str).isin(receivers)]
    rp = np.array([pos[str(r)] for r in pts["receiver_id"]], dtype="float64").reshape(-1, 3)
    xyz = pts[["x_m", "y_m", "z_m"]].to_numpy(dtype="float64")
    ld = -10 * np.log10(np.maximum(np.linalg.norm(xyz - rp, axis=1), 0.3))
    rssi = pts["rssi_dbm"].to_numpy(dtype="float64")
    a = np.column_stack([np.ones(len(ld)), ld])
    exponent = float(np.linalg.lstsq(a, rssi, rcond=None)[0][1])
    resid = rssi - exponent * ld
    ids = pts["receiver_id"].astype(str).to_numpy()
    return {r: float(np.median(resid[ids == r])) for r in receivers if (ids == r).any()}, exponent


@dataclass
class ZoneEstimate:
    """Per-second zone estimate of one worker."""

    zone: np.ndarray  # (T,) index into zones; -1 before the first and after the last packet
    posterior: np.ndarray  # (T, Z) zone probabilities
    zones: list[str]
    p0_dbm: float
    body_loss_db: float = 0.0
    #: ``(T, Z)`` each second's zone probabilities from its own pooled window alone (zones
    #: equally likely, no smoothing over time): evidence that may be multiplied over seconds,
    #: unlike ``posterior``, which already holds every other second's evidence.
    evidence: np.ndarray | None = None
    #: ``posterior`` is the smoother's mixed with the zone chain's (:func:`mix_zone_chain`).
    chained: bool = False
    #: ``(T,)`` seconds of a still beacon given a machine where the posterior said ``none``
    #: (:func:`standing_at_machines`): 2 named with its group of dwells, 1 by the smoother's
    #: likeliest machine, 3 still but left as the smoother says and 4 given the zone of a
    #: receiver standing in it (:func:`left_standing`), 0 not snapped; ``snapped_raw``: their
    #: raw confidence.
    snapped: np.ndarray | None = None
    snapped_raw: np.ndarray | None = None

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the chosen zone each second (0 where there is no estimate)."""
        c = self.posterior[np.arange(len(self.zone)), np.maximum(self.zone, 0)]
        return np.where(self.zone >= 0, c, 0.0)


def silent_seconds(rssi: np.ndarray, window_s: int = SILENCE_WINDOW_S) -> np.ndarray:
    """Seconds in the middle of a window of ``window_s`` seconds in which no receiver heard anything."""
    from scipy.ndimage import uniform_filter1d

    heard = np.isfinite(rssi).any(axis=1).astype("float64")
    silent: npt.NDArray[np.bool_] = uniform_filter1d(heard, window_s, mode="constant") < 1e-9
    return silent


def estimate_zones(
    mats: dict[str, np.ndarray],
    model: RadioModel,
    grid: FloorGrid,
    *,
    beacon_height_m: float,
    clamps: dict[str, np.ndarray | None] | None = None,
    motion: Motion | None = None,
    evidence_for: set[str] | None = None,
    zone_fingerprints: Mapping[str, tuple[np.ndarray, ZoneFingerprint]] | None = None,
) -> dict[str, ZoneEstimate]:
    """Zone of every beacon every second.

    Parameters
    ----------
    mats : dict
        Worker -> ``(T, R)`` per-second mean RSSI at each of ``grid.receivers`` (NaN = not heard).
    model : RadioModel
        Fitted or surveyed path-loss model (its level is per beacon).
    grid : FloorGrid
        The floor.
    beacon_height_m : float
        Height of the carried beacon.
    clamps : dict, optional
        Worker -> ``(T,)`` zone index of a presence event given to that worker, else -1.
    motion : Motion, optional
        Walking model of the smoother.
    evidence_for : set of str, optional
        Workers whose per-second local evidence (``ZoneEstimate.evidence``) is wanted (default:
        all); it costs about a tenth of the analysis, and only the lag model uses it.
    zone_fingerprints : dict, optional
        Worker -> ``(expected, fingerprint)``: what the presence events showed each receiver
        hears in each machine zone; that zone's cells take it
        (``zone_fingerprints.apply_zone_fingerprint``).

    Returns
    -------
    dict
        Worker -> :class:`ZoneEstimate`.
    """
    facings = model.facings
    log_d = grid.log_distance(beacon_height_m)
    shadow = grid.shadow(facings)
    zone_cost = (SILENCE_PENALTY * (1.0 - grid.zone_share[:, -1])).astype(np.float32)  # (cells,)
    scale = np.float32(EVIDENCE_WEIGHT / (2 * model.sigma_db**2))
    shape = (facings, *grid.shape)
    tracks = []
    for w, rssi in mats.items():
        mean = model.mean_map(w, log_d, shadow).astype(np.float32)  # (F, NX, NY, R)
        if zone_fingerprints is not None and w in zone_fingerprints:
            flat = apply_zone_fingerprint(
                mean.reshape(-1, mean.shape[-1]), grid.zone_share, *zone_fingerprints[w]
            )
            mean = flat.reshape(mean.shape).astype(np.float32)
        m = mean.reshape(-1, mean.shape[-1])
        heard = np.isfinite(rssi)
        y = np.where(heard, rssi, 0.0).astype(np.float32)
        wt = heard.astype(np.float32)
        silent = silent_seconds(rssi)

        def loglik(
            steps: np.ndarray,
            y: np.ndarray = y,
            wt: np.ndarray = wt,
            m: np.ndarray = m,
            silent: np.ndarray = silent,
        ) -> np.ndarray:
            ys, ws = y[steps], wt[steps]
            ll: np.ndarray = -((ys * ys).sum(axis=1)[:, None] - 2 * ys @ m.T + ws @ (m * m).T) * scale
            ll = ll.reshape(len(steps), facings, -1)
            ll[silent[steps]] -= zone_cost
            return ll.reshape(len(steps), *shape)

        tracks.append(Track(loglik, len(rssi), (clamps or {}).get(w)))
    posts = smooth(tracks, grid, facings, motion)
    out = {}
    for (w, rssi), post in zip(mats.items(), posts, strict=True):
        zone = post.argmax(axis=1)
        any_heard = np.isfinite(rssi).any(axis=1)
        if any_heard.any():
            first, last = np.flatnonzero(any_heard)[[0, -1]]
            zone[:first] = -1
            zone[last + 1 :] = -1
        else:
            zone[:] = -1
        level = float(np.median(model.level_dbm[w]))
        local = None
        if model.occupancy is not None and (evidence_for is None or w in evidence_for):
            from twin_server.analysis.radio_fit import zone_probabilities_at

            local = zone_probabilities_at(rssi, w, model, grid, beacon_height_m)
        out[w] = ZoneEstimate(zone, post, grid.zones, level, model.body_loss_db, local)
    return out


def zone_chain_posterior(
    evidence: np.ndarray, clamp: np.ndarray | None, stay_per_s: float = 0.98, weight: float = 0.2
) -> np.ndarray:
    """Zone posterior of a chain over zones (not positions), from each second's own evidence.

    Parameters
    ----------
    evidence : numpy.ndarray
        ``(T, Z)`` each second's zone probabilities from its pooled window alone, zones equally
        likely and positions inside a zone by the fitted occupancy
        (:func:`twin_server.analysis.radio_fit.zone_probabilities_at`).
    clamp : numpy.ndarray, optional
        ``(T,)`` zone of a presence event given to this worker, else -1.
    stay_per_s : float
        Probability of staying in the zone from one second to the next.
    weight : float
        Weight of each second's log evidence (neighbouring seconds share most of a window).

    Returns
    -------
    numpy.ndarray
        ``(T, Z)`` posteriors. Unlike the position smoother it knows where in a zone people
        stand at work (the occupancy learned from the presence events), which holds a worker
        standing at a machine in its zone where the smoother lets the position drift out.
    """
    log_em = np.log(np.maximum(evidence, 1e-12)) * weight
    if clamp is not None:
        k = np.flatnonzero(clamp >= 0)
        log_em[k] -= 50.0
        log_em[k, clamp[k]] += 50.0
    nz = evidence.shape[1]
    trans = np.full((nz, nz), (1 - stay_per_s) / max(nz - 1, 1))
    np.fill_diagonal(trans, stay_per_s)
    return forward_backward(log_em, np.log(trans))


def mix_zone_chain(
    est: ZoneEstimate, chain: np.ndarray, share: float, keep_above: float = 0.8
) -> ZoneEstimate:
    """``est`` with its posterior mixed with a zone chain's (``share`` of the chain) in the seconds
    where the smoother is less sure than ``keep_above`` (elsewhere it stands), zones re-chosen."""
    mixed = (1 - share) * est.posterior + share * chain
    post = np.where(est.posterior.max(axis=1, keepdims=True) >= keep_above, est.posterior, mixed)
    zone = np.where(est.zone >= 0, post.argmax(axis=1), -1)
    return ZoneEstimate(zone, post, est.zones, est.p0_dbm, est.body_loss_db, est.evidence, chained=True)


def bridge_events(
    est: ZoneEstimate, clamp: np.ndarray, running: np.ndarray, max_gap_cells: int, odds: float
) -> ZoneEstimate:
    """``est`` with the seconds between two presence events of one worker at one machine
    leaning towards that machine.

    Parameters
    ----------
    est : ZoneEstimate
        The worker's estimate, one row per grid cell.
    clamp : numpy.ndarray
        ``(T,)`` zone of each presence event given to this worker, else -1.
    running : numpy.ndarray
        ``(M, T)`` whether each machine runs (events are at machines, codes < M): a run
        between two events ends the changeover, so no bridge spans one.
    max_gap_cells : int
        Longest span bridged, in cells (events of one changeover are minutes apart).
    odds : float
        Factor on the machine's probability in the bridged seconds (the worker does the
        changeover there, away only for fetch or crib trips), renormalised.

    Returns
    -------
    ZoneEstimate
        Zones re-chosen where the bridged posterior changes the answer.
    """
    ks = np.flatnonzero(clamp >= 0)
    post = est.posterior.copy()
    for k1, k2 in itertools.pairwise(ks):
        z = int(clamp[k1])
        if clamp[k2] != z or k2 - k1 > max_gap_cells or k2 - k1 < 2:
            continue
        if running[z, k1 + 1 : k2].any():
            continue
        seg = post[k1 + 1 : k2]
        seg[:, z] *= odds
        seg /= seg.sum(axis=1, keepdims=True)
    return replace(est, zone=np.where(est.zone >= 0, post.argmax(axis=1), -1), posterior=post)


def standing_at_machines(
    est: ZoneEstimate, dwells: np.ndarray, group: np.ndarray, named: np.ndarray, margin_db2: np.ndarray
) -> ZoneEstimate:
    """``est`` with each ``none`` second of a still dwell given a machine zone.

    For a floor without presence events (:mod:`twin_server.analysis.dwell_naming`): a worker
    standing still is taken to be at a machine (a floor whose machines send no events cannot
    tell otherwise). The dwell takes its group's machine where the groups could be named
    together; else, second by second, the machine zone the smoother finds most likely. Both
    are marked (``snapped`` 2 and 1) for their own, low confidence (``snapped_raw``: the
    naming's margin as ``1 - exp(-margin / 18 dB^2)``, or the machine's share of the machine
    zones' probability).

    Parameters
    ----------
    est : ZoneEstimate
        The worker's estimate.
    dwells : numpy.ndarray
        ``(T,)`` dwell of each second, -1 where the beacon is not still.
    group, named, margin_db2 : numpy.ndarray
        Per dwell its group; per group its machine (-1: not named) and naming margin.
    """
    n_z = est.posterior.shape[1]
    none = (est.zone == n_z - 1) & (dwells >= 0)
    if n_z < 2 or not none.any():
        return replace(
            est, snapped=np.zeros(len(est.zone), dtype=np.int8), snapped_raw=np.zeros(len(est.zone))
        )
    g = np.where(dwells >= 0, group[np.maximum(dwells, 0)], -1)
    by_name = np.where(g >= 0, named[np.maximum(g, 0)], -1)
    use_name = none & (by_name >= 0)
    machine = np.where(use_name, by_name, est.posterior[:, :-1].argmax(axis=1))
    zone = np.where(none, machine, est.zone)
    moved = replace(est, zone=zone)
    raw = np.where(use_name, 1.0 - np.exp(-margin_db2[np.maximum(g, 0)] / 18.0), machine_share(moved))
    kind = np.where(use_name, 2, np.where(none, 1, 0)).astype(np.int8)
    return replace(moved, snapped=kind, snapped_raw=np.where(none, raw, 0.0))


def left_standing(est: ZoneEstimate, dwells: np.ndarray, dwell_zone: np.ndarray) -> ZoneEstimate:
    """``est`` where standing still is not taken for being at a machine (more places of still
    dwells than machines, or a survey map): each still dwell keeps the smoother's (or the
    map's) zone (``snapped`` 3), unless ``dwell_zone`` gives it a machine
    (``snapped`` 4: a receiver standing in that zone heard it loudest,
    ``dwell_naming.loudest_inside``). Both take their own confidence table (``snapped_raw``:
    the smoother's probability of the answer).

    Parameters
    ----------
    est : ZoneEstimate
        The worker's estimate.
    dwells : numpy.ndarray
        ``(T,)`` dwell of each second, -1 where the beacon is not still.
    dwell_zone : numpy.ndarray
        ``(D,)`` machine index of each dwell, -1 to leave it as the smoother says.
    """
    still = (dwells >= 0) & (est.zone >= 0)
    given = np.where(still, dwell_zone[np.maximum(dwells, 0)] if len(dwell_zone) else -1, -1)
    zone = np.where(given >= 0, given, est.zone)
    raw = est.posterior[np.arange(len(zone)), np.maximum(zone, 0)]
    kind = np.where(given >= 0, 4, np.where(still, 3, 0)).astype(np.int8)
    return replace(est, zone=zone, snapped=kind, snapped_raw=np.where(still, raw, 0.0))


def machine_share(est: ZoneEstimate) -> np.ndarray:
    """``(T,)`` the chosen zone's share of the machine zones' probability (0 for ``none`` or no estimate)."""
    machines = est.posterior[:, :-1]
    own = machines[np.arange(len(est.zone)), np.clip(est.zone, 0, max(machines.shape[1] - 1, 0))]
    share = own / np.maximum(machines.sum(axis=1), 1e-300)
    return np.where((est.zone >= 0) & (est.zone < machines.shape[1]), share, 0.0)


def local_evidence(est: ZoneEstimate) -> np.ndarray:
    """Per-second zone evidence of an estimate: ``evidence`` when it has one, else ``posterior``."""
    return est.evidence if est.evidence is not None else est.posterior


#: The naive method's threshold: a second whose loudest receiver is weaker than this is ``none``.
NAIVE_NONE_BELOW_DBM = -70.0


def strongest_receiver_zones(
    rssi: np.ndarray, grid: FloorGrid, hold_s: int = 3, none_below_dbm: float = NAIVE_NONE_BELOW_DBM
) -> np.ndarray:
    """The naive zone path: each second, the zone nearest to the loudest receiver.

    Parameters
    ----------
    rssi : numpy.ndarray
        ``(T, R)`` per-second mean RSSI at each of ``grid.receivers`` (NaN = not heard).
    grid : FloorGrid
        Zones (their centroids from the cells' zone shares) and receivers.
    hold_s : int
        A second without packets keeps the previous answer for up to this many seconds.
    none_below_dbm : float
        A loudest receiver weaker than this means ``none``.

    Returns
    -------
    numpy.ndarray
        ``(T,)`` zone index (the last one is ``none``).
    """
    gx, gy = grid.centres()
    share = grid.zone_share[:, :-1]
    mass = np.maximum(share.sum(axis=0), 1e-12)
    cx, cy = (gx.ravel() @ share) / mass, (gy.ravel() @ share) / mass
    d = np.hypot(grid.receiver_xyz[:, 0, None] - cx[None, :], grid.receiver_xyz[:, 1, None] - cy[None, :])
    zone_of = d.argmin(axis=1)  # (R,)
    none = len(grid.zones) - 1
    heard = np.isfinite(rssi).any(axis=1)
    loud = np.where(np.isfinite(rssi), rssi, -np.inf)
    best = loud.argmax(axis=1)
    level = loud[np.arange(len(rssi)), best]
    out = np.where(heard & (level >= none_below_dbm), zone_of[best], none)
    idx = np.where(heard, np.arange(len(rssi)), -1)
    last = np.maximum.accumulate(idx)
    fill = ~heard & (last >= 0) & (np.arange(len(rssi)) - last <= hold_s)
    out[fill] = out[last[fill]]
    return out


def events_placed(
    paths: list[np.ndarray],
    anchors: list[tuple[int, int]],
    near_s: tuple[int, int] = (10, 40),
) -> tuple[float, int]:
    """Share of presence events whose machine some worker's zone path shows near (not at) the event.

    Only seconds ``near_s[0]`` .. ``near_s[1]`` before or after the event count: at the event
    itself the model's path is pinned by it, so that second says nothing about the model.
    """
    if not anchors or not paths:
        return 0.0, 0
    stack = np.stack(paths)  # (W, T)
    n = stack.shape[1]
    lo, hi = near_s
    offs = np.concatenate([np.arange(-hi, -lo + 1), np.arange(lo, hi + 1)])
    hits = 0
    for k, z in anchors:
        idx = k + offs
        idx = idx[(idx >= 0) & (idx < n)]
        hits += int((stack[:, idx] == z).any())
    return hits / len(anchors), len(anchors)
