"""Batches of parts: run lengths with the structure a real machine's runs have.

With ``SimParams.run_model == "parts"`` a machine makes a few parts (its part catalogue, the
same on every day of one shop: drawn from ``shop_seed``). Each part has its own median batch
length; one batch varies around it by ``batch_sigma``. A changeover with program input starts
a new part (drawn from the machine's mix), one without continues the part it made before
(new material, worn tools). Minor stops (chips, alarms) interrupt a batch at
``interruptions_per_h``; after the fix the batch goes on where it stopped.

``worker_speed_sd`` gives each worker a constant pace factor on task durations (also drawn
from ``shop_seed``), whatever the run model.

Everything here is drawn only when asked for, so the default model keeps its random stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from twin_server.site import Site

from .params import SimParams

__all__ = ["PartShop", "worker_pace"]


def worker_pace(site: Site, params: SimParams) -> dict[str, float]:
    """Constant factor on each worker's task durations (1.0 for all when ``worker_speed_sd`` is 0)."""
    if params.worker_speed_sd <= 0:
        return {w: 1.0 for w in site.worker_ids}
    rng = np.random.default_rng([int(params.shop_seed), 92])
    z = rng.standard_normal(len(site.worker_ids))
    return {w: float(math.exp(params.worker_speed_sd * v)) for w, v in zip(site.worker_ids, z, strict=True)}


@dataclass
class _Machine:
    medians_s: np.ndarray  # median batch length per part
    weights: np.ndarray  # how often each part is chosen
    part: int = 0
    batch_left_s: float = 0.0
    history: list[int] = field(default_factory=list)  # parts made, in order


class PartShop:
    """The machines' part catalogues and the batch each machine is on."""

    def __init__(self, site: Site, params: SimParams, rng: np.random.Generator) -> None:
        self.params = params
        self.rng = rng  # the day's generator: which part, how long a batch, when it is interrupted
        shop = np.random.default_rng([int(params.shop_seed), 91])
        lo, hi = params.parts_per_machine
        self.machines: dict[str, _Machine] = {}
        for mid in site.machine_ids:
            n = int(shop.integers(round(lo), round(hi) + 1))
            med = params.run_median_min * np.exp(params.part_spread * shop.standard_normal(n))
            med = np.clip(med, params.run_min_min, params.run_max_min) * 60.0
            w = shop.dirichlet(np.ones(n))
            self.machines[mid] = _Machine(med, w)
        for m in self.machines.values():
            m.part = int(rng.choice(len(m.weights), p=m.weights))

    @classmethod
    def create(cls, site: Site, params: SimParams, rng: np.random.Generator) -> PartShop | None:
        """The shop for the ``parts`` run model, None for the default (independent runs)."""
        return cls(site, params, rng) if params.run_model == "parts" else None

    def _new_batch(self, m: _Machine, new_part: bool) -> None:
        if new_part:
            m.part = int(self.rng.choice(len(m.weights), p=m.weights))
        p = self.params
        length = m.medians_s[m.part] * math.exp(p.batch_sigma * self.rng.standard_normal())
        m.batch_left_s = float(np.clip(length, 60.0 * p.run_min_min, 60.0 * p.run_max_min))
        m.history.append(m.part)

    def _run(self, m: _Machine) -> tuple[float, bool]:
        rate_per_s = self.params.interruptions_per_h / 3600.0
        gap = self.rng.exponential(1.0 / rate_per_s) if rate_per_s > 0 else math.inf
        if gap < m.batch_left_s - 60.0:  # an interruption in the last minute ends the batch anyway
            m.batch_left_s -= gap
            return float(gap), True
        run, m.batch_left_s = m.batch_left_s, 0.0
        return float(run), False

    def initial_run(self, mid: str) -> tuple[float, bool]:
        """A machine running at the start of the window: what is left of its run, and whether a
        minor stop (True) or a changeover ends it."""
        m = self.machines[mid]
        self._new_batch(m, new_part=False)
        m.batch_left_s *= float(self.rng.uniform(0.1, 1.0))
        return self._run(m)

    def after_service(self, mid: str, tasks: list[str]) -> tuple[float, bool]:
        """The run after a service (its tasks; none = a minor fix): its length in seconds, and
        whether a minor stop (True) or a changeover ends it."""
        m = self.machines[mid]
        if tasks or m.batch_left_s <= 0:
            self._new_batch(m, new_part="program_input" in tasks)
        return self._run(m)
