"""Forward-backward over floor positions: where a beacon is, second by second, and so its zone.

The hidden state is a cell of a floor grid and a motion state: *standing* (the position does
not move; the stander keeps a facing, the wearer's body shadowing the receivers behind, see
:mod:`twin_server.analysis.rssi_zones`, and turns now and then) or *walking* (a random walk of
``walk_sd_m`` per second, the facing drawn afresh each second). A walker stops with
probability ``p_stop`` per second, ``zone_stop_weight`` times more often inside a zone (people
stop where the work is); a stander starts walking with probability ``p_go``. Because the
position persists from one second to the next, a dwell's evidence adds up at one place, and
no area, large or small, wins by its size alone second after second.

Long recordings are cut into chunks of ``chunk_s`` seconds with ``margin_s`` of evidence on
each side; all chunks of a batch are smoothed at once (numpy works on the whole batch at each
step), which keeps the cost near a few array operations per second of recording.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twin_server.geometry import polygon_mask
from twin_server.site import Site

#: Likelihood multiplier of the cells outside a zone a presence event puts the worker in (the
#: event may have been given to the wrong worker, so the clamp is not absolute).
CLAMP_OUTSIDE = 0.02


@dataclass(frozen=True)
class Motion:
    """How a beacon moves between seconds (see the module docstring)."""

    walk_sd_m: float = 0.8
    p_go: float = 1 / 60
    p_stop: float = 1 / 20
    zone_stop_weight: float = 8.0
    turn_stand: float = 0.02
    chunk_s: int = 600
    margin_s: int = 20


@dataclass
class FloorGrid:
    """Square cells over the floor: their zone shares, walkability and receiver geometry."""

    origin_m: tuple[float, float]
    cell_m: float
    shape: tuple[int, int]  # (NX, NY)
    zones: list[str]  # machine ids then "none"
    zone_share: np.ndarray  # (NX * NY, Z) share of each cell's area in each zone (rows sum to 1)
    walkable: np.ndarray  # (NX, NY) prior weight: 1 on the floor, small inside machines
    receivers: list[str]
    receiver_xyz: np.ndarray  # (R, 3)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x_m, y_m)`` of every cell, each ``(NX, NY)``."""
        xs = self.origin_m[0] + (np.arange(self.shape[0]) + 0.5) * self.cell_m
        ys = self.origin_m[1] + (np.arange(self.shape[1]) + 0.5) * self.cell_m
        return np.meshgrid(xs, ys, indexing="ij")

    def log_distance(self, beacon_height_m: float) -> np.ndarray:
        """``10 log10(d)`` from every cell to every receiver, ``(NX, NY, R)`` (d >= 0.3 m)."""
        gx, gy = self.centres()
        r = self.receiver_xyz
        d = np.sqrt(
            (gx[..., None] - r[:, 0]) ** 2 + (gy[..., None] - r[:, 1]) ** 2 + (beacon_height_m - r[:, 2]) ** 2
        )
        log_d: npt.NDArray[np.float64] = 10 * np.log10(np.maximum(d, 0.3))
        return log_d

    def shadow(self, facings: int) -> np.ndarray:
        """Body-shadow share ``(1 - cos(bearing - facing)) / 2`` per facing, ``(F, NX, NY, R)``."""
        gx, gy = self.centres()
        r = self.receiver_xyz
        bearing = np.arctan2(r[:, 1] - gy[..., None], r[:, 0] - gx[..., None])
        return np.stack([(1 - np.cos(bearing - 2 * np.pi * k / facings)) / 2 for k in range(facings)])


