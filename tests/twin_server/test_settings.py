"""Settings: pydantic-settings with the TWIN_ prefix; the command line's options still win."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from twin_server.cli import serve
from twin_server.settings import Settings
from twin_server.site import load_site

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "examples" / "pilot_site.yaml"


def test_environment_fills_what_the_constructor_leaves_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_WS_FLUSH_S", "0.7")
    monkeypatch.setenv("TWIN_INFLUX_URL", "http://influx:8086")
    monkeypatch.setenv("TWIN_DEVICE_SCOPE", "false")
    s = Settings(site=load_site(SITE), influx_url="http://given:8086")
    assert s.ws_flush_s == 0.7 and s.device_scope is False
    assert s.influx_url == "http://given:8086"  # the constructor wins
    assert Settings(site=load_site(SITE)).influx_url == "http://influx:8086"


def test_a_bad_environment_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_BROKER_PORT", "eighteen")
    with pytest.raises(ValueError, match="broker_port"):
        Settings(site=load_site(SITE))


def test_serve_options_and_their_environment_defaults_keep_working(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TWIN_MQTT_USERNAME", "twin-server")
    monkeypatch.setenv("TWIN_MQTT_PASSWORD", "secret")
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    args = parser.parse_args(
        ["--site", str(SITE), "--data-dir", str(tmp_path), "--broker", "mq:1884", "--analysis-interval", "9"]
    )
    s = serve.settings_from_args(args)
    assert (s.broker_host, s.broker_port, s.analysis_interval_s) == ("mq", 1884, 9.0)
    assert (s.mqtt_username, s.mqtt_password) == ("twin-server", "secret")
    assert s.site_path == SITE.resolve() and s.data_dir == tmp_path
