"""Project layout and packaging promises: top-level parts, bounded extras, a light edge agent."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_top_level_layout() -> None:
    for name in ("edge_agent", "twin_server", "replay", "models3d", "hardware", "tests"):
        assert (ROOT / name).is_dir(), name
    for name in ("docker-compose.yml", "README.md", "pyproject.toml", "CHANGELOG.md", ".ci/run"):
        assert (ROOT / name).is_file(), name


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block is not None and readme.index("```bash") < 200
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "exec bash scripts/test.sh" in ci


def test_python_and_extras_are_bounded() -> None:
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"edge", "server", "models3d", "dev"} <= set(extras)
    for name, reqs in extras.items():
        for req in reqs:
            assert "<" in req and ">=" in req, f"{name}: {req} needs a lower and an upper bound"
    # The design card also named aiomqtt and influxdb-client: neither served (paho measured ~2x
    # faster than aiomqtt for the ingest; our line protocol, see docs/integrators.md), so both
    # were removed rather than declared unused.
    design_card = {
        "paho-mqtt": "<3",
        "numpy": "",
        "pandas": "",
        "open3d-cpu": "",
        "trimesh": "",
        "fastapi": "",
        "pyserial": "",
    }
    every = " ".join(r for reqs in extras.values() for r in reqs)
    for pkg, upper in design_card.items():
        assert re.search(rf"(^|\s){re.escape(pkg)}>=", every), pkg
        if upper:
            assert f"{pkg}>=2" in every and upper in every


def test_every_declared_dependency_is_imported() -> None:
    """No dependency is declared unless the code (or the test suite, for dev) imports it."""
    import_names = {
        "paho-mqtt": "paho",
        "pyyaml": "yaml",
        "argon2-cffi": "argon2",
        "ruamel.yaml": "ruamel",
        "pillow": "PIL",
        "open3d-cpu": "open3d",
        "fast-simplification": "fast_simplification",
        "pypdfium2": "pypdfium2",
        "tomli-w": "tomli_w",
        "pydantic-settings": "pydantic_settings",
        "gpiozero": "gpiozero",
        "pyserial": "serial",
        "pytest-timeout": "pytest_timeout",
        "import-linter": "importlinter",
    }
    # Used without an import: command-line tools, plugins and servers started by name.
    # xxhash: trimesh hashes meshes with it when it is installed.
    by_name = {"ruff", "mypy", "import-linter", "pytest-timeout", "uvicorn", "amqtt", "playwright", "xxhash"}
    files = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    code = "\n".join((ROOT / f).read_text() for f in files)
    unused = []
    for reqs in PYPROJECT["project"]["optional-dependencies"].values():
        for req in reqs:
            pkg = re.split(r"[<>=\[ ]", req, maxsplit=1)[0]
            name = import_names.get(pkg, pkg.replace("-", "_"))
            if pkg not in by_name and not re.search(rf"^\s*(import|from) {re.escape(name)}\b", code, re.M):
                unused.append(pkg)
    assert sorted(set(unused)) == []


def test_edge_extra_stays_light() -> None:
    edge = " ".join(PYPROJECT["project"]["optional-dependencies"]["edge"])
    for heavy in ("pandas", "numpy", "open3d", "fastapi", "uvicorn", "trimesh", "scipy"):
        assert heavy not in edge


def test_importing_the_edge_agent_pulls_in_nothing_heavy() -> None:
    modules = [p.stem for p in (ROOT / "edge_agent").glob("*.py") if p.stem not in ("__main__",)]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module('edge_agent.' + m if m != '__init__' else 'edge_agent')\n"
        "heavy = [m for m in ('pandas', 'numpy', 'open3d', 'fastapi', 'pydantic', 'trimesh', 'scipy')\n"
        "         if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"edge_agent imports heavy modules: {out.stdout}"
