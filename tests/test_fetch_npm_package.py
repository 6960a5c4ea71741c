"""The npm-less fallback installs exactly the pinned tarball and refuses tampered bytes."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("fetch_npm_package", ROOT / "scripts" / "fetch_npm_package.py")
fetch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch)


def _tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _project(tmp_path: Path, data: bytes, integrity_of: bytes) -> Path:
    (tmp_path / "pkg.tgz").write_bytes(data)
    sri = "sha512-" + base64.b64encode(hashlib.sha512(integrity_of).digest()).decode()
    lock = {
        "packages": {
            "node_modules/three": {
                "version": "1.0.0",
                "integrity": sri,
                "resolved": (tmp_path / "pkg.tgz").as_uri(),
            }
        }
    }
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    return tmp_path


def test_installs_the_pinned_tarball(tmp_path: Path) -> None:
    data = _tarball({"package.json": b'{"name": "three"}', "build/three.module.js": b"export {};"})
    target = fetch.install(_project(tmp_path, data, data), "three")
    assert (target / "build" / "three.module.js").read_bytes() == b"export {};"
    assert not (tmp_path / "node_modules" / "three.partial").exists()


def test_refuses_bytes_that_do_not_match_the_lock(tmp_path: Path) -> None:
    data = _tarball({"package.json": b"{}"})
    with pytest.raises(ValueError, match="integrity mismatch"):
        fetch.install(_project(tmp_path, data, b"something else"), "three")
    assert not (tmp_path / "node_modules" / "three").exists()


def test_the_real_lock_pins_three_with_an_integrity_hash() -> None:
    entry = json.loads((ROOT / "replay" / "package-lock.json").read_text())["packages"]["node_modules/three"]
    assert entry["integrity"].startswith("sha512-")
    assert fetch.tarball_url("three", entry["version"]).endswith(f"/three/-/three-{entry['version']}.tgz")
