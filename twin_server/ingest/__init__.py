"""Where a reading enters the server: MQTT in, checked, journalled, acknowledged.

Owns:

* :mod:`~twin_server.ingest.subscriber` -- :class:`Ingest`: subscribes to the wire topics,
  decodes and checks each message (device scope), hands batches to the journal and
  dead-letters what cannot be stored;
* :mod:`~twin_server.ingest.paho_client` -- every use of paho-mqtt's private internals (the
  buffered receive path, the in-flight window, message-id wrap), with stock paho as fallback;
* :mod:`~twin_server.ingest.delivery` -- end-to-end acknowledgements per sensor;
* :mod:`~twin_server.ingest.publish` -- a shift published as wire messages (tests, bench, demo).

May import: :mod:`twin_contract`, :mod:`edge_agent.wire`, the shared models at the top of
:mod:`twin_server` (``site``, ``readings``, ``result``), :mod:`twin_server.store`, and
:mod:`twin_server.auth.device_scope`. Never ``api``, ``live``, ``cli`` or ``analysis``
(checked by import-linter, ``[tool.importlinter]`` in ``pyproject.toml``).
"""
