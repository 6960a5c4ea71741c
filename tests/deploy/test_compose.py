"""The compose stack on paper: schema-valid, every referenced file present, configs consistent.

Docker does not run on this machine, so what can be checked without it is checked here:
the file against the Compose specification's JSON schema (vendored in tests/data/compose-spec),
variable interpolation with the documented .env.example, every host path, env_file, build
context and Dockerfile source, the Grafana provisioning chain, the twin server's command line
against the real ``serve`` parser, and the shipped mosquitto.conf on a real mosquitto.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
import subprocess
import uuid
from pathlib import Path

import jsonschema
import paho.mqtt.client as mqtt
import pytest
import yaml
from deploy_broker import SecureMosquitto, connect, subscribe
from services import free_port, wait_for_port

from twin_server.cli.deploy_acl import write_deployment

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = ROOT / "tests" / "data" / "compose-spec" / "compose-spec.json"
SECRETS_DIR = ROOT / "deploy" / "mosquitto" / "secrets"

_VAR = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>.*))?$", re.S)


class MissingVariable(KeyError):
    """A ``${VAR:?message}`` whose variable is unset or empty."""


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose-style interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``, ``${VAR:?e}``.

    Enough of the Compose rules for this file; ``docker compose config`` is the reference.
    """

    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        if m.group("plain"):
            return env.get(m.group("plain"), "")
        b = _BRACED.match(m.group("braced"))
        if b is None:
            raise ValueError(f"bad interpolation {m.group(0)!r}")
        name, op, arg = b.group("name"), b.group("op"), b.group("arg")
        value = env.get(name)
        empty = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return interpolate(arg, env) if empty else value
        if op in (":?", "?"):
            if empty:
                raise MissingVariable(f"{name}: {arg}")
            return value
        return value or ""

    return _VAR.sub(one, text)


def interpolate_tree(node, env: dict[str, str]):
    """Interpolate every string of a parsed YAML tree (keys too, as compose does)."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(x, env) for x in node]
    if isinstance(node, dict):
        return {interpolate_tree(k, env): interpolate_tree(v, env) for k, v in node.items()}
    return node


def variables_used(text: str) -> set[str]:
    """Variable names referenced in a compose file (comments excluded)."""
    names = set()
    for line in text.splitlines():
        code = line.split(" #")[0] if not line.lstrip().startswith("#") else ""
        for m in _VAR.finditer(code):
            if m.group("plain"):
                names.add(m.group("plain"))
            elif m.group("braced") is not None:
                b = _BRACED.match(m.group("braced"))
                if b:
                    names.add(b.group("name"))
    return names


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a dotenv file (comments and blank lines skipped)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=value: {line!r}"
            env[key.strip()] = value.strip()
    return env


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    return read_env_file(ROOT / ".env.example")


@pytest.fixture(scope="module")
def compose(example_env) -> dict:
    """docker-compose.yml as ``docker compose config`` would see it with .env = .env.example."""
    return interpolate_tree(yaml.safe_load(COMPOSE_FILE.read_text()), example_env)


@pytest.fixture(scope="module")
def generated_secrets(tmp_path_factory, pilot_site) -> set[str]:
    """Names of the files deploy_acl writes (the documented first step before `compose up`)."""
    out = tmp_path_factory.mktemp("secrets")
    write_deployment(pilot_site, out, simulator=True, hasher="python")
    return {p.name for p in out.iterdir()}


# -- the helpers themselves ------------------------------------------------------------------------
def test_interpolation_follows_compose_rules() -> None:
    env = {"A": "1", "E": ""}
    assert interpolate("x${A}y$A-$$A", env) == "x1y1-$A"
    assert interpolate("${B:-d}|${E:-d}|${E-d}|${B-d}", env) == "d|d||d"
    assert interpolate("${A:?need A}", env) == "1"
    with pytest.raises(MissingVariable, match="need B"):
        interpolate("${B:?need B}", env)
    with pytest.raises(MissingVariable):
        interpolate("${E:?empty counts as unset}", env)
    assert variables_used("a: ${X:-1} $Y $$Z\n# ${COMMENTED}\nb: c  # ${ALSO}\n") == {"X", "Y"}


# -- schema and .env ---------------------------------------------------------------------------------
def test_compose_file_is_valid_against_the_compose_spec(compose) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    # The schema is strict enough to catch a typo: prove it on a broken copy.
    broken = json.loads(json.dumps(compose))
    broken["services"]["mosquitto"]["restrat"] = "always"
    assert any("restrat" in e.message for e in validator.iter_errors(broken))
    assert {"mosquitto", "influxdb", "twin-server", "edge-sim", "grafana"} <= set(compose["services"])


def test_every_variable_is_documented_in_env_example(example_env) -> None:
    text = COMPOSE_FILE.read_text()
    used = variables_used(text)
    assert used, "the compose file reads its settings from .env"
    assert used <= set(example_env), f"not in .env.example: {sorted(used - set(example_env))}"
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", text))
    assert {"INFLUX_TOKEN", "INFLUX_ADMIN_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} <= required
    with pytest.raises(MissingVariable):  # no .env at all: compose refuses to start
        interpolate_tree(yaml.safe_load(text), {})


def test_no_secret_is_committed(example_env) -> None:
    for key, value in example_env.items():
        if re.search(r"PASSWORD|TOKEN|SECRET", key):
            assert value.startswith("change-me"), f"{key} in .env.example must be a placeholder"
    ignored = ["git", "-C", str(ROOT), "check-ignore", "-q"]
    for path in (
        ".env",
        "deploy/mosquitto/secrets/passwd",
        "deploy/mosquitto/secrets/credentials.txt",
        "deploy/mosquitto/certs/server.key",
    ):
        assert subprocess.run([*ignored, path]).returncode == 0, f"{path} is not git-ignored"
    assert subprocess.run([*ignored, ".env.example"]).returncode == 1
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "deploy/mosquitto"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [p for p in tracked if p.rsplit("/", 1)[-1] in ("passwd", "acl", "credentials.txt")]


# -- every file the stack needs --------------------------------------------------------------------
def _host_path(source: str) -> Path | None:
    """The host path of a volume source, or None for a named volume."""
    if source.startswith(("./", "../", "/", "~")):
        return (ROOT / source).resolve() if not source.startswith(("/", "~")) else Path(source).expanduser()
    return None


def _mounts(service: dict) -> list[tuple[Path, str]]:
    """(host path, container path) of the service's bind mounts."""
    out = []
    for vol in service.get("volumes", []):
        if isinstance(vol, str):
            source, _, rest = vol.partition(":")
            target = rest.split(":")[0]
        else:
            source, target = vol.get("source", ""), vol["target"]
        host = _host_path(source)
        if host is not None:
            out.append((host, target))
    return out


