"""``serve --new-site ID``: an empty site served until the editor's first save writes its file."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from twin_server.cli.serve import add_arguments, settings_from_args

ROOT = Path(__file__).resolve().parents[2]


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(list(argv))


def test_a_missing_site_file_points_at_new_site():
    proc = subprocess.run(
        [sys.executable, "-m", "twin_server", "serve", "--site", "no-such.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "--new-site ID" in proc.stderr and "/editor/" in proc.stderr


def test_new_site_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="exists already"):
        settings_from_args(_args("--site", str(ROOT / "examples" / "pilot_site.yaml"), "--new-site", "x"))
    with pytest.raises(ValueError, match="a site id is"):
        settings_from_args(_args("--site", str(tmp_path / "s.yaml"), "--new-site", "bad id!"))
    with pytest.raises(ValueError, match="does not exist"):
        settings_from_args(_args("--site", str(tmp_path / "nope" / "s.yaml"), "--new-site", "x"))


def test_first_save_writes_the_file_and_the_server_runs_it(tmp_path):
    from twin_server.api.app import create_app

    path = tmp_path / "site.yaml"
    settings = settings_from_args(
        _args(
            "--site",
            str(path),
            "--new-site",
            "new-shop",
            "--broker",
            "none",
            "--data-dir",
            str(tmp_path / "data"),
        )
    )
    assert settings.site.site == "new-shop" and settings.site.machines == []
    app = create_app(settings)
    with TestClient(app) as c:
        st = c.get("/api/editor/new-shop").json()
        assert st["new_site"] and st["version"] == "new" and st["document"] == {"site": "new-shop"}
        assert any(p["path"] == "machines" for p in st["problems"])  # a site needs a machine
        assert c.get("/api/sites").status_code == 200 and c.get("/api/viewer/sites").status_code == 200
        doc = {
            "site": "new-shop",
            "timezone": "Asia/Tokyo",
            "machines": [{"id": "M1", "position": [2.0, 2.0], "zone": [[1, 0], [3, 0], [3, 1], [1, 1]]}],
        }
        r = c.put("/api/editor/new-shop", json={"document": doc, "base_version": "new"})
        assert r.status_code == 200, r.text
        assert yaml.safe_load(path.read_text()) == doc
        assert app.state.twin.settings.site.machine_ids == ["M1"]
        assert c.get("/api/sites/new-shop/machines").json()[0]["id"] == "M1"
