"""Every parameter of the simulated factory day, with its default and meaning.

One frozen dataclass, :class:`SimParams`, holds them all; the CLI exposes the important
ones and ``docs/simulator.md`` lists every one. Durations are seconds unless the name says
otherwise (``_min`` minutes); levels carry their unit in the name (``_lux``, ``_dbm``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

__all__ = [
    "LAG_PROCESSES",
    "PILOT_LAG_SAMPLES_S",
    "RUN_MODELS",
    "TASK_SPECS",
    "SimParams",
    "TaskSpec",
    "param_docs",
    "param_table_markdown",
]

#: The pilot's camera-checked locator lags (location sensor time minus actual time), seconds.
PILOT_LAG_SAMPLES_S: tuple[float, ...] = (20.0, 17.0, 15.0, 11.0, 85.0, 6.0, 24.0, 11.0)
#: How the locator lag may vary (``SimParams.lag_process``).
LAG_PROCESSES = ("stretches", "per_move", "drift", "outliers")
#: How run lengths arise (``SimParams.run_model``).
RUN_MODELS = ("lognormal", "parts")


@dataclass(frozen=True)
class TaskSpec:
    """How one changeover task behaves.

    Durations are drawn from a log-normal distribution with median ``median_min`` minutes
    and log-sd ``sigma``, clipped to ``[min_min, max_min]``.
    """

    share: float  # probability that the task is part of a changeover
    median_min: float
    sigma: float
    min_min: float
    max_min: float


#: Default per-task behaviour (the pilot's changeovers took minutes per task).
TASK_SPECS: dict[str, TaskSpec] = {
    "jig_change": TaskSpec(share=0.5, median_min=10.0, sigma=0.35, min_min=4.0, max_min=30.0),
    "tool_change": TaskSpec(share=0.85, median_min=5.0, sigma=0.4, min_min=1.5, max_min=20.0),
    "program_input": TaskSpec(share=0.7, median_min=3.0, sigma=0.4, min_min=1.0, max_min=12.0),
    "material_setting": TaskSpec(share=0.95, median_min=2.5, sigma=0.4, min_min=0.8, max_min=10.0),
}


def _doc(text: str, default: object) -> object:
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class SimParams:
    """Parameters of a simulated shift. Every field has a default and a ``doc`` in its metadata."""

    # -- machines ------------------------------------------------------------------------
    run_median_min: float = _doc("median length of a machine run (log-normal), minutes", 55.0)
    run_sigma: float = _doc("log-sd of the run length", 0.55)
    run_min_min: float = _doc("shortest run, minutes", 12.0)
    run_max_min: float = _doc("longest run, minutes", 240.0)
    initial_running_share: float = _doc(
        "probability that a machine is already running at the start of the window", 0.5
    )
    minor_stop_share: float = _doc(
        "share of stops that need no changeover (chip clearing, alarm reset): the worker visits "
        "for 1-4 min, does no task and restarts the machine",
        0.15,
    )
    restart_delay_s: tuple[float, float] = _doc(
        "machine starts this long (uniform range) after the last task of a changeover ends", (10.0, 60.0)
    )
    run_model: str = _doc(
        "how run lengths arise: 'lognormal' (each run drawn on its own from run_median_min, "
        "run_sigma; minor_stop_share of the stops are minor) or 'parts' (batches of parts, "
        "twin_server/simulate/parts.py: a changeover with program input starts a new part, one "
        "without repeats the part; minor stops interrupt a batch at interruptions_per_h)",
        "lognormal",
    )
    parts_per_machine: tuple[float, float] = _doc(
        "'parts': parts a machine makes (integer range)", (1.0, 5.0)
    )
    part_spread: float = _doc("'parts': log-sd of the parts' median batch lengths around run_median_min", 0.7)
    batch_sigma: float = _doc("'parts': log-sd of one batch's length around its part's median", 0.15)
    interruptions_per_h: float = _doc("'parts': minor stops per running hour within a batch", 0.2)
    worker_speed_sd: float = _doc("log-sd of each worker's constant pace factor on task durations", 0.0)
    shop_seed: int = _doc(
        "seed of the shop's constants (part catalogues, worker paces): days simulated with the same "
        "shop_seed share them",
        0,
    )
    # -- changeovers ---------------------------------------------------------------------
    jig_first_share: float = _doc("probability that a jig change, when present, comes first", 0.9)
    swap_tool_program_share: float = _doc("probability that program input comes before tool change", 0.25)
    material_early_share: float = _doc(
        "probability that material setting comes before tool change and program input", 0.15
    )
    task_gap_s: tuple[float, float] = _doc(
        "pause between two tasks of one changeover (uniform range), worker stays at the machine", (5.0, 60.0)
    )
    fetch_share: float = _doc(
        "probability that the worker leaves the zone between two tasks to fetch tools or material "
        "from the aisle (zone none), instead of pausing at the machine",
        0.3,
    )
    fetch_s: tuple[float, float] = _doc(
        "time spent at the tool cart / rack on such a trip (uniform range)", (10.0, 50.0)
    )
    crib_share: float = _doc(
        "probability that the worker walks to the tool crib (a fixed place at the far end of the "
        "aisle) between two tasks, instead of pausing or fetching from the cart",
        0.0,
    )
    crib_s: tuple[float, float] = _doc("time spent at the tool crib (uniform range)", (30.0, 120.0))
    first_task_delay_s: tuple[float, float] = _doc(
        "time from arriving at a stopped machine to starting its first task (looking, clearing "
        "chips), the worker standing in the zone (uniform range)",
        (0.0, 0.0),
    )
    # -- workers -------------------------------------------------------------------------
    walk_speed_mps: tuple[float, float] = _doc("walking speed (uniform range per walk), m/s", (0.8, 1.2))
    reaction_s: tuple[float, float] = _doc(
        "time until a free worker notices a stopped machine (uniform range)", (10.0, 150.0)
    )
    linger_s: tuple[float, float] = _doc(
        "time a worker stays at a machine after restarting it (uniform range)", (10.0, 120.0)
    )
    visit_share: float = _doc(
        "probability per idle minute that a worker walks to a running machine to check it", 0.08
    )
    visit_s: tuple[float, float] = _doc("length of such a check visit (uniform range)", (30.0, 180.0))
    aisle_offset_m: float = _doc("distance of the aisle path from the edge of a machine's zone, m", 1.0)
    # -- stack light ---------------------------------------------------------------------
    light_period_s: float = _doc("stack-light sampling period, s", 1.0)
    light_off_lux: tuple[float, float] = _doc(
        "lamp level when stopped, per machine (uniform range), lux", (30.0, 120.0)
    )
    light_on_extra_lux: tuple[float, float] = _doc(
        "extra lamp level when running above the stopped level, per machine (uniform range), lux",
        (150.0, 500.0),
    )
    ambient_lux: float = _doc("mean ambient light on the floor, lux", 500.0)
    ambient_sd_lux: float = _doc("sd of the slowly drifting ambient light (Ornstein-Uhlenbeck), lux", 120.0)
    ambient_tau_min: float = _doc("correlation time of the ambient drift, minutes", 90.0)
    ambient_gain: tuple[float, float] = _doc(
        "share of the ambient light a (hooded) stack-light sensor sees, per machine (uniform range)",
        (0.05, 0.15),
    )
    light_noise_share: float = _doc("sd of the light noise as a share of the running level", 0.02)
    # -- pressure ------------------------------------------------------------------------
    pressure_period_s: float = _doc("pressure sampling period, s", 1.0)
    pressure_normal: tuple[float, float] = _doc(
        "normal pressure level, per machine (uniform range), kPa", (400.0, 600.0)
    )
    pressure_noise_share: float = _doc("sd of the pressure noise as a share of the normal level", 0.01)
    pressure_drift_share: float = _doc(
        "sd of the slow drift of the normal level (share; correlation time 60 min)", 0.01
    )
    pressure_jig_share: tuple[float, float] = _doc(
        "level during a jig change as a share of normal (uniform range per jig change)", (0.05, 0.35)
    )
    pressure_jig_delay_s: tuple[float, float] = _doc(
        "delay of the excursion after the jig change starts, and its end before the jig change "
        "ends (uniform range each)",
        (2.0, 12.0),
    )
    pressure_tau_s: float = _doc("time constant of the pressure ramps, s", 2.0)
    # -- switches ------------------------------------------------------------------------
    forgotten_share: float = _doc("share of task-start button presses that are forgotten", 0.05)
    press_delay_s: tuple[float, float] = _doc(
        "press time after the true task start (uniform range)", (0.0, 3.0)
    )
    press_hold_s: float = _doc("mean time the button is held down (normal, sd 0.08 s), s", 0.3)
    bounce_share: float = _doc("share of presses whose contact bounces (extra 1/0 pairs within ~50 ms)", 0.1)
    # -- BLE -----------------------------------------------------------------------------
    adv_interval_s: float = _doc("beacon advertising interval (plus 0-10 ms random delay), s", 0.3)
    packet_loss: float = _doc("probability that a receiver misses an advert in good conditions", 0.4)
    tx_power_dbm: float = _doc("RSSI at 1 m (log-distance path-loss model), dBm", -59.0)
    path_loss_exponent: float = _doc("path-loss exponent", 2.2)
    body_loss_db: float = _doc(
        "extra loss when the body is between the chest beacon and the receiver, dB", 10.0
    )
    rssi_noise_db: float = _doc("sd of the RSSI noise, dB", 4.0)
    beacon_tx_sd_db: float = _doc(
        "sd of each beacon's deviation from the nominal tx power (constant), dB", 1.0
    )
    receiver_gain_sd_db: float = _doc(
        "sd of each receiver's constant gain offset (antenna, enclosure, mounting), dB", 2.0
    )
    rssi_fading_db: float = _doc("sd of the slow fading of each receiver-beacon link, dB", 2.0)
    rssi_fading_tau_s: float = _doc("correlation time of that fading, s", 5.0)
    sensitivity_dbm: float = _doc("receiver sensitivity: weaker adverts are lost, dBm", -98.0)
    beacon_height_m: float = _doc("height of the chest beacon above the floor, m", 1.2)
    beacon_tx_spread_db: float = _doc(
        "extra constant per-beacon offset, uniform in +-this (on top of beacon_tx_sd_db), dB", 0.0
    )
    receiver_gain_spread_db: float = _doc(
        "extra constant per-receiver offset, uniform in +-this (on top of receiver_gain_sd_db), dB", 0.0
    )
    rssi_outlier_share: float = _doc(
        "share of adverts hit by a multipath outlier (RSSI moved by -rssi_outlier_db .. "
        "+rssi_outlier_db / 2)",
        0.0,
    )
    rssi_outlier_db: float = _doc("largest multipath outlier, dB", 20.0)
    # -- commercial locator --------------------------------------------------------------
    locator_min_dwell_s: float = _doc(
        "zone visits shorter than this are never reported by the locator (0 = all are)", 0.0
    )
    locator_flicker_per_h: float = _doc(
        "spurious locator reports per worker and hour: a wrong zone for 3 .. 15 s, then the right one again",
        0.0,
    )
    lag_segment_min: tuple[float, float] = _doc(
        "length of a constant-lag stretch of the locator (uniform range), minutes", (8.0, 40.0)
    )
    lag_median_s: float = _doc("median locator lag, s", 20.0)
    lag_walk_sigma: float = _doc("sd of the log-lag random walk from one stretch to the next", 0.3)
    lag_outlier_share: float = _doc("probability that a stretch is a short large-lag outlier", 0.06)
    lag_outlier_s: tuple[float, float] = _doc("lag of an outlier stretch (uniform range), s", (50.0, 85.0))
    lag_outlier_min: tuple[float, float] = _doc(
        "length of an outlier stretch (uniform range), minutes", (1.0, 5.0)
    )
    lag_bounds_s: tuple[float, float] = _doc("the lag is clipped to this range, s", (6.0, 85.0))
    lag_process: str = _doc(
        "how the locator lag varies: 'stretches' (constant for minutes, the lag_* parameters "
        "above), 'per_move' (each zone change its own lag, drawn from the pilot's camera-checked "
        "samples), 'drift' (a slowly drifting lag: log-lag random process sampled at each move), "
        "'outliers' (per_move with some minutes-long outliers)",
        "stretches",
    )
    lag_drift_median_s: float = _doc("'drift': median lag, s", 20.0)
    lag_drift_sigma: float = _doc("'drift': sd of the log-lag", 0.5)
    lag_drift_tau_min: float = _doc("'drift': correlation time of the log-lag, minutes", 30.0)
    lag_long_share: float = _doc("'outliers': share of moves reported minutes late", 0.05)
    lag_long_s: tuple[float, float] = _doc("'outliers': lag of such a move (uniform range), s", (90.0, 180.0))
    locator_loss_share: float = _doc("share of the locator's zone reports that are lost", 0.0)
    locator_keep_order: bool = _doc(
        "the locator delivers reports in order (a report waits for the previous one); false: a "
        "report with a short lag overtakes an earlier one with a long lag",
        True,
    )
    # -- clocks --------------------------------------------------------------------------
    clock_offset_sd_s: float = _doc(
        "sd of a constant clock offset per device (machine Pi, receiver, locator); 0 = perfect clocks", 0.0
    )
    # -- what to render ------------------------------------------------------------------
    locator: bool = _doc("write the commercial locator's zone stream", True)
    rssi: bool = _doc("write BLE RSSI readings", True)
    tasks: dict[str, TaskSpec] = field(
        default_factory=lambda: dict(TASK_SPECS),
        metadata={"doc": "per-task share and duration (see TASK_SPECS)"},
    )

    def __post_init__(self) -> None:
        """Reject values the model cannot use, naming the parameter (``ValueError``)."""
        for f in fields(self):
            name, value = f.name, getattr(self, f.name)
            if name in ("tasks", "locator", "rssi", "locator_keep_order"):
                continue
            if name == "lag_process":
                if value not in LAG_PROCESSES:
                    raise ValueError(f"lag_process: must be one of {list(LAG_PROCESSES)} (got {value!r})")
                continue
            if name == "run_model":
                if value not in RUN_MODELS:
                    raise ValueError(f"run_model: must be one of {list(RUN_MODELS)} (got {value!r})")
                continue
            parts = value if isinstance(value, tuple) else (value,)
            if isinstance(value, tuple) and (len(value) != 2 or value[0] > value[1]):
                raise ValueError(f"{name}: a range needs two values, low <= high (got {value!r})")
            for v in parts:
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    raise ValueError(f"{name}: must be a finite number (got {v!r})")
            low = parts[0]
            if (name.endswith("_share") or name == "packet_loss") and not all(0 <= v <= 1 for v in parts):
                raise ValueError(f"{name}: must be between 0 and 1 (got {value!r})")
            if name in _POSITIVE and not low > 0:
                raise ValueError(f"{name}: must be > 0 (got {value!r})")
            if not name.endswith("_dbm") and not low >= 0:
                raise ValueError(f"{name}: must be >= 0 (got {value!r})")
        for task, spec in self.tasks.items():
            if task not in TASK_SPECS:
                raise ValueError(f"tasks: unknown task {task!r}")
            if not (0 <= spec.share <= 1 and 0 < spec.min_min <= spec.median_min <= spec.max_min):
                raise ValueError(f"tasks.{task}: needs 0 <= share <= 1 and 0 < min <= median <= max")


#: Parameters that must be strictly positive (periods, speeds, time constants).
_POSITIVE = frozenset(
    {
        "light_period_s",
        "pressure_period_s",
        "adv_interval_s",
        "walk_speed_mps",
        "lag_median_s",
        "pressure_tau_s",
        "run_median_min",
        "run_min_min",
        "lag_segment_min",
        "lag_outlier_min",
        "lag_drift_median_s",
        "lag_drift_tau_min",
        "rssi_fading_tau_s",
        "ambient_tau_min",
        "ambient_lux",
    }
)


def param_docs() -> list[tuple[str, object, str]]:
    """``(name, default, doc)`` for every parameter, in declaration order."""
    defaults = SimParams()
    return [(f.name, getattr(defaults, f.name), f.metadata.get("doc", "")) for f in fields(SimParams)]


def param_table_markdown() -> str:
    """The parameter table of ``docs/simulator.md`` (a test keeps the doc in step with the code)."""
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    for name, default, doc in param_docs():
        if name == "tasks":
            shown = "see the task table"
        elif isinstance(default, tuple):
            shown = f"{default[0]:g} .. {default[1]:g}"
        else:
            shown = f"{default}"
        rows.append(f"| `{name}` | {shown} | {doc} |")
    rows += ["", "| task | share | median (min) | log-sd | range (min) |", "|---|---|---|---|---|"]
    for name, s in TASK_SPECS.items():
        rows.append(
            f"| `{name}` | {s.share:g} | {s.median_min:g} | {s.sigma:g} | {s.min_min:g} .. {s.max_min:g} |"
        )
    return "\n".join(rows)
