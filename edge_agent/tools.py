"""Small one-shot tools shared by the CLI and ``doctor``: probing a sensor."""

from __future__ import annotations

import sys

from edge_agent.agent import Agent
from edge_agent.config import Config
from edge_agent.drivers import Sample

__all__ = ["probe", "probe_samples"]


def probe_samples(cfg: Config, sensor_id: str, seconds: float = 2.0) -> list[Sample]:
    """Open one sensor's driver, read it once (BLE: listen ``seconds``), close it."""
    agent = Agent(cfg, connect=False)
    try:
        driver = agent.build_driver(cfg.sensor(sensor_id))
        try:
            return driver.probe(seconds)
        finally:
            driver.close()
    finally:
        agent.outbox.close()


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
