"""``python -m twin_server backup|restore``: online, consistent backups of a data directory.

    python -m twin_server backup  --data-dir twin-data --out twin-2026-11-24.tar
    python -m twin_server restore --in twin-2026-11-24.tar --data-dir twin-data [--force]

``backup`` copies each SQLite database of the data directory (``journal.sqlite``,
``notes.sqlite``, ``auth.sqlite``, those that exist) with SQLite's online backup API while
the server keeps running: the copy is taken inside one read transaction, so it is the
database exactly as it was when the backup started (WAL mode: ingest goes on meanwhile),
checked with ``PRAGMA integrity_check`` and packed into one tar file with a manifest
(``backup.json``: time, readings, sizes). Progress is printed for the journal.

``restore`` unpacks such a file into a data directory: each database is checked first,
written beside its final name and moved into place. The server must be stopped (restore
refuses while another process holds the journal, and refuses to replace an existing
journal without ``--force``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DATABASES", "BackupError", "backup", "backup_database", "restore"]

#: The data directory's databases, in the order they are copied.
DATABASES = ("journal.sqlite", "notes.sqlite", "auth.sqlite")
MANIFEST = "backup.json"
PAGES_PER_STEP = 4096


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why."""


def backup_database(
    src_path: Path, dst_path: Path, progress: Callable[[int, int], None] | None = None
) -> None:
    """Copy one SQLite database consistently, online, with the backup API.

    A read transaction is held on the source for the whole copy, so every step reads the
    same snapshot (in WAL mode writers go on meanwhile; the backup never restarts).
    """
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True, timeout=30, isolation_level=None)
    dst = sqlite3.connect(dst_path, isolation_level=None)
    try:
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
        step = None if progress is None else (lambda _status, left, total: progress(total - left, total))
        src.backup(dst, pages=PAGES_PER_STEP, progress=step)
        src.execute("COMMIT")
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        src.close()
        dst.close()


