"""Tunable parameters of the analysis, all with defaults (nothing site-specific)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AnalysisParams:
    """Parameters of :func:`twin_server.analysis.analyze`.

    Every threshold the contract says to "find from the data" is found from the data; these
    are only priors, window lengths and physical limits.
    """

    #: Grid step of the common time base, seconds (the scorer samples once per second).
    step_s: float = 1.0
    #: Device clock offsets, seconds to ADD to a source's timestamps (source id -> offset).
    clock_offsets_s: dict[str, float] = field(default_factory=dict)
    #: A sensor value holds over a gap of at most this many median sample periods.
    max_hold_periods: float = 5.0
    #: Machine state: window of the rolling two-level threshold (robust to ambient drift).
    light_window_s: float = 3600.0
    #: Machine state: runs shorter than this are merged into their neighbours (lamp flicker).
    min_state_s: float = 3.0
    #: Walking speed limit used by the RSSI smoother, m/s.
    max_speed_mps: float = 1.5
    #: Height of the carried beacon (chest pocket), metres.
    beacon_height_m: float = 1.2
    #: RSSI: use the presence events (presses, pressure excursions, restarts) as labelled
    #: seconds when fitting the path-loss model, and to pin the zone of the worker they are
    #: given to. Off: RSSI alone.
    rssi_use_events: bool = True
    #: RSSI alone (no locator on the site): model each receiver's sensitivity floor (it reports
    #: no packet weaker than its floor, so the packets it hears near the floor average more
    #: than the path loss says).
    rssi_censored: bool = True
    #: RSSI alone: fit the radio a second time from levels started with the silent receivers
    #: counted, and keep the fit that explains packets and silences better
    #: (``radio_fit.silence_score``).
    rssi_silent_start: bool = True
    #: RSSI alone: share of the zone chain (``rssi_zones.zone_chain_posterior``) in each
    #: second's zone probabilities, beside the position smoother's; 0 = smoother only.
    rssi_zone_chain_share: float = 0.5
    #: ... in the seconds where the smoother's zone probability is under this (where it is
    #: surer, the smoother alone: with good radio the chain cost 1.7 points on the pilot);
    rssi_zone_chain_keep: float = 0.8
    #: ... and only when the fit had at least this many windows labelled by presence events.
    rssi_zone_chain_min_labels: int = 20
    #: RSSI alone: what each receiver hears in each machine zone, learned from the seconds
    #: around the presence events and drawn into the zone's cells as far as the zones are seen
    #: to sit off the path loss (``zone_fingerprints``); off: the path loss everywhere.
    rssi_zone_fingerprints: bool = True
    #: RSSI alone: between two presence events of one worker at one machine (no run between
    #: them, at most ``rssi_bridge_max_s`` apart) the machine's zone probability is multiplied
    #: by this (``rssi_zones.bridge_events``: the worker does the changeover there, away only
    #: for fetch or crib trips); 1 = off. Odds 20, 200 and 1e4, and 1,800 s against 900 s,
    #: were compared on tuning draws (docs/analysis.md).
    rssi_bridge_odds: float = 1e4
    rssi_bridge_max_s: float = 1800.0
    #: RSSI alone on a site without any presence event: a ``none`` second in which the beacon
    #: stands still (``dwell_naming.still_dwells``: over +-``rssi_still_half_s`` its RSSI moves
    #: at most ``rssi_still_drift_db``, for at least ``rssi_still_dwell_s``) takes a machine
    #: zone (``rssi_zones.standing_at_machines``): its group's (dwells at most
    #: ``rssi_dwell_group_db`` apart, named together by ``dwell_naming.name_groups``) if
    #: ``rssi_name_dwell_groups``, else the smoother's likeliest machine.
    rssi_unlabelled_snap: bool = True
    rssi_still_half_s: float = 15.0
    rssi_still_drift_db: float = 2.0
    rssi_still_dwell_s: float = 60.0
    rssi_dwell_group_db: float = 2.5
    rssi_name_dwell_groups: bool = True
    #: ... unless the largest groups, as many as there are machines, hold less than this share
    #: of the worker's still seconds (1.0: whenever the groups outnumber the machines): then
    #: the worker stands still away from the machines too, and the dwells keep the smoother's
    #: zones (``rssi_zones.left_standing``) ...
    rssi_still_top_share: float = 1.0
    #: ... except a dwell whose loudest receiver stands in a machine zone and leads every other
    #: receiver by at least this (dB) ...
    rssi_still_inside_margin_db: float = 2.0
    #: ... and hears it within this (dB) of the loudest any of the worker's dwells was there:
    #: that dwell is in the zone (``dwell_naming.loudest_inside``; ``inf`` margin turns it off).
    rssi_still_inside_top_db: float = 2.0
    #: RSSI: calibrated RSSI at 1 m per receiver (e.g. from a site survey, see
    #: ``rssi_zones.calibrate_from_survey``) with its exponent and noise; skips the fit.
    rssi_p0_by_receiver: dict[str, float] = field(default_factory=dict)
    rssi_exponent: float = 2.2
    rssi_sigma_db: float = 5.0
    #: Locator lag search range, seconds.
    max_lag_s: float = 150.0
    #: Locator lag model: ``"per_move"`` (each reported change its own lag, from its own
    #: evidence; :mod:`twin_server.analysis.move_lag`) or ``"visits"`` (per-visit estimates
    #: pooled with neighbours in time; :mod:`twin_server.analysis.lag`).
    lag_model: str = "per_move"
    #: Per-move lag: largest lag considered, seconds (the pilot saw 85 s).
    move_max_lag_s: float = 240.0
    #: Per-move lag: a worker entering a machine's zone arrived this long (mean of an
    #: exponential prior) before the first event there, seconds.
    arrival_scale_s: float = 40.0
    #: Per-move lag: pool the workers' fitted lag distributions (one locator system).
    lag_pool_workers: bool = True
    #: Per-move lag: the lag (median of a broad log-normal) the fit of the lag distribution
    #: starts from, seconds; None reads it off the recording (median of report minus first
    #: press at each entry), which shared machines pull far up (docs/analysis.md).
    lag_em_start_s: float | None = 20.0
    #: Per-move lag: chances that a move keeps the previous move's lag tried (the one with the
    #: highest log evidence over all workers is used; empty: off).
    lag_chain_rhos: tuple[float, ...] = (0.5, 0.8, 0.95)
    #: ... and by how many nats a coupled chain must beat independent lags.
    lag_chain_margin: float = 2.0
    #: Per-move lag: a worker's lag is taken to hold (narrow around its median) where that
    #: model's log evidence beats independent lags by more than this (nats; None: never).
    lag_steady_margin: float | None = None
    #: Locator + RSSI: RSSI leads the zones (where it is confident) when it places the presence
    #: events this much more often than the locator moved by the typical lag does.
    rssi_lead_margin: float = 0.05
    #: ... or when it places at least this share of them whatever the locator does.
    rssi_trusted: float = 0.95
    #: Where RSSI leads, seconds whose RSSI zone posterior is at least this take RSSI's zone.
    rssi_sure: float = 0.9
    #: Per-move lag: a report is dropped as stale (overtaken) when that raises the log evidence
    #: by more than this (nats); 0 keeps every report.
    lag_drop_gain: float = 12.0
    #: Per-move lag: put a free worker at a machine where presence events are explained by no
    #: worker's zone (a lost locator report, a locator outage).
    repair_unexplained: bool = True
    #: Per-move lag: log-likelihood a presence event takes from every other zone (nats).
    presence_penalty: float = 12.0
    #: Per-move lag: base weight of the RSSI channel (times ``(1 - rho) / (1 + rho)``, see
    #: ``move_lag.rssi_confusion_evidence``); RSSI enters the lag only when it names the right
    #: machine at more than ``move_lag.RSSI_RIGHT_FROM`` of the presence events.
    rssi_lag_weight: float = 0.5
    #: Typical time from entering a machine's zone to the first machine-side event there.
    arrival_delay_s: float = 3.5
    #: The RSSI zone path changes this much before the true zone change on average (its
    #: evidence is pooled over a centred window), so lags aligned on RSSI are this much too
    #: long; calibrated on simulated seeds 101-105 (not the accuracy table's seeds).
    rssi_lag_lead_s: float = 0.8
    #: Typical time from starting a task to pressing its button (the button is pressed as
    #: the task starts); jig-change starts (no button) are moved by this to compare with presses.
    press_delay_s: float = 1.5
    #: Lag assumed when nothing constrains it (the pilot's typical lag).
    default_lag_s: float = 30.0
    #: Switch bounce: presses of one switch closer than this are one press.
    debounce_s: float = 5.0
    #: Pressure excursion: robust z-score that marks a jig change, and the merge gap.
    pressure_z: float = 6.0
    pressure_merge_s: float = 20.0
    #: Shortest jig change kept, seconds.
    min_jig_s: float = 10.0
    #: Jig change: the excursion starts this long after the task starts and ends this long
    #: before it ends (clamp release / re-apply), seconds.
    pressure_pad_s: float = 7.0
    #: Typical pause between two tasks of a changeover (the worker stays, no task), seconds.
    task_gap_s: float = 30.0
    #: Typical time from the end of the last task to the machine starting, seconds.
    restart_gap_s: float = 35.0
    #: A worker away from the machine this long has left (ends the task), seconds.
    leave_s: float = 30.0
    #: Switch-free mode: infer the three switch tasks without switch rows.
    switch_free: bool = False
    #: Task priors (:class:`twin_server.analysis.priors.TaskPriors`) learned from days with
    #: switches; None = learn them from the recording itself (or defaults in switch-free mode).
    priors: Any = None
    #: Recover tasks whose press was forgotten (holes and long tasks, from the priors).
    recover_forgotten: bool = True
    #: A site survey's fingerprint map: ``(FingerprintMap, FingerprintParams)`` from
    #: :mod:`twin_server.analysis.fingerprint_zones`. When given, RSSI zones come from the
    #: fingerprint map and walking-model smoother instead of the fitted path-loss model.
    survey_map: Any = None
    #: Survey mode: a still dwell by a receiver standing in a zone is in that zone (the
    #: ``rssi_still_inside_*`` rule of the survey-free path); the other still dwells keep the
    #: map's zone with the confidence of still seconds left as the smoother says.
    survey_still_inside: bool = True
