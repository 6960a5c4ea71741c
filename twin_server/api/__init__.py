"""The twin server's HTTP and WebSocket face: the FastAPI app and its routers.

Owns :mod:`~twin_server.api.app` (``create_app``: the lifespan that starts ingest, journal,
export and live analysis), the routers (``routes``, ``viewer``, ``viewer_kpis``,
``commissioning``, ``editor``, ``docs``) and the request body limit.

May import: the shared models, ``store``, ``ingest``, ``live``, ``analysis``, ``auth`` and
``editor``. Never ``cli``.
"""