def floor_grid(
    site: Site, *, cell_m: float | None = None, max_cells: int = 3000, machine_weight: float = 0.02
) -> FloorGrid:
    """The floor grid of a site.

    Parameters
    ----------
    site : Site
        Floor outline (else the extent of its features), machines and receivers.
    cell_m : float, optional
        Cell size; default: half the smallest zone side, within 0.75 .. 1.0 m, grown
        until the grid has at most ``max_cells`` cells.
    machine_weight : float
        Prior weight of a cell inside a machine's footprint (nobody stands there).

    Returns
    -------
    FloorGrid
    """
    if site.floor is not None:
        x0, y0, x1, y1 = 0.0, 0.0, float(site.floor[0]), float(site.floor[1])
    else:
        x0, y0, x1, y1 = site.floor_size()
    if cell_m is None:
        sides = [min(np.ptp([p[0] for p in m.zone]), np.ptp([p[1] for p in m.zone])) for m in site.machines]
        cell_m = float(np.clip(min(sides, default=1.5) / 2, 0.75, 1.0))
    while math.ceil((x1 - x0) / cell_m) * math.ceil((y1 - y0) / cell_m) > max_cells:
        cell_m *= 1.25
    shape = (max(1, math.ceil((x1 - x0) / cell_m)), max(1, math.ceil((y1 - y0) / cell_m)))
    zones = [*site.machine_ids, "none"]
    # Zone shares from 4 x 4 points per cell: a small zone still owns the cells it covers.
    sub = (np.arange(4) + 0.5) / 4
    counts = np.zeros((shape[0], shape[1], len(zones)))
    for sx in sub:
        for sy in sub:
            px = x0 + (np.arange(shape[0])[:, None] + sx) * cell_m + 0 * np.arange(shape[1])[None, :]
            py = y0 + (np.arange(shape[1])[None, :] + sy) * cell_m + 0 * np.arange(shape[0])[:, None]
            taken = np.zeros(shape, dtype=bool)
            for k, m in enumerate(site.machines):  # the first machine wins overlaps (Site.zone_at)
                inside = polygon_mask(px, py, m.zone) & ~taken
                counts[..., k] += inside
                taken |= inside
            counts[..., -1] += ~taken
    share = (counts / counts.sum(axis=2, keepdims=True)).reshape(-1, len(zones))
    walk = np.ones(shape)
    gx = x0 + (np.arange(shape[0])[:, None] + 0.5) * cell_m + 0 * np.arange(shape[1])[None, :]
    gy = y0 + (np.arange(shape[1])[None, :] + 0.5) * cell_m + 0 * np.arange(shape[0])[:, None]
    for m in site.machines:
        if m.position is None:
            continue
        a = np.deg2rad(m.rotation_deg)
        dx, dy = gx - m.centre[0], gy - m.centre[1]
        u = dx * np.cos(a) + dy * np.sin(a)
        v = -dx * np.sin(a) + dy * np.cos(a)
        inside = (np.abs(u) < m.footprint[0] / 2) & (np.abs(v) < m.footprint[1] / 2)
        walk[inside & (share[:, -1].reshape(shape) > 0.5)] = machine_weight
    rec = np.array([r.position for r in site.receivers], dtype="float64").reshape(-1, 3)
    return FloorGrid(
        (float(x0), float(y0)), float(cell_m), shape, zones, share, walk, [r.id for r in site.receivers], rec
    )


def _kernel(sd_cells: float) -> np.ndarray:
    reach = int(np.ceil(3 * sd_cells)) + 1
    d = np.arange(-reach, reach + 1)
    g: npt.NDArray[np.float64] = np.exp(-0.5 * (d / max(sd_cells, 1e-6)) ** 2)
    return (g / float(g.sum())).astype(np.float32)


def _band(kernel: np.ndarray, n: int) -> np.ndarray:
    """``(n, n)`` matrix ``M`` with ``(M @ v)[i] = sum_d kernel[d] v[i - d + reach]`` (zero outside)."""
    reach = len(kernel) // 2
    m = np.zeros((n, n), dtype=np.float32)
    for d, k in enumerate(kernel):
        off = d - reach
        idx = np.arange(max(0, off), min(n, n + off))
        m[idx, idx - off] = k
    return m


@dataclass
class Track:
    """One beacon's evidence for :func:`smooth`."""

    loglik: Callable[[np.ndarray], np.ndarray]  # steps -> (len(steps), F, NX, NY) log-likelihoods
    n_steps: int
    clamp: np.ndarray | None = None  # (n_steps,) zone of a presence event given to it, else -1


