"""Per-move lag model (twin_server.analysis.move_lag) on hand-made locator streams."""

from __future__ import annotations

import numpy as np
import pytest

from twin_server.analysis import move_lag as mv
from twin_server.analysis.align import make_grid
from twin_server.analysis.move_lag import (
    locator_track,
    neighbour_share,
    presence_evidence,
    repair_unexplained,
)

NONE = 2  # zones: M0, M1, none


def _stream(changes: list[tuple[float, int]], lags: list[float]) -> tuple[np.ndarray, np.ndarray]:
    t = np.array([c[0] + lag for c, lag in zip(changes, lags, strict=True)])
    return t, np.array([c[1] for c in changes])


def test_each_move_gets_its_own_lag_from_its_own_event():
    grid = make_grid(0.0, 4000.0)
    # Entries into M0 / M1 at these true times, each with a press 3 s later; exits to none.
    changes = [(100.0, 0), (700.0, NONE), (1000.0, 1), (1600.0, NONE), (2000.0, 0), (2600.0, NONE)]
    lags = [11.0, 20.0, 85.0, 15.0, 6.0, 24.0]  # the pilot's jumps: 11 s, then 85 s, then 6 s
    t, z = _stream(changes, lags)
    anchors = [(int(c[0] + 3), c[1]) for c in changes if c[1] != NONE]
    ev = presence_evidence(anchors, grid.n, 3)
    tr = locator_track(t, z, ev, grid, anchors=anchors, none_code=NONE)
    entries = [j for j, c in enumerate(tr.report_code) if c != NONE]
    got = tr.lag_s[entries]
    want = np.array([11.0, 85.0, 6.0])
    # An event only bounds the lag from below (the worker arrived before it): a few seconds off.
    assert np.all(np.abs(got - want) <= 7.0), got
    # Pinned entries are confident; exits without evidence are not.
    exits = [j for j, c in enumerate(tr.report_code) if c == NONE]
    assert tr.lag_iqr_s[entries].max() < tr.lag_iqr_s[exits].min()
    # Per-second zones follow the true times closely.
    truth = np.full(grid.n, NONE)
    for (a, code), (b, _c) in zip(changes, [*changes[1:], (4000.0, NONE)], strict=True):
        truth[int(a) : int(b)] = code
    assert np.mean(tr.codes[150:] == truth[150:]) > 0.97


def test_a_repeated_zone_report_restores_the_lost_exit():
    grid = make_grid(0.0, 3000.0)
    # M0, (exit to none lost), M0 again: the worker must have left in between.
    t = np.array([120.0, 1500.0])
    z = np.array([0, 0])
    anchors = [(105, 0), (1480, 0)]
    ev = presence_evidence(anchors, grid.n, 3)
    # Evidence that the worker was away in the middle (e.g. RSSI): none around 800 s.
    ev[700:900, 0] -= 0.5
    tr = locator_track(t, z, ev, grid, anchors=anchors, none_code=NONE)
    assert list(tr.report_code) == [0, NONE, 0]
    assert (tr.codes[750:850] == NONE).mean() > 0.9


def test_neighbour_share_follows_the_data():
    rng = np.random.default_rng(0)
    r = np.cumsum(rng.uniform(60, 200, 80))
    pmf = np.full(241, 1 / 241)
    iqr = np.full(80, 2.0)
    constant = np.repeat(rng.uniform(8, 40, 8), 10) + rng.normal(0, 1, 80)
    independent = rng.choice([20.0, 17.0, 15.0, 11.0, 85.0, 6.0, 24.0, 11.0], 80)
    assert neighbour_share(r, constant, iqr, pmf, 1.0) > 0.7
    assert neighbour_share(r, independent, iqr, pmf, 1.0) < 0.3


def test_unexplained_events_place_the_free_worker():
    zones = {"W1": np.full(1000, NONE), "W2": np.full(1000, 1)}
    conf = {w: np.ones(1000) for w in zones}
    changed = repair_unexplained(zones, conf, [(400, 0), (500, 0)], NONE)
    assert changed > 100
    assert (zones["W1"][400:501] == 0).all() and (zones["W2"] == 1).all()
    assert conf["W1"][450] < 1.0
    # An event some zone already explains changes nothing.
    assert repair_unexplained(zones, conf, [(450, 0)], NONE) == 0


