"""The live analysis in a child process: same result, errors named, a dead child is an error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from twin_server.ingest.publish import frame_to_wire
from twin_server.live.analysis_worker import AnalysisWorkerError, analyze_isolated, analyze_journal
from twin_server.simulate import simulate
from twin_server.store.journal import Journal


class _DiesWhenUnpickled:
    """Stands in for the analysis parameters; unpickling it in the child kills the child."""

    def __reduce__(self):
        return (os._exit, (9,))


def _journal(tmp_path: Path, site) -> tuple[Journal, float, float]:
    sim = simulate(site, 0.25, 3)
    j = Journal(tmp_path / "j.sqlite")
    readings = frame_to_wire(sim.readings, site)
    j.write_batch([(r, r.t_ns) for r in readings])
    return j, readings[0].t_ns / 1e9, readings[-1].t_ns / 1e9 + 1


def test_child_gives_the_in_process_result(tmp_path: Path, pilot_site) -> None:
    j, lo, hi = _journal(tmp_path, pilot_site)
    child = analyze_isolated(j.path, j.synchronous, pilot_site, None, lo, hi)
    here = analyze_journal(j, pilot_site, None, lo, hi)
    assert child.to_dict() == here.to_dict()
    assert child.machine_states and child.extra["rejected_by_reason"] == here.extra["rejected_by_reason"]


def test_child_errors_and_deaths_are_errors_here(tmp_path: Path, pilot_site) -> None:
    j, lo, hi = _journal(tmp_path, pilot_site)
    with pytest.raises(RuntimeError, match="AttributeError: 'NoneType' object has no attribute 'site'"):
        analyze_isolated(j.path, j.synchronous, None, None, lo, hi)  # type: ignore[arg-type]
    with pytest.raises(AnalysisWorkerError, match="exited with code"):
        analyze_isolated(j.path, j.synchronous, pilot_site, _DiesWhenUnpickled(), lo, hi)
    # ... and the next run works again.
    assert analyze_isolated(j.path, j.synchronous, pilot_site, None, lo, hi).machine_states


def test_isolation_only_where_the_main_module_is_imported_by_name(monkeypatch) -> None:
    import sys
    import types

    from twin_server.live.analysis_worker import isolation_safe

    assert isolation_safe()  # pytest runs as a module
    script = types.ModuleType("__main__")
    script.__file__ = "/somewhere/my_script.py"  # a plain script: it would run again in the child
    script.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert not isolation_safe()
