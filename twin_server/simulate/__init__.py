"""Simulated factory day: a shift's ground truth and the sensor readings it would produce.

``simulate(site, hours=8, seed=0)`` returns the readings frame (contract readings format) and
the truth (contract result schema); ``python -m twin_server simulate`` writes both to files.
Every parameter is in :class:`~twin_server.simulate.params.SimParams` (``docs/simulator.md``).
"""

from __future__ import annotations

from .core import Simulation, default_start, simulate, truth_result
from .params import SimParams
from .site_gen import synthetic_site, synthetic_site_dict

__all__ = [
    "SimParams",
    "Simulation",
    "default_start",
    "simulate",
    "synthetic_site",
    "synthetic_site_dict",
    "truth_result",
]
