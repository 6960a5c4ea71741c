"""Per-move locator lag: each reported zone change gets its own lag, from its own evidence.

The commercial locator reports every zone change late, by a lag that changes from one move
to the next (the pilot's camera checks: 11 s, then 85 s three minutes later, then 6 s). A
report of zone ``z_j`` at ``r_j`` says the worker entered ``z_j`` at ``tau_j = r_j - lag_j``.
The model behind :func:`locator_track`:

* the lags are independent draws from the worker's lag distribution ``P_lag`` (fitted from
  the recording by EM, starting from a broad prior);
* the true changes keep the reports' order (``tau_j <= tau_{j+1}``);
* every second carries evidence about the zone: a press, a pressure excursion or a restart at
  machine M attributed to this worker says "at M" (a penalty on every other zone), and RSSI,
  where the beacon is heard, adds its (tempered) zone posterior.

The exact posterior of every ``tau_j`` (a segmentation of the timeline into the reported
zones) is computed by a forward-backward pass over the candidate change times
(``r_j - max_lag_s .. r_j``, one per grid cell), in O(reports x candidates). Where a move has
evidence, its lag is pinned by it; where it has none, its posterior is the worker's lag
distribution (restricted by the neighbouring moves) and the zone confidence around the change
is low accordingly. Per second, the zone with the largest posterior probability is taken, and
that probability is its confidence.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from twin_server.analysis.align import Grid

__all__ = [
    "LocatorTrack",
    "entry_lag_median",
    "event_accuracy",
    "first_events",
    "fit_share",
    "initial_lag_pmf",
    "lag_segments",
    "locator_track",
    "neighbour_pairs",
    "neighbour_share",
    "presence_evidence",
    "repair_unexplained",
    "rssi_confusion_evidence",
    "rssi_weight",
    "steady_lag_pmf",
    "sure_zone_cells",
]

_NEG = -1e18
#: Refits of the lag distribution (EM) before the final pass.
LAG_EM_ITERATIONS = 2
#: RSSI gets lag weight only when it names the right machine at more than this share of the
#: presence events (full weight at 90 %); set on the tuning draws (0.5 let bad RSSI drag lags).
RSSI_RIGHT_FROM = 0.8


@dataclass
class LocatorTrack:
    """What the locator stream says, once each report's lag is estimated.

    Attributes
    ----------
    codes : numpy.ndarray
        Per cell, the most probable zone code (``-1`` before the first report: unknown).
    confidence : numpy.ndarray
        Per cell, the posterior probability of that zone.
    posterior : numpy.ndarray
        ``(n, Z + 1)`` per-cell zone probabilities; the last column is "before the first report".
    report_t : numpy.ndarray
        Times of the reports used (one per change; repeats of the same zone dropped).
    report_code : numpy.ndarray
        Their zone codes.
    lag_s : numpy.ndarray
        Posterior median lag of each report.
    lag_iqr_s : numpy.ndarray
        Interquartile range of each report's lag posterior (large = no evidence).
    change_t : numpy.ndarray
        Posterior median true time of each change.
    lag_pmf : numpy.ndarray
        The fitted lag distribution over ``0 .. max_lag_s`` (one bin per grid step).
    neighbour_share : float
        Weight given to the neighbouring moves' lag (0: every move on its own).
    dropped : int
        Reports dropped as stale (overtaken).
    neighbour_pairs : tuple of numpy.ndarray
        The pinned pairs' densities behind the share (:func:`neighbour_pairs`), for pooling.
    log_evidence : float
        Log likelihood of the reports and the evidence under the lag distribution of the
        last pass, before any stale report is dropped (nats; comparable between lag
        distributions on the same data).
    """

    codes: np.ndarray
    confidence: np.ndarray
    posterior: np.ndarray
    report_t: np.ndarray
    report_code: np.ndarray
    lag_s: np.ndarray
    lag_iqr_s: np.ndarray
    change_t: np.ndarray
    lag_pmf: np.ndarray
    neighbour_share: float = 0.0
    dropped: int = 0
    neighbour_pairs: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))
    log_evidence: float = 0.0


def initial_lag_pmf(
    max_lag_s: float, step_s: float = 1.0, median_s: float = 20.0, sigma: float = 0.7, floor: float = 0.1
) -> np.ndarray:
    """A broad prior over lags ``0 .. max_lag_s``: log-normal around ``median_s`` plus a uniform floor."""
    lags = np.arange(0.0, max_lag_s + step_s / 2, step_s)
    x = np.maximum(lags, 0.5 * step_s)

    def lognormal(sd: float) -> np.ndarray:
        dens: npt.NDArray[np.float64] = np.exp(-0.5 * (np.log(x / median_s) / sd) ** 2) / x
        return dens / float(dens.sum())

    # The floor is a wider log-normal, not uniform: a lag of minutes stays possible but rare.
    out = (1 - floor) * lognormal(sigma) + floor * lognormal(2.0 * sigma)
    return out / float(out.sum())


def steady_lag_pmf(pmf: np.ndarray, step_s: float, sd_s: float = 3.0, floor: float = 0.02) -> np.ndarray:
    """A lag that holds: narrow around ``pmf``'s median (sd ``sd_s``), with ``floor`` of ``pmf`` kept."""
    lags = np.arange(len(pmf)) * step_s
    med = float(np.searchsorted(np.cumsum(pmf) / pmf.sum(), 0.5)) * step_s
    bump: npt.NDArray[np.float64] = np.exp(-0.5 * ((lags - med) / sd_s) ** 2)
    out = (1 - floor) * bump / float(bump.sum()) + floor * pmf / float(pmf.sum())
    return out / float(out.sum())


def presence_evidence(
    anchors: list[tuple[int, int]], n: int, n_zones: int, penalty: float = 6.0
) -> np.ndarray:
    """Per-cell log-likelihood of each zone from presence events ``(cell, machine code)``.

    At an event's cell every zone but the event's machine loses ``penalty`` (nats): not
    infinite, since an event may be given to the wrong worker.
    """
    ell = np.zeros((n, n_zones))
    for k, code in anchors:
        if 0 <= k < n:
            row = np.full(n_zones, -penalty)
            row[code] = 0.0
            ell[k] = np.minimum(ell[k], row)
    return ell


