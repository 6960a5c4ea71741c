"""Zone estimation from RSSI with a site survey: fingerprint map + walking-model grid smoother.

Used when a site survey (a beacon held still at known positions, mean RSSI per receiver,
and optionally a calibration walk: a beacon carried along known positions) is available.
The expected RSSI of every receiver on a fine position grid is the survey's log-distance
fit plus the survey residuals spread by kernel regression (a fingerprint map). Each step's
packets give a likelihood over the grid. A forward-backward pass over position x walking
velocity (standing still, or one of ``headings`` directions at each of ``speeds_m_s``;
a walker keeps going the way they went, turning at ``turn_per_s``) smooths the position,
kept off cells the floor plan marks as not walkable. Each step's zone is the zone (or
``none``) holding most posterior mass.

``lag_s=None`` smooths over the whole recording (offline); an integer ``lag_s`` uses only
the next ``lag_s`` seconds (fixed-lag smoother, delay ``lag_s``; 0 = causal filter).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter
from scipy.ndimage import shift as nd_shift

from twin_server.analysis.rssi_zones import calibrate_from_survey
from twin_server.site import Site


@dataclass(frozen=True)
class FingerprintParams:
    """Tunables of the fingerprint smoother.

    Defaults: chosen on ble_tetam by leave-one-track-out cross-validation (docs/accuracy.md).
    """

    cell_m: float = 0.25
    sigma_db: float = 6.0  # per-packet scatter
    map_sigma_db: float = 3.0  # fingerprint map error (per receiver-step, not averaged away)
    kernel_m: float = 0.8  # survey residual spreading length
    shrink: float = 1.0  # kernel-regression shrinkage towards the path-loss fit
    speeds_m_s: tuple[float, ...] = (0.3, 0.6)  # walking speeds besides standing still
    headings: int = 8  # walking directions
    turn_per_s: float = 0.1  # chance per second of changing speed or direction
    jitter_m: float = 0.15  # position noise per second on top of the walking step
    blocked_weight: float = 0.02  # prior weight of a cell the floor plan marks as not walkable
    zone_weight: float = 2.0  # posterior mass in a zone is weighed by this against ``none``
    lag_s: int | None = None


@dataclass
class FingerprintMap:
    """Expected RSSI per receiver on a position grid, the grid's zone labels and walkability."""

    receivers: list[str]
    mean_dbm: np.ndarray  # (R, NX, NY)
    zone_of_cell: np.ndarray  # (NX, NY) index into zones, len(zones) = none
    zones: list[str]
    cell_m: float
    walkable: np.ndarray  # (NX, NY) prior weight: 1 walkable, ``blocked_weight`` not

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x_m, y_m)`` of every cell, each ``(NX, NY)``."""
        nx, ny = self.zone_of_cell.shape
        xs = (np.arange(nx) + 0.5) * self.cell_m
        ys = (np.arange(ny) + 0.5) * self.cell_m
        return np.meshgrid(xs, ys, indexing="ij")


def build_map(survey: pd.DataFrame, site: Site, params: FingerprintParams,
              floor_m: tuple[float, float],
              walkable: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> FingerprintMap:
    """Fingerprint map from survey points.

    Parameters
    ----------
    survey : pandas.DataFrame
        ``x_m, y_m, z_m, receiver_id, rssi_dbm`` (mean RSSI of a receiver at a point);
        calibration-walk points from :func:`walk_survey_points` may be appended.
    site : Site
        Receivers (positions) and machines (zones, circles fitted to their polygons).
    params : FingerprintParams
        Cell size, kernel length, blocked-cell weight.
    floor_m : tuple of float
        Floor size (x, y) in metres.
    walkable : callable, optional
        ``walkable(x_m, y_m) -> bool array`` (a floor plan); default: everywhere.

    Returns
    -------
    FingerprintMap
    """
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
    free = np.ones(gx.shape, dtype=bool) if walkable is None else np.asarray(walkable(gx, gy), dtype=bool)
    if not free.any():
        raise ValueError("floor plan: no cell of the floor is walkable")
    return FingerprintMap(recs, mean, zone_of_cell, names, params.cell_m,
                          np.where(free, 1.0, params.blocked_weight))


def walk_survey_points(rssi: pd.DataFrame, track: pd.DataFrame, *, cell_m: float = 0.5,
                       z_m: float = 1.75, min_packets: int = 3) -> pd.DataFrame:
    """Survey points from a calibration walk (a beacon carried along known positions).

    Parameters
    ----------
    rssi : pandas.DataFrame
        ``t_seconds, receiver_id, rssi_dbm`` of the walk (positive RSSI rows are dropped).
    track : pandas.DataFrame
        ``t_seconds, x_m, y_m`` of the beacon during the walk (interpolated in between;
        packets outside the track's time span are dropped).
    cell_m : float
        Packets are pooled per receiver over squares of this size.
    z_m : float
        Beacon height during the walk.
    min_packets : int
        A square needs this many packets of a receiver to become a point.

    Returns
    -------
    pandas.DataFrame
        ``x_m, y_m, z_m, receiver_id, rssi_dbm, n`` at the squares' centres, ready to
        append to a stationary survey for :func:`build_map`.
    """
    tr = track.sort_values("t_seconds")
    tt = tr["t_seconds"].to_numpy(dtype="float64")
    r = rssi[pd.to_numeric(rssi["rssi_dbm"], errors="coerce") < 0]
    t = r["t_seconds"].to_numpy(dtype="float64")
    inside = (t >= tt.min()) & (t <= tt.max()) if len(tt) else np.zeros(len(t), dtype=bool)
    r, t = r[inside], t[inside]
    cx = (np.floor(np.interp(t, tt, tr["x_m"].to_numpy(dtype="float64")) / cell_m) + 0.5) * cell_m
    cy = (np.floor(np.interp(t, tt, tr["y_m"].to_numpy(dtype="float64")) / cell_m) + 0.5) * cell_m
    g = (pd.DataFrame({"x_m": cx, "y_m": cy, "receiver_id": r["receiver_id"].astype(str).to_numpy(),
                       "rssi_dbm": r["rssi_dbm"].to_numpy(dtype="float64")})
         .groupby(["x_m", "y_m", "receiver_id"])["rssi_dbm"].agg(["mean", "size"]).reset_index())
    g = g[g["size"] >= min_packets]
    return pd.DataFrame({"x_m": g["x_m"], "y_m": g["y_m"], "z_m": z_m, "receiver_id": g["receiver_id"],
                         "rssi_dbm": g["mean"], "n": g["size"]}).reset_index(drop=True)


def _step_means(t: np.ndarray, rid: np.ndarray, val: np.ndarray, receivers: list[str], t0: float,
                n_steps: int, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-step RSSI sum and packet count ``(T, R)`` of each receiver."""
    k = np.floor((t - t0) / step_s).astype(int)
    idx = {r: i for i, r in enumerate(receivers)}
    ri = np.array([idx.get(str(r), -1) for r in rid], dtype=int)
    ok = (k >= 0) & (k < n_steps) & (val < 0) & (ri >= 0)
    s = np.zeros((n_steps, len(receivers)))
    c = np.zeros((n_steps, len(receivers)))
    np.add.at(s, (k[ok], ri[ok]), val[ok])
    np.add.at(c, (k[ok], ri[ok]), 1.0)
    return s, c


def _loglik(s: np.ndarray, c: np.ndarray, fmap: FingerprintMap, params: FingerprintParams) -> np.ndarray:
    """``(T, NX, NY)`` log-likelihood of each step's packets (steps without packets: 0)."""
    ll = np.zeros((s.shape[0], *fmap.mean_dbm.shape[1:]))
    for t, r in zip(*np.nonzero(c > 0), strict=True):
        var = params.sigma_db ** 2 / c[t, r] + params.map_sigma_db ** 2
        ll[t] += -0.5 * (s[t, r] / c[t, r] - fmap.mean_dbm[r]) ** 2 / var
    return ll


class _Walker:
    """Transition of the (velocity, position) grid over one step, and its adjoint."""

    def __init__(self, params: FingerprintParams, step_s: float, walkable: np.ndarray):
        vel = [(0.0, 0.0)]
        for speed in params.speeds_m_s:
            for h in range(params.headings):
                a = 2 * np.pi * h / params.headings
                vel.append((speed * np.cos(a), speed * np.sin(a)))
        self.shift_cells = np.asarray(vel) * step_s / params.cell_m
        nv = len(vel)
        q = min(params.turn_per_s * step_s, 1.0) if nv > 1 else 0.0
        # Keep the velocity with 1 - q, else any other one; symmetric, so it is its own adjoint.
        self.mix = np.full((nv, nv), q / max(nv - 1, 1))
        np.fill_diagonal(self.mix, 1.0 - q)
        self.jitter_cells = params.jitter_m * np.sqrt(step_s) / params.cell_m
        self.walkable = walkable

    def _move(self, a: np.ndarray, sign: float) -> np.ndarray:
        out = np.empty_like(a)
        for k, sh in enumerate(self.shift_cells):
            layer = nd_shift(a[k], sign * sh, order=1, mode="constant") if sh.any() else a[k]
            out[k] = gaussian_filter(layer, self.jitter_cells, mode="constant")
        return out

    def forward(self, a: np.ndarray) -> np.ndarray:
        return self._move(np.tensordot(self.mix, a, axes=1), 1.0) * self.walkable

    def backward(self, b: np.ndarray) -> np.ndarray:
        return np.tensordot(self.mix, self._move(b * self.walkable, -1.0), axes=1)


def _norm(p: np.ndarray) -> np.ndarray:
    return p / max(float(p.sum()), 1e-300)


def smooth_positions(ll: np.ndarray, fmap: FingerprintMap, params: FingerprintParams,
                     step_s: float = 1.0) -> np.ndarray:
    """Position posterior ``(T, NX, NY)`` from per-step log-likelihoods ``(T, NX, NY)``."""
    n = ll.shape[0]
    lik = np.exp(ll - ll.reshape(n, -1).max(axis=1)[:, None, None])
    walker = _Walker(params, step_s, fmap.walkable)
    nv = len(walker.shift_cells)
    fwd = np.empty((n, nv, *lik.shape[1:]))
    a = _norm(np.broadcast_to(fmap.walkable, fwd.shape[1:]) * lik[0])
    fwd[0] = a
    for t in range(1, n):
        a = _norm(walker.forward(a) * lik[t] + 1e-300)
        fwd[t] = a
    post = np.empty_like(lik)
    if params.lag_s is None:
        b = np.ones(fwd.shape[1:])
        post[n - 1] = _norm(fwd[n - 1].sum(axis=0))
        for t in range(n - 1, 0, -1):
            b = _norm(walker.backward(b * lik[t]) + 1e-300)
            post[t - 1] = _norm((fwd[t - 1] * b).sum(axis=0))
        return post
    lag = round(params.lag_s / step_s)
    for t in range(n):
        b = np.ones(fwd.shape[1:])
        for u in range(min(n - 1, t + lag), t, -1):
            b = _norm(walker.backward(b * lik[u]) + 1e-300)
        post[t] = _norm((fwd[t] * b).sum(axis=0))
    return post


def zone_posterior(t_s: np.ndarray, receiver: np.ndarray, rssi_dbm: np.ndarray, fmap: FingerprintMap,
                   params: FingerprintParams, t0: float, n_steps: int, step_s: float = 1.0) -> np.ndarray:
    """Zone probabilities of every step ``[t0 + k step_s, t0 + (k + 1) step_s)``.

    Parameters
    ----------
    t_s, receiver, rssi_dbm : numpy.ndarray
        One beacon's packets: time (s), receiver id, RSSI (dBm; non-negative rows ignored).
    fmap : FingerprintMap
        From :func:`build_map`.
    params : FingerprintParams
        Motion model, likelihood and decision weights.
    t0, n_steps, step_s : float, int, float
        The time grid.

    Returns
    -------
    numpy.ndarray
        ``(n_steps, len(fmap.zones) + 1)``, rows sum to 1, last column ``none``. Zone
        columns are weighed by ``params.zone_weight`` before normalising (the decision
        weight against ``none``).
    """
    s, c = _step_means(np.asarray(t_s, dtype="float64"), np.asarray(receiver),
                       np.asarray(rssi_dbm, dtype="float64"), fmap.receivers, t0, n_steps, step_s)
    post = smooth_positions(_loglik(s, c, fmap, params), fmap, params, step_s)
    k = len(fmap.zones)
    flat = fmap.zone_of_cell.ravel()
    mass = np.stack([np.bincount(flat, weights=p.ravel(), minlength=k + 1) for p in post])
    mass[:, :k] *= params.zone_weight
    return mass / mass.sum(axis=1, keepdims=True)


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
    prob = zone_posterior(t, rssi["receiver_id"].astype(str).to_numpy(), rssi["rssi_dbm"].to_numpy(),
                          fmap, params, t0, n_s)
    names = [*fmap.zones, "none"]
    return t0, [names[i] for i in prob.argmax(axis=1)]
