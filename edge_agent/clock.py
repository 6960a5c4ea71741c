"""Sampling timestamps: wall-clock UTC ns, guarded by the monotonic clock.

Timestamps are ``wall_anchor + (monotonic_now - mono_anchor)``: a wall-clock step (NTP
correction, a manual ``date -s``, a Pi without RTC catching up after boot) cannot make
readings jump or run backwards between re-anchors. The agent calls :meth:`Clock.reanchor`
every few seconds; it follows a step only when the step is trustworthy (see
:func:`should_reanchor`) and counts it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import threading
import time
from collections.abc import Callable

__all__ = ["Clock", "ReplayClock", "ntp_synchronized", "should_reanchor"]

#: Offsets below this are noise between the two clock reads, not steps.
STEP_TOLERANCE_NS = 50_000_000
#: An unsynchronised clock is followed only for steps larger than this (a manual set).
MANUAL_STEP_NS = 3600 * 10**9


def should_reanchor(offset_ns: int, synced: bool | None, tolerance_ns: int = STEP_TOLERANCE_NS) -> bool:
    """Decide whether to follow a wall-clock step of ``offset_ns`` (wall minus ours).

    Follow it when the clock is NTP-synchronised or its state is unknown; while it is known
    to be unsynchronised, follow only a step of more than an hour (someone set the date by
    hand on a Pi that booted with a stale clock); ignore jitter below ``tolerance_ns``.
    """
    if abs(offset_ns) <= tolerance_ns:
        return False
    if synced is False:
        return abs(offset_ns) > MANUAL_STEP_NS
    return True


class Clock:
    """Wall time anchored to the monotonic clock; thread-safe."""

    def __init__(
        self,
        wall_ns: Callable[[], int] = time.time_ns,
        mono_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._wall_ns = wall_ns
        self._mono_ns = mono_ns
        self._lock = threading.Lock()
        self._wall0 = wall_ns()
        self._mono0 = mono_ns()
        self.steps = 0

    def now_ns(self) -> int:
        """Current UTC epoch ns, immune to wall-clock steps between re-anchors."""
        with self._lock:
            return self._wall0 + (self._mono_ns() - self._mono0)

    def offset_ns(self) -> int:
        """Wall clock minus our clock: 0 unless the wall clock stepped since the anchor."""
        with self._lock:
            return self._wall_ns() - (self._wall0 + (self._mono_ns() - self._mono0))

    def reanchor(self, synced: bool | None) -> int:
        """Follow a wall-clock step if :func:`should_reanchor` says so; return the step (ns) or 0."""
        offset = self.offset_ns()
        if not should_reanchor(offset, synced):
            return 0
        with self._lock:
            self._wall0 = self._wall_ns()
            self._mono0 = self._mono_ns()
            self.steps += 1
        return offset


class ReplayClock(Clock):
    """Virtual time for replays: starts at ``start_ns`` and runs ``speed`` times faster."""

    def __init__(self, start_ns: int, speed: float, mono_ns: Callable[[], int] = time.monotonic_ns) -> None:
        super().__init__(wall_ns=lambda: start_ns, mono_ns=mono_ns)
        self._start_ns = start_ns
        self.speed = speed

    def now_ns(self) -> int:
        return self._start_ns + int((self._mono_ns() - self._mono0) * self.speed)

    def offset_ns(self) -> int:
        return 0

    def reanchor(self, synced: bool | None) -> int:
        return 0


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (Linux, 64-bit and 32-bit longs alike); only
    # ``modes`` (in) and ``status`` (out) are used; padding covers the reserved tail.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


_TIME_ERROR = 5
_STA_UNSYNC = 0x0040


def _adjtimex_synced() -> bool | None:
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        tx = _Timex()
        tx.modes = 0  # read only
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    # The kernel's own rule (also what systemd's NTPSynchronized reports).
    return not (state == _TIME_ERROR or tx.status & _STA_UNSYNC)


def _timedatectl_synced() -> bool | None:
    try:
        out = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=3,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = out.stdout.strip()
    return {"yes": True, "no": False}.get(answer)


def ntp_synchronized() -> bool | None:
    """Whether the kernel clock is NTP-synchronised: True, False, or None if unknown."""
    synced = _adjtimex_synced()
    return synced if synced is not None else _timedatectl_synced()
