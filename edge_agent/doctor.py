"""Commissioning checklist: ``python -m edge_agent doctor``.

Checks, in order: config, clock sync, outbox storage, broker reachability, each sensor's
live reading, the light levels with the lamp off and on (a calibration run), each push
button (press it and see it), and the BLE beacons heard with their RSSI. Prints one
``[PASS]``/``[FAIL]``/``[SKIP]`` line per check; exits 1 if any check failed.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.clock import ntp_synchronized
from edge_agent.config import Config, MqttSection
from edge_agent.drivers import Driver

__all__ = ["Check", "broker_reachable", "doctor_cli", "run_doctor"]


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # PASS, FAIL or SKIP
    detail: str

    def line(self) -> str:
        return f"[{self.status}] {self.name}: {self.detail}"


def broker_reachable(cfg: MqttSection, timeout_s: float = 5.0) -> tuple[bool, str]:
    """Connect to the broker with the agent's settings (TLS, user) and wait for CONNACK."""
    import ssl

    import paho.mqtt.client as mqtt

    result: dict[str, str | bool] = {}
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password or None)
    if cfg.tls:
        client.tls_set_context(ssl.create_default_context(cafile=cfg.ca_file or None))

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        result["ok"] = not reason_code.is_failure
        result["why"] = str(reason_code)
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(cfg.host, cfg.port, keepalive=10)
    except OSError as exc:
        return False, f"cannot reach {cfg.host}:{cfg.port}: {exc.strerror or exc}"
    client.loop_start()
    try:
        if not done.wait(timeout_s):
            return False, f"{cfg.host}:{cfg.port} accepted TCP but sent no CONNACK in {timeout_s:g} s"
        if not result["ok"]:
            return False, f"{cfg.host}:{cfg.port} refused the connection: {result['why']}"
        return True, f"{cfg.host}:{cfg.port} accepted the connection"
    finally:
        client.disconnect()
        client.loop_stop()


def _sensor_checks(
    cfg: Config, interactive: bool, seconds: float, ask: Callable[[str], object]
) -> list[Check]:
    from edge_agent.calibrate import CalibrationError, light_thresholds, record_light
    from edge_agent.tools import open_driver

    checks: list[Check] = []
    for s in cfg.sensors:
        sid, kind = s["id"], s["kind"]
        name = f"sensor {sid}"
        try:
            with open_driver(cfg, sid) as driver:
                if kind == "ble":
                    checks.append(_ble_check(s, driver, seconds))
                    continue
                sample = driver.probe(seconds)[0]
                if kind == "switch":
                    checks.append(_button_check(s, driver, sample.value, interactive, seconds, ask))
                    continue
                checks.append(Check(name, "PASS", f"live {kind} level {float(sample.value):.4g} {s['unit']}"))
        except Exception as exc:  # the point of doctor is to report, never to crash
            checks.append(Check(name, "FAIL", f"cannot read: {type(exc).__name__}: {exc}"))
            continue
        if kind == "light":
            if not interactive:
                checks.append(Check(f"light levels {sid}", "SKIP", "needs a person to switch the lamp"))
                continue
            try:
                off, on = record_light(cfg, sid, min(seconds, 3.0), ask)
                on_above, off_below = light_thresholds(off, on)
            except CalibrationError as exc:
                checks.append(Check(f"light levels {sid}", "FAIL", str(exc)))
                continue
            levels = f"off {min(off):.3g}..{max(off):.3g}, on {min(on):.3g}..{max(on):.3g}"
            if "on_above" not in s:
                checks.append(
                    Check(
                        f"light levels {sid}",
                        "FAIL",
                        f"{levels}; no thresholds in the config: run "
                        f"calibrate (suggests on_above = {on_above}, off_below = {off_below})",
                    )
                )
            elif max(off) < s["off_below"] and min(on) > s["on_above"]:
                checks.append(
                    Check(
                        f"light levels {sid}",
                        "PASS",
                        f"{levels}; thresholds {s['off_below']}/{s['on_above']} separate them",
                    )
                )
            else:
                checks.append(
                    Check(
                        f"light levels {sid}",
                        "FAIL",
                        f"{levels} do not fit thresholds {s['off_below']}/{s['on_above']}: run calibrate",
                    )
                )
    return checks


