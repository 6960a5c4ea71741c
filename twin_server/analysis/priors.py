"""Priors over changeovers: task durations, task order and task shares.

Learned from analysed days on which the switches were used (:func:`learn_priors`), or from
the recording itself; they drive the recovery of forgotten presses and the switch-free
mode. A changeover is the run of tasks on one machine between two machine runs.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin_contract import vocabulary as vocab

SWITCH_TASKS = vocab.SWITCH_TASKS
ALL_TASKS = (vocab.JIG_TASK, *SWITCH_TASKS)
START, END = "start", "end"


@dataclass
class TaskPriors:
    """Log-normal durations per task, first-order task order, and task shares."""

    log_mu: dict[str, float] = field(
        default_factory=lambda: {
            "jig_change": math.log(600),
            "tool_change": math.log(300),
            "program_input": math.log(180),
            "material_setting": math.log(150),
        }
    )
    log_sd: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ALL_TASKS, 0.5))
    #: P(next | previous) with ``start``/``end`` as the changeover's ends.
    follows: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            START: {"jig_change": 0.4, "tool_change": 0.4, "program_input": 0.1, "material_setting": 0.1},
            "jig_change": {"tool_change": 0.6, "program_input": 0.2, "material_setting": 0.15, END: 0.05},
            "tool_change": {"program_input": 0.6, "material_setting": 0.3, END: 0.1},
            "program_input": {"material_setting": 0.7, "tool_change": 0.2, END: 0.1},
            "material_setting": {END: 0.8, "tool_change": 0.1, "program_input": 0.1},
        }
    )
    #: Share of changeovers containing each task.
    share: dict[str, float] = field(
        default_factory=lambda: {
            "jig_change": 0.5,
            "tool_change": 0.85,
            "program_input": 0.7,
            "material_setting": 0.95,
        }
    )
    #: Share of task presses that are forgotten.
    forgotten_share: float = 0.05
    #: Shortest changeover (first task start to last task end), 5th percentile.
    min_changeover_s: float = 240.0
    #: Log-normal length of a changeover (first task start to last task end), seconds.
    span_log_mu: float = math.log(900.0)
    span_log_sd: float = 0.6
    #: Stops the worker fixes without a changeover (chip clearing, alarm reset): their share
    #: and longest length. A prior, not learned (days with switches do not mark them).
    minor_share: float = 0.15
    minor_max_s: float = 240.0
    n_changeovers: int = 0

    def lp_duration(self, task: str, d_s: float | np.ndarray) -> float | np.ndarray:
        """Log density of a task lasting ``d_s`` seconds (a numpy float for a float, else an array)."""
        d = np.maximum(np.asarray(d_s, dtype="float64"), 1.0)
        mu, sd = self.log_mu[task], self.log_sd[task]
        lp: float | np.ndarray = -0.5 * ((np.log(d) - mu) / sd) ** 2 - math.log(sd) - np.log(d) - 0.9189385
        return lp

    def is_changeover(self, visit_s: float) -> bool:
        """Whether a stop attended this long is more probably a changeover than a minor fix."""
        d = max(visit_s, 1.0)
        z = (math.log(d) - self.span_log_mu) / self.span_log_sd
        lp_co = math.log(1 - self.minor_share) - 0.5 * z * z - math.log(self.span_log_sd * d * 2.5066283)
        if d > self.minor_max_s:
            return True
        lp_minor = math.log(self.minor_share) - math.log(self.minor_max_s)
        return lp_co > lp_minor

    def lp_follow(self, a: str, b: str) -> float:
        """Log probability that ``b`` follows ``a`` in a changeover (floored)."""
        return math.log(max(self.follows.get(a, {}).get(b, 0.0), 0.01))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> TaskPriors:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})

    def save(self, path: str | Path) -> None:
        """Write as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> TaskPriors:
        """Read a JSON file written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def changeovers(
    tasks: list[tuple[str, float, float]], max_gap_s: float = 600.0
) -> list[list[tuple[str, float, float]]]:
    """Group one machine's time-sorted ``(task, start, end)`` into changeovers."""
    out: list[list[tuple[str, float, float]]] = []
    for t in sorted(tasks, key=lambda x: x[1]):
        if out and t[1] - out[-1][-1][2] <= max_gap_s:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def learn_priors(
    per_machine_tasks: list[list[tuple[str, float, float]]],
    *,
    base: TaskPriors | None = None,
    min_count: int = 5,
) -> TaskPriors:
    """Learn task priors from analysed days (with switches) or ground truth.

    Parameters
    ----------
    per_machine_tasks : list of list of (task, start, end)
        One list per machine and day.
    base : TaskPriors, optional
        Values kept where the data are too few (``min_count``).

    Returns
    -------
    TaskPriors
    """
    pri = TaskPriors() if base is None else TaskPriors.from_dict(base.to_dict())
    durations: dict[str, list[float]] = {t: [] for t in ALL_TASKS}
    trans: Counter[tuple[str, str]] = Counter()
    contains: Counter[str] = Counter()
    n_co = 0
    spans: list[float] = []
    for tasks in per_machine_tasks:
        for co in changeovers(tasks):
            n_co += 1
            spans.append(co[-1][2] - co[0][1])
            names = [t for t, _, _ in co]
            for t, s, e in co:
                if t in durations and e > s:
                    durations[t].append(e - s)
            for a, b in itertools.pairwise([START, *names, END]):
                trans[(a, b)] += 1
            contains.update(set(names))
    for t, d in durations.items():
        if len(d) >= min_count:
            logs = np.log(np.maximum(d, 1.0))
            pri.log_mu[t] = float(np.median(logs))
            pri.log_sd[t] = float(max(0.15, 1.4826 * np.median(np.abs(logs - np.median(logs)))))
    if n_co >= min_count:
        froms = {a for a, _ in trans}
        for a in froms:
            total = sum(v for (x, _), v in trans.items() if x == a)
            # Add-one smoothing keeps unseen orders possible.
            options = [t for t in ALL_TASKS if t != a] + [END] if a != START else list(ALL_TASKS)
            pri.follows[a] = {b: (trans[(a, b)] + 0.5) / (total + 0.5 * len(options)) for b in options}
        pri.share = {t: contains[t] / n_co for t in ALL_TASKS}
        pri.min_changeover_s = float(np.percentile(spans, 5))
        logs = np.log(np.maximum(spans, 1.0))
        pri.span_log_mu = float(np.median(logs))
        pri.span_log_sd = float(max(0.2, 1.4826 * np.median(np.abs(logs - np.median(logs)))))
    pri.n_changeovers = n_co
    return pri
