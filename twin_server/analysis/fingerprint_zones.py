"""Zone estimation from RSSI with a site survey: fingerprint map + walking-speed grid smoother.

Used when a site survey (a beacon held still at known positions, mean RSSI per receiver)
is available. The expected RSSI of every receiver on a fine position grid is the survey's
log-distance fit plus the survey residuals spread by kernel regression (a fingerprint
map). Each second's packets give a likelihood over the grid; a forward-backward pass with a
Gaussian step (walking speed) smooths the position posterior; each second's zone is the
zone (or ``none``) holding most posterior mass.

``lag_s=None`` smooths over the whole track (offline); an integer ``lag_s`` uses only the
next ``lag_s`` seconds (fixed-lag smoother, delay ``lag_s``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from twin_server.analysis.rssi_zones import calibrate_from_survey
from twin_server.site import Site


@dataclass(frozen=True)
class FingerprintParams:
    """Tunables of the fingerprint smoother.

    Defaults: the setting leave-one-track-out cross-validation on ble_tetam chose most
    often (docs/accuracy.md).
    """

    cell_m: float = 0.25
    sigma_db: float = 6.0  # per-packet scatter
    map_sigma_db: float = 3.0  # fingerprint map error (per receiver-second, not averaged away)
    speed_m_s: float = 0.6  # Gaussian step scale per second
    kernel_m: float = 0.5  # survey residual spreading length
    shrink: float = 1.0  # kernel-regression shrinkage towards the path-loss fit
    miss_db: float | None = None  # mean RSSI where a receiver hears nothing in a second half the time
    zone_weight: float = 2.0  # posterior mass in a zone is weighed by this against ``none``
    lag_s: int | None = None


@dataclass
class FingerprintMap:
    """Expected RSSI per receiver on a position grid and the grid's zone labels."""

    receivers: list[str]
    mean_dbm: np.ndarray  # (R, NX, NY)
    zone_of_cell: np.ndarray  # (NX, NY) index into zones, len(zones) = none
    zones: list[str]


def build_map(survey: pd.DataFrame, site: Site, params: FingerprintParams,
              floor_m: tuple[float, float]) -> FingerprintMap:
    """Fingerprint map from survey points (``x_m, y_m, z_m, receiver_id, rssi_dbm``)."""
    recs = [r.id for r in site.receivers]
    p0, n = calibrate_from_survey(survey, recs, site)
    xs = np.arange(params.cell_m / 2, floor_m[0], params.cell_m)
    ys = np.arange(params.cell_m / 2, floor_m[1], params.cell_m)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    z_beacon = float(survey["z_m"].median())
    pos = {r.id: np.asarray(r.position, dtype="float64") for r in site.receivers}
    mean = np.empty((len(recs), len(xs), len(ys)))
    for i, rid in enumerate(recs):
        rp = pos[rid]
        d = np.sqrt((gx - rp[0]) ** 2 + (gy - rp[1]) ** 2 + (z_beacon - rp[2]) ** 2)
        base = p0.get(rid, -59.0) - 10 * n * np.log10(np.maximum(d, 0.3))
        pts = survey[survey["receiver_id"].astype(str) == rid]
        if len(pts):
            px, py, pz = (pts[c].to_numpy(dtype="float64") for c in ("x_m", "y_m", "z_m"))
            dp = np.sqrt((px - rp[0]) ** 2 + (py - rp[1]) ** 2 + (pz - rp[2]) ** 2)
            fit = p0[rid] - 10 * n * np.log10(np.maximum(dp, 0.3))
            resid = pts["rssi_dbm"].to_numpy(dtype="float64") - fit
            w = np.exp(-((gx[..., None] - px) ** 2 + (gy[..., None] - py) ** 2) / (2 * params.kernel_m ** 2))
            base = base + (w @ resid) / (params.shrink + w.sum(axis=-1))
        mean[i] = base
    zone_of_cell = np.full(gx.shape, len(site.machines), dtype=int)
    names = []
    for k, m in enumerate(site.machines):
        poly = np.asarray(m.zone, dtype="float64")
        cx, cy = poly[:, 0].mean(), poly[:, 1].mean()
        r = float(np.mean(np.hypot(poly[:, 0] - cx, poly[:, 1] - cy)))
        zone_of_cell[(gx - cx) ** 2 + (gy - cy) ** 2 <= r * r] = k
        names.append(m.id)
    return FingerprintMap(recs, mean, zone_of_cell, names)


