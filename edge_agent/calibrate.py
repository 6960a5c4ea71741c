"""Calibration: record a light sensor with the lamp on and off (or a pressure sensor at rest)
and write the thresholds into the config file, keeping its comments.
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from edge_agent.config import Config, ConfigError, parse_config

__all__ = [
    "CalibrationError",
    "light_thresholds",
    "pressure_band",
    "record_levels",
    "set_sensor_keys",
]


class CalibrationError(ValueError):
    """The recorded levels cannot give usable thresholds."""


def light_thresholds(off: list[float], on: list[float]) -> tuple[float, float]:
    """Hysteresis thresholds ``(on_above, off_below)`` from levels recorded lamp off and on.

    The band between the brightest "off" sample and the darkest "on" sample is split at
    30 % and 70 %: noise as large as what was recorded cannot flip the state.

    Raises
    ------
    CalibrationError
        If the levels overlap (sensor not on the lamp, lamp not switched, wrong sensor).
    """
    if not off or not on:
        raise CalibrationError("no levels recorded")
    lo, hi = max(off), min(on)
    if hi <= lo:
        raise CalibrationError(
            f"lamp on and off overlap: off up to {lo:.4g}, on down to {hi:.4g}; "
            "is the sensor on the lamp and was the lamp switched?"
        )
    gap = hi - lo
    return round(lo + 0.7 * gap, 4), round(lo + 0.3 * gap, 4)


def pressure_band(rest: list[float]) -> tuple[float, float]:
    """``(normal, band)`` from levels recorded with the jig clamped and nobody touching it.

    The band is six times the recorded spread, at least 5 % of the full scale (0.05 raw).
    """
    if len(rest) < 2:
        raise CalibrationError("need at least two levels")
    normal = statistics.median(rest)
    spread = max(rest) - min(rest)
    return round(normal, 4), round(max(6 * spread, 0.05), 4)


_HEADER = re.compile(r"^\s*\[")
_ID_LINE = re.compile(r"""^\s*id\s*=\s*["']([^"']*)["']""")


def set_sensor_keys(text: str, sensor_id: str, values: dict[str, float]) -> str:
    """Set ``key = value`` lines in the ``[[sensors]]`` table whose id is ``sensor_id``.

    Existing keys are replaced in place; missing ones are added after the ``id`` line.
    Everything else (comments, order, other tables) is kept byte for byte.
    """
    lines = text.splitlines(keepends=True)
    start = None
    for i, line in enumerate(lines):
        if line.strip() == "[[sensors]]":
            start = i
        m = _ID_LINE.match(line)
        if m and start is not None and m.group(1) == sensor_id:
            break
    else:
        raise KeyError(sensor_id)
    id_line = i
    end = len(lines)
    for j in range(id_line + 1, len(lines)):
        if _HEADER.match(lines[j]):
            end = j
            break
    indent = re.match(r"^\s*", lines[id_line]).group(0)  # type: ignore[union-attr]
    todo = dict(values)
    for j in range(id_line + 1, end):
        for key in list(todo):
            m = re.match(rf"^(\s*){re.escape(key)}\s*=\s*[^#\n]*?(\s*#.*)?(\r?\n)?$", lines[j])
            if m:
                lines[j] = f"{m.group(1)}{key} = {todo.pop(key)!r}{m.group(2) or ''}{m.group(3) or ''}"
    insert = [f"{indent}{key} = {value!r}\n" for key, value in todo.items()]
    lines[id_line + 1 : id_line + 1] = insert
    return "".join(lines)


def record_levels(
    read: Callable[[], float], seconds: float, hz: float = 20.0, min_samples: int = 5
) -> list[float]:
    """Read a level ``hz`` times a second for ``seconds``, and at least ``min_samples`` times."""
    out: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end or len(out) < min_samples:
        out.append(float(read()))
        time.sleep(1.0 / hz)
    return out


def record_light(
    cfg: Config, sensor_id: str, seconds: float, ask: Callable[[str], object] = input
) -> tuple[list[float], list[float]]:
    """Record a light sensor with the lamp off, then on, prompting the engineer."""
    from edge_agent.tools import open_driver

    with open_driver(cfg, sensor_id) as driver:

        def read() -> float:
            return float(driver.probe()[0].value)

        ask(f"[{sensor_id}] Switch the stack light OFF (lamp dark), then press Enter: ")
        off = record_levels(read, seconds)
        ask(f"[{sensor_id}] Switch the stack light ON (lamp lit), then press Enter: ")
        on = record_levels(read, seconds)
    return off, on


def calibrate_sensor(
    cfg: Config, sensor_id: str, seconds: float, ask: Callable[[str], object] = input
) -> dict[str, float]:
    """Record one light or pressure sensor, prompting the engineer; return the new keys."""
    from edge_agent.tools import open_driver

    sensor = cfg.sensor(sensor_id)
    if sensor["kind"] == "light":
        off, on = record_light(cfg, sensor_id, seconds, ask)
        on_above, off_below = light_thresholds(off, on)
        print(f"  off: {min(off):.4g}..{max(off):.4g}   on: {min(on):.4g}..{max(on):.4g}")
        return {"on_above": on_above, "off_below": off_below}
    with open_driver(cfg, sensor_id) as driver:

        def read() -> float:
            return float(driver.probe()[0].value)

        if sensor["kind"] == "pressure":
            ask(f"[{sensor_id}] Clamp the jig and keep hands off, then press Enter: ")
            rest = record_levels(read, seconds)
            normal, band = pressure_band(rest)
            print(f"  at rest: {min(rest):.4g}..{max(rest):.4g}")
            return {"normal": normal, "band": band}
    raise CalibrationError(f"sensor {sensor_id!r} is a {sensor['kind']} sensor; calibrate light or pressure")


def write_calibration(path: Path, sensor_id: str, values: dict[str, float]) -> None:
    """Write the keys into the config file, after checking the result still validates."""
    text = path.read_text(encoding="utf-8")
    new_text = set_sensor_keys(text, sensor_id, values)
    parse_config(new_text, base_dir=path.parent)  # never leave a broken config behind
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(new_text, encoding="utf-8")
    tmp.replace(path)


def calibrate_cli(cfg: Config, path: Path, sensor_id: str | None, seconds: float, dry_run: bool) -> int:
    if sensor_id is None:
        lights = [s["id"] for s in cfg.sensors if s["kind"] == "light"]
        if not lights:
            print("no light sensor in the config", file=sys.stderr)
            return 2
        sensor_id = lights[0]
    try:
        cfg.sensor(sensor_id)
    except KeyError:
        print(f"no sensor {sensor_id!r} in the config", file=sys.stderr)
        return 2
    try:
        values = calibrate_sensor(cfg, sensor_id, seconds)
    except CalibrationError as exc:
        print(f"{sensor_id}: calibration failed: {exc}", file=sys.stderr)
        return 1
    except (OSError, RuntimeError, ImportError) as exc:
        print(f"{sensor_id}: cannot read: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    shown = ", ".join(f"{k} = {v}" for k, v in values.items())
    if dry_run:
        print(f"{sensor_id}: {shown} (not written: --dry-run)")
        return 0
    try:
        write_calibration(path, sensor_id, values)
    except (OSError, ConfigError) as exc:
        print(f"{path}: not written: {exc}", file=sys.stderr)
        return 1
    print(f"{sensor_id}: {shown} written to {path}")
    return 0
