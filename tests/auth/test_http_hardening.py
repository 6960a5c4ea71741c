"""HTTP hardening: an atomic login limit, capped request bodies, days outside the contract,
a worker's timeline without colleagues, and an audit export a spreadsheet cannot execute."""

from __future__ import annotations

import csv
import io
import select
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from auth_helpers import PASSWORD, Env, serve_in_thread
from fastapi.testclient import TestClient
from services import free_port, wait_for_port

from twin_server.api.app import create_app
from twin_server.api.body_limit import DEFAULT_MAX_BODY_BYTES
from twin_server.auth import AuthStore, install_auth
from twin_server.settings import Settings


@pytest.fixture
def served(tmp_path, pilot_site):
    """The app over a real uvicorn socket (real concurrency: a thread pool of 40)."""
    app = create_app(Settings(site=pilot_site, data_dir=tmp_path, broker_host=None))
    # A few ms per verification, as a real hash takes a few hundred: the race needs a window.
    store = AuthStore(tmp_path / "auth.sqlite", hasher=PasswordHasher(time_cost=2, memory_cost=8192))
    install_auth(app, data_dir=tmp_path, site_ids=[pilot_site.site], store=store)
    store.add_user("w1", pilot_site.site, "worker", PASSWORD, worker="W1")
    with serve_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}", store


def test_simultaneous_wrong_passwords_are_checked_against_the_limit_atomically(served):
    base, store = served
    n = 40
    barrier = threading.Barrier(n)

    def attempt(_i: int) -> int:
        with httpx.Client(base_url=base, timeout=60) as c:
            barrier.wait()
            return c.post("/api/auth/login", json={"name": "w1", "password": "wrong-guess"}).status_code

    with ThreadPoolExecutor(n) as pool:
        statuses = list(pool.map(attempt, range(n)))
    # Only 5 passwords were checked (401); every other try was refused unchecked (429).
    assert sorted(statuses).count(401) == 5, statuses
    assert statuses.count(429) == n - 5
    actions = [r["action"] for r in store.audit_rows(user="w1")]
    assert actions.count("login_failed") == 5 and actions.count("login_blocked") == n - 5


def _post(client: TestClient, url: str, content, headers: dict[str, str] | None = None):
    return client.post(url, content=content, headers={"Content-Type": "application/json", **(headers or {})})


def test_oversized_bodies_are_refused_by_length_and_by_streamed_size(env: Env):
    c = TestClient(env.app, client=("10.0.8.1", 1))
    big = b'{"name": "w1", "password": "' + b"x" * DEFAULT_MAX_BODY_BYTES + b'"}'
    r = _post(c, "/api/auth/login", big)  # Content-Length says it all: refused unread
    assert r.status_code == 413 and "larger than" in r.json()["detail"]

    def chunks():  # chunked transfer: no Content-Length, the size shows only while reading
        for _ in range(DEFAULT_MAX_BODY_BYTES // 4096 + 2):
            yield b" " * 4096

    r = _post(c, "/api/auth/login", chunks())
    assert "content-length" not in r.request.headers and r.status_code == 413, r.text
    # A signed-in supervisor's oversized note: refused the same way, and audited as 413.
    sup, csrf = env.login("sup", address="10.0.8.2")
    r = _post(sup, f"/api/notes/{env.site}", chunks(), {"X-CSRF-Token": csrf})
    assert r.status_code == 413
    assert env.store.audit_rows(user="sup")[-1]["status"] == 413
    # At the limit, a body still goes through.
    ok = b'{"name": "w1", "password": "' + PASSWORD.encode() + b'"}'
    assert _post(c, "/api/auth/login", ok.ljust(DEFAULT_MAX_BODY_BYTES)).status_code == 200


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _offer_body(port: int, size: int, chunked: bool) -> tuple[int, bytes]:
    """POST a login body of ``size`` bytes until the server answers: ``(bytes sent, status line)``."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        s.sendall(
            f"POST /api/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"{framing}\r\n\r\n".encode()
        )
        piece, sent = b"x" * 65536, 0
        try:
            while sent < size and not select.select([s], [], [], 0)[0]:
                s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if sent >= size and chunked:
                s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed with our bytes unread: its answer is still there
        s.settimeout(60)
        try:
            return sent, s.recv(4096).split(b"\r\n")[0]
        except ConnectionResetError:  # the server's reset overtook its answer in our socket
            return sent, b"reset"


def test_oversized_login_bodies_do_not_raise_the_servers_memory(tmp_path, pilot_site_path):
    """Five 100 MB bodies with a Content-Length and five chunked ones, at once, unauthenticated,
    against ``python -m twin_server serve``: each is answered 413 after a few MB at most, and the
    server's RSS does not move (before the cap: 110 -> 1,111 MiB)."""
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "twin_server",
            "serve",
            "--site",
            str(pilot_site_path),
            "--broker",
            "none",
            "--auth",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path),
            "--log-level",
            "WARNING",
        ],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, 60, proc)
        time.sleep(0.5)
        before = _rss_mib(proc.pid)
        size = 100 * 2**20
        with ThreadPoolExecutor(10) as pool:
            got = list(pool.map(lambda i: _offer_body(port, size, chunked=i % 2 == 1), range(10)))
        after = _rss_mib(proc.pid)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    answers = [status for _, status in got]
    assert all(a.endswith(b"413 Request Entity Too Large") or a == b"reset" for a in answers), got
    assert sum(a != b"reset" for a in answers) >= 5, got  # a reset may overtake an answer, not most
    assert all(sent < 16 * 2**20 for sent, _ in got), got  # refused long before the end
    assert after - before < 20, (before, after)
    assert b"Traceback" not in err, err.decode()[-2000:]


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1999-12-31", "2200-01-01"])
def test_days_outside_the_wire_contract_are_a_422(env: Env, day: str):
    sup = env.token("sup")
    for route in ("analysis", "kpis", "replay"):
        r = env.client.get(f"/api/sites/{env.site}/shifts/{day}/{route}", headers=sup)
        assert r.status_code == 422 and "outside" in r.json()["detail"], (route, r.text)
    # The first and last days of the contract are days like any other (no readings: 404).
    for edge in ("2000-01-01", "2199-12-31"):
        assert env.client.get(f"/api/sites/{env.site}/shifts/{edge}/kpis", headers=sup).status_code == 404


