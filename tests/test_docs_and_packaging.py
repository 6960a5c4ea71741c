"""Docs and packaging that are true: links resolve, the analysis contract is in docs/, no code
cites an issue number, and the image copies every file the server serves."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPLAY_NOT_SERVED = {"node_modules", "test", "package.json", "package-lock.json"}


def _tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [ROOT / line for line in out.splitlines() if (ROOT / line).is_file()]


def test_every_relative_link_in_the_docs_resolves() -> None:
    broken = []
    for doc in _tracked("*.md"):
        if "node_modules" in doc.parts:
            continue
        text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_the_analysis_contract_is_in_docs_and_cited_there() -> None:
    assert (ROOT / "docs" / "analyze-contract.md").read_text().startswith("# Contract: offline analysis")
    stale = [
        str(p.relative_to(ROOT))
        for p in _tracked("*.py", "*.md", "*.js", "*.sh")
        if p.name != "CHANGELOG.md" and "contract/" + "ANALYZE.md" in p.read_text()
    ]
    assert stale == []


def test_no_code_cites_an_issue_number() -> None:
    pattern = re.compile(r"\bissue\s*#?\d+|\(#\d+\)", re.I)
    cites = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _tracked("*.py", "*.js")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert cites == []


def _docker_copies() -> list[str]:
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += words[1:-1]
    return sources


def _dockerignored(rel: str) -> bool:
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    ignored = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, pat + "/*") or rel.startswith(pat + "/"):
            ignored = not negate
    return ignored


def test_the_image_copies_every_file_the_server_serves() -> None:
    """The viewer mounts replay/ and the commissioning page reads from it: each served file must
    be in a COPY of the Dockerfile and not dropped by .dockerignore."""
    copies = _docker_copies()
    served = [
        p.relative_to(ROOT).as_posix()
        for p in _tracked("replay")
        if p.relative_to(ROOT / "replay").parts[0] not in REPLAY_NOT_SERVED
    ]
    assert "replay/commissioning.html" in served and "replay/index.html" in served

    def copied(rel: str) -> bool:
        return any(rel == c or rel.startswith(c.rstrip("/") + "/") for c in copies)

    missing = [rel for rel in served if _dockerignored(rel) or not copied(rel)]
    assert missing == []
