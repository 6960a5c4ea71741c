"""``python -m twin_server.auth``: users with hashed passwords, tokens printed once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twin_server.auth import AuthStore
from twin_server.auth.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "twin_server.auth", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_add_user_token_list_disable(tmp_path, monkeypatch, capsys):
    d = str(tmp_path)
    r = _cli(
        "add-user",
        "--data-dir",
        d,
        "--site",
        "toyama-pilot",
        "--role",
        "worker",
        "--worker",
        "W1",
        "--name",
        "alice",
        "--password-stdin",
        stdin="s3cret-pass-word\n",
    )
    assert r.returncode == 0, r.stderr
    assert "s3cret-pass-word" not in r.stdout
    store = AuthStore(tmp_path / "auth.sqlite")
    assert store.verify_password("alice", "s3cret-pass-word").worker == "W1"
    stored = store.raw_connection().execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$") and "s3cret" not in stored
    # Generated password, printed once (in-process from here on: quicker than a new interpreter).
    assert (
        main(["add-user", "--data-dir", d, "--site", "toyama-pilot", "--role", "supervisor", "--name", "bob"])
        == 0
    )
    password = capsys.readouterr().out.split("password (shown once): ")[1].strip()
    assert store.verify_password("bob", password).role == "supervisor"
    assert main(["add-token", "--data-dir", d, "--name", "alice", "--days", "7"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    p = store.token(token)
    assert p is not None and p.user.name == "alice" and p.read_only
    assert main(["list-users", "--data-dir", d]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing == [
        "alice\ttoyama-pilot\tworker\tW1\tactive\ttokens=1",
        "bob\ttoyama-pilot\tsupervisor\t-\tactive\ttokens=0",
    ]
    assert main(["disable-user", "--data-dir", d, "--name", "alice"]) == 0
    assert store.token(token) is None
    store.close()


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    d = str(tmp_path)
    assert main(["add-user", "--data-dir", d, "--site", "s", "--role", "worker", "--name", "x"]) == 2
    assert "needs the worker id" in capsys.readouterr().err
    assert main(["add-user", "--data-dir", d, "--site", "s", "--role", "admin", "--name", "x"]) == 2
    assert "every site" in capsys.readouterr().err
    assert main(["add-user", "--data-dir", d, "--site", "a/b", "--role", "engineer", "--name", "x"]) == 2
    assert "site 'a/b'" in capsys.readouterr().err
    assert main(["add-token", "--data-dir", d, "--name", "ghost"]) == 2
    assert "no user 'ghost'" in capsys.readouterr().err
    assert main(["add-user", "--data-dir", d, "--site", "s", "--role", "engineer", "--name", "x"]) == 0
    assert main(["add-user", "--data-dir", d, "--site", "s", "--role", "engineer", "--name", "x"]) == 2
    assert "exists" in capsys.readouterr().err
