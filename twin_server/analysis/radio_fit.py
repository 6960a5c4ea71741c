"""Self-calibration of the RSSI path-loss model from the recording itself (no survey needed).

Model: a beacon ``w`` at floor cell ``c`` facing ``f`` is heard at receiver ``r`` with a
per-second mean RSSI ``a[w, r] - n * 10 log10 d(c, r) - B * s(f, c, r)`` plus Gaussian noise of
sd ``sigma``, where ``a[w, r] = level[w] + offset[r]`` (beacons and receivers both differ, by up
to +-10 dB in real installations), ``n`` is the path-loss exponent and ``B`` the body loss
towards receivers behind the wearer (``s`` in 0..1). All of them are fitted by EM:

* E-step: a zone HMM over 5-s windows whose emission for a zone is the mixture of its cells'
  likelihoods, weighted by where in the zone people are (``occupancy``). The prior is over
  *zones*, not cells: a machine zone is as likely a priori as all of ``none``, so a large
  empty floor does not win by its area. Presence events (a press, a pressure excursion or a
  restart at machine M) are labelled windows: the worker is in M's zone then.
* M-step: weighted least squares for ``level``, ``offset``, ``n`` and ``B`` (Gaussian priors:
  offsets 0 +- ``offset_sd_db``, exponent ``exponent_prior`` +- ``exponent_sd``); ``sigma`` from
  the residuals; the occupancy of machine zones from labelled windows only (unlabelled
  dwells must not teach a zone where it is), that of ``none`` from all windows.

The start matters (EM stays in the basin it starts in). :func:`start_levels` starts each
beacon's level from the heard packets, or with the silent receivers counted too; the
pipeline fits from both (RSSI alone) and keeps the model :func:`silence_score` prefers.

Without presence events the body loss is not fitted (``B = 0``): with nothing to check it
against, the extra freedom fits noise (on the real ble_tetam floor a freely fitted 4 dB loss
cost 12 points of accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin_server.analysis.position_smoother import FloorGrid
from twin_server.analysis.rssi_zones import forward_backward, rssi_stats
from twin_server.analysis.zone_fingerprints import ZoneFingerprint, apply_zone_fingerprint


@dataclass
class RadioModel:
    """Fitted path-loss model: ``mean = level_dbm[w][r] - exponent * 10 log10 d - body_loss_db * s``."""

    level_dbm: dict[str, np.ndarray]  # worker -> (R,) level at 1 m per receiver (beacon + receiver)
    exponent: float
    body_loss_db: float
    sigma_db: float
    facings: int
    labelled_windows: int = 0
    occupancy: np.ndarray | None = None  # (F * cells, Z): where in each zone the beacons are
    window_s: int = 5
    diag: dict[str, Any] = field(default_factory=dict)
    #: ``(R,)`` weakest RSSI each receiver reports (its sensitivity), dBm; None: not censored.
    floor_dbm: np.ndarray | None = None
    #: Spread of single packets around the link's mean, dB (how far the floor cuts into them).
    packet_sd_db: float = 4.0

    def mean_map(self, worker: str, log_d: np.ndarray, shadow: np.ndarray) -> np.ndarray:
        """Expected per-second RSSI ``(F, NX, NY, R)`` of ``worker``'s beacon (of the packets heard)."""
        body = self.body_loss_db * shadow[: self.facings]
        mu = self.level_dbm[worker] - self.exponent * log_d[None] - body
        if self.floor_dbm is None:
            return mu
        return censored_mean(mu, self.floor_dbm, self.packet_sd_db)


def censored_mean(mu: np.ndarray, floor_dbm: np.ndarray | float, sd_db: float) -> np.ndarray:
    """Mean RSSI of the packets a receiver hears when it hears none below ``floor_dbm``.

    A packet's RSSI is ``mu`` plus noise of sd ``sd_db``; the receiver drops those under its
    sensitivity, so near the floor the packets heard average more than ``mu``:
    ``E[x | x > floor] = mu + sd * phi(a) / (1 - Phi(a))``, ``a = (floor - mu) / sd``. Without
    this, a far receiver's few packets look like a near one's and pull the position towards it.
    """
    from scipy.special import erfcx

    a = (np.asarray(floor_dbm) - mu) / sd_db
    # phi(a) / (1 - Phi(a)) = sqrt(2 / pi) / erfcx(a / sqrt(2)), stable for any a.
    out: np.ndarray = mu + sd_db * np.sqrt(2 / np.pi) / erfcx(a / np.sqrt(2))
    return out