def _second_means(rssi: pd.DataFrame, fmap: FingerprintMap, t0: float, n_s: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-second RSSI sum and packet count ``(T, R)`` of each receiver."""
    sec = np.floor(rssi["t_seconds"].to_numpy(dtype="float64") - t0).astype(int)
    rid = rssi["receiver_id"].astype(str).to_numpy()
    val = rssi["rssi_dbm"].to_numpy(dtype="float64")
    idx = {r: i for i, r in enumerate(fmap.receivers)}
    ri = np.array([idx.get(r, -1) for r in rid], dtype=int)
    ok = (sec >= 0) & (sec < n_s) & (val < 0) & (ri >= 0)
    s = np.zeros((n_s, len(fmap.receivers)))
    c = np.zeros((n_s, len(fmap.receivers)))
    np.add.at(s, (sec[ok], ri[ok]), val[ok])
    np.add.at(c, (sec[ok], ri[ok]), 1.0)
    return s, c


def _loglik(s: np.ndarray, c: np.ndarray, fmap: FingerprintMap, params: FingerprintParams) -> np.ndarray:
    """``(T, NX, NY)`` log-likelihood of each second's packets."""
    n_s, r_n = s.shape
    ll = np.zeros((n_s, *fmap.mean_dbm.shape[1:]))
    for t in range(n_s):
        for r in range(r_n):
            mu = fmap.mean_dbm[r]
            if c[t, r] > 0:
                var = params.sigma_db ** 2 / c[t, r] + params.map_sigma_db ** 2
                ll[t] += -0.5 * (s[t, r] / c[t, r] - mu) ** 2 / var
            elif params.miss_db is not None:
                # P(silent second) falls as the expected RSSI rises above miss_db.
                ll[t] += -np.logaddexp(0.0, (mu - params.miss_db) / 2.0)
    return ll


def _norm(p: np.ndarray) -> np.ndarray:
    return p / max(float(p.sum()), 1e-300)


def _step(p: np.ndarray, sig_cells: float) -> np.ndarray:
    return _norm(gaussian_filter(p, sig_cells, mode="constant") + 1e-6 / p.size)


def smooth_positions(ll: np.ndarray, params: FingerprintParams) -> np.ndarray:
    """Position posterior ``(T, NX, NY)`` from per-second log-likelihoods."""
    n_s = ll.shape[0]
    sig = params.speed_m_s / params.cell_m
    lik = np.exp(ll - ll.reshape(n_s, -1).max(axis=1)[:, None, None])
    fwd = np.empty_like(lik)
    p = _norm(np.ones(lik.shape[1:]))
    for t in range(n_s):
        p = _norm((_step(p, sig) if t else p) * lik[t])
        fwd[t] = p
    post = np.empty_like(lik)
    if params.lag_s is None:
        b = np.ones(lik.shape[1:])
        for t in range(n_s - 1, -1, -1):
            post[t] = _norm(fwd[t] * b)
            b = _norm(_step(b * lik[t], sig))
        return post
    for t in range(n_s):
        b = np.ones(lik.shape[1:])
        for u in range(min(n_s - 1, t + params.lag_s), t, -1):
            b = _norm(_step(b * lik[u], sig))
        post[t] = _norm(fwd[t] * b)
    return post


def estimate_zone_seconds(rssi: pd.DataFrame, fmap: FingerprintMap, params: FingerprintParams,
                          ) -> tuple[float, list[str]]:
    """Zone every second from ``t_seconds, receiver_id, rssi_dbm`` rows.

    Returns
    -------
    t0 : float
        Start of the first second.
    zones : list of str
        Zone id (or ``none``) of each second ``[t0 + i, t0 + i + 1)``.
    """
    t = rssi["t_seconds"].to_numpy(dtype="float64")
    if len(t) == 0:
        return 0.0, []
    t0 = float(t.min())
    n_s = int(np.floor(t.max() - t0)) + 1
    s, c = _second_means(rssi, fmap, t0, n_s)
    post = smooth_positions(_loglik(s, c, fmap, params), params)
    k = len(fmap.zones)
    flat = fmap.zone_of_cell.ravel()
    mass = np.stack([np.bincount(flat, weights=p.ravel(), minlength=k + 1) for p in post])
    mass[:, :k] *= params.zone_weight
    names = [*fmap.zones, "none"]
    return t0, [names[i] for i in mass.argmax(axis=1)]

