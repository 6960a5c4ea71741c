"""The command lines of ``python -m twin_server COMMAND``, one module per command.

Each module exposes ``add_arguments(parser)`` and ``run(args) -> int``; the table of commands
is in :mod:`twin_server.__main__`. ``simulate`` and ``evaluate`` keep their command next to
their code (:mod:`twin_server.simulate.cli`, :mod:`twin_server.evaluate`).

May import everything; nothing but :mod:`twin_server.__main__` imports it (``demo`` is used by
tests and ``deploy/edge-sim`` as a library too).
"""
