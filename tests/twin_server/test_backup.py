"""Backup while ingesting, restore, and retention that never prunes what InfluxDB lacks."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from services import free_port, run_mosquitto, wait_for_port, wait_until

from edge_agent.wire import Reading
from twin_server.ingest.publish import Publisher
from twin_server.store.journal import Journal
from twin_server.store.retention import DAY_NS, Retention, cutoff_ns, prune

ROOT = Path(__file__).resolve().parents[2]
SITE = "toyama-pilot"
T0 = 1_764_000_000 * 10**9


def _r(sensor: str, seq: int, t_ns: int) -> Reading:
    return Reading(SITE, "pi-m3", sensor, "light", t_ns, seq, "M3", float(seq % 100), "raw")


def _seqs(path: Path, sensor: str) -> list[int]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        return [s for (s,) in db.execute("SELECT seq FROM readings WHERE sensor = ? ORDER BY seq", (sensor,))]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "twin_server", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.broker
@pytest.mark.slow
def test_backup_while_ingesting_restores_every_reading_committed_before_it(tmp_path: Path) -> None:
    data, restored, archive = tmp_path / "data", tmp_path / "restored", tmp_path / "twin.tar"
    j = Journal(data / "journal.sqlite")
    for k in range(0, 300_000, 20_000):  # a few days' worth already there: the copy takes a while
        j.write_batch([(_r("pre", i, T0 + i * 10**9), T0) for i in range(k, k + 20_000)])
    j.close()
    with run_mosquitto(tmp_path / "mq") as broker:
        http = free_port()
        log = open(tmp_path / "server.log", "ab")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "twin_server",
                "serve",
                "--site",
                str(ROOT / "examples" / "pilot_site.yaml"),
                "--broker",
                f"127.0.0.1:{broker.port}",
                "--data-dir",
                str(data),
                "--port",
                str(http),
                "--analysis-interval",
                "3600",
                "--log-level",
                "WARNING",
                "--client-id",
                "backup-test",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
        stop = threading.Event()
        sent = [0]

        def stream() -> None:
            pub = Publisher(broker.host, broker.port)
            while not stop.is_set():
                pub.publish([_r("light", sent[0] + i, time.time_ns()) for i in range(50)])
                sent[0] += 50
                time.sleep(0.05)
            pub.close()

        feeder = threading.Thread(target=stream, daemon=True)
        try:
            wait_for_port(http, 60, server)
            feeder.start()
            wait_until(
                lambda: len(_seqs(data / "journal.sqlite", "light")) >= 2000, 60, "the stream journalled"
            )
            before = _seqs(data / "journal.sqlite", "light")  # committed before the backup starts
            done = _cli("backup", "--data-dir", str(data), "--out", str(archive))
            after = _seqs(data / "journal.sqlite", "light")
            assert done.returncode == 0, done.stderr
            assert "100.0 %" in done.stdout and "readings" in done.stdout
            assert len(after) > len(before) + 100  # ingest went on during the backup
            # The server holds the journal: restoring over it is refused.
            refused = _cli("restore", "--in", str(archive), "--data-dir", str(data), "--force")
            assert refused.returncode == 2 and "stop the server" in refused.stderr
        finally:
            stop.set()
            feeder.join(30)
            server.terminate()
            server.wait(30)
            log.close()
    done = _cli("restore", "--in", str(archive), "--data-dir", str(restored))
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(restored / "journal.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    light = _seqs(restored / "journal.sqlite", "light")
    assert set(before) <= set(light)  # every reading committed before the backup started
    assert light == list(range(len(light)))  # one consistent moment: a prefix, no torn batch
    assert len(light) < len(after) + 1 and _seqs(restored / "journal.sqlite", "pre") == list(range(300_000))
    again = _cli("restore", "--in", str(archive), "--data-dir", str(restored))
    assert again.returncode == 2 and "--force" in again.stderr
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar")
    wrong = _cli("restore", "--in", str(bad), "--data-dir", str(tmp_path / "x"))
    assert wrong.returncode == 2 and "not a backup file" in wrong.stderr
    missing = _cli("backup", "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "o.tar"))
    assert missing.returncode == 2 and "no journal.sqlite" in missing.stderr


def _archive(path: Path, manifest: bytes | None, *, manifest_dir: bool = False) -> Path:
    """A tar with a small journal.sqlite and the given manifest bytes (or a directory)."""
    db = path.parent / "j.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (x)")
    with tarfile.open(path, "w") as tar:
        if manifest_dir:
            info = tarfile.TarInfo("backup.json")
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        elif manifest is not None:
            info = tarfile.TarInfo("backup.json")
            info.size = len(manifest)
            tar.addfile(info, io.BytesIO(manifest))
        tar.add(db, "journal.sqlite")
    return path


@pytest.mark.parametrize(
    ("manifest", "manifest_dir", "says"),
    [
        (b"{not json", False, "backup.json is not valid JSON"),
        (b"[1, 2]", False, "no numeric 'started_ns'"),
        (b'{"started_ns": "yesterday"}', False, "no numeric 'started_ns'"),
        (None, True, "backup.json is not a regular file"),
    ],
)
def test_restore_refuses_a_bad_manifest_before_touching_the_data_dir(
    tmp_path: Path, manifest: bytes | None, manifest_dir: bool, says: str
) -> None:
    archive = _archive(tmp_path / "b.tar", manifest, manifest_dir=manifest_dir)
    data = tmp_path / "data"
    data.mkdir()
    (data / "journal.sqlite").write_bytes(b"the live journal")
    got = _cli("restore", "--in", str(archive), "--data-dir", str(data), "--force")
    assert got.returncode == 2, got.stderr
    assert says in got.stderr and "Traceback" not in got.stderr
    assert (data / "journal.sqlite").read_bytes() == b"the live journal"


def test_retention_prunes_only_old_and_exported_readings(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    now = T0 + 100 * DAY_NS
    # One reading per day for 100 days (day d at T0 + d days), rowids 1..100.
    j.write_batch([(_r("light", d, T0 + d * DAY_NS), T0) for d in range(100)])
    assert cutoff_ns(now, 30, 45) == now - 45 * DAY_NS
    assert prune(j, SITE, cutoff_ns(now, 30, 45), None) == 0  # no InfluxDB export: no other copy
    assert j.count() == 100
    # Exported up to rowid 40 (days 0..39): days 0..39 are old enough and exported.
    assert prune(j, SITE, cutoff_ns(now, 30, 45), 40, chunk_rows=7) == 40
    assert _seqs(j.path, "light") == list(range(40, 100))
    # Exported everything: now the age decides (the replays kept: 45 days > 30 retention).
    assert prune(j, SITE, cutoff_ns(now, 30, 45), 100) == 15
    assert _seqs(j.path, "light")[0] == 55
    ret = Retention(j, SITE, 10, 0, exported_id=lambda: None)
    assert ret.step(now) == 0 and "InfluxDB" in ret.status()["waiting_for"]
    ret = Retention(j, SITE, 10, 0, exported_id=lambda: 100)
    assert ret.step(now) == 35 and ret.status()["pruned"] == 35
    assert _seqs(j.path, "light") == list(range(90, 100))


def test_serve_prunes_what_influxdb_holds_and_says_so(tmp_path: Path, pilot_site, influxd) -> None:
    import uuid

    from fastapi.testclient import TestClient

    from twin_server.api.app import create_app
    from twin_server.settings import Settings

    now = time.time_ns()
    settings = Settings(
        site=pilot_site,
        data_dir=tmp_path / "data",
        broker_host=None,
        retention_days=10,
        replay_days=5,
        influx_url=influxd.url,
        influx_db=f"ret_{uuid.uuid4().hex[:8]}",
    )
    app = create_app(settings)
    twin = app.state.twin
    days_ago = [20 - d - 0.5 for d in range(20)]  # 19.5 .. 0.5
    twin.journal.write_batch([(_r("light", d, now - round(a * DAY_NS)), now) for d, a in enumerate(days_ago)])
    with TestClient(app) as client:
        wait_until(lambda: twin.journal.export_cursor() >= 20, 30, "the readings exported to InfluxDB")
        assert twin.retention.step() == 10  # 19.5..10.5 days ago: older than max(10, 5) days
        health = client.get("/health").json()
    assert health["retention"]["pruned"] == 10 and health["retention"]["waiting_for"] is None
    assert health["journal"]["readings"] == 10 == len(_seqs(twin.journal.path, "light"))