def test_every_referenced_file_exists(compose, generated_secrets) -> None:
    """Host paths, env_files, build contexts and Dockerfiles; secrets are the ones deploy_acl writes."""
    checked = 0
    for name, svc in compose["services"].items():
        refs: list[Path] = [host for host, _ in _mounts(svc)]
        env_files = svc.get("env_file", [])
        env_files = [env_files] if isinstance(env_files, str) else env_files
        refs += [(ROOT / (e if isinstance(e, str) else e["path"])).resolve() for e in env_files]
        build = svc.get("build")
        if build is not None:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), f"{name}: build context {context}"
            dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
            refs.append(context / dockerfile)
        for ref in refs:
            if SECRETS_DIR in ref.parents:
                # Written by `deploy_acl --simulator` before the first start (the header says so).
                assert ref.name in generated_secrets, f"{name}: deploy_acl does not write {ref.name}"
            else:
                assert ref.exists(), f"{name}: {ref} does not exist"
            checked += 1
    assert checked >= 12
    assert SECRETS_DIR.is_dir()  # mounted as a folder; kept in git by its .gitignore


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    text = (ROOT / "Dockerfile").read_text()
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith("!")
    ]
    sources = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        parts = line.split()
        if parts and parts[0] == "COPY" and not any(p.startswith("--from") for p in parts):
            sources += parts[1:-1]
    assert "twin_server" in sources and "pyproject.toml" in sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: missing"
        assert not any(
            src.rstrip("/") == pat.rstrip("/") or src.startswith(pat.rstrip("/") + "/") for pat in ignored
        ), f"COPY {src} is excluded by .dockerignore"
    for secret in (".env", "deploy/mosquitto/secrets/"):
        assert secret in ignored, f"{secret} must never enter the build context"
    assert '".[server]"' in text  # installs the server extra of pyproject.toml


def test_twin_server_command_parses_with_the_real_serve_parser(compose) -> None:
    from twin_server.cli import serve as cli_serve

    cmd = compose["services"]["twin-server"]["command"]
    assert cmd[:4] == ["python", "-m", "twin_server", "serve"]
    parser = argparse.ArgumentParser()
    cli_serve.add_arguments(parser)
    args = parser.parse_args(cmd[4:])  # exits (SystemExit) on an unknown flag
    assert args.site == "/config/site.yaml" and args.data_dir == "/data"
    assert args.broker == "mosquitto:1883" and args.influx == "http://influxdb:8086"
    mounts = {target for _, target in _mounts(compose["services"]["twin-server"])}
    assert args.site in mounts


