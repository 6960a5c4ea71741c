"""Install one npm package from its registry tarball, for machines without npm.

The demo must run with nothing but Python; the viewer's three.js still comes from the npm
registry, pinned and verified against ``package-lock.json``'s integrity hash, exactly the
bytes ``npm ci`` would install. Standard library only.

    python scripts/fetch_npm_package.py replay three
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"


def tarball_url(name: str, version: str, registry: str = REGISTRY) -> str:
    """The registry's tarball address of ``name@version`` (scoped names keep their scope)."""
    base = name.split("/")[-1]
    return f"{registry}/{name}/-/{base}-{version}.tgz"


def verify_integrity(data: bytes, integrity: str) -> None:
    """Raise ValueError unless ``data`` matches an SRI string such as ``sha512-...``."""
    algo, _, expected = integrity.partition("-")
    if algo not in ("sha512", "sha384", "sha256", "sha1"):
        raise ValueError(f"unsupported integrity algorithm {algo!r}")
    actual = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if actual != expected:
        raise ValueError(
            f"integrity mismatch: expected {algo}-{expected[:16]}..., got {algo}-{actual[:16]}..."
        )


def install(project: Path, name: str, registry: str = REGISTRY) -> Path:
    """Download, verify and unpack ``name`` as pinned in ``project/package-lock.json``."""
    lock = json.loads((project / "package-lock.json").read_text())
    entry = lock["packages"][f"node_modules/{name}"]
    url = entry.get("resolved") or tarball_url(name, entry["version"], registry)
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read()
    verify_integrity(data, entry["integrity"])
    target = project / "node_modules" / name
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("package/") and (m.isfile() or m.isdir())]
        for m in members:
            m.name = m.name.removeprefix("package/")
        tar.extractall(staging, members=members, filter="data")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: fetch_npm_package.py PROJECT_DIR PACKAGE")
    where = install(Path(sys.argv[1]), sys.argv[2])
    print(f"installed {sys.argv[2]} into {where}")
