"""Survey walks tapped on a tablet: where the engineer stood, when, and what the receivers heard.

The engineer carries a beacon and taps the plan where they stand; each tap is stamped with
the *server's* clock when it arrives (the tablet's clock is not trusted) and appended at once
to the walk's track file, so a dropped connection loses nothing already tapped. Finishing
the walk writes the RSSI rows the server journalled for that beacon meanwhile as a readings
CSV (the contract's format). The two files are what ``survey.walks`` in the site file names
and what ``analyze`` and ``serve`` read (:mod:`twin_server.analysis.survey`):

* ``survey/walk-YYYYMMDD-HHMMSS_track.csv``: ``time,x_m,y_m`` (epoch seconds, floor metres);
* ``survey/walk-YYYYMMDD-HHMMSS.csv``: ``time,kind,source,channel,value`` rssi rows.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twin_server.store.journal import Journal

__all__ = ["MARGIN_S", "WalkError", "WalkRecorder", "WalkSession"]

MARGIN_S = 2.0  # RSSI rows this long before the first and after the last tap still count
MAX_POINTS = 5000


class WalkError(ValueError):
    """A walk that cannot go on or be finished; the message says why."""


@dataclass
class WalkSession:
    """One walk in progress."""

    walk_id: str
    beacon: str
    started_s: float
    user: str
    track_path: Path
    points: list[tuple[float, float, float]] = field(default_factory=list)  # (t, x, y)


class WalkRecorder:
    """Walks in progress of one site (thread-safe).

    Parameters
    ----------
    site_id : str
        The site whose journalled RSSI rows are collected.
    journal : Journal
        The server's journal.
    base_dir : callable
        The site file's folder (walk files are written under ``survey/`` in it).
    clock : callable
        Epoch seconds (the server's clock).
    """

    def __init__(self, site_id: str, journal: Journal, base_dir: Any, clock: Any = time.time) -> None:
        self.site_id = site_id
        self.journal = journal
        self.base_dir = base_dir
        self.clock = clock
        self._lock = threading.Lock()
        self.walks: dict[str, WalkSession] = {}

    def start(self, beacon: str, user: str = "") -> WalkSession:
        """Begin a walk with ``beacon``; its track file is created now."""
        now = self.clock()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        folder = Path(self.base_dir()) / "survey"
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            walk_id = f"walk-{stamp}"
            n = 1
            while walk_id in self.walks or (folder / f"{walk_id}_track.csv").exists():
                n += 1
                walk_id = f"walk-{stamp}-{n}"
            track = folder / f"{walk_id}_track.csv"
            track.write_text("time,x_m,y_m\n", encoding="utf-8")
            session = WalkSession(walk_id, beacon, now, user, track)
            self.walks[walk_id] = session
        return session

    def get(self, walk_id: str) -> WalkSession:
        with self._lock:
            session = self.walks.get(walk_id)
        if session is None:
            raise KeyError(walk_id)
        return session

    def tap(self, walk_id: str, x_m: float, y_m: float, *, repeat: bool = False) -> WalkSession:
        """Record where the walker stands now (``repeat``: still at the last point)."""
        session = self.get(walk_id)
        with self._lock:
            if repeat:
                if not session.points:
                    raise WalkError("tap where you stand first")
                x_m, y_m = session.points[-1][1], session.points[-1][2]
            if not (math.isfinite(x_m) and math.isfinite(y_m)):
                raise WalkError("a tap needs finite floor coordinates")
            if len(session.points) >= MAX_POINTS:
                raise WalkError(f"a walk holds at most {MAX_POINTS} taps; finish it and start another")
            t = max(self.clock(), session.points[-1][0] + 1e-3 if session.points else 0.0)
            session.points.append((t, float(x_m), float(y_m)))
            with open(session.track_path, "a", encoding="utf-8") as fh:
                fh.write(f"{t:.3f},{x_m:.3f},{y_m:.3f}\n")
        return session

    def heard(self, session: WalkSession, end_s: float | None = None) -> list[dict[str, Any]]:
        """The journalled RSSI rows of the walk's beacon since it started."""
        lo = session.started_s - MARGIN_S
        hi = (end_s if end_s is not None else self.clock()) + MARGIN_S
        rows = self.journal.rows(self.site_id, lo, hi, kind="rssi")
        return [r for r in rows if r["channel"] == session.beacon]

    def finish(self, walk_id: str) -> tuple[WalkSession, Path, int]:
        """Write the walk's readings file; returns the session, that file and its row count."""
        session = self.get(walk_id)
        if len(session.points) < 2:
            raise WalkError(
                f"a walk needs at least 2 taps (this one has {len(session.points)}): tap where you "
                f"stand, walk, tap again"
            )
        end = session.points[-1][0]
        rows = [r for r in self.heard(session, end) if session.points[0][0] - MARGIN_S <= r["t_ns"] / 1e9]
        if not rows:
            raise WalkError(
                f"no receiver heard beacon {session.beacon} during the walk: is it switched on, "
                f"and are the receivers in the saved site?"
            )
        out = session.track_path.with_name(f"{walk_id}.csv")
        with open(out, "w", encoding="utf-8", newline="") as fh:
            fh.write("time,kind,source,channel,value\n")
            fh.writelines(
                f"{r['t_ns'] / 1e9:.6f},rssi,{r['source']},{r['channel']},{r['value']:.6g}\n"
                for r in rows
                if r["value"] is not None
            )
        with self._lock:
            self.walks.pop(walk_id, None)
        return session, out, len(rows)

    def cancel(self, walk_id: str) -> None:
        """Forget a walk and delete its track file."""
        session = self.get(walk_id)
        with self._lock:
            self.walks.pop(walk_id, None)
        session.track_path.unlink(missing_ok=True)