def _dedupe(
    loc_t: np.ndarray, loc_code: np.ndarray, none_code: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[float]]]:
    """Reports in time order, with a lost change restored where a report repeats a zone.

    A report says the beacon *entered* a zone, so a second report of the same machine means
    the worker left it in between and that report was lost: a virtual ``none`` report (its
    time free over the whole lag range, flagged in the third array) is put before it. A
    repeated ``none`` is dropped (which machine was visited is unknown), but its time is kept
    in the fourth list, per report: if the ``none`` before it turns out stale (overtaken, see
    :func:`_drop_stale`), the repeat is the exit.
    """
    order = np.argsort(loc_t, kind="stable")
    t, c = loc_t[order], loc_code[order]
    rt: list[float] = []
    rc: list[int] = []
    virtual: list[bool] = []
    repeats: list[list[float]] = []
    for ti, ci in zip(t, c, strict=True):
        if rc and ci == rc[-1]:
            if ci == none_code or none_code < 0:
                repeats[-1].append(float(ti))
                continue
            rt.append(float(ti))
            rc.append(none_code)
            virtual.append(True)
            repeats.append([])
        rt.append(float(ti))
        rc.append(int(ci))
        virtual.append(False)
        repeats.append([])
    return np.array(rt), np.array(rc, dtype=np.int64), np.array(virtual, dtype=bool), repeats


def _logcumsumexp(x: np.ndarray) -> np.ndarray:
    return np.logaddexp.accumulate(x) if len(x) else x


