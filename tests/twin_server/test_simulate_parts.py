"""The simulator's 'parts' run model and worker paces (opt-in; the default stream is unchanged)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from twin_server.simulate import SimParams
from twin_server.simulate.core import default_start
from twin_server.simulate.parts import PartShop, worker_pace
from twin_server.simulate.shift import build_schedule


def _sched(site, params, seed):
    t0 = default_start(site)
    return build_schedule(site, params, t0, t0 + 10 * 3600, np.random.default_rng([seed, 0]))


def test_default_model_draws_no_parts(pilot_site):
    assert PartShop.create(pilot_site, SimParams(), np.random.default_rng(0)) is None
    assert set(worker_pace(pilot_site, SimParams()).values()) == {1.0}
    # the default schedule is the same whatever the new parameters say (they are not drawn)
    a = _sched(pilot_site, SimParams(), 3)
    b = _sched(pilot_site, SimParams(shop_seed=99, part_spread=2.0, interruptions_per_h=3.0), 3)
    assert a.runs == b.runs and [t.start for t in a.tasks] == [t.start for t in b.tasks]


def test_parts_catalogue_is_the_shops_and_program_input_changes_the_part(pilot_site):
    p = SimParams(
        run_model="parts",
        shop_seed=4,
        parts_per_machine=(3.0, 3.0),
        part_spread=1.0,
        batch_sigma=0.05,
        interruptions_per_h=0.0,
    )
    one = PartShop(pilot_site, p, np.random.default_rng(1))
    two = PartShop(pilot_site, p, np.random.default_rng(2))  # another day of the same shop
    for m in pilot_site.machine_ids:
        assert np.array_equal(one.machines[m].medians_s, two.machines[m].medians_s)
        assert len(one.machines[m].medians_s) == 3
    other = PartShop(pilot_site, dataclasses.replace(p, shop_seed=5), np.random.default_rng(1))
    assert not np.array_equal(other.machines["M3"].medians_s, one.machines["M3"].medians_s)
    shop = PartShop(pilot_site, p, np.random.default_rng(7))
    first, _ = shop.after_service("M3", ["tool_change", "program_input"])
    for _ in range(5):  # no program input: the same part, a batch within a few % of the last
        again, minor = shop.after_service("M3", ["material_setting"])
        assert not minor and again == pytest.approx(first, rel=0.25)
    parts = {shop.machines["M3"].part}
    for _ in range(40):
        shop.after_service("M3", ["program_input"])
        parts.add(shop.machines["M3"].part)
    assert len(parts) > 1


def test_interruptions_continue_the_batch(pilot_site):
    p = SimParams(
        run_model="parts",
        shop_seed=4,
        parts_per_machine=(1.0, 1.0),
        batch_sigma=0.01,
        interruptions_per_h=2.0,
    )
    shop = PartShop(pilot_site, p, np.random.default_rng(3))
    total, runs, minor = 0.0, 0, True
    run, minor = shop.after_service("M3", ["program_input"])
    total += run
    while minor:  # minor fixes: the batch goes on where it stopped
        run, minor = shop.after_service("M3", [])
        total += run
        runs += 1
    assert runs >= 1
    assert total == pytest.approx(shop.machines["M3"].medians_s[0], rel=0.05)


def test_parts_schedule_and_worker_pace(pilot_site):
    p = SimParams(run_model="parts", shop_seed=2, worker_speed_sd=0.5)
    s = _sched(pilot_site, p, 1)
    assert all(b > a for runs in s.runs.values() for a, b in runs)
    pace = worker_pace(pilot_site, p)
    assert pace == worker_pace(pilot_site, p) and len(set(pace.values())) == len(pilot_site.workers)
    with pytest.raises(ValueError, match="run_model"):
        SimParams(run_model="batches")
