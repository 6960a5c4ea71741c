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

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.ndimage import convolve1d

from twin_server.analysis.rssi_zones import calibrate_from_survey
from twin_server.geometry import polygon_mask
from twin_server.site import Site


@dataclass(frozen=True)
class FingerprintParams:
    """Tunables of the fingerprint smoother.

    Defaults: chosen on ble_tetam by leave-one-track-out cross-validation (docs/accuracy.md).
    """

    cell_m: float = 0.5  # 0.25 m scores the same on ble_tetam (within noise) at 3x the time
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
    origin_m: tuple[float, float] = (0.0, 0.0)  # floor position of the grid's corner
    #: Zone posteriors of analysed windows by content: a live server re-analysing a growing
    #: day recomputes only the windows whose packets changed.
    #: Key: (digest of the window's packets, first and end step kept, params, step_s).
    cache: OrderedDict[tuple[str, int, int, FingerprintParams, float], np.ndarray] = field(
        default_factory=OrderedDict, repr=False, compare=False
    )

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x_m, y_m)`` of every cell, each ``(NX, NY)``."""
        nx, ny = self.zone_of_cell.shape
        xs = self.origin_m[0] + (np.arange(nx) + 0.5) * self.cell_m
        ys = self.origin_m[1] + (np.arange(ny) + 0.5) * self.cell_m
        return np.meshgrid(xs, ys, indexing="ij")


def build_map(
    survey: pd.DataFrame,
    site: Site,
    params: FingerprintParams,
    floor_m: tuple[float, ...],
    walkable: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> FingerprintMap:
    """Fingerprint map from survey points.

    Parameters
    ----------
    survey : pandas.DataFrame
        ``x_m, y_m, z_m, receiver_id, rssi_dbm`` (mean RSSI of a receiver at a point);
        calibration-walk points from :func:`walk_survey_points` may be appended.
    site : Site
        Receivers (positions) and machines (zone polygons).
    params : FingerprintParams
        Cell size, kernel length, blocked-cell weight.
    floor_m : tuple of float
        Floor size ``(x, y)`` from the origin, or extent ``(xmin, ymin, xmax, ymax)``, metres.
    walkable : callable, optional
        ``walkable(x_m, y_m) -> bool array`` (a floor plan); default: everywhere.

    Returns
    -------
    FingerprintMap
    """
    recs = [r.id for r in site.receivers]
    p0, n = calibrate_from_survey(survey, recs, site)
    x0, y0, x1, y1 = (0.0, 0.0, *floor_m) if len(floor_m) == 2 else floor_m
    xs = np.arange(x0 + params.cell_m / 2, x1, params.cell_m)
    ys = np.arange(y0 + params.cell_m / 2, y1, params.cell_m)
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
            w = np.exp(-((gx[..., None] - px) ** 2 + (gy[..., None] - py) ** 2) / (2 * params.kernel_m**2))
            base = base + (w @ resid) / (params.shrink + w.sum(axis=-1))
        mean[i] = base
    zone_of_cell = np.full(gx.shape, len(site.machines), dtype=int)
    for k in range(len(site.machines) - 1, -1, -1):  # the first machine wins overlaps, as in Site.zone_at
        zone_of_cell[polygon_mask(gx, gy, site.machines[k].zone)] = k
    free = np.ones(gx.shape, dtype=bool) if walkable is None else np.asarray(walkable(gx, gy), dtype=bool)
    if not free.any():
        raise ValueError("floor plan: no cell of the floor is walkable")
    return FingerprintMap(
        recs,
        mean,
        zone_of_cell,
        list(site.machine_ids),
        params.cell_m,
        np.where(free, 1.0, params.blocked_weight),
        (float(x0), float(y0)),
    )


def walk_survey_points(
    rssi: pd.DataFrame, track: pd.DataFrame, *, cell_m: float = 0.5, z_m: float = 1.75, min_packets: int = 3
) -> pd.DataFrame:
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
    g = (
        pd.DataFrame(
            {
                "x_m": cx,
                "y_m": cy,
                "receiver_id": r["receiver_id"].astype(str).to_numpy(),
                "rssi_dbm": r["rssi_dbm"].to_numpy(dtype="float64"),
            }
        )
        .groupby(["x_m", "y_m", "receiver_id"])["rssi_dbm"]
        .agg(["mean", "size"])
        .reset_index()
    )
    g = g[g["size"] >= min_packets]
    return pd.DataFrame(
        {
            "x_m": g["x_m"],
            "y_m": g["y_m"],
            "z_m": z_m,
            "receiver_id": g["receiver_id"],
            "rssi_dbm": g["mean"],
            "n": g["size"],
        }
    ).reset_index(drop=True)


def _step_means(
    t: np.ndarray,
    rid: np.ndarray,
    val: np.ndarray,
    receivers: list[str],
    t0: float,
    n_steps: int,
    step_s: float,
) -> tuple[np.ndarray, np.ndarray]:
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


def _loglik(
    s: np.ndarray, c: np.ndarray, fmap: FingerprintMap, params: FingerprintParams, block: int = 16
) -> np.ndarray:
    """``(T, NX, NY)`` float32 log-likelihood of each step's packets (steps without packets: 0)."""
    ll = np.zeros((s.shape[0], *fmap.mean_dbm.shape[1:]), dtype=np.float32)
    flat = ll.reshape(len(ll), -1)  # (T, cells): long inner loops for the broadcasts
    mean_dbm = fmap.mean_dbm.reshape(len(fmap.mean_dbm), -1).astype(np.float32)
    heard = c > 0
    buf = np.empty((block, flat.shape[1]), dtype=np.float32)
    # Blocks of steps small enough to stay in cache, receiver by receiver within a block.
    for a in range(0, len(ll), block):
        part = flat[a : a + block]
        for r in range(c.shape[1]):
            t = np.flatnonzero(heard[a : a + block, r])
            if len(t) == 0:
                continue
            cnt = c[a + t, r]
            var = (params.sigma_db**2 / cnt + params.map_sigma_db**2).astype(np.float32)
            mean = (s[a + t, r] / cnt).astype(np.float32)
            term = np.subtract(mean[:, None], mean_dbm[r], out=buf[: len(t)])
            np.square(term, out=term)
            term *= np.float32(-0.5)
            term /= var[:, None]
            if len(t) == len(part):
                part += term
            else:
                part[t] += term
    return ll


