"""What the server keeps: the journal, the InfluxDB export, backups, retention, stored results.

Owns:

* :mod:`~twin_server.store.journal` -- the SQLite journal of every reading and status; the only
  module that touches its connection (others call its methods);
* :mod:`~twin_server.store.influx` -- line protocol and the durable InfluxDB writer;
* :mod:`~twin_server.store.backup` and :mod:`~twin_server.store.retention` -- online backups and
  pruning of what InfluxDB already holds;
* :mod:`~twin_server.store.replay_data` -- stored analysis results and site layouts for the viewer.

May import: :mod:`twin_contract`, :mod:`edge_agent.wire` and the shared models at the top of
:mod:`twin_server`. Never ``ingest``, ``live``, ``api``, ``cli`` or ``analysis``.
"""