def test_a_workers_timeline_names_no_colleague(env: Env):
    r = env.client.get(f"/api/worker/{env.site}/W1", headers=env.token("w1"))
    assert r.status_code == 200
    colleagues = [w for w in env.app.state.twin.settings.site.workers if w.id != "W1"]
    assert colleagues
    for w in colleagues:
        names = [n for n in (w.name, getattr(w, "name_ja", None)) if n]
        assert w.id not in r.text and not any(n in r.text for n in names), w
    listed = r.json()["site"]["workers"]
    assert [x["id"] for x in listed] == ["W1"] and set(listed[0]) <= {"id", "name", "name_ja"}, listed
    assert listed[0]["name"] == r.json()["worker"]["name"]


def test_audit_csv_cannot_run_a_formula(env: Env):
    c = TestClient(env.app, client=("10.0.8.3", 1))
    for name in ("=1+2", "+SUM(A1)", "-2+3", "@cmd"):
        assert c.post("/api/auth/login", json={"name": name, "password": "wrong-guess"}).status_code == 401
    export = env.client.get("/api/audit.csv", headers=env.token("sup"))
    rows = list(csv.DictReader(io.StringIO(export.text)))
    users = {r["user"] for r in rows}
    assert {"'=1+2", "'+SUM(A1)", "'-2+3", "'@cmd"} <= users
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values() if v)
    # The JSON view keeps the names as they were sent.
    entries = env.client.get("/api/audit", headers=env.token("sup")).json()["entries"]
    assert "=1+2" in {e["user"] for e in entries}


def test_the_editors_uploads_pass_the_server_wide_body_limit(env: Env):
    """Plans and models are larger than any JSON body: their routes stream and cap them."""
    from twin_server.api.editor import BODY_LIMITS, MODEL_MAX_BYTES

    sup, csrf = env.login("sup", address="10.0.8.3")
    url = f"/api/editor/{env.site}/models/m3.glb"
    headers = {"X-CSRF-Token": csrf, "Content-Type": "model/gltf-binary"}
    small = sup.put(url, content=b"glTF" + b"\0" * 1000, headers=headers).status_code
    big = sup.put(url, content=b"glTF" + b"\0" * (4 * DEFAULT_MAX_BODY_BYTES), headers=headers).status_code
    assert big == small != 413  # the route answers a 1 MiB model as it answers a small one
    # Elsewhere the same body is refused, and past the route's own cap too.
    assert (
        _post(
            sup, f"/api/notes/{env.site}", b" " * (4 * DEFAULT_MAX_BODY_BYTES), {"X-CSRF-Token": csrf}
        ).status_code
        == 413
    )
    limiter = next(m for m in env.app.user_middleware if m.cls.__name__ == "BodyLimitMiddleware")
    assert limiter.kwargs["path_limits"] is BODY_LIMITS
    from twin_server.api.body_limit import BodyLimitMiddleware

    probe = BodyLimitMiddleware(env.app, DEFAULT_MAX_BODY_BYTES, BODY_LIMITS)
    assert probe.limit_for(url) == MODEL_MAX_BYTES
    assert probe.limit_for(url + "/x") == probe.limit_for(f"/api/notes/{env.site}") == DEFAULT_MAX_BODY_BYTES
