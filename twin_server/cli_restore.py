"""``python -m twin_server restore --in FILE --data-dir DIR [--force]`` (see :mod:`twin_server.backup`)."""

from twin_server.backup import add_restore_arguments as add_arguments
from twin_server.backup import run_restore as run

__all__ = ["add_arguments", "run"]