def test_sure_cells_are_those_no_lag_can_move():
    # Reports at 100 s (zone 1) and 500 s (zone 2); any lag in 0 .. 240 s: from a report until
    # 240 s before the next one the zone is certain, and nothing before the first report.
    sure = mv.sure_zone_cells(np.array([500.0, 100.0]), np.array([2, 1]), 0.0, 1.0, 1000, 240.0)
    assert (sure[:100] == -1).all()
    assert (sure[100:260] == 1).all() and (sure[260:500] == -1).all()
    assert (sure[500:760] == 2).all() and (sure[760:] == -1).all()


def _said(zones: list[int], n_z: int = 3) -> np.ndarray:
    post = np.full((len(zones), n_z), 0.01)
    post[np.arange(len(zones)), zones] = 0.98
    return post


def test_rssi_channel_is_calibrated_on_the_files_sure_seconds():
    """RSSI that names machine B while the worker waits beside it (truth ``none``) must not
    pull a move to B as hard as RSSI that names B only when the worker is there."""
    b_, none = 1, 2
    truth = np.array([none] * 1000 + [b_] * 1000)
    honest = _said([none] * 1000 + [b_] * 1000)
    # The same walk, RSSI saying B for 400 of the 1000 waiting seconds (in short runs).
    fooled_zones = [b_ if (k // 10) % 5 < 2 else none for k in range(1000)] + [b_] * 1000
    fooled = _said(fooled_zones)
    (ev_honest,), info_h = mv.rssi_confusion_evidence([(honest, truth)], 0.5)
    (ev_fooled,), info_f = mv.rssi_confusion_evidence([(fooled, truth)], 0.5)
    k = 1500  # RSSI names B: how much more likely B is than none, per second
    pull_honest = ev_honest[k, b_] - ev_honest[k, none]
    pull_fooled = ev_fooled[k, b_] - ev_fooled[k, none]
    assert pull_honest > 0 and pull_fooled > 0
    assert pull_fooled < pull_honest / 3
    assert info_h["right"] == 1.0 and info_f["right"] == pytest.approx(0.8, abs=0.01)
    # Unknown seconds carry no evidence.
    gap = honest.copy()
    gap[5] = np.nan
    (ev_gap,), _ = mv.rssi_confusion_evidence([(gap, truth)], 0.5)
    assert (ev_gap[5] == 0).all()


def test_rssi_channel_weighs_runs_of_errors_as_fewer_seconds():
    """Errors in one long run (a worker standing still) count less than scattered ones."""
    b_, none = 1, 2
    truth = np.array([none] * 1000 + [b_] * 1000)
    scattered = _said([b_ if k % 10 == 0 else none for k in range(1000)] + [b_] * 1000)
    one_run = _said([b_] * 100 + [none] * 900 + [b_] * 1000)
    _, info_s = mv.rssi_confusion_evidence([(scattered, truth)], 0.5)
    _, info_r = mv.rssi_confusion_evidence([(one_run, truth)], 0.5)
    assert info_r["rho"] > 0.9 and info_s["rho"] < 0.1
    assert info_r["weight"] < info_s["weight"] / 10


def _held_lag_stream():
    """Six visits, every report 45 s late; only the first two entries have a press."""
    grid = make_grid(0.0, 4000.0)
    changes = [(100.0 + 600.0 * i + d, z) for i in range(6) for d, z in ((0.0, i % 2), (300.0, NONE))]
    t, z = _stream(changes, [45.0] * len(changes))
    anchors = [(int(c[0] + 3), c[1]) for c in changes[:4] if c[1] != NONE]
    return grid, t, z, anchors, presence_evidence(anchors, grid.n, 3)


def test_lag_chain_without_sharing_is_the_independent_pass():
    """The coupled forward-backward (dense pair factors) reduces to the running log-sum pass."""
    grid, t, z, anchors, ev = _held_lag_stream()
    kw = dict(anchors=anchors, none_code=NONE, share_neighbours=False, drop_gain=0.0, iterations=0)
    plain = locator_track(t, z, ev, grid, **kw)
    coupled = locator_track(t, z, ev, grid, chain_rho=1e-12, **kw)
    assert coupled.log_evidence == pytest.approx(plain.log_evidence, abs=1e-6)
    assert np.allclose(coupled.posterior, plain.posterior, atol=1e-6)


def test_lag_chain_carries_a_held_lag_to_moves_without_evidence():
    """A lag that holds: the moves after the two pressed entries take their 45 s, not the prior's 20 s."""
    grid, t, z, anchors, ev = _held_lag_stream()
    pmf = mv.initial_lag_pmf(240.0, grid.step_s, median_s=20.0)
    kw = dict(anchors=anchors, none_code=NONE, share_neighbours=False, iterations=0, lag_pmf=pmf)
    alone = locator_track(t, z, ev, grid, **kw)
    held = locator_track(t, z, ev, grid, chain_rho=0.95, **kw)
    later = slice(4, None)  # the reports after the second pressed entry
    assert np.median(np.abs(alone.lag_s[later] - 45.0)) > 15.0, alone.lag_s
    assert np.median(np.abs(held.lag_s[later] - 45.0)) < 8.0, held.lag_s

    # With a press at every entry the file itself says the lag holds: the coupled model
    # explains it better (that is how the analysis chooses it).
    every = [(int(c + 3), code) for c, code in zip(t - 45.0, z, strict=True) if code != NONE]
    ev_all = presence_evidence(every, grid.n, 3)
    kw["anchors"] = every
    alone = locator_track(t, z, ev_all, grid, **kw)
    held = locator_track(t, z, ev_all, grid, chain_rho=0.95, **kw)
    assert held.log_evidence > alone.log_evidence + 2.0, (held.log_evidence, alone.log_evidence)


def test_lag_chain_banded_pass_equals_the_dense_pair_matrix():
    """The short convolution gives the same posteriors and evidence as the full pair matrix."""
    grid, t, z, _anchors, ev = _held_lag_stream()
    t = t + np.array([0.0, 3.0, -4.0, 10.0, 0.0, 30.0, -2.0, 5.0, 0.0, 0.0, 7.0, -5.0])  # lags that move
    n, n_z = ev.shape
    cum = np.zeros((n + 1, n_z + 1))
    np.cumsum(np.concatenate([ev, np.zeros((n, 1))], axis=1), axis=0, out=cum[1:])
    log_pmf = np.log(mv.initial_lag_pmf(240.0, grid.step_s, median_s=20.0))
    virtual = np.zeros(len(t), dtype=bool)
    virtual[7] = True  # a lost change is never coupled
    priors, los = mv._report_priors(t, grid, log_pmf, None, 20.0, virtual)
    got = {}
    for dense in (False, True):
        chain = mv.LagChain(0.8, t, log_pmf, virtual, grid, dense=dense)
        got[dense] = mv._forward_backward(z, cum, priors, los, chain)
    # The band is cut at 5 sd (a share of 6e-7 of the Gaussian left out).
    assert got[False][1] == pytest.approx(got[True][1], abs=1e-5)
    for a, b in zip(got[False][0], got[True][0], strict=True):
        assert np.allclose(a, b, atol=1e-6)
    plain = mv._forward_backward(z, cum, priors, los)
    assert abs(plain[1] - got[False][1]) > 0.01  # the chain does change the evidence (0.036)


def test_an_overtaken_exit_report_is_dropped_when_the_worker_keeps_pressing():
    grid = make_grid(0.0, 3000.0)
    # True: none -> M0 at 600 s (walk reported 85 s late, entry 20 s late); the worker then
    # works at M0 until 2000 s. The walk's report overtakes: M0 at 620, `none` at 685.
    t = np.array([0.0, 620.0, 685.0, 2020.0])
    z = np.array([NONE, 0, NONE, 1])
    anchors = [(603, 0), (900, 0), (1300, 0), (1700, 0), (2003, 1)]
    ev = presence_evidence(anchors, grid.n, 3)
    tr = locator_track(t, z, ev, grid, anchors=anchors, none_code=NONE)
    assert tr.dropped == 1
    assert list(tr.report_code) == [NONE, 0, 1]
    assert (tr.codes[610:1990] == 0).mean() > 0.99
    # Without the later presses nothing contradicts the exit: it stays.
    early = [(603, 0), (2003, 1)]
    kept = locator_track(t, z, presence_evidence(early, grid.n, 3), grid, anchors=early, none_code=NONE)
    assert kept.dropped == 0 and list(kept.report_code) == [NONE, 0, NONE, 1]


def test_an_event_after_an_overtaken_exit_goes_to_that_worker():
    from twin_server.analysis.pipeline import anchor_owners

    grid = make_grid(0.0, 3000.0)
    streams = {
        # W1: M0 reported, then `none` 45 s later (the walk's report, overtaken), then M1.
        "W1": (np.array([0.0, 620.0, 665.0, 2020.0]), np.array([NONE, 0, NONE, 1])),
        # W2: at M0 until 300 s, then away: a real exit, long before the events.
        "W2": (np.array([0.0, 310.0]), np.array([0, NONE])),
    }
    anchors = [(603, 0), (900, 0), (1200, 0), (2003, 1)]

    def owned(w: str) -> list[tuple[int, int]]:
        return [(a.k, a.code) for a in anchor_owners(anchors, streams, {}, grid, 150.0, NONE)[0][w]]

    # The locator shows nobody at M0 at 900 or 1200 s; W1's overtaken pair says it is W1.
    assert owned("W1") == [(603, 0), (900, 0), (1200, 0), (2003, 1)]
    assert owned("W2") == []
    # `none` 80 s after M0 is taken as a short visit, not an overtaken pair: no owner.
    streams["W1"] = (np.array([0.0, 620.0, 700.0, 2020.0]), np.array([NONE, 0, NONE, 1]))
    assert owned("W1") == [(603, 0), (2003, 1)]


def test_rssi_decides_between_workers_only_where_it_places_the_clear_events():
    """Two workers both reported at M0: RSSI says which one pressed there, but only if it names
    the machine at the events the locator gives to one worker alone (tuning draw 1089: RSSI
    that placed none of them gave events to the wrong workers)."""
    from twin_server.analysis.pipeline import anchor_owners
    from twin_server.analysis.rssi_zones import ZoneEstimate

    grid = make_grid(0.0, 3000.0)
    streams = {
        "W1": (np.array([0.0, 1000.0]), np.array([0, 1])),  # M0, then M1 from 1000 s
        "W2": (np.array([0.0]), np.array([0])),  # M0 all along
    }
    shared = [(k, 0) for k in range(200, 700, 100)]  # M0 while both are reported there
    clear = [(k, 1) for k in range(1200, 2900, 100)]  # M1: W1 alone (17 events)
    anchors = shared + clear

    def estimate(codes: np.ndarray) -> ZoneEstimate:
        return ZoneEstimate(codes, np.eye(3)[codes], ["M0", "M1", "none"], -60.0)

    t = np.arange(grid.n)
    w1_right = estimate(np.where(t < 1000, 0, 1))
    w2_elsewhere = estimate(np.full(grid.n, NONE))
    owners, info = anchor_owners(anchors, streams, {"W1": w1_right, "W2": w2_elsewhere}, grid, 150.0, NONE)
    assert info == {"ambiguous": 5, "rssi_right": 1.0, "rssi_decides": True}
    assert [(a.k, a.code) for a in owners["W1"]] == anchors
    assert owners["W2"] == []
    # RSSI that names the machine at none of the clear events does not decide: the shared
    # events go to nobody (as with no RSSI), not to whoever RSSI happens to name.
    w1_wrong = estimate(np.where(t < 1000, 0, NONE))
    owners, info = anchor_owners(anchors, streams, {"W1": w1_wrong, "W2": w2_elsewhere}, grid, 150.0, NONE)
    assert info == {"ambiguous": 5, "rssi_right": 0.0, "rssi_decides": False}
    assert [(a.k, a.code) for a in owners["W1"]] == clear
    assert owners["W2"] == []


def test_an_overtaken_exit_report_gives_way_to_the_repeat_that_reports_the_real_exit():
    """Tuning draw 1006: the `none` of a short exit arrived after the re-entry's report and was
    dropped as stale, and the real exit (a second `none`, folded into the first as a repeat)
    went with it: the worker stayed at the machine for 30 min."""
    grid = make_grid(0.0, 3000.0)
    # True: at M0 from 100 s; out 650-700 s; back at M0 until 1500 s, then away for good.
    # Reports: M0 at 103, M0 again at 705, the short exit's `none` 150 s late at 800, and the
    # real exit's `none` at 1508.
    t = np.array([103.0, 705.0, 800.0, 1508.0])
    z = np.array([0, 0, NONE, NONE])
    anchors = [(110, 0), (400, 0), (710, 0), (900, 0), (1100, 0), (1300, 0), (1450, 0)]
    ev = presence_evidence(anchors, grid.n, 3)
    tr = locator_track(t, z, ev, grid, anchors=anchors, none_code=NONE)
    assert tr.dropped == 1
    assert list(tr.report_code) == [0, NONE, 0, NONE]
    assert tr.report_t[-1] == 1508.0  # the stale `none` moved onto its repeat
    assert (tr.codes[720:1480] == 0).mean() > 0.99
    assert (tr.codes[1520:] == NONE).all()