def smooth(
    tracks: list[Track],
    grid: FloorGrid,
    facings: int,
    motion: Motion | None = None,
    *,
    batch_bytes: float = 96e6,
) -> list[np.ndarray]:
    """Zone posterior of every second of every track, by forward-backward over (motion, facing, cell).

    Parameters
    ----------
    tracks : list of Track
        ``loglik(steps)`` gives each step's log-likelihood in each (facing, cell) state
        (float32 is enough; steps without evidence give zeros); ``clamp`` marks presence
        events: cells outside that zone keep :data:`CLAMP_OUTSIDE` of their likelihood.
    grid : FloorGrid
        The floor.
    facings : int
        ``F``, the number of facing directions in the likelihood.
    motion : Motion, optional
        Stand/walk model and chunking.
    batch_bytes : float
        Memory for the forward messages of one batch of chunks (all tracks' chunks are
        batched together).

    Returns
    -------
    list of numpy.ndarray
        Per track, ``(n_steps, Z)`` zone probabilities (rows sum to 1).
    """
    motion = motion or Motion()
    nx, ny = grid.shape
    nz = len(grid.zones)
    chunk, margin = motion.chunk_s, motion.margin_s
    length = chunk + 2 * margin
    cells = nx * ny
    # The walking step as two banded matrices (one per floor axis): a matrix product is far
    # faster than a small convolution on these array sizes.
    kx = _band(_kernel(motion.walk_sd_m / grid.cell_m), nx)
    ky = _band(_kernel(motion.walk_sd_m / grid.cell_m), ny)
    walk = grid.walkable.astype(np.float32)
    stop_w = 1.0 + (motion.zone_stop_weight - 1.0) * (1.0 - grid.zone_share[:, -1]).reshape(nx, ny)
    p_stop = np.clip(motion.p_stop * stop_w, 0.0, 0.9).astype(np.float32)
    keep_walk = (1 - p_stop).astype(np.float32)
    p_go = np.float32(motion.p_go)
    share = grid.zone_share.astype(np.float32)  # (cells, Z)
    outside = CLAMP_OUTSIDE + (1 - CLAMP_OUTSIDE) * share.T.reshape(nz, nx, ny)  # per zone

    other = np.float32(motion.turn_stand / max(facings - 1, 1))
    same = np.float32(1 - motion.turn_stand - other)
    inv_f = np.float32(1.0 / facings)
    stay = 1 - p_go
    stop_f = p_stop * inv_f

    # A stander keeps a facing (and turns now and then); a walker's facing is drawn afresh each
    # second (its likelihood is the mean over facings), so only one walking layer is blurred.
    # Both passes work in place on step-major buffers (each step's messages contiguous): at
    # these sizes the time is in the elementwise passes, not in the blur's matrix products.
    def forward(st: np.ndarray, wk: np.ndarray, out_st: np.ndarray, out_wk: np.ndarray) -> None:
        total = st.sum(axis=1, keepdims=True)
        if facings > 1:  # turning
            np.multiply(st, same, out=out_st)
            out_st += other * total
            out_st *= stay
        else:
            np.multiply(st, stay, out=out_st)
        out_st += stop_f * wk
        out_st *= walk
        wk2 = keep_walk * wk
        wk2 += p_go * total
        np.multiply(np.matmul(kx, wk2 @ ky.T), walk, out=out_wk)

    def backward(bs: np.ndarray, bw: np.ndarray) -> np.ndarray:
        """``bs``, ``bw``: the next step's messages times its likelihood, updated in place."""
        bs *= walk
        bw *= walk
        cw = np.matmul(kx.T, bw @ ky)
        np.multiply(stop_f, bs.sum(axis=1, keepdims=True), out=bw)
        bw += keep_walk * cw
        bs *= stay
        if facings > 1:  # turning
            total = bs.sum(axis=1, keepdims=True)
            bs *= same
            bs += other * total
        bs += p_go * cw
        return bw

    jobs = [(ti, a) for ti, tr in enumerate(tracks) for a in range(0, tr.n_steps, chunk)]
    per_chunk = length * (2 * facings + 1) * cells * 4
    batch = max(1, int(batch_bytes // per_chunk))
    outs = [np.zeros((tr.n_steps, nz)) for tr in tracks]
    # One buffer for every batch's likelihoods and forward messages: fresh memory costs a page
    # fault per 4 kB at first touch, a tenth of the smoother's time when each batch allocated.
    layers = (facings, facings, 1, 1)  # lik, fst, fwk, lik_w
    space = np.empty(length * min(batch, len(jobs)) * sum(layers) * cells, dtype=np.float32)
    for b0 in range(0, len(jobs), batch):
        part = jobs[b0 : b0 + batch]
        k_n = len(part)
        ends = np.cumsum([0, *(length * k_n * f * cells for f in layers)])
        lik, fst, fwk, lik_w = (
            space[a:b].reshape(length, k_n, f, nx, ny)
            for a, b, f in zip(ends[:-1], ends[1:], layers, strict=True)
        )
        for ti in sorted({t for t, _ in part}):
            rows = [i for i, (t, _) in enumerate(part) if t == ti]  # consecutive
            tr = tracks[ti]
            idx = np.array([part[i][1] for i in rows])[:, None] - margin + np.arange(length)[None, :]
            good = (idx >= 0) & (idx < tr.n_steps)
            src = np.clip(idx, 0, tr.n_steps - 1)
            ll = tr.loglik(src.ravel()).reshape(len(rows), length, facings, nx, ny)
            top = ll.reshape(len(rows), length, -1).max(axis=2)
            np.subtract(ll, top[..., None, None, None], out=ll)
            part_lik = lik[:, rows[0] : rows[-1] + 1].swapaxes(0, 1)  # a view: (rows, length, ...)
            np.exp(ll, out=part_lik, dtype=np.float32)
            del ll
            part_lik[~good] = 1.0
            if tr.clamp is not None:
                cz = tr.clamp[src]
                sel = (cz >= 0) & good
                part_lik[sel] *= outside[cz[sel]][:, None]
        np.mean(lik, axis=2, keepdims=True, out=lik_w)
        np.multiply(walk * np.float32(0.5 / facings), lik[0], out=fst[0])
        np.multiply(walk * np.float32(0.5), lik_w[0], out=fwk[0])
        for j in range(length):
            st, wk = fst[j], fwk[j]
            if j:
                forward(fst[j - 1], fwk[j - 1], st, wk)
                st *= lik[j]
                wk *= lik_w[j]
            norm = (st.reshape(k_n, -1).sum(axis=1) + wk.reshape(k_n, -1).sum(axis=1))[:, None, None, None]
            norm += np.float32(1e-30)
            st /= norm
            wk /= norm
        bs = np.ones((k_n, facings, nx, ny), dtype=np.float32)
        bw = np.ones((k_n, 1, nx, ny), dtype=np.float32)
        post = np.empty((length, k_n, nz), dtype=np.float32)
        for j in range(length - 1, -1, -1):
            if j < length - 1:
                bs *= lik[j + 1]
                bw *= lik_w[j + 1]
                bw = backward(bs, bw)
                norm = (bs.reshape(k_n, -1).sum(axis=1) + bw.reshape(k_n, -1).sum(axis=1))[
                    :, None, None, None
                ]
                norm += np.float32(1e-30)
                bs /= norm
                bw /= norm
            p = (fst[j] * bs).sum(axis=1) + fwk[j][:, 0] * bw[:, 0]
            post[j] = p.reshape(k_n, cells) @ share
        for i, (ti, a) in enumerate(part):
            n = min(chunk, tracks[ti].n_steps - a)
            outs[ti][a : a + n] = post[margin : margin + n, i]
    for o in outs:
        o /= np.maximum(o.sum(axis=1, keepdims=True), 1e-30)
    return outs
