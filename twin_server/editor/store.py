"""The site file on disk: versions, atomic saves, history with undo, drafts of refused saves.

A *version* is the first 16 hex digits of the SHA-256 of the file's bytes (``"new"`` while the
file does not exist). A save names the version it was edited from; if the file has changed
since (another editor saved), the save is refused with :class:`StaleVersion` and the
refused document is kept as a *draft*, so nothing typed is lost.

History lives in ``DATA_DIR/editor/SITE/``: ``versions/VERSION.yaml`` (each text once),
``drafts/*.yaml`` and ``log.jsonl`` (one line per save, undo, restore or refused save). Each
save records the version it replaced, so *undo* walks back along that chain, also across
earlier undos.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin_server.editor.yaml_doc import load_document, merge_document

__all__ = ["NEW_VERSION", "HistoryEntry", "SiteFileStore", "StaleVersion", "version_of"]

NEW_VERSION = "new"


def version_of(data: bytes | None) -> str:
    """The version id of a file's bytes (``"new"`` for a file that does not exist)."""
    return NEW_VERSION if data is None else hashlib.sha256(data).hexdigest()[:16]


class StaleVersion(RuntimeError):
    """The file changed since the editor loaded it; carries the current version and the draft."""

    def __init__(self, current: str, draft: str, saved_by: str | None, saved_t: float | None) -> None:
        self.current = current
        self.draft = draft
        self.saved_by = saved_by
        self.saved_t = saved_t
        who = f" by {saved_by}" if saved_by else ""
        super().__init__(
            f"the site file was changed{who} since you opened it (now version {current}); "
            f"reload to see it: your edits are kept as draft {draft}"
        )


@dataclass(frozen=True)
class HistoryEntry:
    """One line of the history log."""

    t: float
    action: str  # save, undo, restore, external (edited by hand), conflict (a refused save's draft)
    version: str
    previous: str | None
    user: str
    draft: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "action": self.action,
            "version": self.version,
            "previous": self.previous,
            "user": self.user,
            "draft": self.draft,
        }


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class SiteFileStore:
    """One site file and its history (thread-safe: one save at a time).

    Parameters
    ----------
    path : Path
        The site YAML file (it may not exist yet: a new site).
    history_dir : Path
        Where versions, drafts and the log are kept.
    clock : callable
        Epoch seconds (tests inject one).
    """

    def __init__(self, path: Path, history_dir: Path, clock: Any = time.time) -> None:
        self.path = Path(path)
        self.dir = Path(history_dir)
        self.clock = clock
        self._lock = threading.Lock()

    # -- reading ------------------------------------------------------------------------
    def read(self) -> tuple[str, str]:
        """``(text, version)`` of the file now (``("", "new")`` if it does not exist)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return "", NEW_VERSION
        return data.decode("utf-8"), version_of(data)

    def log(self) -> list[HistoryEntry]:
        """The history, oldest first."""
        try:
            lines = (self.dir / "log.jsonl").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(HistoryEntry(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a torn last line after a crash
        return out

    def version_text(self, version: str) -> str:
        """The text of a stored version (KeyError if unknown)."""
        if not re.fullmatch(r"[0-9a-f]{16}", version):
            raise KeyError(version)
        try:
            return (self.dir / "versions" / f"{version}.yaml").read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyError(version) from None

    def draft_text(self, name: str) -> str:
        """The text of a kept draft (KeyError if unknown)."""
        if not re.fullmatch(r"[0-9A-Za-z_.\-]{1,120}\.yaml", name):
            raise KeyError(name)
        try:
            return (self.dir / "drafts" / name).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KeyError(name) from None

    def undo_target(self) -> str | None:
        """The version an undo would restore (the one the current version replaced), or None."""
        _, current = self.read()
        return self._previous_of(current, self.log())

    @staticmethod
    def _previous_of(version: str, log: list[HistoryEntry]) -> str | None:
        for e in reversed(log):
            if e.version == version and e.action != "conflict":
                return e.previous
        return None

    # -- writing ------------------------------------------------------------------------
    def _append(self, entry: HistoryEntry) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry.to_dict(), ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _keep(self, text: str, version: str) -> None:
        d = self.dir / "versions"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{version}.yaml"
        if not p.exists():
            _atomic_write(p, text.encode("utf-8"))

    def _record_current(self, text: str, version: str, log: list[HistoryEntry], user: str) -> None:
        """Keep the file as it is now, if the history does not know it (first save, hand edits)."""
        if version == NEW_VERSION:
            return
        self._keep(text, version)
        if not any(e.version == version and e.action != "conflict" for e in log):
            previous = next((e.version for e in reversed(log) if e.action != "conflict"), None)
            self._append(HistoryEntry(self.clock(), "external", version, previous, user))

    def save(self, document: dict[str, Any], base_version: str, user: str = "") -> tuple[str, str]:
        """Write the edited document if the file is still at ``base_version``.

        Returns
        -------
        (text, version)
            What was written.

        Raises
        ------
        StaleVersion
            The file changed since ``base_version`` (the document is kept as a draft).
        """
        with self._lock:
            text, current = self.read()
            log = self.log()
            if current != base_version:
                draft = self._draft(document, user)
                last = next(
                    (e for e in reversed(log) if e.version == current and e.action != "conflict"), None
                )
                self._append(HistoryEntry(self.clock(), "conflict", current, base_version, user, draft))
                raise StaleVersion(current, draft, last.user if last else None, last.t if last else None)
            self._record_current(text, current, log, user)
            new_text = merge_document(text, document)
            return new_text, self._write(new_text, "save", None if current == NEW_VERSION else current, user)

    def _write(self, text: str, action: str, previous: str | None, user: str) -> str:
        data = text.encode("utf-8")
        version = version_of(data)
        self._keep(text, version)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path, data)
        self._append(HistoryEntry(self.clock(), action, version, previous, user))
        return version

    def _draft(self, document: dict[str, Any], user: str) -> str:
        d = self.dir / "drafts"
        d.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self.clock()))
        who = re.sub(r"[^0-9A-Za-z_.\-]", "_", user or "anonymous")[:40]
        name = f"{stamp}-{who}-{os.urandom(3).hex()}.yaml"
        text, _ = self.read()
        _atomic_write(d / name, merge_document(text, document).encode("utf-8"))
        return name

    def restore(
        self, version: str, base_version: str, user: str = "", action: str = "restore"
    ) -> tuple[str, str]:
        """Make a stored version the file again (``action="undo"``: the chain goes back further)."""
        with self._lock:
            text, current = self.read()
            log = self.log()
            if current != base_version:
                raise StaleVersion(current, "", None, None)
            self._record_current(text, current, log, user)
            old = self.version_text(version)
            log = self.log()
            previous = self._previous_of(version, log) if action == "undo" else current
            return old, self._write(old, action, previous, user)

    def undo(self, base_version: str, user: str = "") -> tuple[str, str]:
        """Restore the version the current one replaced (KeyError if there is none)."""
        target = self.undo_target()
        if target is None:
            raise KeyError("nothing to undo: this version has no earlier one")
        return self.restore(target, base_version, user, action="undo")

    def document(self) -> tuple[dict[str, Any], str]:
        """``(plain document, version)`` of the file now."""
        text, version = self.read()
        return load_document(text), version
