"""Zone estimation from RSSI at several receivers.

Model: log-distance path loss ``rssi = p0 - 10 n log10(d)`` plus Gaussian noise on each
second's mean RSSI. The likelihood of every candidate floor position (a grid of cells) is
computed for every second, summed per zone (machine zones and ``none``), and the zone
sequence is smoothed by an HMM whose transitions respect walking speed (zones that a worker
cannot cross between in one second are only reachable through ``none``). Forward-backward
gives each second's zone posterior (the confidence); Viterbi gives the path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin_server.analysis.align import Grid, bin_mean
from twin_server.site import Site


@dataclass(frozen=True)
class FloorModel:
    """Candidate positions, their zones and their distances to the receivers."""

    zones: list[str]  # machine ids then "none"
    cell_xy: np.ndarray  # (C, 2)
    cell_zone: np.ndarray  # (C,) index into zones
    dist_m: np.ndarray  # (C, R) 3-D distance cell -> receiver
    receivers: list[str]
    zone_adjacent: np.ndarray  # (Z, Z) bool: one step apart at walking speed
    receiver_xy: np.ndarray | None = None  # (R, 2) receivers' floor positions
    facings: int = 1  # the cells repeat this many times, once per facing (with_body_shadow)


def with_body_shadow(fm: FloorModel, body_loss_db: float, exponent: float, facings: int = 4) -> FloorModel:
    """Every candidate cell once per facing direction, the body shadowing the receivers behind.

    A chest beacon loses up to ``body_loss_db`` towards receivers behind the wearer
    (``loss * (1 - cos(bearing - facing)) / 2``, the usual cardioid shape); the facing is
    unknown, so each cell is repeated for ``facings`` directions (equal prior). The loss is
    folded into an effective distance for the given exponent, so the rest of the model
    (likelihoods, p0 fit, per-zone sums) is unchanged.
    """
    if body_loss_db <= 0 or fm.receiver_xy is None or facings <= 1 or fm.facings > 1:
        return fm
    d = fm.cell_xy[:, None, :] - fm.receiver_xy[None, :, :]
    bearing = np.arctan2(d[..., 1], d[..., 0]) + np.pi  # from the cell towards the receiver
    cells, dists = [], []
    for k in range(facings):
        face = 2 * np.pi * k / facings
        shadow = body_loss_db * (1 - np.cos(bearing - face)) / 2
        dists.append(fm.dist_m * 10 ** (shadow / (10 * exponent)))
        cells.append(fm.cell_xy)
    return FloorModel(fm.zones, np.concatenate(cells), np.tile(fm.cell_zone, facings), np.concatenate(dists),
                      fm.receivers, fm.zone_adjacent, fm.receiver_xy, facings)


def floor_model(site: Site, *, cell_m: float = 0.5, beacon_height_m: float = 1.2,
                max_speed_mps: float = 1.5, step_s: float = 1.0,
                exclude_machines: bool = False) -> FloorModel:
    """Candidate cells over the site's floor with their zone labels.

    Parameters
    ----------
    site : Site
        Machines (zone polygons) and receivers (positions).
    cell_m : float
        Spacing of candidate positions.
    beacon_height_m : float
        Height of the beacon, for 3-D distances.
    max_speed_mps, step_s : float
        Two zones are adjacent when a worker can cross from one to the other in one step.

    Returns
    -------
    FloorModel
    """
    if site.floor is not None:
        # Workers walk on the floor: no candidate positions beyond its walls.
        xmin, ymin, xmax, ymax = 0.0, 0.0, float(site.floor[0]), float(site.floor[1])
    else:
        xmin, ymin, xmax, ymax = site.floor_size()
    xs = np.arange(xmin, xmax + 1e-9, cell_m)
    ys = np.arange(ymin, ymax + 1e-9, cell_m)
    gx, gy = np.meshgrid(xs, ys)
    pts = [tuple(p) for p in np.column_stack([gx.ravel(), gy.ravel()])]
    zones = [*site.machine_ids, "none"]
    # Make sure every zone has cells, even one smaller than the grid spacing.
    for m in site.machines:
        poly = np.asarray(m.zone)
        pts.append(tuple(poly.mean(axis=0)))
    cell_xy = np.asarray(pts, dtype="float64")
    # Optionally drop cells inside machine footprints (rotated rectangles): nobody stands
    # there. Off by default: on the simulator it made zones slightly worse (positions
    # behind a receiver absorb some of the body-shadowed readings).
    inside = np.zeros(len(cell_xy), dtype=bool)
    for m in site.machines:
        if m.position is None:
            continue
        a = np.deg2rad(m.rotation_deg)
        d = cell_xy - np.asarray(m.centre)
        u = d[:, 0] * np.cos(a) + d[:, 1] * np.sin(a)
        v = -d[:, 0] * np.sin(a) + d[:, 1] * np.cos(a)
        inside |= (np.abs(u) < m.footprint[0] / 2) & (np.abs(v) < m.footprint[1] / 2)
    if not exclude_machines:
        inside[:] = False
    keep = ~inside
    keep[-len(site.machines):] = True  # the zone centroids added above
    cell_xy = cell_xy[keep]
    index = {z: i for i, z in enumerate(zones)}
    cell_zone = np.array([index[site.zone_at(x, y)] for x, y in cell_xy], dtype=np.int64)
    rec = np.array([r.position for r in site.receivers], dtype="float64").reshape(-1, 3)
    dxy = cell_xy[:, None, :] - rec[None, :, :2]
    dz = beacon_height_m - rec[None, :, 2]
    dist = np.sqrt((dxy**2).sum(axis=2) + dz**2)
    # Adjacency: minimum distance between the cell sets of two zones.
    nz = len(zones)
    adj = np.eye(nz, dtype=bool)
    reach = max_speed_mps * step_s + cell_m * 1.5
    for a in range(nz):
        pa = cell_xy[cell_zone == a]
        for b in range(a + 1, nz):
            pb = cell_xy[cell_zone == b]
            if len(pa) and len(pb):
                d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(axis=2)).min()
                adj[a, b] = adj[b, a] = d <= reach
    none = index["none"]
    adj[none, :] = adj[:, none] = True
    return FloorModel(zones, cell_xy, cell_zone, dist, [r.id for r in site.receivers], adj, rec[:, :2])


def rssi_matrix(t: np.ndarray, receiver: np.ndarray, rssi_dbm: np.ndarray, receivers: list[str],
                grid: Grid) -> np.ndarray:
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


def cell_loglik(rssi: np.ndarray, fm: FloorModel, p0_dbm: np.ndarray | float, exponent: float,
                sigma_db: float, window: int = 1) -> np.ndarray:
    """Log-likelihood of every candidate cell for every second.

    Parameters
    ----------
    rssi : numpy.ndarray
        ``(T, R)`` mean RSSI, NaN = not heard (uninformative).
    fm : FloorModel
        Candidate cells.
    p0_dbm : float or numpy.ndarray
        RSSI at 1 m (per receiver if an array).
    exponent, sigma_db : float
        Path-loss exponent and noise of one second's mean.
    window : int
        Pool the evidence of a centred window of this many seconds, treating the beacon
        as nearly still over it (1.5 m at walking speed over 5 s). The pooled sum is
        scaled by ``1/sqrt(window)`` because neighbouring seconds' noise is correlated
        (body shadowing, multipath): they are not ``window`` independent looks.

    Returns
    -------
    numpy.ndarray
        ``(T, C)`` log-likelihoods (float32).
    """
    mu = np.asarray(p0_dbm) - 10 * exponent * np.log10(np.maximum(fm.dist_m, 0.3))  # (C, R)
    s_rr, s_r, s_w = rssi_stats(rssi, window)
    # sum_r w (r - mu)^2 expanded into matrix products (fast for long recordings)
    sq = s_rr[:, None] - 2 * s_r @ mu.T + s_w @ (mu * mu).T
    scale = 1.0 / (2 * sigma_db**2 * np.sqrt(max(window, 1)))
    return (-sq * scale).astype("float32")


def zone_loglik(cell_ll: np.ndarray, fm: FloorModel) -> np.ndarray:
    """Per-zone log-likelihood: log-sum-exp over the zone's cells.

    A uniform prior over floor positions (so a zone's prior grows with its area): on the
    real BLE data this beats a uniform prior over zones, which over-calls the small zones.
    """
    top = cell_ll.max(axis=1, keepdims=True)
    like = np.exp(cell_ll - top)
    zone_of = fm.cell_zone
    if fm.facings > 1:  # the cells repeat once per facing: add the facings up first
        like = like.reshape(len(like), fm.facings, -1).sum(axis=1)
        zone_of = zone_of[: like.shape[1]]
    onehot = np.zeros((like.shape[1], len(fm.zones)), dtype="float32")
    onehot[np.arange(like.shape[1]), zone_of] = 1.0
    with np.errstate(divide="ignore"):
        return np.log(like @ onehot).astype("float64") + top


def zone_loglik_chunked(rssi: np.ndarray, fm: FloorModel, p0_dbm: np.ndarray | float, exponent: float,
                        sigma_db: float, window: int = 1, chunk: int = 20000,
                        rows: np.ndarray | None = None) -> np.ndarray:
    """:func:`zone_loglik` of :func:`cell_loglik`, computed a chunk of seconds at a time.

    ``rows`` (bool mask) limits the work to those seconds (the window still pools over all
    of them); the other seconds are 0.
    """
    mu = np.asarray(p0_dbm) - 10 * exponent * np.log10(np.maximum(fm.dist_m, 0.3))
    s_rr, s_r, s_w = rssi_stats(rssi, window)
    idx = np.arange(len(rssi)) if rows is None else np.flatnonzero(rows)
    scale = 1.0 / (2 * sigma_db**2 * np.sqrt(max(window, 1)))
    # float32 (half the memory traffic): the terms are ~1e5 dB^2, the error ~1e-2 dB^2,
    # i.e. ~1e-4 in log-likelihood.
    m1 = (2 * scale * mu.T).astype("float32")
    m2 = (-scale * (mu * mu).T).astype("float32")
    out = np.zeros((len(rssi), len(fm.zones)))
    for a in range(0, len(idx), chunk):
        sel = idx[a:a + chunk]
        ll = s_r[sel].astype("float32") @ m1
        ll += s_w[sel].astype("float32") @ m2
        ll -= (scale * s_rr[sel, None]).astype("float32")
        out[sel] = zone_loglik(ll, fm)
    return out


def transition_logmatrix(fm: FloorModel, switch_per_s: float = 1 / 60) -> np.ndarray:
    """Log transition matrix of the zone HMM (sticky; only adjacent zones in one step)."""
    nz = len(fm.zones)
    a = fm.zone_adjacent.astype("float64") * switch_per_s
    np.fill_diagonal(a, 0.0)
    rows = a.sum(axis=1, keepdims=True)
    a = a / np.maximum(rows, 1e-12) * switch_per_s
    a[np.arange(nz), np.arange(nz)] = 1 - a.sum(axis=1)
    with np.errstate(divide="ignore"):
        return np.log(a)


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


def fit_path_loss(rssi: np.ndarray, dist_m: np.ndarray, exponent: float) -> float:
    """Robust ``p0`` (RSSI at 1 m) from RSSI samples at known distances, fixed exponent."""
    resid = rssi + 10 * exponent * np.log10(np.maximum(dist_m, 0.3))
    resid = resid[np.isfinite(resid)]
    return float(np.median(resid)) if len(resid) else float("nan")


def fit_p0_marginal(rssi: np.ndarray, fm: FloorModel, exponent: float, sigma_db: float, *,
                    window: int = 1, centre: float = -60.0, span_db: float = 15.0,
                    max_seconds: int = 600, return_loglik: bool = False) -> float | tuple[float, float]:
    """The RSSI at 1 m that makes the recording most probable, positions unknown.

    Maximises ``sum_t log sum_c p(rssi_t | cell c, p0)`` (every position possible, a
    uniform prior over the floor) over a 0.5 dB grid. Fitting to the single best position
    per second instead (hard EM) drifts: a too-high ``p0`` places the beacon further away,
    which "confirms" the high ``p0``.
    """
    if len(rssi) == 0:
        return (centre, 0.0) if return_loglik else centre
    sub = rssi[:: max(1, len(rssi) // max_seconds)]
    # mu = p0 - dloss, so the squared error is a quadratic in p0 whose coefficient matrices
    # are computed once; each candidate p0 is then elementwise work only.
    dloss = 10 * exponent * np.log10(np.maximum(fm.dist_m, 0.3))  # (C, R)
    s_rr, s_r, s_w = rssi_stats(sub, window)
    scale = 1.0 / (2 * sigma_db**2 * np.sqrt(max(window, 1)))
    # -scale * sq = base + p0 u + p0^2 w (float32 is ample: ~1e-4 of a log-likelihood).
    base = (-scale * (s_rr[:, None] + 2 * (s_r @ dloss.T) + s_w @ (dloss * dloss).T)).astype("float32")
    u = (2 * scale * (s_r.sum(axis=1)[:, None] + s_w @ dloss.T)).astype("float32")
    w = (-scale * s_w.sum(axis=1)[:, None]).astype("float32")

    def total(p0: float) -> float:
        ll = base + np.float32(p0) * u + np.float32(p0 * p0) * w
        top = ll.max(axis=1)
        return float(np.sum(top + np.log(np.exp(ll - top[:, None]).sum(axis=1))))

    # Coarse 2 dB grid, then 0.5 dB around the best.
    coarse = np.arange(centre - span_db, centre + span_db + 1e-9, 2.0)
    best = float(coarse[int(np.argmax([total(p) for p in coarse]))])
    fine = np.arange(best - 1.5, best + 1.6, 0.5)
    lls = [total(p) for p in fine]
    i = int(np.argmax(lls))
    if return_loglik:
        return float(fine[i]), float(lls[i])
    return float(fine[i])


def fit_body_loss(mats: list[np.ndarray], fm: FloorModel, exponent: float, sigma_db: float,
                  choices: list[float], *, facings: int = 4, window: int = 1, centre: float = -60.0,
                  max_seconds: int = 300) -> list[tuple[float, float, float]]:
    """``(body loss, pooled p0, log-likelihood)`` for each candidate loss (:func:`with_body_shadow`).

    All beacons' heard seconds are pooled (bodies shadow alike; one beacon alone gives a
    noisy answer), positions and facings unknown, ``p0`` fitted for each candidate.
    """
    heard = [m[np.isfinite(m).any(axis=1)] for m in mats]
    pooled = np.vstack([h for h in heard if len(h)]) if any(len(h) for h in heard) else np.zeros((0, 0))
    if len(pooled) == 0 or not choices:
        return [(0.0, centre, 0.0)]
    out = []
    span = 15.0
    for loss in sorted(choices):
        p0, ll = fit_p0_marginal(pooled, with_body_shadow(fm, float(loss), exponent, facings), exponent,
                                 sigma_db, window=window, centre=centre, span_db=span, return_loglik=True,
                                 max_seconds=max_seconds)
        out.append((float(loss), p0, ll))
        # The level moves up with the loss, a few dB per step: search near the last one.
        centre, span = p0 + 2.0, 6.0
    return out


def anchor_hits(mats: list[np.ndarray], anchors: list[list[tuple[int, int]]], fm: FloorModel,
                p0_dbm: float, exponent: float, sigma_db: float, *, window: int = 1) -> tuple[int, int]:
    """``(hits, events)``: presence events (beacon known to be in zone ``z`` at cell ``k``, and
    heard) whose pooled RSSI evidence puts the beacon in ``z``; the labelled check of a
    path-loss model."""
    hits = total = 0
    for mat, own in zip(mats, anchors, strict=True):
        ks = np.array([k for k, _ in own if 0 <= k < len(mat)], dtype=np.int64)
        if len(ks) == 0:
            continue
        zs = np.array([z for k, z in own if 0 <= k < len(mat)], dtype=np.int64)
        half = window // 2
        rows = np.clip(ks[:, None] + np.arange(-half, window - half)[None, :], 0, len(mat) - 1)
        sub = mat[rows.ravel()]  # the window around each event, pooled below
        s_rr, s_r, s_w = rssi_stats(sub, 1)
        s_rr = s_rr.reshape(len(ks), -1).sum(axis=1)
        s_r = s_r.reshape(len(ks), window, -1).sum(axis=1)
        s_w = s_w.reshape(len(ks), window, -1).sum(axis=1)
        heard = s_w.sum(axis=1) > 0
        mu = p0_dbm - 10 * exponent * np.log10(np.maximum(fm.dist_m, 0.3))
        scale = 1.0 / (2 * sigma_db**2 * np.sqrt(max(window, 1)))
        ll = -(s_rr[:, None] - 2 * s_r @ mu.T + s_w @ (mu * mu).T) * scale
        zll = zone_loglik(ll.astype("float32"), fm)
        hits += int((zll.argmax(axis=1) == zs)[heard].sum())
        total += int(heard.sum())
    return hits, total


def calibrate_from_survey(points: pd.DataFrame, receivers: list[str], site: Site,
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
    """Per-cell zone estimate of one worker."""

    zone: np.ndarray  # (T,) index into zones; -1 where no data at all
    posterior: np.ndarray  # (T, Z)
    zones: list[str]
    p0_dbm: float
    body_loss_db: float = 0.0


def estimate_zones_rssi(rssi: np.ndarray, fm: FloorModel, *, p0_dbm: float = -59.0,
                        exponent: float = 2.0, sigma_db: float = 6.0,
                        switch_per_s: float = 0.1, fit_iterations: int = 2, window_s: float = 5.0,
                        step_s: float = 1.0, p0_by_receiver: dict[str, float] | None = None,
                        silence_penalty: float = 2.0,
                        anchors: list[tuple[int, int]] | None = None, body_loss_db: float = 0.0,
                        facings: int = 4, p0_span_db: float = 15.0) -> ZoneEstimate:
    """Zone of one beacon every grid cell from its RSSI matrix.

    Parameters
    ----------
    rssi : numpy.ndarray
        ``(T, R)`` per-second mean RSSI at each receiver (NaN = not heard).
    fm : FloorModel
        Candidate positions and zones.
    p0_dbm, exponent, sigma_db : float
        Path-loss prior; ``p0`` is re-fitted from the data.
    silence_penalty : float
        Log-likelihood cost per second of a machine zone while nothing is heard.
    p0_by_receiver : dict, optional
        Calibrated ``p0`` per receiver (e.g. :func:`calibrate_from_survey`); no fitting then.
    switch_per_s : float
        Prior rate of zone changes.
    window_s, step_s : float
        Window over which the beacon is taken as still, and the grid step.
    fit_iterations : int
        Rounds of re-fitting ``p0`` from the decoded positions (EM-style).
    anchors : list of (cell_index, zone_index), optional
        Times at which machine-side events prove the worker is in a zone; when given,
        ``p0`` is calibrated from the RSSI at those times instead.
    body_loss_db, facings : float, int
        Body shadowing of the receivers behind the wearer (:func:`with_body_shadow`);
        0 = none (:func:`fit_body_loss` finds it from the data).
    p0_span_db : float
        ``p0`` is searched within this many dB of ``p0_dbm``.

    Returns
    -------
    ZoneEstimate
    """
    heard = np.isfinite(rssi).any(axis=1)
    log_a = transition_logmatrix(fm, switch_per_s)
    if p0_by_receiver:
        p0_dbm = np.array([p0_by_receiver.get(r, float("nan")) for r in fm.receivers])
        p0_dbm = np.where(np.isfinite(p0_dbm), p0_dbm, np.nanmedian(p0_dbm))
        fit_iterations = 0
        anchors = None
    window = max(1, round(window_s / step_s))
    p0 = p0_dbm
    if anchors:
        samples_r, samples_d = [], []
        for k, z in anchors:
            if 0 <= k < len(rssi) and heard[k]:
                cells = fm.cell_zone == z
                samples_r.append(rssi[k])
                samples_d.append(np.median(fm.dist_m[cells], axis=0))
        if len(samples_r) >= 3:
            fitted = fit_path_loss(np.array(samples_r), np.array(samples_d), exponent)
            if np.isfinite(fitted):
                p0 = fitted
    elif fit_iterations > 0:
        shadowed = with_body_shadow(fm, body_loss_db, exponent, facings)
        p0 = fit_p0_marginal(rssi[heard], shadowed, exponent, sigma_db, window=window, centre=p0_dbm,
                             span_db=p0_span_db)
    fm = with_body_shadow(fm, body_loss_db, float(np.median(exponent)), facings)
    # In chunks of a few hours: a week at 1 s would otherwise need (T x cells) in memory.
    # The window's statistics are summed over the whole recording first, so chunk edges
    # change nothing.
    zll = zone_loglik_chunked(rssi, fm, p0, exponent, sigma_db, window, rows=heard)
    # Silence is evidence too: a beacon near any receiver is heard several times a second,
    # so nothing heard for a whole pooling window means out of range, i.e. in no zone.
    from scipy.ndimage import uniform_filter1d

    silent = uniform_filter1d(heard.astype("float64"), window, mode="constant") < 1e-9
    none = fm.zones.index("none")
    zll[silent] = -silence_penalty
    zll[silent, none] = 0.0
    # Confidence: each second's zone posterior from the pooled evidence.
    post = np.exp(zll - zll.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    path = viterbi(zll, log_a)
    # Before the first and after the last packet there is no evidence at all.
    if heard.any():
        first, last = np.flatnonzero(heard)[[0, -1]]
        path[:first] = -1
        path[last + 1 :] = -1
    else:
        path[:] = -1
    return ZoneEstimate(zone=path, posterior=post, zones=fm.zones, p0_dbm=float(np.median(p0)),
                        body_loss_db=body_loss_db)