def _step_kernel(shift_cells: float, sigma_cells: float) -> np.ndarray:
    """1-D kernel: move by ``shift_cells`` (linear interpolation), then Gaussian jitter."""
    reach = int(np.ceil(abs(shift_cells) + 4 * sigma_cells)) + 1
    d = np.arange(-reach, reach + 1)
    g = np.exp(-0.5 * (d / max(sigma_cells, 1e-6)) ** 2)
    lo = np.floor(shift_cells)
    frac = shift_cells - lo
    move = np.where(d == lo, 1.0 - frac, 0.0) + np.where(d == lo + 1, frac, 0.0)
    return np.convolve(move, g / g.sum(), mode="same").astype(np.float32)


def _band(kernel: np.ndarray, n: int) -> np.ndarray:
    """``(n, n)`` matrix ``M`` with ``M @ v == convolve1d(v, kernel, mode="constant")``.

    Entries below 1e-6 are dropped: products of such tails with the tiny messages far from the
    beacon would be subnormal floats, which slow the matrix products down tenfold.
    """
    m = convolve1d(np.eye(n, dtype=np.float32), kernel, axis=0, mode="constant")
    return np.where(m < 1e-6, np.float32(0.0), m)


class _Walker:
    """Transition of the (velocity, position) grid over one step, and its adjoint.

    Each velocity moves its layer by a separable kernel (shift + jitter), applied as two
    banded matrix products for all layers at once; velocities change with probability
    ``turn_per_s`` per second.
    """

    def __init__(self, params: FingerprintParams, step_s: float, walkable: np.ndarray):
        vel = [(0.0, 0.0)]
        for speed in params.speeds_m_s:
            for h in range(params.headings):
                a = 2 * np.pi * h / params.headings
                vel.append((speed * np.cos(a), speed * np.sin(a)))
        sig = params.jitter_m * np.sqrt(step_s) / params.cell_m
        per_cell = step_s / params.cell_m
        nx, ny = walkable.shape
        self.mx = np.stack([_band(_step_kernel(vx * per_cell, sig), nx) for vx, _ in vel])  # (V, NX, NX)
        self.my_t = np.ascontiguousarray(
            np.stack([_band(_step_kernel(vy * per_cell, sig), ny).T for _, vy in vel])
        )  # (V, NY, NY)
        self.mx_t = np.ascontiguousarray(self.mx.transpose(0, 2, 1))
        self.my = np.ascontiguousarray(self.my_t.transpose(0, 2, 1))
        self.nv = len(vel)
        # Keep the velocity with 1 - q, else any other one (symmetric: its own adjoint).
        q = min(params.turn_per_s * step_s, 1.0) if self.nv > 1 else 0.0
        self.other = np.float32(q / max(self.nv - 1, 1))
        self.keep = np.float32(1.0 - q - self.other)
        self.walkable = walkable
        self._space = np.empty(0, dtype=np.float32)

    def messages(self, n: int) -> np.ndarray:
        """A ``(n, V, NX, NY)`` float32 buffer, reused by later windows: fresh memory of this
        size costs a page fault per 4 kB at first touch, about a third of a forward step."""
        size = n * self.nv * self.walkable.size
        if self._space.size < size:
            self._space = np.empty(size, dtype=np.float32)
        return self._space[:size].reshape(n, self.nv, *self.walkable.shape)

    def forward(
        self, a: np.ndarray, weight: np.ndarray | None = None, out: np.ndarray | None = None
    ) -> np.ndarray:
        """``a``: ``(..., V, NX, NY)``; the moved message times ``weight`` (default: the
        walkability; a step's likelihood times it saves a pass) into ``out``."""
        mixed = self.keep * a  # velocity changes, then the move
        mixed += self.other * a.sum(axis=-3, keepdims=True)
        moved = np.matmul(self.mx, mixed @ self.my_t)
        result: np.ndarray = np.multiply(moved, self.walkable if weight is None else weight, out=out)
        return result

    def backward(self, b: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        """The adjoint of :meth:`forward` (``b`` times ``weight``, then moved); overwrites ``b``."""
        b *= self.walkable if weight is None else weight
        moved: np.ndarray = np.matmul(self.mx_t, b @ self.my)
        total = moved.sum(axis=-3, keepdims=True)
        moved *= self.keep  # velocity changes (in place)
        moved += self.other * total
        return moved


def _norm(p: np.ndarray) -> np.ndarray:
    return p / max(float(p.sum()), 1e-300)


TINY = np.float32(1e-12)  # keeps a step whose packets fit no cell from zeroing the grid
LIK_FLOOR = np.float32(1e-12)


def smooth_positions(
    ll: np.ndarray,
    fmap: FingerprintMap,
    params: FingerprintParams,
    step_s: float = 1.0,
    walker: _Walker | None = None,
) -> np.ndarray:
    """Position posterior ``(T, NX, NY)`` from per-step log-likelihoods ``(T, NX, NY)``."""
    n = ll.shape[0]
    # float32: half the memory and faster convolutions; every step is renormalised.
    peak = ll.reshape(n, -1).max(axis=1)[:, None, None]
    rel = np.subtract(ll, peak)
    lik: npt.NDArray[np.float32] = np.exp(rel, out=rel).astype(np.float32)
    # A floor far below any real odds (28 nats) keeps the messages out of subnormal floats,
    # whose arithmetic is many times slower.
    np.maximum(lik, LIK_FLOOR, out=lik)
    walker = walker or _Walker(params, step_s, fmap.walkable.astype(np.float32))
    weight = lik * walker.walkable  # each step's likelihood on walkable floor
    fwd = walker.messages(n)
    np.multiply(walker.walkable, lik[0], out=fwd[0])
    fwd[0] /= max(float(fwd[0].sum()), 1e-300)
    # Each step's message is made in place in its slot (fewer temporaries).
    for t in range(1, n):
        a = walker.forward(fwd[t - 1], weight[t], out=fwd[t])
        a += TINY
        a /= max(float(a.sum()), 1e-300)
    if params.lag_s is None:
        b = np.ones(fwd.shape[1:], dtype=np.float32)
        for t in range(n - 1, 0, -1):
            b = walker.backward(b, weight[t])
            b += TINY
            b /= max(float(b.sum()), 1e-300)
            fwd[t - 1] *= b  # the joint; the forward message is not needed again
        post: np.ndarray = fwd.sum(axis=1)
        post /= post.reshape(n, -1).sum(axis=1)[:, None, None]
        return post
    post = np.empty_like(lik)
    lag = round(params.lag_s / step_s)
    for t in range(n):
        b = np.ones(fwd.shape[1:], dtype=np.float32)
        for u in range(min(n - 1, t + lag), t, -1):
            b = _norm(walker.backward(b * lik[u]) + TINY)
        post[t] = _norm((fwd[t] * b).sum(axis=0))
    return post


def zone_posterior(
    t_s: np.ndarray,
    receiver: np.ndarray,
    rssi_dbm: np.ndarray,
    fmap: FingerprintMap,
    params: FingerprintParams,
    t0: float,
    n_steps: int,
    step_s: float = 1.0,
    *,
    window_s: float = 300.0,
    margin_s: float = 30.0,
) -> np.ndarray:
    """Zone probabilities of every step ``[t0 + k step_s, t0 + (k + 1) step_s)``.

    Long recordings are smoothed in windows of ``window_s`` with ``margin_s`` of packets on
    each side (at least the fixed lag), which bounds memory; packets further away than the
    margin barely move a walker's position posterior. Windows already analysed with the same
    packets come from ``fmap.cache``.

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
    s, c = _step_means(
        np.asarray(t_s, dtype="float64"),
        np.asarray(receiver),
        np.asarray(rssi_dbm, dtype="float64"),
        fmap.receivers,
        t0,
        n_steps,
        step_s,
    )
    win = max(1, round(window_s / step_s))
    margin = round(max(margin_s, params.lag_s or 0.0) / step_s)
    out = np.empty((n_steps, len(fmap.zones) + 1))
    walker = None  # built at the first window not in the cache, shared by the others
    for a in range(0, n_steps, win):
        lo, hi = max(0, a - margin), min(n_steps, a + win + margin)
        b = min(n_steps, a + win)
        digest = hashlib.blake2b(s[lo:hi].tobytes() + c[lo:hi].tobytes(), digest_size=16).hexdigest()
        key = (digest, a - lo, b - lo, params, step_s)
        hit = fmap.cache.get(key)
        if hit is None:
            walker = walker or _Walker(params, step_s, fmap.walkable.astype(np.float32))
            hit = _zone_mass(s[lo:hi], c[lo:hi], fmap, params, step_s, walker)[a - lo : b - lo]
            fmap.cache[key] = hit
            while len(fmap.cache) > CACHE_WINDOWS:
                fmap.cache.popitem(last=False)
        else:
            fmap.cache.move_to_end(key)
        out[a:b] = hit
    return out


CACHE_WINDOWS = 2048


def _zone_mass(
    s: np.ndarray,
    c: np.ndarray,
    fmap: FingerprintMap,
    params: FingerprintParams,
    step_s: float,
    walker: _Walker | None = None,
) -> np.ndarray:
    """Weighed, normalised zone mass ``(T, Z + 1)`` of a window's per-step sums and counts."""
    post = smooth_positions(_loglik(s, c, fmap, params), fmap, params, step_s, walker)
    k = len(fmap.zones)
    n = len(post)
    # One weighted bincount over (step, zone) bins: each bin still sums its cells in order.
    bins = (fmap.zone_of_cell.ravel()[None, :] + (k + 1) * np.arange(n)[:, None]).ravel()
    # float64 (weighted bincount; numpy's stub says intp whatever the weights)
    mass: np.ndarray = np.bincount(bins, weights=post.ravel(), minlength=n * (k + 1)).reshape(n, k + 1)
    mass[:, :k] *= params.zone_weight
    share: np.ndarray = mass / mass.sum(axis=1, keepdims=True)
    return share
