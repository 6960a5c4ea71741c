"""Mosquitto users, passwords and ACLs for a site's devices: ``python -m twin_server deploy-acl``.

Every edge agent gets its own MQTT user, allowed to publish only under its own topics
``twin/v1/{site}/{device}/#`` (readings and its retained status) and to read only the
server's acknowledgement of its own readings (``twin/v1/{site}/{device}/ack``); the twin
server's user may read ``twin/v1/#`` and write the acknowledgements ``twin/v1/{site}/+/ack``.
So a stolen or misconfigured Pi cannot pose as another machine, and a device can never read
what the others send.

Written to ``--out DIR``:

``passwd``
    mosquitto password file (``user:$7$iterations$salt$hash``, PBKDF2-SHA512), for the broker.
``acl``
    mosquitto ACL file, for the broker.
``credentials.txt``
    ``user password`` per line, mode 0600: hand each Pi its own line, then keep it safe.
``twin-server.env`` (and ``edge-sim.env`` with ``--simulator``)
    ``TWIN_MQTT_USERNAME`` / ``TWIN_MQTT_PASSWORD`` for docker compose's ``env_file``, 0600.

Several ``--site`` files configure one broker for several factories: every user name then
becomes ``ID@SITE`` (two shops may both have a ``pi-m3``) and each site's ``twin-server@SITE``
may read only ``twin/v1/SITE/#``, so one factory's data never reaches another's server.

Running the tool again keeps the passwords of users already in ``credentials.txt`` (adding a
machine does not force every Pi to be reconfigured); ``--rotate`` makes new ones for all.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_agent.wire import TOPIC_ROOT

__all__ = [
    "PBKDF2_ITERATIONS",
    "SERVER_USER",
    "SIMULATOR_USER",
    "DeployError",
    "MqttUser",
    "acl_text",
    "credentials_text",
    "env_text",
    "hash_password",
    "hash_with_mosquitto_passwd",
    "new_password",
    "parse_credentials",
    "password_file_text",
    "plan_broker",
    "plan_users",
    "site_devices",
    "verify_password",
    "write_deployment",
]

SERVER_USER = "twin-server"
SIMULATOR_USER = "edge-sim"
#: mosquitto_passwd's own default (mosquitto 2.0); the broker reads any count from the file.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12  # what mosquitto_passwd uses
HASH_PREFIX = "$7$"  # mosquitto's tag for PBKDF2-SHA512

CREDENTIALS_FILE = "credentials.txt"
PASSWD_FILE = "passwd"
ACL_FILE = "acl"


class DeployError(ValueError):
    """Input the tool cannot turn into a safe broker configuration."""


@dataclass(frozen=True)
class MqttUser:
    """One broker account and the topic filters it may publish to (``write``) or receive (``read``)."""

    name: str
    write: tuple[str, ...] = ()
    read: tuple[str, ...] = ()


def _check_name(kind: str, name: str) -> str:
    # Ids in site files are already safe; this guards the extra names given on the command line.
    # MQTT wildcards or separators in a user/device would widen an ACL line silently.
    # "@" is reserved for qualified user names (device@site) on a broker shared by several sites.
    bad = set(name) & set("+#/:@ \t\n$")
    if not name or bad:
        raise DeployError(f"{kind} {name!r} is empty or contains one of + # / : @ $ or whitespace")
    return name


def site_devices(site, extra: Iterable[str] = ()) -> list[str]:
    """Devices that publish for ``site`` (:meth:`Site.publishing_devices`), then ``extra``.

    Parameters
    ----------
    site : twin_server.site.Site
        The site model.
    extra : iterable of str
        More device ids (e.g. a BLE scanner bridge not named in the site file).

    Returns
    -------
    list of str
        Unique device ids in file order.
    """
    names = [*site.publishing_devices(), *extra]
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(_check_name("device", name), None)
    return list(seen)


def plan_users(
    site,
    *,
    server_user: str = SERVER_USER,
    simulator: bool = False,
    extra_devices: Iterable[str] = (),
    qualify: bool = False,
) -> list[MqttUser]:
    """The broker accounts of one site: the server, one per device, optionally the simulator.

    The simulator (the stack's ``edge-sim`` service) plays every device of the site over one
    connection, so it may write anywhere under the site, but still not to another site.

    With ``qualify`` (several sites on one broker) every user name is ``name@site``, so two
    factories may both have a ``pi-m3``, and the site's server may read only its own site.
    """
    sid = _check_name("site", site.site)
    root = f"{TOPIC_ROOT}/{sid}"

    def user(name: str) -> str:
        return f"{name}@{sid}" if qualify else name

    users = [
        MqttUser(
            user(_check_name("server user", server_user)),
            write=(f"{root}/+/ack",),
            read=(f"{root}/#" if qualify else f"{TOPIC_ROOT}/#",),
        )
    ]
    devices = site_devices(site, extra_devices)
    if server_user in devices:
        raise DeployError(f"device {server_user!r} has the same name as the server user")
    users += [MqttUser(user(d), write=(f"{root}/{d}/#",), read=(f"{root}/{d}/ack",)) for d in devices]
    if simulator:
        if SIMULATOR_USER in devices:
            raise DeployError(f"device {SIMULATOR_USER!r} has the same name as the simulator user")
        users.append(MqttUser(user(SIMULATOR_USER), write=(f"{root}/#",), read=(f"{root}/+/ack",)))
    return users


def plan_broker(
    sites: Sequence,
    *,
    simulator: bool = False,
    extra_devices: Iterable[str] = (),
    qualify: bool | None = None,
) -> list[MqttUser]:
    """The accounts of every site sharing one broker.

    Parameters
    ----------
    sites : sequence of Site
        One or more sites; ids must be unique.
    extra_devices : iterable of str
        ``ID`` (one site) or ``ID@SITE`` (any number of sites).
    qualify : bool, optional
        ``name@site`` user names; default: only when there is more than one site.
    """
    if not sites:
        raise DeployError("no site given")
    ids = [s.site for s in sites]
    if len(set(ids)) != len(ids):
        raise DeployError(f"a site is given twice: {sorted(i for i in set(ids) if ids.count(i) > 1)}")
    qualify = len(sites) > 1 if qualify is None else qualify
    extra: dict[str, list[str]] = {i: [] for i in ids}
    for name in extra_devices:
        device, at, sid = name.partition("@")
        if not at and len(sites) == 1:
            sid = ids[0]
        if sid not in extra:
            raise DeployError(f"extra device {name!r}: write ID@SITE with one of the sites {ids}")
        extra[sid].append(device)
    return [
        u
        for s in sites
        for u in plan_users(s, simulator=simulator, extra_devices=extra[s.site], qualify=qualify)
    ]


def acl_text(users: Sequence[MqttUser], site_id: str = "") -> str:
    """mosquitto ``acl_file`` text: one ``user`` block per account, nothing for anonymous."""
    for_site = f" for site {site_id}" if site_id else ""
    lines = [
        f"# mosquitto ACL written by `python -m twin_server deploy-acl`{for_site}",
        "# Lines before the first `user` would apply to anonymous clients: there are none on purpose.",
        "",
    ]
    for u in users:
        lines.append(f"user {u.name}")
        lines += [f"topic write {t}" for t in u.write]
        lines += [f"topic read {t}" for t in u.read]
        lines.append("")
    return "\n".join(lines)


def new_password(nbytes: int = 24) -> str:
    """A random password (``nbytes`` of entropy, URL-safe text, no ``:`` or whitespace)."""
    return secrets.token_urlsafe(nbytes)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """mosquitto 2 password hash ``$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>``.

    The same format ``mosquitto_passwd`` writes (checked against it in the tests).
    """
    if iterations < 1:
        raise DeployError("iterations must be >= 1")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"{HASH_PREFIX}{iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """True if ``password`` matches a ``$7$`` hash (as the broker would check it)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7":
        raise DeployError(f"not a mosquitto $7$ hash: {encoded[:12]!r}...")
    iterations, salt, digest = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
    mine = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(mine, digest)


def password_file_text(hashes: Mapping[str, str]) -> str:
    """mosquitto ``password_file`` text from ``user -> hash``."""
    return "".join(f"{user}:{h}\n" for user, h in hashes.items())


def hash_with_mosquitto_passwd(passwords: Mapping[str, str], binary: str) -> dict[str, str]:
    """Hash with the broker's own ``mosquitto_passwd -U`` (plain file converted in place).

    ``-U`` on a 0600 temporary file is used rather than ``-b user password`` so that no
    password ever appears in a process list.
    """
    with tempfile.TemporaryDirectory(prefix="twin-acl-") as tmp:
        path = Path(tmp) / "passwd"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("".join(f"{u}:{p}\n" for u, p in passwords.items()))
        done = subprocess.run([binary, "-U", str(path)], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise DeployError(f"mosquitto_passwd -U failed ({done.returncode}): {done.stderr.strip()}")
        hashes = {}
        for line in path.read_text().splitlines():
            user, _, h = line.partition(":")
            if user:
                hashes[user] = h
    if set(hashes) != set(passwords):
        raise DeployError("mosquitto_passwd returned a different set of users")
    return hashes


def parse_credentials(text: str) -> dict[str, str]:
    """``user password`` lines (``#`` comments allowed) -> dict; raises on a malformed line."""
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DeployError(f"{CREDENTIALS_FILE} line {n}: expected 'user password'")
        out[parts[0]] = parts[1]
    return out


def credentials_text(passwords: Mapping[str, str], broker_hint: str = "") -> str:
    """The 0600 hand-out file: one ``user password`` line per account."""
    head = [
        "# MQTT credentials written by `python -m twin_server deploy-acl`. Keep this file secret.",
        "# Give each edge agent only its own line (its MQTT username is its device id).",
    ]
    if broker_hint:
        head.append(f"# Broker: {broker_hint}")
    return "\n".join(head) + "\n" + "".join(f"{u} {p}\n" for u, p in passwords.items())


def env_text(user: str, password: str) -> str:
    """``env_file`` text naming one account for a container."""
    return f"TWIN_MQTT_USERNAME={user}\nTWIN_MQTT_PASSWORD={password}\n"


def _write(path: Path, text: str, mode: int) -> None:
    # Create with the final mode (no window where a secret is world-readable), then replace.
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)  # umask may have removed bits we want (e.g. 0644)
    os.replace(tmp, path)


def write_deployment(
    sites,
    out_dir: Path,
    *,
    simulator: bool = False,
    extra_devices: Iterable[str] = (),
    rotate: bool = False,
    hasher: str = "auto",
    qualify: bool | None = None,
) -> dict[str, str]:
    """Write ``passwd``, ``acl``, ``credentials.txt`` and the ``*.env`` files; return ``user -> password``.

    Parameters
    ----------
    sites : Site or sequence of Site
        The site(s) served by this broker (see :func:`plan_broker`).
    hasher : {"auto", "python", "mosquitto_passwd"}
        ``auto`` uses ``mosquitto_passwd`` when it is on PATH, else the Python implementation
        (same format).
    """
    sites = list(sites) if isinstance(sites, list | tuple) else [sites]
    users = plan_broker(sites, simulator=simulator, extra_devices=extra_devices, qualify=qualify)
    if hasher not in ("auto", "python", "mosquitto_passwd"):
        raise DeployError(f"unknown hasher {hasher!r}")
    binary = shutil.which("mosquitto_passwd") if hasher in ("auto", "mosquitto_passwd") else None
    if hasher == "mosquitto_passwd" and binary is None:
        raise DeployError("mosquitto_passwd is not installed (apt-get install mosquitto)")
    out_dir.mkdir(parents=True, exist_ok=True)
    cred_path = out_dir / CREDENTIALS_FILE
    old = {} if rotate or not cred_path.exists() else parse_credentials(cred_path.read_text())
    passwords = {u.name: old.get(u.name) or new_password() for u in users}
    hashes = (
        hash_with_mosquitto_passwd(passwords, binary)
        if binary
        else {u: hash_password(p) for u, p in passwords.items()}
    )
    # The broker's files are not secret enough to need 0600 (salted hashes of 192-bit random
    # passwords, topic rules), and the broker's container user must be able to read them.
    _write(out_dir / PASSWD_FILE, password_file_text(hashes), 0o644)
    _write(out_dir / ACL_FILE, acl_text(users, ", ".join(s.site for s in sites)), 0o644)
    _write(cred_path, credentials_text(passwords), 0o600)
    # One env_file per service account (twin-server.env, or twin-server@SITE.env per site).
    for name in passwords:
        if name.partition("@")[0] in (SERVER_USER, SIMULATOR_USER):
            _write(out_dir / f"{name}.env", env_text(name, passwords[name]), 0o600)
    return passwords


# -- command line -----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m twin_server deploy-acl``."""
    parser.add_argument(
        "--site",
        required=True,
        type=Path,
        action="append",
        help="site YAML file; repeat for several sites on one broker (names become ID@SITE)",
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for passwd, acl, credentials")
    parser.add_argument(
        "--simulator",
        action="store_true",
        help=f"also create {SIMULATOR_USER!r}, who may publish as any device of the site",
    )
    parser.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="ID",
        help="an extra publishing device not in the site file: ID, or ID@SITE (repeatable)",
    )
    parser.add_argument(
        "--qualify-users",
        action="store_true",
        help="ID@SITE user names even for one site (a broker that will serve more sites)",
    )
    parser.add_argument("--rotate", action="store_true", help="new passwords for every user")
    parser.add_argument("--hasher", choices=("auto", "python", "mosquitto_passwd"), default="auto")


def run(args: argparse.Namespace) -> int:
    """Write the files; print where they are (never a password) and return an exit code."""
    from twin_server.site import SiteError, load_site

    try:
        sites = [load_site(p) for p in args.site]
        passwords = write_deployment(
            sites,
            args.out,
            simulator=args.simulator,
            extra_devices=args.device,
            rotate=args.rotate,
            hasher=args.hasher,
            qualify=args.qualify_users or None,
        )
    except (SiteError, DeployError, OSError) as e:
        print(f"deploy_acl: {e}", file=sys.stderr)
        return 2
    names = ", ".join(s.site for s in sites)
    print(f"{len(passwords)} MQTT users for {names}: {', '.join(passwords)}")
    print(f"broker files: {args.out / PASSWD_FILE}, {args.out / ACL_FILE}")
    print(f"passwords (mode 0600): {args.out / CREDENTIALS_FILE}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m twin_server deploy-acl", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