def _button_check(
    s: dict,
    driver: Driver,
    idle_value: float | str,
    interactive: bool,
    seconds: float,
    ask: Callable[[str], object],
) -> Check:
    where = f"GPIO {s['gpio']}" if "gpio" in s else s["driver"]
    name = f"button {s['id']} ({s['channel']}, {where})"
    if idle_value != 0.0:
        return Check(
            name, "FAIL", "reads pressed while nobody touches it: wiring to GND shorted or switch stuck"
        )
    if not interactive:
        return Check(name, "PASS", "reads released (not pressed); press test skipped")
    got: list[float] = []
    driver.start(lambda sample: got.append(float(sample.value)))
    ask(f"Press and release the {s['channel']} button ({where}), then press Enter: ")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (1.0 in got and got[-1] == 0.0):
        time.sleep(0.02)
    if 1.0 in got and got[-1] == 0.0:
        return Check(name, "PASS", f"press and release seen ({got.count(1.0)} press(es))")
    if 1.0 in got:
        return Check(name, "FAIL", "press seen but no release: switch sticks or wiring shorts")
    return Check(name, "FAIL", "no press seen: check the wire to the GPIO pin and GND")


def _ble_check(s: dict, driver: Driver, seconds: float) -> Check:
    samples = driver.probe(seconds)
    name = f"BLE {s['id']} at receiver"
    error = getattr(driver, "error", None)
    if not samples and error:
        return Check(name, "FAIL", f"scanner error: {error}")
    heard: dict[str, list[float]] = {}
    for sample in samples:
        heard.setdefault(sample.channel, []).append(float(sample.value))
    wanted = sorted(set(s.get("beacons", {}).values()))
    parts = []
    for b in wanted:
        rssi = heard.get(b)
        if rssi:
            parts.append(
                f"{b}: {len(rssi)} adverts, mean {sum(rssi) / len(rssi):.0f} dBm, max {max(rssi):.0f} dBm"
            )
        else:
            parts.append(f"{b}: not heard")
    if not heard:
        return Check(name, "FAIL", f"no configured beacon heard in {seconds:g} s ({'; '.join(parts)})")
    return Check(name, "PASS", "; ".join(parts))


def run_doctor(
    cfg: Config,
    seconds: float = 5.0,
    interactive: bool = True,
    ask: Callable[[str], object] = input,
    say: Callable[[str], None] = print,
) -> list[Check]:
    """Run every check; ``say`` each line as it completes; return the checks."""
    checks: list[Check] = []

    def add(c: Check | list[Check]) -> None:
        for one in c if isinstance(c, list) else [c]:
            checks.append(one)
            say(one.line())

    add(
        Check(
            "config", "PASS", f"site {cfg.agent.site}, device {cfg.agent.device}, {len(cfg.sensors)} sensors"
        )
    )
    synced = ntp_synchronized()
    add(
        Check(
            "clock",
            {True: "PASS", False: "FAIL", None: "SKIP"}[synced],
            {
                True: "NTP-synchronised",
                False: "not NTP-synchronised: check chrony (chronyc tracking)",
                None: "sync state unknown on this system",
            }[synced],
        )
    )
    try:
        data = Path(cfg.agent.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        probe = data / ".doctor-write-test"
        probe.write_text("ok")
        probe.unlink()
        add(Check("outbox storage", "PASS", f"{data} is writable"))
    except OSError as exc:
        add(Check("outbox storage", "FAIL", f"{cfg.agent.data_dir}: {exc.strerror or exc}"))
    ok, why = broker_reachable(cfg.mqtt)
    add(Check("broker", "PASS" if ok else "FAIL", why))
    add(_sensor_checks(cfg, interactive, seconds, ask))
    return checks


def doctor_cli(cfg: Config, seconds: float, interactive: bool) -> int:
    checks = run_doctor(cfg, seconds, interactive)
    failed = [c for c in checks if c.status == "FAIL"]
    print(f"\n{len(checks) - len(failed)} of {len(checks)} checks passed or skipped; {len(failed)} failed.")
    sys.stdout.flush()
    return 1 if failed else 0
