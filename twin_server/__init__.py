"""The twin server, laid out as a reading's path through it (``docs/architecture.md``).

* :mod:`twin_server.ingest` -- MQTT in, checks, acknowledgements;
* :mod:`twin_server.store` -- the journal, the InfluxDB export, backups, stored results;
* :mod:`twin_server.analysis` -- the pure analysis of a shift's readings;
* :mod:`twin_server.live` -- the running server's present: state, WebSockets, live analysis;
* :mod:`twin_server.api` -- the FastAPI app and its routes (``auth`` and ``editor`` beside it);
* :mod:`twin_server.simulate` -- the simulated factory day we develop against;
* :mod:`twin_server.cli` -- the command lines of ``python -m twin_server``.

The modules at this level are the shared models every layer may import: ``site`` (the site
file), ``readings`` (the readings table), ``result`` (the analysis result), ``kpis`` (KPIs of
a result), ``evaluate`` (scores against a truth) and ``settings``. The allowed imports
between the packages are import-linter contracts in ``pyproject.toml``.
"""
