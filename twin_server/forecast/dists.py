"""Distributions as weighted points: censored data (Kaplan-Meier) mixed with a prior.

Every duration the forecast uses is modelled on the log scale: ``log d = loc + e`` with ``e``
drawn from a :class:`Points` distribution of residuals, so a few observations pull the
prior's wide range in, and conditioning on time already elapsed is cutting the points below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

__all__ = ["Points", "km_weights", "weighted_quantiles"]

#: Quantile points standing in for a standard normal prior.
_PRIOR_Z = ndtri((np.arange(24) + 0.5) / 24)


def km_weights(
    x: np.ndarray, censored: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier masses of right-censored (optionally weighted) data.

    Parameters
    ----------
    x : numpy.ndarray
        Observed values (a censored value is a lower bound).
    censored : numpy.ndarray of bool
        Which values are censored.
    weights : numpy.ndarray, optional
        Weight of each observation (Beran's estimator: kernel weights); default 1.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Sorted values and their masses (summing to 1). A censored value's mass moves to the
        larger values (Efron's redistribution); mass left after the largest value, when that
        one is censored, stays on it.
    """
    order = np.lexsort((censored, x))  # at ties, events before censorings
    x = np.asarray(x, dtype="float64")[order]
    c = np.asarray(censored, dtype=bool)[order]
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype="float64")[order]
    if len(x) == 0 or w.sum() <= 0:
        return x, np.zeros(len(x))
    at_risk = np.cumsum(w[::-1])[::-1]
    hazard = np.where(c, 0.0, w / np.where(at_risk > 0, at_risk, 1.0))
    surv = np.cumprod(1.0 - hazard)
    before = np.concatenate([[1.0], surv[:-1]])
    mass = before - surv
    mass[-1] += surv[-1]  # what survives the largest value stays on it
    return x, mass / mass.sum()


def weighted_quantiles(x: np.ndarray, w: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Quantiles of sorted points ``x`` with weights ``w``, interpolating between mid-masses."""
    cw = np.cumsum(w)
    total = cw[-1]
    mid = (cw - 0.5 * w) / total
    return np.interp(np.asarray(qs, dtype="float64"), mid, x)


def _bandwidth(x: np.ndarray, w: np.ndarray, n_eff: float) -> float:
    """Silverman's robust rule (the smaller of sd and IQR/1.34): several clusters (the parts a
    machine makes) stay apart."""
    mean = float(np.sum(w * x))
    sd = float(np.sqrt(max(np.sum(w * (x - mean) ** 2), 1e-12)))
    q1, q3 = weighted_quantiles(x, w, np.array([0.25, 0.75]))
    spread = min(sd, (q3 - q1) / 1.34) if q3 > q1 else sd
    return 0.9 * spread * max(n_eff, 1.0) ** -0.2


@dataclass(frozen=True)
class Points:
    """A one-dimensional distribution: sorted points, their masses and a smoothing width.

    ``n_data`` counts the observations behind it (0: the prior alone).
    """

    x: np.ndarray
    w: np.ndarray
    bandwidth: float
    n_data: float

    @property
    def cw(self) -> np.ndarray:
        """Cumulative masses (computed once)."""
        got = self.__dict__.get("_cw")
        if got is None:
            got = np.cumsum(self.w)
            object.__setattr__(self, "_cw", got)
        return got

    @classmethod
    def fit(
        cls,
        values: np.ndarray,
        censored: np.ndarray | None = None,
        *,
        prior_loc: float = 0.0,
        prior_scale: float = 1.0,
        prior_weight: float = 3.0,
    ) -> Points:
        """Observations (censored ones as lower bounds) mixed with a normal prior.

        The prior counts as ``prior_weight`` observations, so with none the distribution is the
        prior and with many it is the data's.
        """
        values = np.asarray(values, dtype="float64")
        keep = np.isfinite(values)
        values = values[keep]
        cens = np.zeros(len(values), bool) if censored is None else np.asarray(censored, bool)[keep]
        n = float(np.count_nonzero(~cens))
        px = prior_loc + prior_scale * _PRIOR_Z
        if len(values) == 0 or n == 0:
            x, w = px, np.full(len(px), 1.0 / len(px))
        else:
            dx, dw = km_weights(values, cens)
            x = np.concatenate([dx, px])
            w = np.concatenate([dw * n, np.full(len(px), prior_weight / len(px))])
            order = np.argsort(x, kind="stable")
            x, w = x[order], w[order] / w.sum()
        return cls(x, w, _bandwidth(x, w, n + prior_weight), n)

    @classmethod
    def mixed(
        cls, values: np.ndarray, censored: np.ndarray, weights: np.ndarray, prior: Points, prior_weight: float
    ) -> Points:
        """Weighted observations (Kaplan-Meier) mixed with another distribution counting as
        ``prior_weight`` observations; ``n_data`` is the observations' effective number."""
        w_sum = float(np.sum(weights)) if len(weights) else 0.0
        if w_sum <= 0:
            return prior
        n_eff = w_sum**2 / float(np.sum(np.square(weights)))
        dx, dw = km_weights(values, censored, weights)
        x = np.concatenate([dx, prior.x])
        w = np.concatenate([dw * n_eff, prior.w * prior_weight])
        order = np.argsort(x, kind="stable")
        x, w = x[order], w[order] / w.sum()
        return cls(x, w, _bandwidth(x, w, n_eff + prior_weight), n_eff)

    def compacted(self, n: int = 64) -> Points:
        """The same distribution in ``n`` equally likely points (cheap to mix and sort)."""
        if len(self.x) <= n:
            return self
        x = weighted_quantiles(self.x, self.w, (np.arange(n) + 0.5) / n)
        return Points(x, np.full(n, 1.0 / n), self.bandwidth, self.n_data)

    def shifted(self, loc: float, scale: float = 1.0) -> Points:
        """``loc + scale * X``."""
        return Points(loc + scale * self.x, self.w, self.bandwidth * scale, self.n_data)

    def sample(self, u: np.ndarray, z: np.ndarray, above: float | np.ndarray = -np.inf) -> np.ndarray:
        """Draws for uniforms ``u`` and standard normals ``z``, conditioned on ``> above``.

        Points at or below ``above`` are cut away; beyond the last point the draw is
        ``above`` plus an exponential tail of the smoothing width (elapsed time longer than
        anything seen: a wide, not a confident, answer).
        """
        cw = self.cw
        above = np.broadcast_to(np.asarray(above, dtype="float64"), np.shape(u))
        lo = np.interp(above, self.x, cw, left=0.0, right=1.0)
        lo = np.where(above < self.x[0], 0.0, lo)
        left = 1.0 - lo
        idx = np.searchsorted(cw, lo + u * left, side="left")
        idx = np.clip(idx, 0, len(self.x) - 1)
        draw = self.x[idx] + self.bandwidth * z
        tail = above + np.maximum(self.bandwidth, 0.05) * (-np.log1p(-np.clip(u, 0, 1 - 1e-12)))
        draw = np.where(left < 0.02, tail, draw)
        return np.where(draw > above, draw, above + np.abs(self.bandwidth * z) + 1e-9)

    def quantiles(self, qs: np.ndarray) -> np.ndarray:
        """Quantiles of the (unsmoothed) points."""
        return weighted_quantiles(self.x, self.w, qs)
