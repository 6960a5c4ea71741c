"""The one error type of the package: a scan or site that cannot be turned into a model."""

from __future__ import annotations


class ScanError(ValueError):
    """Bad input to ``models3d``; the message is one line a user can act on."""
