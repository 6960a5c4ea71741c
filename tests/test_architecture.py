"""The server's layers and owned boundaries (docs/architecture.md): checked, and able to fail."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from twin_server.ingest.paho_client import missing_internals

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("ingest", "store", "live", "api", "cli")


def _tracked_python() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / f for f in out.stdout.split() if not f.startswith("tests/")]


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(root / "pyproject.toml")],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(root)},
    )


def test_each_package_says_what_it_owns_and_may_import() -> None:
    for name in PACKAGES:
        doc = (ROOT / "twin_server" / name / "__init__.py").read_text()
        assert doc.startswith('"""') and ("May import" in doc or "may import" in doc), name
    diagram = (ROOT / "docs" / "architecture.md").read_text()
    assert diagram.count("```mermaid") == 1
    for module in (
        "ingest/subscriber.py",
        "store/journal.py",
        "live/hub.py",
        "analysis/pipeline.py",
        "api/routes.py",
        "edge_agent",
        "mosquitto",
    ):
        assert module in diagram, module


def test_the_analysis_contract_forbids_what_the_layers_need() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    analysis = next(c for c in contracts if c.get("source_modules") == ["twin_server.analysis"])
    for layer in ("ingest", "store", "api", "simulate", "cli", "live"):
        assert f"twin_server.{layer}" in analysis["forbidden_modules"]
    layers = next(c for c in contracts if c["type"] == "layers")
    assert layers["layers"] == [f"twin_server.{p}" for p in ("cli", "api", "live", "ingest", "store")]


@pytest.mark.slow
def test_import_contracts_hold_and_break_on_a_forbidden_import(tmp_path: Path) -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "BROKEN" not in result.stdout
    # A copy where the analysis reaches into the journal, and the journal into the API.
    for name in ("twin_server", "twin_contract", "edge_agent"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    tasks = tmp_path / "twin_server" / "analysis" / "tasks.py"
    tasks.write_text(tasks.read_text() + "\nfrom twin_server.store import journal  # noqa\n")
    journal = tmp_path / "twin_server" / "store" / "journal.py"
    journal.write_text(journal.read_text() + "\nimport twin_server.api.app  # noqa\n")
    broken = _lint_imports(tmp_path)
    assert broken.returncode != 0
    assert "twin_server.analysis.tasks -> twin_server.store" in broken.stdout
    assert "twin_server.store.journal -> twin_server.api.app" in broken.stdout


def test_no_module_but_the_journal_touches_its_connection() -> None:
    journal = ROOT / "twin_server" / "store" / "journal.py"
    users = [
        str(p.relative_to(ROOT))
        for p in _tracked_python()
        if p != journal and re.search(r"\._conn\(", p.read_text())
    ]
    assert users == []


def test_paho_internals_live_in_one_module() -> None:
    fast = ROOT / "twin_server" / "ingest" / "paho_client.py"
    private = re.compile(
        r"\.(_sock|_in_packet|_out_messages|_out_packet|_handle_publish|_sock_recv|"
        r"_send_puback|_manual_ack|_packet_read|_topic|_last_mid|_mid_generate|"
        r"_ConnectionState|_protocol)\b"
    )
    users = [
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p in _tracked_python()
        if p != fast
        for m in private.finditer(p.read_text())
    ]
    assert users == []
    assert private.search(fast.read_text())  # the scan finds them where they are


def test_the_pinned_paho_has_every_internal_we_use() -> None:
    """Fails on a paho whose private members changed: the ingest would fall back to stock paho."""
    assert missing_internals() == []


def test_every_command_sits_in_cli_or_next_to_its_code_and_runs() -> None:
    from twin_server.__main__ import COMMANDS

    for name, (module, _help) in COMMANDS.items():
        assert module.startswith("twin_server.cli.") or module in (
            "twin_server.simulate.cli",
            "twin_server.forecast.cli",
            "twin_server.evaluate",
        ), name
    out = subprocess.run(
        [sys.executable, "-m", "twin_server", "deploy-acl", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "--site" in out.stdout
