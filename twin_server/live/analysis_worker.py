"""Run one analysis of journalled readings in a short-lived child process.

The live server re-analyses the current shift every few seconds, and the working set of
one analysis grows with the day's readings (hundreds of MiB for a large site late in the
day). Run inside the server, each run leaves the heap larger (the allocator keeps freed
memory), and a long-running server creeps up. Here each run happens in a child forked from
a small ``forkserver`` process that imported the analysis once: the child reads the journal
itself, analyses, sends the :class:`~twin_server.result.Result` back through a pipe and
exits, returning all of its memory. The server's own memory stays flat, its threads
(ingest, WebSocket) do not wait for the analysis's hold on the GIL, and a crashed or
killed analysis (out of memory) is an error in ``/health``, not a dead server.

A site survey's fingerprint map caches zone posteriors of analysed windows
(``FingerprintMap.cache``) so a growing day is analysed incrementally; the child gets the
cache with the parameters and sends back the windows it added, which are merged here.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twin_server.result import Result
from twin_server.site import Site

__all__ = ["AnalysisWorkerError", "analyze_isolated", "analyze_journal", "isolation_safe"]

log = logging.getLogger("twin_server.live.analysis_worker")

_CTX_LOCK = threading.Lock()
_CTX: Any = None


class AnalysisWorkerError(RuntimeError):
    """The child process died without an answer (killed, out of memory) or took too long."""


def isolation_safe() -> bool:
    """Whether a child process can start here without running the main script again.

    multiprocessing imports the parent's main module in each child; a server started as a
    module (``python -m twin_server serve``, uvicorn, pytest) is imported by name, which is
    harmless, but a plain script without an ``if __name__ == "__main__"`` guard would run
    again in the child. For those the analysis stays in the server process.
    """
    import sys

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", None) is not None or getattr(main, "__file__", None) is None


def analyze_journal(journal: Any, site: Site, params: Any, lo: float, hi: float) -> Result:
    """Load ``[lo, hi)`` from the journal and analyse it, as ``python -m twin_server analyze`` would."""
    from twin_server.analysis import analyze  # heavy import, only when first needed

    loaded = journal.load_readings(site, lo, hi)
    result = analyze(loaded.frame, site, rejected_rows=loaded.rejected_rows, params=params)
    result.extra["rejected_by_reason"] = dict(sorted(loaded.rejected.items()))
    return result


def _context() -> Any:
    global _CTX
    with _CTX_LOCK:
        if _CTX is None:
            ctx = multiprocessing.get_context("forkserver")
            # Imported once in the fork server, so each child starts with them loaded.
            ctx.set_forkserver_preload(
                ["twin_server.analysis", "twin_server.store.journal", "pandas", "numpy"]
            )
            _CTX = ctx
        return _CTX


def _survey_cache(params: Any) -> Any:
    """The fingerprint map's window cache (``AnalysisParams.survey_map`` is ``(map, params)``)."""
    survey = getattr(params, "survey_map", None)
    fmap = survey[0] if isinstance(survey, tuple) and survey else survey
    return getattr(fmap, "cache", None)


def _child(
    conn: multiprocessing.connection.Connection,
    path: str,
    synchronous: str,
    site: Site,
    params: Any,
    lo: float,
    hi: float,
) -> None:
    try:
        from twin_server.store.journal import Journal

        cache = _survey_cache(params)
        before = set(cache) if cache is not None else set()
        journal = Journal(path, synchronous=synchronous)
        try:
            result = analyze_journal(journal, site, params, lo, hi)
        finally:
            journal.close()
        added = {k: v for k, v in cache.items() if k not in before} if cache is not None else {}
        conn.send(("ok", result, added))
    except BaseException as exc:  # the parent raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}", None))
    finally:
        conn.close()


def analyze_isolated(
    journal_path: Path,
    synchronous: str,
    site: Site,
    params: Any,
    lo: float,
    hi: float,
    merge_cache: Callable[[Any, dict], None] | None = None,
    timeout_s: float = 900.0,
) -> Result:
    """:func:`analyze_journal` in a child process; blocks until it answers.

    Raises
    ------
    RuntimeError
        With the child's error text if the analysis failed there.
    AnalysisWorkerError
        If the child died without an answer.
    """
    ctx = _context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child,
        args=(child, str(journal_path), synchronous, site, params, lo, hi),
        name="twin-analysis",
        daemon=True,
    )
    proc.start()
    child.close()
    try:
        try:
            if not parent.poll(timeout_s):
                raise AnalysisWorkerError(f"analysis process gave no answer within {timeout_s:.0f} s; killed")
            status, payload, added = parent.recv()
        except EOFError:
            proc.join(10)
            raise AnalysisWorkerError(
                f"analysis process exited with code {proc.exitcode} without an answer (out of memory?)"
            ) from None
    finally:
        parent.close()
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join()
    if status != "ok":
        raise RuntimeError(payload)
    cache = _survey_cache(params)
    if added and cache is not None:
        (merge_cache or _merge)(cache, added)
    return payload


def _merge(cache: Any, added: dict) -> None:
    """Add the child's new windows to the survey cache, bounded as the analysis bounds it."""
    from twin_server.analysis.fingerprint_zones import CACHE_WINDOWS

    cache.update(added)
    while len(cache) > CACHE_WINDOWS:
        cache.popitem(last=False)
