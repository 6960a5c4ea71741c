"""The real twin-server app over a journal holding a simulated pilot shift, with auth installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

_HERE = Path(__file__).resolve().parent
# tests/conftest.py puts tests/ on sys.path; this folder has no __init__, so add it for the helpers.
sys.path.insert(0, str(_HERE))

from auth_helpers import OTHER_SITE, PASSWORD, Clock, Env  # noqa: E402

from twin_server.api.app import create_app  # noqa: E402
from twin_server.auth import AuthStore, install_auth  # noqa: E402
from twin_server.ingest.publish import frame_to_wire  # noqa: E402
from twin_server.readings import load_readings_csv  # noqa: E402
from twin_server.settings import Settings  # noqa: E402
from twin_server.store.journal import Journal  # noqa: E402

ROOT = _HERE.parents[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory, pilot_site, pilot_site_path):
    d = tmp_path_factory.mktemp("auth")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "twin_server",
            "simulate",
            "--site",
            str(pilot_site_path),
            "--hours",
            "0.1",
            "--seed",
            "5",
            "--out",
            str(d / "sim"),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    loaded = load_readings_csv(d / "sim" / "readings.csv", pilot_site)
    journal = Journal(d / "data" / "journal.sqlite")
    journal.write_batch([(r, 1_800_000_000 * 10**9) for r in frame_to_wire(loaded.frame, pilot_site)], [])
    journal.close()
    app = create_app(Settings(site=pilot_site, data_dir=d / "data", broker_host=None))
    clock = Clock()
    # Cheap argon2 parameters keep the tests fast; production uses argon2-cffi's defaults.
    store = AuthStore(
        d / "data" / "auth.sqlite",
        clock=clock,
        hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )
    install_auth(app, data_dir=d / "data", site_ids=[pilot_site.site], store=store)
    s = pilot_site.site
    store.add_user("sup", s, "supervisor", PASSWORD)
    store.add_user("w1", s, "worker", PASSWORD, worker="W1")
    store.add_user("w2", s, "worker", PASSWORD, worker="W2")
    store.add_user("eng", s, "engineer", PASSWORD)
    store.add_user("integ", s, "integrator", PASSWORD)
    store.add_user("other-sup", OTHER_SITE, "supervisor", PASSWORD)
    store.add_user("other-w1", OTHER_SITE, "worker", PASSWORD, worker="W1")
    store.add_user("root", "*", "admin", PASSWORD)
    with TestClient(app) as client:
        sup = {"Authorization": f"Bearer {store.create_token(store.user('sup'), 3600)[1]}"}
        day = client.get(f"/api/sites/{s}/shifts", headers=sup).json()[0]["day"]
        yield Env(app, store, clock, s, day, client)
    store.close()
