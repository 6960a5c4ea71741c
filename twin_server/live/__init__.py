"""The running server's present: latest state, WebSocket fan-out, live analysis, commissioning.

Owns:

* :mod:`~twin_server.live.hub` -- latest sensor state, the WebSocket hub and the loop that
  re-analyses the current shift from the journal;
* :mod:`~twin_server.live.analysis_worker` -- one analysis run in a short-lived child process;
* :mod:`~twin_server.live.commissioning` -- the pure per-machine commissioning checklist.

May import: the shared models, :mod:`twin_server.analysis`, :mod:`twin_server.store` and
:mod:`twin_server.kpis`. Never ``api`` or ``cli``.
"""
