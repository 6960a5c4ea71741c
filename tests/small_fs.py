"""A small real filesystem for full-disk tests: an ext4 image file mounted through a loop device.

Mounting needs root (CAP_SYS_ADMIN) and a free loop device. Where that is impossible (an
unprivileged CI container), :func:`small_filesystem` yields None and the tests cap the
database instead (SQLite ``max_page_count``: the same "database or disk is full" error on
the same code path).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def small_filesystem(workdir: Path, size_mib: int) -> Iterator[Path | None]:
    """Mount a fresh ext4 filesystem of ``size_mib`` MiB at ``workdir / "mnt"`` (None if impossible)."""
    workdir.mkdir(parents=True, exist_ok=True)
    image, mnt = workdir / "fs.img", workdir / "mnt"
    mnt.mkdir(exist_ok=True)
    mkfs, mount = shutil.which("mkfs.ext4") or "/usr/sbin/mkfs.ext4", shutil.which("mount") or "/bin/mount"
    mounted = False
    if os.geteuid() == 0 and os.path.exists(mkfs) and not os.environ.get("TWIN_TEST_NO_MOUNT"):
        with open(image, "wb") as f:
            f.truncate(size_mib * 2**20)
        made = subprocess.run([mkfs, "-q", "-F", "-m", "0", str(image)], capture_output=True)
        if made.returncode == 0:
            mounted = (
                subprocess.run([mount, "-o", "loop", str(image), str(mnt)], capture_output=True).returncode
                == 0
            )
    try:
        yield mnt if mounted else None
    finally:
        if mounted:
            for _ in range(50):  # a process of the test may still hold a file for a moment
                if subprocess.run(["umount", str(mnt)], capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
            else:
                subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        image.unlink(missing_ok=True)


def fill(mnt: Path, leave_bytes: int) -> Path:
    """Write a ballast file that leaves about ``leave_bytes`` free on ``mnt``; returns its path."""
    ballast = mnt / "ballast"
    free = shutil.disk_usage(mnt).free
    with open(ballast, "wb") as f:
        left = max(0, free - leave_bytes)
        chunk = b"\0" * 2**20
        while left > 0:
            f.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))
        f.flush()
        os.fsync(f.fileno())
    return ballast
