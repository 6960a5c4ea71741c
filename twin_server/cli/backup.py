"""``python -m twin_server backup --data-dir DIR --out FILE`` (see :mod:`twin_server.store.backup`)."""

from twin_server.store.backup import add_backup_arguments as add_arguments
from twin_server.store.backup import run_backup as run

__all__ = ["add_arguments", "run"]
