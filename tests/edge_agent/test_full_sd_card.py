"""A full SD card under the agent's outbox: it keeps the newest, counts the dropped, says so.

The real agent (``python -m edge_agent run``) replays a fast stream while its broker is
down, with its data directory on a small ext4 filesystem (a loop-mounted image) that a
ballast file leaves about 2.5 MiB of (2 MiB of it kept for SQLite's log). The outbox fills
the disk, then drops its oldest rows to make room. When the broker comes up, the agent's
status says how many it dropped and
when the disk was full, and what arrives is the newest readings, contiguous up to the last
one. Where mounting is impossible the outbox is capped instead (``outbox.max_mb``: SQLite's
``max_page_count``, the same "database or disk is full" error on the same code path).
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from edge_helpers import ROOT, Collector, wait_until
from services import Mosquitto, free_port
from small_fs import fill, small_filesystem

pytestmark = [pytest.mark.broker, pytest.mark.slow]

T0 = 1_700_000_000.0


def _config(tmp_path: Path, data: Path, port: int, cap: str) -> Path:
    rows = ["time,kind,source,channel,value"]
    for i in range(3000):  # 30 s of light levels at 100 Hz
        rows.append(f"{T0 + i / 100:.3f},light,M3,,{0.9 if (i // 50) % 2 else 0.1}")
    (tmp_path / "stream.csv").write_text("\n".join(rows) + "\n")
    cfg = tmp_path / "agent.toml"
    cfg.write_text(f"""
[agent]
site = "toyama-pilot"
device = "pi-m3"
machine = "M3"
receiver = "R3"
data_dir = "{data}"

[mqtt]
host = "127.0.0.1"
port = {port}
reconnect_min_s = 1
reconnect_max_s = 1

[outbox]
synchronous = "NORMAL"
{cap}

[replay]
file = "stream.csv"
restamp = true

[[sensors]]
id = "light"
kind = "light"
driver = "replay"
on_above = 0.55
off_below = 0.45
level_period_s = 0.0
""")
    return cfg


def _outbox(data: Path, sql: str) -> list:
    with sqlite3.connect(f"file:{data / 'outbox.sqlite'}?mode=ro", uri=True, timeout=30) as db:
        return db.execute(sql).fetchall()


def test_full_sd_card_keeps_the_newest_and_says_so(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "fs", 8) as mnt:
        data = (mnt or tmp_path) / "agent-data"
        if mnt is not None:
            fill(mnt, 2600 * 2**10)  # about 0.5 MiB beyond the room the log keeps
        broker = Mosquitto(tmp_path / "mq", free_port())
        (tmp_path / "mq").mkdir()
        cfg = _config(tmp_path, data, broker.port, "" if mnt is not None else "max_mb = 0.3")
        log = open(tmp_path / "agent.log", "ab")  # noqa: SIM115 - closed below
        agent = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", "-c", str(cfg)], cwd=ROOT, stdout=log, stderr=log
        )
        sub = None
        try:
            # The broker is down: every reading goes to the outbox, until the disk is full.
            last = {"n": -1, "at": time.monotonic()}

            def replay_done() -> bool:
                try:
                    n = _outbox(data, "SELECT next FROM seq WHERE sensor = 'light'")[0][0]
                except (sqlite3.Error, IndexError):
                    return False
                if n != last["n"]:
                    last.update(n=n, at=time.monotonic())
                return time.monotonic() - last["at"] > 3.0

            wait_until(replay_done, 90)
            assigned = last["n"]
            kept = [s for (s,) in _outbox(data, "SELECT seq FROM outbox WHERE sensor = 'light' ORDER BY seq")]
            dropped = _outbox(data, "SELECT value FROM counters WHERE name = 'dropped'")
            assert _outbox(data, "PRAGMA integrity_check") == [("ok",)]
            assert assigned >= 3000 and dropped and dropped[0][0] > 0, (assigned, dropped)
            # The newest, contiguous up to the last one; what is missing was counted.
            assert kept == list(range(assigned - len(kept), assigned)) and len(kept) >= 100
            assert dropped[0][0] == assigned - len(kept)
            # The subscriber must be there before the agent reconnects (readings are not retained).
            agent.send_signal(signal.SIGSTOP)
            broker.start()
            sub = Collector(broker.host, broker.port, "twin/v1/toyama-pilot/pi-m3/#")
            agent.send_signal(signal.SIGCONT)
            assert wait_until(lambda: {r.seq for r in sub.readings()} >= set(kept), 60), log.name
            status = next(s for s, _ in reversed(sub.statuses()) if s.online)
            extra = status.extra
            assert extra["outbox_dropped"] == dropped[0][0]
            assert extra["outbox_disk_full_at"] > 0 and "full" in extra["outbox_error"]
            assert extra["seq_kept_from"]["light"] <= kept[0] + 1
            assert min(r.seq for r in sub.readings()) >= kept[0]  # the dropped ones never left
        finally:
            agent.send_signal(signal.SIGCONT)
            agent.terminate()
            agent.wait(60)
            log.close()
            if sub is not None:
                sub.close()
            broker.stop()