def _candidates(r: np.ndarray, grid: Grid, n_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last candidate cell of each report (a change at the start of cell ``k``)."""
    hi = np.floor((r - grid.start) / grid.step_s).astype(np.int64)
    lo = hi - (n_lag - 1)
    return lo, hi


def _log_prior(r: float, lo: int, hi: int, grid: Grid, log_pmf: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Log prior of each candidate cell of one report, candidates clipped to ``[0, n]``.

    Candidates before the window collapse onto cell 0 (their mass summed), after it onto ``n``.
    """
    ks = np.arange(lo, hi + 1)
    lag_bin = np.round((r - (grid.start + ks * grid.step_s)) / grid.step_s).astype(np.int64)
    lp = log_pmf[np.clip(lag_bin, 0, len(log_pmf) - 1)]
    n = grid.n
    a, b = max(lo, 0), min(hi, n)
    if a > b:  # the whole range lies outside the window
        k = 0 if hi < 0 else n
        return np.array([np.logaddexp.reduce(lp)]), k, k
    out = lp[a - lo : b - lo + 1].copy()
    if lo < 0:
        out[0] = np.logaddexp.reduce(lp[: a - lo + 1])
    if hi > n:
        out[-1] = np.logaddexp.reduce(lp[b - lo :])
    return out, a, b


def _report_priors(
    r: np.ndarray,
    grid: Grid,
    log_pmf: np.ndarray,
    first_event: np.ndarray | None,
    arrival_scale_s: float,
    virtual: np.ndarray | None = None,
) -> tuple[list[np.ndarray], list[int]]:
    """Log prior over the candidate change cells of every report.

    ``log_pmf`` is one lag distribution for all reports, or one row per report; a
    ``virtual`` report (a lost change) takes any time in its range alike.
    ``first_event[j]`` (cell, -1 if none): the first presence event in the zone report ``j``
    enters; the worker arrived shortly before it (exponential prior, ``arrival_scale_s``).
    """
    n_lag = log_pmf.shape[-1]
    lo_all, hi_all = _candidates(r, grid, n_lag)
    priors, los = [], []
    for j in range(len(r)):
        row = log_pmf if log_pmf.ndim == 1 else log_pmf[j]
        if virtual is not None and virtual[j]:
            # A lost change: anywhere from the previous report's earliest time to this one.
            a = int(np.clip(lo_all[j - 1] if j > 0 else lo_all[j], 0, grid.n))
            b = int(np.clip(hi_all[j], a, grid.n))
            priors.append(np.full(b - a + 1, -np.log(b - a + 1)))
            los.append(a)
            continue
        lp, a, _b = _log_prior(float(r[j]), int(lo_all[j]), int(hi_all[j]), grid, row)
        if first_event is not None and first_event[j] >= 0:
            ks = a + np.arange(len(lp))
            lp = lp - np.maximum(first_event[j] - ks, 0) * grid.step_s / arrival_scale_s
        priors.append(lp)
        los.append(a)
    return priors, los


@dataclass(frozen=True)
class LagChain:
    """Consecutive moves sharing their lag: ``P(lag_{j+1} | lag_j) = rho N(lag_j, sd) + (1 - rho) P_lag``.

    ``rho`` is the chance that the next move keeps the lag (within ``sd_s``) of this one, as
    in a locator whose lag holds for minutes and then jumps; 0 is independent per-move lags.
    The Gaussian part is cut at ``5 sd`` and is applied as a short convolution; ``dense``
    builds the full pair matrix instead (the reference, for tests).
    """

    rho: float
    r: np.ndarray
    log_pmf: np.ndarray
    virtual: np.ndarray
    grid: Grid
    sd_s: float = 3.0
    dense: bool = False

    def coupled(self, j: int) -> bool:
        """Whether reports ``j`` and ``j + 1`` are coupled (a lost change is not)."""
        return self.rho > 0 and not (self.virtual[j] or self.virtual[j + 1])

    def inv_pmf(self, j: int, ks: np.ndarray) -> np.ndarray:
        """``1 / P_lag`` of report ``j``'s lag at each candidate cell."""
        lag = self.r[j] - (self.grid.start + ks * self.grid.step_s)
        bins = np.clip(np.round(lag / self.grid.step_s).astype(np.int64), 0, len(self.log_pmf) - 1)
        out: np.ndarray = np.exp(np.minimum(-self.log_pmf[bins], 50.0))
        return out

    def kernel(self, j: int) -> tuple[int, np.ndarray] | None:
        """Offsets ``m = k_{j+1} - k_j`` (cells, from the first returned) and ``N`` per cell."""
        step = self.grid.step_s
        gap = float(self.r[j + 1] - self.r[j])  # lag_{j+1} - lag_j = gap - m step
        m_lo = max(int(np.floor((gap - 5 * self.sd_s) / step)), 0)
        m_hi = int(np.ceil((gap + 5 * self.sd_s) / step))
        if m_hi < m_lo:
            return None
        d = gap - np.arange(m_lo, m_hi + 1) * step
        return m_lo, np.exp(-0.5 * (d / self.sd_s) ** 2) * step / (self.sd_s * np.sqrt(2 * np.pi))

    def factor(self, j: int, ka: np.ndarray, kb: np.ndarray) -> np.ndarray:
        """Dense ``c(a, b) = P(change j+1 at b | change j at a) / P_lag(b)``, zero for ``b < a``."""
        step = self.grid.step_s
        d = (self.r[j + 1] - (self.grid.start + kb * step))[None, :] - (
            self.r[j] - (self.grid.start + ka * step)
        )[:, None]
        gauss = np.exp(-0.5 * (d / self.sd_s) ** 2) * step / (self.sd_s * np.sqrt(2 * np.pi))
        out: np.ndarray = (1.0 - self.rho) + self.rho * gauss * self.inv_pmf(j + 1, kb)[None, :]
        out[kb[None, :] < ka[:, None]] = 0.0  # changes keep their order
        return out


def _chain_forward(
    chain: LagChain, j: int, x: np.ndarray, kp: np.ndarray, ks: np.ndarray, sep: np.ndarray
) -> np.ndarray:
    """``log sum_a exp(x_a) c(a, b)`` at the cells ``ks`` of report ``j + 1`` (``sep``: unchained)."""
    top = float(x.max())
    if chain.dense:
        out: np.ndarray = np.log(np.maximum(np.exp(x - top) @ chain.factor(j, kp, ks), 1e-300)) + top
        return out
    total = (1.0 - chain.rho) * np.exp(sep - top)
    kern = chain.kernel(j)
    if kern is not None:
        m_lo, w = kern
        conv = np.convolve(np.exp(x - top), w)
        idx = ks - m_lo - kp[0]
        ok = (idx >= 0) & (idx < len(conv))
        gauss = np.where(ok, conv[np.clip(idx, 0, len(conv) - 1)], 0.0)
        total += chain.rho * gauss * chain.inv_pmf(j + 1, ks)
    return np.log(np.maximum(total, 1e-300)) + top


def _chain_backward(
    chain: LagChain, j: int, g: np.ndarray, ks: np.ndarray, kn: np.ndarray, sep: np.ndarray
) -> np.ndarray:
    """``log sum_b c(a, b) exp(g_b)`` at the cells ``ks`` of report ``j`` (``sep``: unchained)."""
    top = float(g.max())
    if chain.dense:
        dense: np.ndarray = chain.factor(j, ks, kn) @ np.exp(g - top)
        out: np.ndarray = np.log(np.maximum(dense, 1e-300)) + top
        return out
    total = (1.0 - chain.rho) * np.exp(sep - top)
    kern = chain.kernel(j)
    if kern is not None:
        m_lo, w = kern
        h = np.exp(g - top) * chain.inv_pmf(j + 1, kn)
        conv = np.convolve(h, w[::-1])
        idx = ks + m_lo - kn[0] + len(w) - 1
        ok = (idx >= 0) & (idx < len(conv))
        total += chain.rho * np.where(ok, conv[np.clip(idx, 0, len(conv) - 1)], 0.0)
    return np.log(np.maximum(total, 1e-300)) + top


def _forward_backward(
    z: np.ndarray,
    cum: np.ndarray,
    priors: list[np.ndarray],
    los: list[int],
    chain: LagChain | None = None,
    forward_only: bool = False,
) -> tuple[list[np.ndarray], float]:
    """Posterior over the change cell of every report, and the log evidence.

    ``cum[k, z]``: evidence of zone ``z`` summed over cells ``< k``; ``priors[j]`` over the
    cells ``los[j] ..`` (see :func:`_report_priors`); ``chain``: consecutive lags coupled;
    ``forward_only``: the log evidence alone (no posteriors).
    """
    unknown = cum.shape[1] - 1
    J = len(priors)
    alpha: list[np.ndarray] = []
    for j in range(J):
        ks = los[j] + np.arange(len(priors[j]))
        prev = unknown if j == 0 else int(z[j - 1])
        if j == 0:
            a_j = priors[0] + cum[ks, prev]
        else:
            kp = los[j - 1] + np.arange(len(priors[j - 1]))
            x = alpha[j - 1] - cum[kp, prev]
            s = _logcumsumexp(x)
            idx = np.minimum(ks - kp[0], len(kp) - 1)
            s_at = np.where(idx >= 0, s[np.maximum(idx, 0)], _NEG)
            if chain is not None and chain.coupled(j - 1):
                s_at = _chain_forward(chain, j - 1, x, kp, ks, s_at)
            a_j = priors[j] + cum[ks, prev] + s_at
        alpha.append(a_j)
    last_z = int(z[-1])
    ks_last = los[-1] + np.arange(len(priors[-1]))
    end = cum[-1, last_z] - cum[ks_last, last_z]
    log_z = float(np.logaddexp.reduce(alpha[-1] + end))
    if forward_only:
        return [], log_z
    beta: list[np.ndarray] = [np.zeros(0)] * J
    beta[J - 1] = end
    for j in range(J - 2, -1, -1):
        ks = los[j] + np.arange(len(priors[j]))
        kn = los[j + 1] + np.arange(len(priors[j + 1]))
        zj = int(z[j])
        g = priors[j + 1] + cum[kn, zj] + beta[j + 1]
        suffix = np.logaddexp.accumulate(g[::-1])[::-1]
        idx = ks - kn[0]
        s_at = np.where(idx < len(kn), suffix[np.clip(idx, 0, len(kn) - 1)], _NEG)
        if chain is not None and chain.coupled(j):
            s_at = _chain_backward(chain, j, g, ks, kn, s_at)
        beta[j] = s_at - cum[ks, zj]
    posts = []
    for j in range(J):
        lp = alpha[j] + beta[j] - log_z
        p = np.exp(lp - lp.max())
        posts.append(p / p.sum())
    return posts, log_z


def _summaries(
    posts: list[np.ndarray], los: list[int], r: np.ndarray, grid: Grid
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior median lag and its IQR per report (IQR inf for changes before the window)."""
    med = np.empty(len(r))
    iqr = np.empty(len(r))
    for j, (p, lo) in enumerate(zip(posts, los, strict=True)):
        med[j] = r[j] - (grid.start + _quantile_cell(p, lo, 0.5) * grid.step_s)
        iqr[j] = (_quantile_cell(p, lo, 0.75) - _quantile_cell(p, lo, 0.25)) * grid.step_s
        if lo == 0 and p[0] >= 0.5:
            iqr[j] = np.inf
    return med, iqr


def neighbour_pairs(
    r: np.ndarray,
    lag: np.ndarray,
    iqr: np.ndarray,
    pmf: np.ndarray,
    step_s: float,
    *,
    pinned_iqr_s: float = 4.0,
    within_s: float = 600.0,
    sd_s: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Densities of each pinned move's lag next to the previous pinned move's, and under ``P_lag``.

    Pairs are consecutive moves whose lags the evidence pins (IQR <= ``pinned_iqr_s``) and
    that lie within ``within_s``: ``near`` is N(second; first, ``sd_s``), ``far`` is
    ``P_lag(second)``.
    """
    keep = np.flatnonzero(iqr <= pinned_iqr_s)
    pairs = [(lag[a], lag[b]) for a, b in itertools.pairwise(keep) if r[b] - r[a] <= within_s]
    a = np.array([p[0] for p in pairs], dtype="float64")
    b = np.array([p[1] for p in pairs], dtype="float64")
    near = np.exp(-0.5 * ((b - a) / sd_s) ** 2) / (sd_s * np.sqrt(2 * np.pi))
    far = pmf[np.clip(np.round(b / step_s).astype(np.int64), 0, len(pmf) - 1)] / step_s
    return near, far


def fit_share(near: np.ndarray, far: np.ndarray, min_pairs: int = 5) -> float:
    """EM fit of ``rho`` in ``rho x near + (1 - rho) x far`` (0 below 0.3 or with few pairs)."""
    if len(near) < min_pairs:
        return 0.0
    rho = 0.5
    for _ in range(50):
        resp = rho * near / (rho * near + (1 - rho) * far + 1e-300)
        rho = float(resp.mean())
    return rho if rho >= 0.3 else 0.0


def neighbour_share(r: np.ndarray, lag: np.ndarray, iqr: np.ndarray, pmf: np.ndarray, step_s: float) -> float:
    """How much a move's lag follows the previous well-determined move's, from the data.

    Over consecutive pairs of pinned moves (:func:`neighbour_pairs`) the second lag is
    modelled as ``rho x N(first, 3 s) + (1 - rho) x P_lag``; ``rho`` is fitted by EM.
    Independent lags give ``rho`` near 0; a locator whose lag holds for minutes gives ``rho``
    near 1.
    """
    return fit_share(*neighbour_pairs(r, lag, iqr, pmf, step_s))


def _neighbour_priors(
    r: np.ndarray,
    lag: np.ndarray,
    iqr: np.ndarray,
    pmf: np.ndarray,
    rho: float,
    step_s: float,
    *,
    pinned_iqr_s: float = 4.0,
    within_s: float = 600.0,
    sd_s: float = 3.0,
) -> np.ndarray:
    """Per-report log lag prior: ``rho`` x around the nearest pinned move's lag, else ``P_lag``."""
    lags = np.arange(len(pmf)) * step_s
    out = np.tile(np.log(pmf), (len(r), 1))
    keep = np.flatnonzero(iqr <= pinned_iqr_s)
    if len(keep) == 0:
        return out
    for j in range(len(r)):
        others = keep[keep != j]
        if len(others) == 0:
            continue
        near = others[np.argmin(np.abs(r[others] - r[j]))]
        if abs(r[near] - r[j]) > within_s:
            continue
        bump = np.exp(-0.5 * ((lags - lag[near]) / sd_s) ** 2)
        out[j] = np.log(np.maximum((1 - rho) * pmf + rho * bump / bump.sum(), 1e-300))
    return out


#: One pass of the move model over a worker's reports: each move's posterior over cells, the
#: first cell of each, and the log evidence.
Pass = tuple[list[np.ndarray], list[int], float]
#: ``run(report_t, zone, first_event, log_pmf, virtual)`` -> :data:`Pass`.
RunPass = Callable[[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray], Pass]


def _drop_stale(
    r: np.ndarray,
    z: np.ndarray,
    first: np.ndarray | None,
    log_pmf: np.ndarray,
    virtual: np.ndarray,
    posts: list[np.ndarray],
    los: list[int],
    run: RunPass,
    grid: Grid,
    pmf: np.ndarray,
    gain: float,
    max_rounds: int = 20,
    events: tuple[np.ndarray, np.ndarray] | None = None,
    repeats: list[list[float]] | None = None,
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, list[np.ndarray], list[int], int
]:
    """Drop reports that look overtaken or stale, one at a time, while that pays off.

    A candidate is a report whose lag comes out beyond the fitted distribution's 99th
    percentile or below its 1st, or whose stretch holds one of the worker's presence
    ``events`` (cells and machine codes, sorted by cell) at another zone (an overtaken
    ``none`` can have a plain lag), or a neighbour of one; it is dropped if the log evidence
    rises by more than ``gain`` without it. A ``none`` report with ``repeats`` (the later
    ``none`` reports :func:`_dedupe` folded into it) may instead move onto its first repeat:
    the overtaken report is gone, the exit the repeat reports stays. Each report discarded
    pays ``gain``, so dropping it with its repeats must beat that by ``gain`` per repeat
    (tuning draw 1006: an exit reported 80 s late, after the next arrival's report, was
    dropped with the real exit behind it, and the worker stayed at the machine for 30 min).
    """
    rep = [list(x) for x in repeats] if repeats is not None else [[] for _ in range(len(r))]
    cdf = np.cumsum(pmf)
    lo_q = float(np.searchsorted(cdf, 0.01)) * grid.step_s
    hi_q = float(np.searchsorted(cdf, 0.99)) * grid.step_s
    dropped = 0
    log_z: float | None = None
    for _round in range(max_rounds):
        med, _iqr = _summaries(posts, los, r, grid)
        odd = np.flatnonzero((med > hi_q) | (med < lo_q))
        if events is not None:
            # Also a report whose stretch a presence event of another zone falls in (an
            # overtaken `none` can have a plain lag and still claim the worker left).
            cell = np.maximum.accumulate(np.floor((r - med - grid.start) / grid.step_s).astype(np.int64))
            ends = np.append(cell[1:], np.iinfo(np.int64).max)
            ek, ec = events
            a, b = np.searchsorted(ek, cell), np.searchsorted(ek, ends)
            odd = np.union1d(odd, [j for j in range(len(r)) if np.any(ec[a[j] : b[j]] != z[j])])
        cands = sorted({int(c) for o in odd for c in (o - 1, o, o + 1) if 1 <= c < len(r)})
        if not cands:
            break
        if log_z is None:
            log_z = run(r, z, first, log_pmf, virtual)[2]
        best: np.ndarray | None = None
        best_gain = gain
        best_state: tuple[Pass, np.ndarray, np.ndarray | None] | None = None
        best_r, best_moved = r, -1  # the report times to keep; which report moved (-1: none)
        for c in cands:
            # Each report discarded must pay ``gain``: dropping one that stands for repeats
            # discards them too, moving it to its first repeat discards one.
            if rep[c]:
                moved = r.copy()
                moved[c] = rep[c][0]
                got = run(moved, z, first, log_pmf, virtual)
                if got[2] - log_z > best_gain:
                    best, best_gain, best_r, best_moved = (
                        np.ones(len(r), dtype=bool),
                        got[2] - log_z,
                        moved,
                        c,
                    )
                    best_state = (got, log_pmf, first)
            keep = np.ones(len(r), dtype=bool)
            keep[c] = False
            if c + 1 < len(r) and z[c - 1] == z[c + 1]:
                keep[c + 1] = False  # the zones on both sides are the same: one stretch
            lp = log_pmf if log_pmf.ndim == 1 else log_pmf[keep]
            f = first[keep] if first is not None else None
            got = run(r[keep], z[keep], f, lp, virtual[keep])
            g_drop = got[2] - log_z - gain * len(rep[c])
            if g_drop > best_gain:
                best, best_gain, best_state, best_r, best_moved = keep, g_drop, (got, lp, f), r, -1
        if best is None or best_state is None:  # set together
            break
        (posts, los, log_z), log_pmf, first = best_state
        if best_moved >= 0:
            rep[best_moved] = rep[best_moved][1:]
        r, z, virtual = best_r[best], z[best], virtual[best]
        rep = [x for x, k in zip(rep, best, strict=True) if k]
        dropped += 1
    return r, z, first, log_pmf, virtual, posts, los, dropped


def _sorted_events(anchors: list[tuple[int, int]] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Presence events as ``(cells, codes)`` sorted by cell (None without any)."""
    if not anchors:
        return None
    arr = np.array(sorted(anchors), dtype=np.int64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def _quantile_cell(p: np.ndarray, lo: int, q: float) -> float:
    c = np.cumsum(p)
    return float(lo + int(np.searchsorted(c, q * c[-1])))


def first_events(
    r: np.ndarray, z: np.ndarray, anchors: list[tuple[int, int]], grid: Grid, none_code: int, max_lag_s: float
) -> np.ndarray:
    """Per report, the cell of the first presence event in the machine zone it enters (-1: none).

    Events count from ``max_lag_s`` before the report (the earliest the worker can have
    entered) until the next report (the latest it can still be there).
    """
    out = np.full(len(r), -1, dtype=np.int64)
    if not anchors:
        return out
    ak = np.array([k for k, _ in anchors])
    ac = np.array([c for _, c in anchors])
    order = np.argsort(ak)
    ak, ac = ak[order], ac[order]
    cells = np.floor((r - grid.start) / grid.step_s).astype(np.int64)
    lag_cells = round(max_lag_s / grid.step_s)
    for j in range(len(r)):
        if z[j] == none_code:
            continue
        nxt = cells[j + 1] if j + 1 < len(r) else grid.n
        a, b = np.searchsorted(ak, [cells[j] - lag_cells, nxt])
        hit = np.flatnonzero(ac[a:b] == z[j])
        if len(hit):
            out[j] = ak[a + hit[0]]
    return out


def _setup(
    loc_t: np.ndarray,
    loc_code: np.ndarray,
    evidence: np.ndarray,
    grid: Grid,
    anchors: list[tuple[int, int]] | None,
    none_code: int,
    max_lag_s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, list[list[float]]]:
    """Reports (deduplicated, lost changes marked), cumulative evidence, first events and the
    repeated ``none`` reports folded into each (:func:`_dedupe`)."""
    r, z, virtual, repeats = _dedupe(
        np.asarray(loc_t, dtype="float64"), np.asarray(loc_code, dtype=np.int64), none_code
    )
    n, n_z = evidence.shape
    ell = np.concatenate([evidence, np.zeros((n, 1))], axis=1)  # last column: before the first report
    cum = np.zeros((n + 1, n_z + 1))
    np.cumsum(ell, axis=0, out=cum[1:])
    first = first_events(r, z, anchors, grid, none_code, max_lag_s) if anchors else None
    return r, z, virtual, cum, first, repeats


def chain_log_evidence(
    loc_t: np.ndarray,
    loc_code: np.ndarray,
    evidence: np.ndarray,
    grid: Grid,
    lag_pmf: np.ndarray,
    chain_rhos: Sequence[float],
    *,
    max_lag_s: float = 240.0,
    anchors: list[tuple[int, int]] | None = None,
    none_code: int = -1,
    arrival_scale_s: float = 20.0,
) -> dict[float, float]:
    """Log evidence of one worker's reports and events under each lag chain (forward passes only).

    The same model as :func:`locator_track` with ``iterations=0`` and no neighbour share; a
    ``chain_rhos`` entry of 0 is independent per-move lags. The reports, evidence and priors
    are set up once for all of them. Used to choose the chain's ``rho`` by evidence.
    """
    if len(loc_t) == 0:
        return {c: 0.0 for c in chain_rhos}
    r, z, virtual, cum, first, _repeats = _setup(
        loc_t, loc_code, evidence, grid, anchors, none_code, max_lag_s
    )
    log_pmf = np.log(np.asarray(lag_pmf, dtype="float64") / np.sum(lag_pmf))
    priors, los = _report_priors(r, grid, log_pmf, first, arrival_scale_s, virtual)
    return {
        c: _forward_backward(
            z, cum, priors, los, LagChain(c, r, log_pmf, virtual, grid) if c > 0 else None, forward_only=True
        )[1]
        for c in chain_rhos
    }


def locator_track(
    loc_t: np.ndarray,
    loc_code: np.ndarray,
    evidence: np.ndarray,
    grid: Grid,
    *,
    max_lag_s: float = 240.0,
    iterations: int = LAG_EM_ITERATIONS,
    lag_pmf: np.ndarray | None = None,
    pmf_floor: float = 0.1,
    anchors: list[tuple[int, int]] | None = None,
    none_code: int = -1,
    arrival_scale_s: float = 20.0,
    share_neighbours: bool = True,
    neighbour_rho: float | None = None,
    drop_gain: float = 4.0,
    prior_moves: float = 2.0,
    chain_rho: float = 0.0,
) -> LocatorTrack | None:
    """Per-move lags and the per-second zone posterior of one worker's locator stream.

    Parameters
    ----------
    loc_t, loc_code : numpy.ndarray
        Report times (locator clock, offsets applied) and zone codes (``0 .. Z-1``).
    evidence : numpy.ndarray
        ``(grid.n, Z)`` per-cell log-likelihood of each zone (:func:`presence_evidence`,
        :func:`rssi_confusion_evidence`); zeros = no evidence.
    grid : Grid
        Common grid (true time).
    max_lag_s : float
        Largest lag considered.
    iterations : int
        EM refits of the lag distribution (each one more forward-backward pass).
    lag_pmf : numpy.ndarray, optional
        Starting lag distribution over ``0 .. max_lag_s`` in grid steps (default
        :func:`initial_lag_pmf`).
    pmf_floor : float
        Share of the refitted distribution kept at the starting one (a lag never seen stays
        possible).
    anchors, none_code, arrival_scale_s : optional
        Presence events ``(cell, machine code)`` of this worker: an entry into a machine's zone
        is taken to come shortly before the first event there (exponential prior with mean
        ``arrival_scale_s``).
    share_neighbours : bool
        Let moves close in time share their lag, as much as the moves with evidence show they
        do (:func:`neighbour_share`); with independent lags nothing is shared.
    neighbour_rho : float, optional
        That share, when known (e.g. pooled over the workers: one locator system); by default
        fitted on this worker's moves.
    prior_moves : float
        Weight of the starting distribution in the refit, in moves: a few pinned moves
        already move it.
    drop_gain : float
        A report whose removal raises the log evidence by more than this (nats) is taken as
        stale (overtaken by a later one) and dropped; 0 keeps every report.
    chain_rho : float
        Chance that a move keeps the previous move's lag (:class:`LagChain`), in the exact
        forward-backward pass; > 0 replaces ``share_neighbours``.

    Returns
    -------
    LocatorTrack or None
        None when there are no reports.
    """
    if len(loc_t) == 0:
        return None
    r, z, virtual, cum, first, repeats = _setup(
        loc_t, loc_code, evidence, grid, anchors, none_code, max_lag_s
    )
    n, n_z = evidence.shape
    pmf = initial_lag_pmf(max_lag_s, grid.step_s) if lag_pmf is None else np.asarray(lag_pmf, dtype="float64")
    pmf = pmf / pmf.sum()
    base = pmf.copy()
    n_lag = len(pmf)

    def run(
        r: np.ndarray, z: np.ndarray, first: np.ndarray | None, log_pmf: np.ndarray, virtual: np.ndarray
    ) -> Pass:
        priors, los = _report_priors(r, grid, log_pmf, first, arrival_scale_s, virtual)
        chain = None
        if chain_rho > 0 and log_pmf.ndim == 1:
            chain = LagChain(chain_rho, r, log_pmf, virtual, grid)
        posts, log_z = _forward_backward(z, cum, priors, los, chain)
        return posts, los, log_z

    for it in range(iterations + 1):
        posts, los, log_z = run(r, z, first, np.log(pmf), virtual)
        if it == iterations:
            break
        # The lag distribution from the moves' posteriors, each weighted by how much its own
        # evidence narrowed it (a move without evidence only returns the prior), plus the
        # starting distribution worth ``prior_moves`` moves.
        cdf0 = np.cumsum(pmf)
        iqr0 = max(float(np.searchsorted(cdf0, 0.75) - np.searchsorted(cdf0, 0.25)), 1.0)
        counts = np.zeros(n_lag)
        total = 0.0
        for j, (p, lo) in enumerate(zip(posts, los, strict=True)):
            if virtual[j]:
                continue
            ks = lo + np.arange(len(p))
            lag_bin = np.round((r[j] - (grid.start + ks * grid.step_s)) / grid.step_s).astype(np.int64)
            ok = (ks > 0) & (ks < n) & (lag_bin >= 0) & (lag_bin < n_lag)
            if p[ok].sum() < 0.5:
                continue
            iqr_j = _quantile_cell(p, lo, 0.75) - _quantile_cell(p, lo, 0.25)
            weight = float(np.clip(1.0 - iqr_j / iqr0, 0.0, 1.0))
            np.add.at(counts, lag_bin[ok], weight * p[ok] / p[ok].sum())
            total += weight
        if total < 1.0:
            break
        kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
        smooth = np.convolve(counts, kernel / kernel.sum(), mode="same")
        smooth *= total / max(smooth.sum(), 1e-12)
        pmf = (smooth + prior_moves * base) / (total + prior_moves)
        pmf = (1 - pmf_floor) * pmf + pmf_floor * base
        pmf /= pmf.sum()
    log_pmf = np.log(pmf)
    # Neighbouring moves share their lag only as far as the data shows they do.
    stick = 0.0
    med, iqr = _summaries(posts, los, r, grid)
    iqr[virtual] = np.inf
    pairs = neighbour_pairs(r, med, iqr, pmf, grid.step_s)
    if share_neighbours and chain_rho <= 0:
        stick = fit_share(*pairs) if neighbour_rho is None else neighbour_rho
        if stick > 0:
            log_pmf = _neighbour_priors(r, med, iqr, pmf, stick, grid.step_s)
            posts, los, log_z = run(r, z, first, log_pmf, virtual)
    # Reports out of order (overtaken) or stale: drop one where that explains the data much better.
    dropped = 0
    if drop_gain > 0:
        r, z, first, log_pmf, virtual, posts, los, dropped = _drop_stale(
            r,
            z,
            first,
            log_pmf,
            virtual,
            posts,
            los,
            run,
            grid,
            pmf,
            drop_gain,
            events=_sorted_events(anchors),
            repeats=repeats,
        )
    cdf_lag = np.cumsum(pmf)
    pmf_median = float(np.searchsorted(cdf_lag, 0.5)) * grid.step_s
    pmf_iqr = float(np.searchsorted(cdf_lag, 0.75) - np.searchsorted(cdf_lag, 0.25)) * grid.step_s
    # Per-cell zone probabilities: cell i is in segment j iff tau_j <= i < tau_{j+1}.
    prob = np.zeros((n + 1, n_z + 1))
    prob[:, n_z] = 1.0
    step = np.zeros((n + 2, n_z + 1))
    lag_med = np.empty(len(r))
    lag_iqr = np.empty(len(r))
    change = np.empty(len(r))
    for j, (p, lo) in enumerate(zip(posts, los, strict=True)):
        cdf = np.cumsum(p)
        cdf /= cdf[-1]
        hi = lo + len(p) - 1
        new, old = int(z[j]), (n_z if j == 0 else int(z[j - 1]))
        seg = slice(lo, min(hi, n) + 1)
        m = seg.stop - seg.start
        prob[seg, new] += cdf[:m]
        prob[seg, old] -= cdf[:m]
        if hi + 1 <= n:
            step[hi + 1, new] += 1.0
            step[hi + 1, old] -= 1.0
        k50 = _quantile_cell(p, lo, 0.5)
        change[j] = grid.start + k50 * grid.step_s
        lag_med[j] = r[j] - change[j]
        lag_iqr[j] = (_quantile_cell(p, lo, 0.75) - _quantile_cell(p, lo, 0.25)) * grid.step_s
        if (lo == 0 and p[0] >= 0.5) or virtual[j]:
            # A change before the recording began (e.g. the state at its start) or a lost one:
            # its lag is not observable; the worker's typical lag is the best guess.
            lag_med[j] = pmf_median
            lag_iqr[j] = pmf_iqr
    prob += np.cumsum(step, axis=0)[: n + 1]
    prob = np.clip(prob[:n], 0.0, 1.0)
    best = prob.argmax(axis=1)
    conf = prob[np.arange(n), best]
    codes = np.where(best == n_z, -1, best).astype(np.int64)
    return LocatorTrack(
        codes=codes,
        confidence=conf,
        posterior=prob,
        report_t=r,
        report_code=z,
        lag_s=lag_med,
        lag_iqr_s=lag_iqr,
        change_t=np.maximum.accumulate(change),
        lag_pmf=pmf,
        neighbour_share=stick,
        dropped=dropped,
        neighbour_pairs=pairs,
        log_evidence=float(log_z),
    )


def rssi_weight(
    labelled: list[tuple[np.ndarray, list[tuple[int, int]]]],
    max_weight: float = 0.5,
    right_from: float = 0.5,
    right_full: float = 0.9,
) -> float:
    """How much RSSI evidence to trust: by how often its most probable zone is right at the events.

    Presence events are labelled seconds ("this worker is at M"); ``labelled`` pairs each
    worker's RSSI zone posterior with its events, pooled over the workers (the radio is the
    site's, not the worker's). RSSI that names M at no more than ``right_from`` of them gets
    no weight, at ``right_full`` or more the full ``max_weight``; fewer than 5 events: none.
    """
    right = []
    for posterior, anchors in labelled:
        for k, c in anchors:
            if 0 <= k < len(posterior) and np.isfinite(posterior[k]).all() and posterior[k].sum() > 0:
                right.append(int(np.argmax(posterior[k])) == c)
    if len(right) < 5:
        return 0.0
    return float(max_weight * np.clip((np.mean(right) - right_from) / (right_full - right_from), 0.0, 1.0))


def lag_segments(track: LocatorTrack, start: float, end: float) -> list[tuple[float, float, float]]:
    """``(start, end, lag_s)`` from each change (posterior median time) to the next, over the window."""
    out: list[tuple[float, float, float]] = []
    bounds = np.clip(track.change_t, start, end)
    for j in range(len(bounds)):
        a = start if j == 0 else float(bounds[j])
        b = float(bounds[j + 1]) if j + 1 < len(bounds) else end
        if b > a:
            out.append((a, b, round(float(track.lag_s[j]), 1)))
    return out


def _nearest(cells: np.ndarray | None, k: int) -> float:
    """Distance from cell ``k`` to the nearest of ``cells`` (inf if none)."""
    return float(np.min(np.abs(cells - k))) if cells is not None and len(cells) else np.inf


def repair_unexplained(
    zones: dict[str, np.ndarray],
    conf: dict[str, np.ndarray],
    anchors: list[tuple[int, int]],
    none_code: int,
    *,
    report_cells: dict[str, dict[int, np.ndarray]] | None = None,
    rssi_post: dict[str, np.ndarray] | None = None,
    near_cells: int = 30,
    cluster_cells: int = 600,
    before_cells: int = 20,
    after_cells: int = 30,
    confidence: float = 0.6,
) -> int:
    """Put workers at machines where presence events say someone was and no zone does.

    A presence event at machine M is explained when some worker's zone is M within
    ``near_cells`` of it. An unexplained one (the locator lost the report, or was down) goes
    to a worker who is not at another machine then: the one RSSI puts at M most, else the
    one whose nearest locator report of M is closest in time (``report_cells[w][M]``: cells
    of w's reports of M), if within ``cluster_cells``. Events of one worker at one machine
    less than ``cluster_cells`` apart form a visit, filled from ``before_cells`` before the
    first to ``after_cells`` after the last, over cells where that worker is at no machine.
    Modifies ``zones`` and ``conf`` in place; returns the number of cells changed.
    """
    if not zones or not anchors:
        return 0
    workers = list(zones)
    n = len(next(iter(zones.values())))
    todo: dict[tuple[str, int], list[int]] = {}
    for k, code in sorted(anchors):
        lo, hi = max(0, k - near_cells), min(n, k + near_cells + 1)
        if any((zones[w][lo:hi] == code).any() for w in workers):
            continue
        free = [w for w in workers if zones[w][k] in (none_code, -1)]
        if not free:
            continue
        if rssi_post and any(w in rssi_post for w in free):
            pick = max(free, key=lambda w: float(rssi_post[w][k, code]) if w in rssi_post else -1.0)
        elif len(free) == 1:
            pick = free[0]
        elif report_cells:
            dist = {w: _nearest(report_cells.get(w, {}).get(code), k) for w in free}
            pick = min(free, key=lambda w: dist[w])
            if dist[pick] > cluster_cells:
                continue
        else:
            continue
        todo.setdefault((pick, code), []).append(k)
    changed = 0
    for (w, code), ks in todo.items():
        ks = sorted(ks)
        groups = np.split(np.array(ks), np.flatnonzero(np.diff(ks) > cluster_cells) + 1)
        for g in groups:
            a, b = max(0, int(g[0]) - before_cells), min(n, int(g[-1]) + after_cells + 1)
            seg = zones[w][a:b]
            free = (seg == none_code) | (seg == -1)
            seg[free] = code
            conf[w][a:b][free] = confidence
            changed += int(free.sum())
    return changed


def entry_lag_median(
    streams: list[tuple[np.ndarray, np.ndarray]],
    anchors: list[tuple[int, int]],
    grid: Grid,
    none_code: int,
    search_s: float = 150.0,
) -> float | None:
    """A first guess of the typical lag: median over entries of report time minus first event.

    For every report of a worker entering machine M, the first presence event at M (by
    anyone) after that worker's previous report (at most ``search_s`` before this one) and
    before its next report gives one value (if positive). Pooled over the workers (one
    locator system); None without any.
    """
    if not anchors:
        return None
    ak = np.array(sorted(anchors))
    t_ev = grid.start + (ak[:, 0] + 0.5) * grid.step_s
    vals = []
    for lt, lc in streams:
        for i, (ti, code) in enumerate(zip(lt, lc, strict=True)):
            if code == none_code:
                continue
            nxt = lt[i + 1] if i + 1 < len(lt) else np.inf
            # Events before the worker's previous report belong to an earlier visit.
            since = max(ti - search_s, lt[i - 1] if i > 0 else -np.inf)
            at = t_ev[(ak[:, 1] == code) & (t_ev >= since) & (t_ev < nxt)]
            if len(at) and ti - at[0] > 0:
                vals.append(ti - at[0])
    return float(np.median(vals)) if vals else None


def event_accuracy(
    codes: dict[str, np.ndarray], anchors: dict[str, list[tuple[int, int]]], near_cells: int = 5
) -> tuple[float, int]:
    """Share of the workers' presence events at which a zone path puts them at that machine.

    ``codes[w]`` is a per-cell zone path, ``anchors[w]`` the worker's events ``(cell,
    machine code)``; an event counts as placed if the path shows its machine within
    ``near_cells``. Returns the share and the number of events (0, 0 without any).
    """
    hits = total = 0
    for w, items in anchors.items():
        if w not in codes:
            continue
        path = codes[w]
        for k, c in items:
            lo, hi = max(0, k - near_cells), min(len(path), k + near_cells + 1)
            if lo < hi:
                total += 1
                hits += int((path[lo:hi] == c).any())
    return (hits / total if total else 0.0), total


def sure_zone_cells(
    loc_t: np.ndarray, loc_code: np.ndarray, grid_start: float, step_s: float, n: int, max_lag_s: float
) -> np.ndarray:
    """Cells whose zone the locator alone makes certain (``-1`` elsewhere).

    A report at ``t_i`` says the beacon entered ``c_i`` at ``t_i - lag`` (``0 <= lag <=
    max_lag_s``), and the next change happened no earlier than ``t_{i+1} - max_lag_s``: every
    cell in ``[t_i, t_{i+1} - max_lag_s)`` is in ``c_i``, whatever each move's lag was.
    """
    out = np.full(n, -1, dtype=np.int64)
    order = np.argsort(loc_t, kind="stable")
    t, c = np.asarray(loc_t, dtype="float64")[order], np.asarray(loc_code)[order]
    end = grid_start + n * step_s
    for i in range(len(t)):
        b = (t[i + 1] if i + 1 < len(t) else end) - max_lag_s
        k0 = max(int(np.ceil((t[i] - grid_start) / step_s)), 0)
        k1 = min(int(np.floor((b - grid_start) / step_s)), n)
        if k1 > k0:
            out[k0:k1] = int(c[i])
    return out


def rssi_confusion_evidence(
    labelled: list[tuple[np.ndarray, np.ndarray]], weight: float, prior_weight: float = 20.0
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Per-second zone log-likelihoods from RSSI, calibrated on the file's own sure seconds.

    ``labelled`` pairs each worker's per-second RSSI zone evidence ``(T, Z)`` with the zone
    each second surely had (``-1`` unknown: :func:`sure_zone_cells` and presence events). What
    RSSI names is modelled as a noisy channel of the true zone: ``P(RSSI names j | true z)``
    is counted on the labelled seconds (pooled: the radio is the site's), so a receiver that
    names machine B while the worker waits in the aisle beside it stops pulling moves there.
    Its errors come in runs (a worker standing still), so each second counts only as much as
    an independent one would: the weight is scaled by ``(1 - rho) / (1 + rho)``, ``rho`` the
    lag-1 autocorrelation of "RSSI is wrong" over labelled seconds.
    """
    n_z = labelled[0][0].shape[1] if labelled else 0
    counts = np.zeros((n_z, n_z))
    err_pairs = []
    said = []
    for ev, lab in labelled:
        post = np.nan_to_num(np.asarray(ev, dtype="float64"), nan=0.0)
        known = post.sum(axis=1) > 0
        a = np.where(known, post.argmax(axis=1), -1)
        said.append(a)
        ok = (lab >= 0) & (a >= 0)
        np.add.at(counts, (lab[ok], a[ok]), 1.0)
        wrong = np.where(ok, (a != lab).astype(float), np.nan)
        both = np.isfinite(wrong[1:]) & np.isfinite(wrong[:-1])
        err_pairs.append(np.stack([wrong[:-1][both], wrong[1:][both]], axis=1))
    pairs = np.concatenate(err_pairs) if err_pairs else np.zeros((0, 2))
    rho = 0.0
    if len(pairs) > 30 and pairs[:, 0].std() > 0 and pairs[:, 1].std() > 0:
        rho = float(np.clip(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1], 0.0, 0.999))
    prior = 0.5 * np.eye(n_z) + 0.5 / n_z
    conf = counts + prior_weight * prior
    conf /= conf.sum(axis=1, keepdims=True)
    w_eff = weight * (1.0 - rho) / (1.0 + rho)
    log_c = np.log(conf)  # [true z, said j]
    out = []
    for a in said:
        ell = np.zeros((len(a), n_z))
        known = a >= 0
        ell[known] = w_eff * log_c[:, a[known]].T
        out.append(ell)
    info = {
        "rho": round(rho, 3),
        "weight": round(w_eff, 4),
        "labelled_s": int(counts.sum()),
        "right": round(float(np.trace(counts) / max(counts.sum(), 1.0)), 3),
    }
    return out, info
