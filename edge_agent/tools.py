"""Small one-shot tools shared by the CLI, ``calibrate`` and ``doctor``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from edge_agent.config import Config
from edge_agent.drivers import Driver, Sample

__all__ = ["open_driver", "probe", "probe_samples"]


@contextlib.contextmanager
def open_driver(cfg: Config, sensor_id: str) -> Iterator[Driver]:
    """Build one sensor's driver outside a running agent (no outbox, no broker)."""
    from edge_agent.clock import Clock

    sensor = cfg.sensor(sensor_id)
    if sensor["driver"] == "replay":
        from edge_agent.drivers.replay import ReplayDriver, ReplaySource, read_replay_rows

        assert cfg.replay is not None  # config validation guarantees it
        rows, rejected = read_replay_rows(cfg.replay.file)
        source = ReplaySource(rows, Clock(), cfg.replay.speed, True, False, rejected)
        driver: Driver = ReplayDriver(
            sensor, Clock(), source=source, machine=cfg.agent.machine, receiver=cfg.agent.receiver
        )
    else:
        from edge_agent.drivers import DRIVERS

        driver = DRIVERS[sensor["driver"]](sensor, Clock())
    try:
        yield driver
    finally:
        driver.close()


def probe_samples(cfg: Config, sensor_id: str, seconds: float = 2.0) -> list[Sample]:
    """Read one sensor once (BLE: listen ``seconds``).

    Raises ``RuntimeError`` if a listening driver hit an error and heard nothing (e.g. no
    BlueZ on this machine), so the caller can say why instead of "nothing received".
    """
    with open_driver(cfg, sensor_id) as driver:
        samples = driver.probe(seconds)
        error = getattr(driver, "error", None)
        if not samples and error:
            raise RuntimeError(error)
        return samples


def probe(cfg: Config, sensor_id: str, seconds: float) -> int:
    try:
        cfg.sensor(sensor_id)
    except KeyError:
        known = ", ".join(s["id"] for s in cfg.sensors)
        print(f"no sensor {sensor_id!r} in the config (known: {known})", file=sys.stderr)
        return 2
    try:
        samples = probe_samples(cfg, sensor_id, seconds)
    except Exception as exc:  # hardware missing, permissions, ...: say so in one line
        print(f"{sensor_id}: cannot read: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if not samples:
        print(f"{sensor_id}: nothing received in {seconds:g} s")
        return 1
    for s in samples:
        extra = f" channel={s.channel}" if s.channel else ""
        print(f"{s.sensor}: value={s.value}{extra} t_ns={s.t_ns}")
    return 0