#: A fitted body loss below this is dropped (the smoother then needs one facing, not four).
MIN_BODY_LOSS_DB = 2.0


@dataclass(frozen=True)
class FitSettings:
    """Priors and effort of :func:`fit_radio`."""

    window_s: int = 5
    iterations: int = 6
    max_windows: int = 720  # per beacon (1 h of 5-s windows), in blocks spread over the recording
    block_windows: int = 60
    exponent_prior: float = 2.2
    exponent_sd: float = 0.6
    offset_sd_db: float = 8.0
    body_prior_db: float = 5.0
    body_sd_db: float = 6.0
    sigma_start_db: float = 4.0
    switch_per_s: float = 0.02
    occupancy_pseudo: float = 3.0  # windows' worth of uniform occupancy per zone
    labelled_weight: float = 30.0  # weight of a labelled window in the level, offset, exponent fit
    facings: int = 4


def _windows(mat: np.ndarray, window: int, settings: FitSettings) -> np.ndarray:
    """Centres of the pooled windows used for fitting (heard ones, in blocks spread over the day)."""
    centres: np.ndarray = np.arange(window // 2, len(mat), window)
    heard = np.isfinite(
        mat[np.clip(centres[:, None] + np.arange(-(window // 2), window - window // 2), 0, len(mat) - 1)]
    ).any(axis=(1, 2))
    centres = centres[heard]
    if len(centres) <= settings.max_windows:
        return centres
    blocks = np.arange(0, len(centres), settings.block_windows)
    pick = blocks[
        np.unique(
            np.linspace(0, len(blocks) - 1, settings.max_windows // settings.block_windows)
            .round()
            .astype(int)
        )
    ]
    keep = np.concatenate([np.arange(b, min(b + settings.block_windows, len(centres))) for b in pick])
    kept: np.ndarray = centres[keep]
    return kept


def _initial_level(
    s_rr: np.ndarray,
    s_r: np.ndarray,
    s_w: np.ndarray,
    log_d: np.ndarray,
    occ0: np.ndarray,
    settings: FitSettings,
    silence: tuple[np.ndarray, np.ndarray, float, float] | None = None,
) -> float:
    """Level at 1 m that makes a beacon's windows most probable (exponent at its prior, no body).

    ``silence``: ``(up, floor_dbm, packet_sd_db, heard_share)``; with it, a receiver that is
    up (``up``: ``(T, R)`` bool at the same windows) and silent for seconds of a window counts
    too: a second is heard with probability ``heard_share x Phi((mu - floor) / packet_sd)``
    (:func:`_silence_loglik`). The heard packets alone fit
    a loud beacon far from every receiver as well as a quiet one near one (family tuning
    draw 1089: a start 10 dB high, and the fit stayed there); the silent receivers do not.
    """
    if len(s_rr) == 0:
        return -60.0
    step = max(1, len(s_rr) // 300)
    s_rr, s_r, s_w = s_rr[::step], s_r[::step], s_w[::step]
    d = settings.exponent_prior * log_d  # (C, R)
    scale = 1.0 / (2 * settings.sigma_start_db**2 * np.sqrt(settings.window_s))
    # Squared error as a quadratic in the level L: base + L u + L^2 v.
    base = s_rr[:, None] + 2 * s_r @ d.T + s_w @ (d * d).T
    u = -2 * (s_r.sum(axis=1)[:, None] + s_w @ d.T)
    v = s_w.sum(axis=1)[:, None]
    quiet = None
    if silence is not None:
        up, floor, packet_sd, heard_share = silence
        quiet = np.where(up[::step], np.maximum(settings.window_s - s_w, 0.0), 0.0)  # (T, R)

    def total(lv: float) -> float:
        ll = -scale * (base + lv * u + lv * lv * v)
        if quiet is not None:
            ll = ll + _silence_loglik(quiet, lv - d, floor, packet_sd, heard_share, settings.window_s)
        return _log_marginal(ll, occ0)

    coarse = np.arange(-100.0, -25.0, 2.0)
    best = coarse[int(np.argmax([total(x) for x in coarse]))]
    fine = np.arange(best - 1.5, best + 1.6, 0.5)
    return float(fine[int(np.argmax([total(x) for x in fine]))])


def _zone_prior(grid: FloorGrid) -> np.ndarray:
    """``(C, Z)`` where in each zone a beacon is, before any data: its walkable cells alike."""
    occ0 = grid.zone_share * grid.walkable.ravel()[:, None]
    out: np.ndarray = occ0 / np.maximum(occ0.sum(axis=0, keepdims=True), 1e-12)
    return out


def _log_marginal(ll: np.ndarray, occ0: np.ndarray) -> float:
    """Sum over windows of ``log mean_z sum_c occ0[c, z] exp(ll[t, c])`` (zones equally likely)."""
    top = ll.max(axis=1, keepdims=True)
    return float(np.sum(np.log(np.maximum(np.exp(ll - top) @ occ0, 1e-300).mean(axis=1)) + top[:, 0]))


def _silence_loglik(
    quiet: np.ndarray, mu: np.ndarray, floor: np.ndarray, packet_sd: float, heard_share: float, window_s: int
) -> np.ndarray:
    """``(T, C)`` log-probability of the silent seconds ``quiet`` ``(T, R)`` at means ``mu`` ``(C, R)``."""
    from scipy.special import log_ndtr

    p_heard = heard_share * np.exp(log_ndtr((mu - floor[None, :]) / packet_sd))
    out: np.ndarray = (quiet @ np.log1p(-np.minimum(p_heard, 1 - 1e-6)).T) / np.sqrt(window_s)
    return out


#: A receiver counts as up within this many seconds of any packet it reported.
UP_WITHIN_S = 30


def _silence_model(
    mats: dict[str, np.ndarray], floor_dbm: np.ndarray, packet_sd_db: float
) -> dict[str, tuple[np.ndarray, np.ndarray, float, float]]:
    """Per beacon, what its silent seconds need: receivers up, floors, packet sd, heard share.

    A receiver is up at a second if it heard any beacon within ``UP_WITHIN_S`` of it (a
    receiver that drops out for minutes is not silent about anyone then). The heard share is
    how often a loud link (a second's mean 10 dB or more above the floor) is heard the next
    second: the adverts and the packet loss together.
    """
    from scipy.ndimage import maximum_filter1d

    heard = np.zeros(next(iter(mats.values())).shape, dtype=bool)
    for m in mats.values():
        heard |= np.isfinite(m)
    up = maximum_filter1d(heard.astype(np.uint8), 2 * UP_WITHIN_S + 1, axis=0, mode="constant") > 0
    out = {}
    for w, m in mats.items():
        prev = np.where(np.isfinite(m[:-1]), m[:-1], -np.inf)
        loud = prev >= floor_dbm[None, :] + 10
        nxt = np.isfinite(m[1:])
        share = float(nxt[loud].mean()) if loud.sum() >= 20 else 0.8
        out[w] = (up, floor_dbm, packet_sd_db, float(np.clip(share, 0.05, 0.99)))
    return out


def silence_score(
    model: RadioModel,
    mats: dict[str, np.ndarray],
    grid: FloorGrid,
    beacon_height_m: float,
    settings: FitSettings = FitSettings(),
) -> float:
    """Log-likelihood of every beacon's fitting windows under ``model``, silent receivers included.

    Positions are marginalised as in :func:`_initial_level` (zones equally likely, one facing
    at half the body loss). Compares fits of the same recording from different starts: the
    heard packets alone cannot tell a loud beacon far away from a quiet one near by.
    """
    if model.floor_dbm is None:
        raise ValueError("silence_score needs a model with the receivers' floor")
    floor = np.asarray(model.floor_dbm, dtype="float64")
    log_d = grid.log_distance(beacon_height_m).reshape(-1, len(grid.receivers))
    occ0 = _zone_prior(grid)
    sil = _silence_model(mats, floor, model.packet_sd_db)
    win = settings.window_s
    scale = 1.0 / (2 * model.sigma_db**2 * np.sqrt(win))
    total = 0.0
    for w, m in mats.items():
        s_rr, s_r, s_w = rssi_stats(m, win)
        cen = _windows(m, win, settings)
        if len(cen) == 0:
            continue
        cen = cen[:: max(1, len(cen) // 300)]
        s_rr, s_r, s_w = s_rr[cen], s_r[cen], s_w[cen]
        mu = model.level_dbm[w][None, :] - model.exponent * log_d - 0.5 * model.body_loss_db  # (C, R)
        heard_mu = censored_mean(mu, floor, model.packet_sd_db)
        ll = -scale * (s_rr[:, None] - 2 * s_r @ heard_mu.T + s_w @ (heard_mu * heard_mu).T)
        ll -= (s_w.sum(axis=1) * np.log(model.sigma_db) / np.sqrt(win))[:, None]
        up, _f, _sd, heard_share = sil[w]
        quiet = np.where(up[cen], np.maximum(win - s_w, 0.0), 0.0)
        ll = ll + _silence_loglik(quiet, mu, floor, model.packet_sd_db, heard_share, win)
        total += _log_marginal(ll, occ0)
    return total


def start_levels(
    mats: dict[str, np.ndarray],
    grid: FloorGrid,
    beacon_height_m: float,
    settings: FitSettings = FitSettings(),
    silence: tuple[np.ndarray, float] | None = None,
) -> np.ndarray:
    """Each beacon's starting level at 1 m (``mats`` order), by :func:`_initial_level`.

    ``silence``: ``(floor_dbm, packet_sd_db)`` to count the silent receivers too
    (:func:`_silence_model`); None: the heard packets only.
    """
    log_d = grid.log_distance(beacon_height_m).reshape(-1, len(grid.receivers))  # (C, R)
    occ0 = _zone_prior(grid)
    sil = None
    if silence is not None:
        sil = _silence_model(mats, np.asarray(silence[0], dtype="float64"), silence[1])
    out = []
    for w, m in mats.items():
        s_rr, s_r, s_w = rssi_stats(m, settings.window_s)
        cen = _windows(m, settings.window_s, settings)
        quiet = None if sil is None else (sil[w][0][cen], *sil[w][1:])
        out.append(_initial_level(s_rr[cen], s_r[cen], s_w[cen], log_d, occ0, settings, quiet))
    return np.array(out)


#: Bounds of the fitted path-loss exponent.
EXPONENT_MIN, EXPONENT_MAX = 1.2, 4.5

#: A presence event at machine M goes to the worker most probably at M if that probability is
#: above :data:`ATTRIBUTE_ALONE`, or at least :data:`ATTRIBUTE_FLOOR` and
#: :data:`ATTRIBUTE_SHARE` of all the workers' probabilities at M (the others are surely
#: elsewhere). Weak radio leaves every worker's probability low where no receiver is near M;
#: with the absolute rule alone such events went to nobody, and the zones far from the
#: receivers were never learned (32 RSSI-only tuning draws: 0.8876 -> 0.8954, 10 better, none
#: worse by more than 0.005; 0.05 as the floor made draw 1079 lose 0.031).
ATTRIBUTE_ALONE = 0.5
ATTRIBUTE_FLOOR = 0.2
ATTRIBUTE_SHARE = 0.9


def attributed(best: Any, total: Any) -> Any:
    """Whether an event goes to the worker whose probability at its machine is ``best`` (the
    highest), ``total`` being the sum over all workers of that probability; elementwise for
    arrays of events."""
    return (best > ATTRIBUTE_ALONE) | ((best >= ATTRIBUTE_FLOOR) & (best >= ATTRIBUTE_SHARE * total))


def fit_radio(
    mats: dict[str, np.ndarray],
    anchors: list[tuple[int, int]],
    grid: FloorGrid,
    beacon_height_m: float,
    settings: FitSettings = FitSettings(),
    fit_body: bool | None = None,
    floor_dbm: np.ndarray | None = None,
    packet_sd_db: float = 4.0,
    start_level: np.ndarray | None = None,
) -> RadioModel:
    """Fit the path-loss model of every beacon from the recording (see the module docstring).

    Parameters
    ----------
    mats : dict
        Worker -> ``(T, R)`` per-second mean RSSI at each receiver (NaN = not heard).
    anchors : list of (int, int)
        ``(second, zone index)``: someone was in that machine's zone then (not yet given to a
        worker: each EM round gives it to the worker most probably there).
    grid : FloorGrid
        Cells, their zones and the receivers.
    beacon_height_m : float
        Height of the carried beacon.
    settings : FitSettings
        Priors and effort.
    fit_body : bool, optional
        Fit the body loss; default: only when there are presence events.
    floor_dbm : numpy.ndarray, optional
        ``(R,)`` each receiver's sensitivity floor: the packets heard near it average more
        than the path loss says (:func:`censored_mean`); the fit expects that and removes it
        before solving for the levels. None: no floor.
    packet_sd_db : float
        Spread of single packets, for the floor's effect.
    start_level : numpy.ndarray, optional
        ``(W,)`` each beacon's starting level, in ``mats`` order (default
        :func:`start_levels` from the heard packets).

    Returns
    -------
    RadioModel
    """
    workers = list(mats)
    n_r = len(grid.receivers)
    n_w = len(workers)
    nz = len(grid.zones)
    win = settings.window_s
    fit_body = bool(anchors) if fit_body is None else fit_body
    facings = settings.facings if fit_body else 1
    log_d = grid.log_distance(beacon_height_m).reshape(-1, n_r)  # (C, R)
    shadow = grid.shadow(facings).reshape(facings, -1, n_r)  # (F, C, R)
    cells = log_d.shape[0]
    ld = np.tile(log_d, (facings, 1))  # (S, R), S = F * C
    sh = shadow.reshape(-1, n_r)
    share = np.tile(grid.zone_share, (facings, 1))  # (S, Z)
    walk = np.tile(grid.walkable.ravel(), facings)
    none = nz - 1
    # Per worker: pooled statistics at the fitting windows and their anchor labels.
    data = {}
    anchor_arr = np.array(anchors, dtype=np.int64).reshape(-1, 2)
    for w in workers:
        s_rr, s_r, s_w = rssi_stats(mats[w], win)
        cen = _windows(mats[w], win, settings)
        data[w] = (cen, s_rr[cen], s_r[cen], s_w[cen])
    # Which fitting window (if any) holds each anchor, per worker.
    anchor_win = {}
    for w in workers:
        cen = data[w][0]
        if len(cen) == 0:
            anchor_win[w] = np.full(len(anchor_arr), -1)
            continue
        pos = np.searchsorted(cen, anchor_arr[:, 0] - win // 2, side="left")
        hit = (pos < len(cen)) & (np.abs(cen[np.minimum(pos, len(cen) - 1)] - anchor_arr[:, 0]) <= win // 2)
        anchor_win[w] = np.where(hit, pos, -1)
    # Start: each beacon's level by marginal likelihood (positions unknown, zones equally likely).
    if start_level is None:
        level = start_levels(mats, grid, beacon_height_m, settings)
    else:
        level = np.asarray(start_level, dtype="float64").copy()
    offset: np.ndarray = np.zeros(n_r)
    n_exp, sigma = settings.exponent_prior, settings.sigma_start_db
    body = settings.body_prior_db if fit_body else 0.0
    occupancy = share * walk[:, None]  # (S, Z) weight of each state within each zone
    occupancy /= occupancy.sum(axis=0, keepdims=True)
    stay = (1 - settings.switch_per_s) ** win
    trans = np.full((nz, nz), (1 - stay) / max(nz - 1, 1))
    np.fill_diagonal(trans, stay)
    log_a = np.log(trans)
    gammas: dict[str, np.ndarray] = {}
    labelled = 0
    trace: list[list[float]] = []  # per round: exponent, body loss, sigma, labelled windows
    for it in range(settings.iterations):
        # Give each anchor to the worker most probably in its zone (one worker: always).
        labels = {w: np.full(len(data[w][0]), -1) for w in workers}
        for j, (_k, z) in enumerate(anchor_arr):
            cand = [
                (gammas[w][anchor_win[w][j], z] if w in gammas else 1.0, w)
                for w in workers
                if anchor_win[w][j] >= 0
            ]
            if not cand:
                continue
            if n_w > 1 and it == 0:
                continue  # no attribution before a first look at the data
            best, who = max(cand)
            if n_w == 1 or attributed(best, sum(c for c, _ in cand)):
                labels[who][anchor_win[who][j]] = z
        labelled = int(sum((lab >= 0).sum() for lab in labels.values()))
        scale = 1.0 / (2 * sigma**2 * np.sqrt(win))
        a_mat = np.zeros((n_w + n_r + 2, n_w + n_r + 2))
        b_vec = np.zeros(n_w + n_r + 2)
        occ_new = np.zeros_like(occupancy)
        sse = n_obs = 0.0
        for wi, w in enumerate(workers):
            cen, s_rr, s_r, s_w = data[w]
            if len(cen) == 0:
                continue
            mu_lin = (level[wi] + offset)[None, :] - n_exp * ld - body * sh  # (S, R)
            mu = mu_lin if floor_dbm is None else censored_mean(mu_lin, floor_dbm, packet_sd_db)
            ll = -(s_rr[:, None] - 2 * s_r @ mu.T + s_w @ (mu * mu).T) * scale  # (T, S)
            top = ll.max(axis=1, keepdims=True)
            lik = np.exp(ll - top)
            zl = lik @ occupancy  # (T, Z)
            with np.errstate(divide="ignore"):
                em = np.log(np.maximum(zl, 1e-300)) + top
            lab = labels[w]
            em_c = em.copy()
            em_c[lab >= 0] -= 50.0
            em_c[lab >= 0, lab[lab >= 0]] += 50.0
            gamma = forward_backward(em_c, log_a)
            gammas[w] = gamma
            # Joint posterior of (zone, state): gamma[z] * occupancy[s, z] * lik[s] / zl[z].
            ratio = gamma / np.maximum(zl, 1e-300)  # (T, Z)
            q = lik * (ratio @ occupancy.T)  # (T, S)
            occ_r = q.T @ s_w  # (S, R)
            wsum = q.T @ s_r
            # The noise from every window alike; the geometry mostly from the labelled ones.
            sse += float(np.sum(q.sum(axis=1) * s_rr) - 2 * np.sum(wsum * mu) + np.sum(occ_r * mu * mu))
            n_obs += float(occ_r.sum())
            if settings.labelled_weight != 1.0 and (lab >= 0).any():
                q[lab >= 0] *= settings.labelled_weight
                occ_r = q.T @ s_w
                wsum = q.T @ s_r
            if floor_dbm is not None:
                # The packets heard sit above the path loss by the floor's cut: solve for the
                # levels on the RSSI with that lift taken off (fixed point of EM).
                wsum = wsum - occ_r * (mu - mu_lin)
            # Occupancy: machine zones learn from labelled windows only, none from all of them.
            mask_lab = lab >= 0
            m_lab = lik[mask_lab].T @ ratio[mask_lab]  # (S, Z)
            m_all = lik.T @ ratio[:, none]
            occ_new[:, :none] += occupancy[:, :none] * m_lab[:, :none]
            occ_new[:, none] += occupancy[:, none] * m_all
            # Normal equations of sum occ * (mu - rssi)^2, mu = level_w + offset_r - n ld - B sh.
            for r in range(n_r):
                idx = [wi, n_w + r, n_w + n_r, n_w + n_r + 1]
                fm = np.column_stack([np.ones(len(ld)), np.ones(len(ld)), -ld[:, r], -sh[:, r]])
                a_mat[np.ix_(idx, idx)] += fm.T @ (occ_r[:, r, None] * fm)
                b_vec[idx] += fm.T @ wsum[:, r]
        lam = sigma**2 * np.sqrt(win)  # the priors in the same units as the squared errors
        for r in range(n_r):
            a_mat[n_w + r, n_w + r] += lam / settings.offset_sd_db**2
        a_mat[n_w + n_r, n_w + n_r] += lam / settings.exponent_sd**2
        b_vec[n_w + n_r] += lam / settings.exponent_sd**2 * settings.exponent_prior
        if fit_body:
            a_mat[-1, -1] += lam / settings.body_sd_db**2
            b_vec[-1] += lam / settings.body_sd_db**2 * settings.body_prior_db
        else:
            a_mat[-1, :] = 0.0
            a_mat[:, -1] = 0.0
            a_mat[-1, -1] = 1.0
            b_vec[-1] = 0.0
        for i in range(n_w):  # a weak prior keeps a beacon never heard well-posed
            a_mat[i, i] += 1e-6
            b_vec[i] += 1e-6 * level[i]
        theta = np.linalg.lstsq(a_mat, b_vec, rcond=None)[0]
        level, offset = theta[:n_w], theta[n_w : n_w + n_r]
        n_exp = float(np.clip(theta[n_w + n_r], EXPONENT_MIN, EXPONENT_MAX))
        body = float(np.clip(theta[-1], 0.0, 15.0)) if fit_body else 0.0
        if n_obs > 0:
            sigma = float(np.clip(np.sqrt(max(sse, 0.0) / n_obs), 2.0, 12.0))
        occ_new += (
            settings.occupancy_pseudo
            * share
            * walk[:, None]
            / np.maximum((share * walk[:, None]).sum(axis=0, keepdims=True), 1e-12)
        )
        occupancy = occ_new / np.maximum(occ_new.sum(axis=0, keepdims=True), 1e-300)
        trace.append([round(n_exp, 2), round(body, 1), round(sigma, 2), labelled])
    if facings > 1 and body < MIN_BODY_LOSS_DB:  # too small to matter: one facing is 4x cheaper
        occupancy = occupancy.reshape(facings, cells, nz).sum(axis=0)
        occupancy /= np.maximum(occupancy.sum(axis=0, keepdims=True), 1e-300)
        facings, body = 1, 0.0
    return RadioModel(
        {w: level[i] + offset for i, w in enumerate(workers)},
        n_exp,
        body,
        sigma,
        facings,
        labelled,
        occupancy,
        win,
        {"cells": cells, "trace": trace},
        floor_dbm,
        packet_sd_db,
    )


def zone_probabilities_at(
    rssi: np.ndarray,
    worker: str,
    model: RadioModel,
    grid: FloorGrid,
    beacon_height_m: float,
    seconds: np.ndarray | None = None,
    chunk: int = 4096,
    zone_fingerprint: tuple[np.ndarray, ZoneFingerprint] | None = None,
) -> np.ndarray:
    """Zone probabilities ``(len(seconds), Z)`` from each second's pooled window alone.

    Zones equally likely a priori, positions within a zone by the fitted occupancy, no
    smoothing over time: cheap and coarse (it decides which worker a presence event belongs
    to), and evidence that may be multiplied over seconds. ``seconds`` default: all.
    ``zone_fingerprint``: ``(expected, fingerprint)``, what the presence events showed each
    receiver hears in each machine zone (as in ``rssi_zones.estimate_zones``).

    Raises
    ------
    ValueError
        If ``model`` has no fitted occupancy (a surveyed model, not :func:`fit_radio`'s).
    """
    if model.occupancy is None:
        raise ValueError("zone_probabilities_at needs a fitted model: its occupancy is None")
    n_r = len(grid.receivers)
    win = model.window_s
    ld = np.tile(grid.log_distance(beacon_height_m).reshape(-1, n_r), (model.facings, 1))
    sh = grid.shadow(model.facings).reshape(-1, n_r)
    mu_lin = model.level_dbm[worker][None, :] - model.exponent * ld - model.body_loss_db * sh
    if model.floor_dbm is not None:
        mu_lin = censored_mean(mu_lin, model.floor_dbm, model.packet_sd_db)
    if zone_fingerprint is not None:
        mu_lin = apply_zone_fingerprint(mu_lin, grid.zone_share, *zone_fingerprint)
    mu = mu_lin.astype(np.float32)
    mu2 = (mu * mu).T
    occ = model.occupancy.astype(np.float32)
    _s_rr, s_r, s_w = rssi_stats(rssi, win)
    seconds = np.arange(len(rssi)) if seconds is None else np.asarray(seconds)
    scale = np.float32(1.0 / (2 * model.sigma_db**2 * np.sqrt(win)))
    out = np.empty((len(seconds), len(grid.zones)))
    for a in range(0, len(seconds), chunk):
        sec = seconds[a : a + chunk]
        sr, sw = s_r[sec].astype(np.float32), s_w[sec].astype(np.float32)
        ll = (2 * sr @ mu.T - sw @ mu2) * scale  # the s_rr term is the same for every state
        like = np.exp(ll - ll.max(axis=1, keepdims=True)) @ occ
        silent = sw.sum(axis=1) == 0
        like[silent] = 0.0
        like[silent, -1] = 1.0
        out[a : a + chunk] = like / np.maximum(like.sum(axis=1, keepdims=True), 1e-30)
    return out