def test_edge_sim_command_parses_with_its_parser(compose) -> None:
    import importlib.util

    svc = compose["services"]["edge-sim"]
    assert svc["profiles"] == ["sim"]  # never part of a production `docker compose up`
    mounts = {target: host for host, target in _mounts(svc)}
    cmd = svc["command"]
    assert cmd[0] == "python" and cmd[1].startswith("/opt/edge-sim/")
    script = mounts["/opt/edge-sim"] / Path(cmd[1]).name
    spec = importlib.util.spec_from_file_location("edge_sim_compose", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.build_parser().parse_args(cmd[2:])
    assert args.site.as_posix() in mounts and args.broker == "mosquitto:1883"
    assert args.loop and args.restamp  # a looping replay must restamp, or timestamps repeat


def test_grafana_provisioning_chain(compose, example_env) -> None:
    graf = compose["services"]["grafana"]
    mounts = {target: host for host, target in _mounts(graf)}
    ds_dir = mounts["/etc/grafana/provisioning/datasources"]
    dash_prov_dir = mounts["/etc/grafana/provisioning/dashboards"]
    files = sorted(ds_dir.glob("*.yaml"))
    datasources = [d for f in files for d in yaml.safe_load(f.read_text())["datasources"]]
    (influx,) = datasources
    assert influx["type"] == "influxdb" and influx["jsonData"]["version"] == "InfluxQL"
    assert influx["url"] == "http://influxdb:8086"
    # Every ${VAR} in the provisioning files is set in the grafana container.
    for f in files:
        code = "\n".join(line for line in f.read_text().splitlines() if not line.lstrip().startswith("#"))
        for var in re.findall(r"\$\{(\w+)\}", code):
            assert var in graf["environment"], f"{f.name}: ${{{var}}} is not passed to grafana"
    (provider,) = yaml.safe_load((dash_prov_dir / "factory-twin.yaml").read_text())["providers"]
    dash_dir = mounts[provider["options"]["path"]]
    dashboards = sorted(dash_dir.glob("*.json"))
    assert dashboards
    for f in dashboards:
        doc = json.loads(f.read_text())
        uids = {p["datasource"]["uid"] for p in doc["panels"]}
        uids |= {t["datasource"]["uid"] for p in doc["panels"] for t in p["targets"]}
        assert uids == {influx["uid"]}, f"{f.name} uses a datasource that is not provisioned"
    home = graf["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (dash_dir / Path(home).relative_to(provider["options"]["path"])).is_file()


def test_influx_init_script_is_executable_and_fed(compose) -> None:
    influx = compose["services"]["influxdb"]
    mounts = {target: host for host, target in _mounts(influx)}
    init_dir = mounts["/docker-entrypoint-initdb.d"]
    scripts = sorted(init_dir.glob("*.sh"))
    assert scripts
    # Set by the influxdb image for init scripts (INFLUX_CONFIGS_PATH etc.).
    from_image = {f"DOCKER_INFLUXDB_INIT_{x}_ID" for x in ("BUCKET", "ORG", "USER")}
    for s in scripts:
        assert s.stat().st_mode & stat.S_IXUSR, f"{s.name} must be executable"
        assert subprocess.run(["bash", "-n", str(s)]).returncode == 0
        for var in set(re.findall(r"\$\{(\w+)\}", s.read_text())):
            assert var in influx["environment"] or var in from_image, f"{s.name}: ${{{var}}} is not set"
    assert "v1 dbrp create" in scripts[0].read_text()


# -- the shipped mosquitto.conf on a real broker ---------------------------------------------------
def _shipped_conf(compose, tmp_path: Path, port: int, tls_port: int | None = None) -> str:
    """deploy/mosquitto/mosquitto.conf with container paths mapped into ``tmp_path``.

    With ``tls_port`` the commented TLS listener is switched on, as docs/deployment.md says.
    """
    by_target = {target: host for host, target in _mounts(compose["services"]["mosquitto"])}
    conf_host = by_target["/mosquitto/config/mosquitto.conf"]
    mapping = {
        "/mosquitto/secrets/": f"{tmp_path}/secrets/",
        "/mosquitto/certs/": f"{tmp_path}/certs/",
        "/mosquitto/data/": f"{tmp_path}/data/",
    }
    (tmp_path / "data").mkdir(exist_ok=True)
    tls_lines = re.compile(r"^#(listener 8883|cafile|certfile|keyfile|tls_version)\b")
    lines = []
    for line in conf_host.read_text().splitlines():
        if tls_port is not None and tls_lines.match(line):
            line = line[1:]
        if not line.startswith("#"):
            for container, host in mapping.items():
                line = line.replace(container, host)
            line = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", line)
            line = re.sub(r"^listener 8883$", f"listener {tls_port} 127.0.0.1", line)
        lines.append(line)
    assert f"listener {port} 127.0.0.1" in lines
    assert tls_port is None or f"listener {tls_port} 127.0.0.1" in lines
    lines.append("user root")  # see deploy_broker.SecureMosquitto
    return "\n".join(lines) + "\n"


def test_shipped_mosquitto_conf_locks_the_broker(tmp_path: Path, compose, pilot_site) -> None:
    """The config the stack mounts, on a real mosquitto: anonymous refused, a device accepted."""
    passwords = write_deployment(pilot_site, tmp_path / "secrets", hasher="python")
    port = free_port()
    broker = SecureMosquitto(tmp_path, port, conf_text=_shipped_conf(compose, tmp_path, port))
    broker.start()
    try:
        anon = connect(broker, f"anon-{uuid.uuid4().hex[:6]}")
        dev = connect(broker, f"m3-{uuid.uuid4().hex[:6]}", "pi-m3", passwords["pi-m3"], mqtt.MQTTv5)
        assert anon.connect_rc != 0 and dev.connect_rc == 0
        server = connect(broker, f"srv-{uuid.uuid4().hex[:6]}", "twin-server", passwords["twin-server"])
        assert subscribe(server, "twin/v1/#") == [1]
        topic = f"twin/v1/{pilot_site.site}/pi-m3/status"
        # The message size limit: 1 MB never reaches the server, 60 KiB does (and then the
        # server's own 4 KiB limit dead-letters it), the reading after both arrives.
        dev.mqttc.publish(topic, b"x" * 1_000_000, qos=0)
        dev.mqttc.publish(topic, b"y" * 60_000, qos=0)
        dev.publish_all([(topic, b"after")])
        got = []
        while not got or got[-1][1] != b"after":
            got.append(server.inbox.get(timeout=10))
        assert [len(payload) for _, payload in got] == [60_000, 5]
        dev.close()
        server.close()
    finally:
        broker.stop()
    # Every folder the config points into is mounted (the commented TLS lines included).
    by_target = {target for _, target in _mounts(compose["services"]["mosquitto"])}
    text = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    for path in re.findall(r"(/mosquitto/\S+)", text):
        top = "/".join(path.split("/")[:3])
        # /mosquitto/data is the named volume mosquitto-data.
        assert top in {t.rstrip("/") for t in by_target} or top == "/mosquitto/data", path
    assert "mosquitto-data:/mosquitto/data" in compose["services"]["mosquitto"]["volumes"]
    assert os.path.basename(re.search(r"^password_file (\S+)", text, re.M).group(1)) == "passwd"
    assert os.path.basename(re.search(r"^acl_file (\S+)", text, re.M).group(1)) == "acl"


def _make_certs(certs: Path) -> None:
    """A throwaway CA and a server certificate for 127.0.0.1 (as deploy/mosquitto/certs/README.md)."""
    certs.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=certs, check=True, capture_output=True)

    ssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=test CA", "-keyout", "ca.key", "-out", "ca.crt")
    ssl("req", *ec, "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    (certs / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    )


def test_shipped_tls_listener_works_when_switched_on(tmp_path: Path, compose, pilot_site) -> None:
    passwords = write_deployment(pilot_site, tmp_path / "secrets", hasher="python")
    _make_certs(tmp_path / "certs")
    port, tls_port = free_port(), free_port()
    while tls_port == port:  # two quick calls may hand out the same free port
        tls_port = free_port()
    broker = SecureMosquitto(tmp_path, port, conf_text=_shipped_conf(compose, tmp_path, port, tls_port))
    broker.start()
    tls = SecureMosquitto(tmp_path, tls_port)  # the same process, seen on its TLS port
    try:
        wait_for_port(tls_port, 10.0, broker.proc)
        ca = tmp_path / "certs" / "ca.crt"
        ok = connect(tls, f"m3-{uuid.uuid4().hex[:6]}", "pi-m3", passwords["pi-m3"], tls_ca=ca)
        assert ok.connect_rc == 0
        ok.close()
        wrong = connect(tls, f"m3x-{uuid.uuid4().hex[:6]}", "pi-m3", "nope", tls_ca=ca)
        assert wrong.connect_rc != 0  # TLS does not replace the password check
        with pytest.raises((TimeoutError, OSError)):  # plain MQTT on the TLS port gets nowhere
            connect(tls, f"plain-{uuid.uuid4().hex[:6]}", "pi-m3", passwords["pi-m3"], timeout_s=3)
    finally:
        broker.stop()
