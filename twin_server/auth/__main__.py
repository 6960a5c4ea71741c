"""``python -m twin_server.auth ...``: see :mod:`twin_server.auth.cli`."""

from twin_server.auth.cli import main

raise SystemExit(main())