def _check(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        result = db.execute("PRAGMA integrity_check").fetchall()
    if result != [("ok",)]:
        raise BackupError(f"{path.name}: integrity check failed: {result[:3]}")


def _readings(path: Path) -> int | None:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            return int(db.execute("SELECT count(*) FROM readings").fetchone()[0])
        except sqlite3.Error:
            return None


def backup(data_dir: Path, out: Path, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Back up every database of ``data_dir`` into the tar file ``out``; returns the manifest."""
    data_dir, out = Path(data_dir), Path(out)
    present = [name for name in DATABASES if (data_dir / name).exists()]
    if "journal.sqlite" not in present:
        raise BackupError(f"{data_dir}: no journal.sqlite here (is this the server's --data-dir?)")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    manifest: dict[str, Any] = {"format": 1, "started_ns": time.time_ns(), "databases": {}}
    with tempfile.TemporaryDirectory(prefix=".twin-backup-", dir=out.parent) as tmp:
        for name in present:
            dst = Path(tmp) / name
            last = [-1.0]

            def progress(done: int, total: int, name: str = name, last: list[float] = last) -> None:
                pct = 100.0 * done / max(1, total)
                if pct - last[0] >= 10 or done == total:
                    last[0] = pct
                    say(f"backup: {name} {pct:5.1f} % ({done}/{total} pages)")

            backup_database(data_dir / name, dst, progress if name == "journal.sqlite" else None)
            _check(dst)
            manifest["databases"][name] = {"bytes": dst.stat().st_size, "readings": _readings(dst)}
        manifest["seconds"] = round(time.time() - started, 3)
        (Path(tmp) / MANIFEST).write_text(json.dumps(manifest, indent=1))
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w") as tar:
            for name in [MANIFEST, *present]:
                tar.add(Path(tmp) / name, arcname=name)
        os.replace(partial, out)
    journal = manifest["databases"]["journal.sqlite"]
    say(
        f"backup: {out} ({out.stat().st_size / 2**20:.1f} MiB, {journal['readings']} readings, "
        f"{', '.join(present)}) in {manifest['seconds']:.1f} s"
    )
    return manifest


def _in_use(path: Path) -> bool:
    """Whether another process has the database open (a running server).

    Every connection to a WAL database holds a shared POSIX lock on byte 128 of its ``-shm``
    file (SQLite's "DMS" slot) for as long as it is open: if an exclusive lock on that byte
    cannot be had, someone has the database open.
    """
    import fcntl

    shm = path.with_name(path.name + "-shm")
    if not shm.exists():
        return False
    with open(shm, "rb+") as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
        except OSError:
            return True
        fcntl.lockf(f, fcntl.LOCK_UN, 1, 128)
    return False


def _read_manifest(tar: tarfile.TarFile, archive: Path) -> dict[str, Any]:
    """The backup's manifest, checked before anything is written (a bad one is a clear error)."""
    member = tar.extractfile(MANIFEST)
    if member is None:
        raise BackupError(f"{archive}: {MANIFEST} is not a regular file")
    try:
        manifest = json.loads(member.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupError(f"{archive}: {MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("started_ns"), int | float):
        raise BackupError(f"{archive}: {MANIFEST} has no numeric 'started_ns': not a twin server backup")
    return manifest


def restore(
    archive: Path, data_dir: Path, force: bool = False, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Unpack a :func:`backup` file into ``data_dir``; returns its manifest."""
    archive, data_dir = Path(archive), Path(data_dir)
    try:
        tar = tarfile.open(archive, "r")  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{archive}: not a backup file ({exc})") from None
    with tar:
        names = tar.getnames()
        if MANIFEST not in names or "journal.sqlite" not in names:
            raise BackupError(f"{archive}: not a twin server backup (no {MANIFEST} or journal.sqlite)")
        unknown = [n for n in names if n not in (MANIFEST, *DATABASES)]
        if unknown:
            raise BackupError(f"{archive}: unexpected members {unknown}")
        manifest = _read_manifest(tar, archive)
        data_dir.mkdir(parents=True, exist_ok=True)
        if _in_use(data_dir / "journal.sqlite"):
            raise BackupError(f"{data_dir / 'journal.sqlite'} is in use: stop the server first")
        if (data_dir / "journal.sqlite").exists() and not force:
            raise BackupError(f"{data_dir} already has a journal.sqlite: restore with --force to replace it")
        with tempfile.TemporaryDirectory(prefix=".twin-restore-", dir=data_dir) as tmp:
            for name in names:
                if name == MANIFEST:
                    continue
                tar.extract(name, tmp, filter="data")
                _check(Path(tmp) / name)
            for name in names:
                if name == MANIFEST:
                    continue
                for suffix in ("-wal", "-shm"):  # the old database's log must not be replayed onto it
                    (data_dir / (name + suffix)).unlink(missing_ok=True)
                os.replace(Path(tmp) / name, data_dir / name)
    readings = manifest.get("databases", {}).get("journal.sqlite", {}).get("readings")
    taken = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(manifest["started_ns"] / 1e9))
    say(f"restore: {data_dir} now holds the backup taken {taken} ({readings} readings)")
    return manifest


# -- command line ------------------------------------------------------------------------------
def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", required=True, help="the server's data directory")
    parser.add_argument("--out", required=True, help="backup file to write (a tar of SQLite files)")


def run_backup(args: argparse.Namespace) -> int:
    try:
        backup(Path(args.data_dir), Path(args.out))
    except (BackupError, sqlite3.Error, OSError) as exc:
        print(f"backup: {exc}", file=sys.stderr)
        return 2
    return 0


def add_restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--in", dest="archive", required=True, help="backup file written by backup")
    parser.add_argument("--data-dir", required=True, help="data directory to restore into")
    parser.add_argument("--force", action="store_true", help="replace the data directory's databases")


def run_restore(args: argparse.Namespace) -> int:
    try:
        restore(Path(args.archive), Path(args.data_dir), force=args.force)
    except (BackupError, sqlite3.Error, OSError) as exc:
        print(f"restore: {exc}", file=sys.stderr)
        return 2
    return 0
