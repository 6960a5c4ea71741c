"""``python -m twin_server restore --in FILE --data-dir DIR [--force]`` (:mod:`twin_server.store.backup`)."""

from twin_server.store.backup import add_restore_arguments as add_arguments
from twin_server.store.backup import run_restore as run

__all__ = ["add_arguments", "run"]
