"""Edge processing, pure and driven by sample timestamps (no wall clock, no I/O).

Each configured sensor gets one processor. ``feed(sample)`` returns the outputs due now;
``flush(now_ns)`` returns outputs that fall due with time alone (closed BLE windows).
Because decisions use sample time, the same code runs live and in accelerated replays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge_agent.drivers import Sample

__all__ = ["LevelProcessor", "Out", "PassThrough", "RssiAggregator", "build_processor"]


@dataclass(frozen=True, slots=True)
class Out:
    """One reading to publish, before site/device/seq are attached."""

    sensor: str
    kind: str
    t_ns: int
    value: float | str
    channel: str = ""
    count: int | None = None
    rssi_max_dbm: float | None = None
    window_ms: int | None = None


class LevelProcessor:
    """Light or pressure level: state changes at once, level samples every ``level_period_s``.

    Light: on when the level rises above ``on_above``, off when it falls below ``off_below``
    (hysteresis). Pressure: an excursion starts when ``|level - normal| > band`` and ends when
    ``|level - normal| < band * (1 - hysteresis)``. Without thresholds only levels are
    published and the server calibrates. The first state is published as soon as a sample
    decides it.
    """

    def __init__(self, sensor: dict[str, Any]) -> None:
        self.sensor_id: str = sensor["id"]
        self.kind: str = sensor["kind"]
        self.period_ns = int(float(sensor.get("level_period_s", 1.0)) * 1e9)
        self.on_above: float | None = sensor.get("on_above")
        self.off_below: float | None = sensor.get("off_below")
        self.normal: float | None = sensor.get("normal")
        self.band: float | None = sensor.get("band")
        self.hysteresis = float(sensor.get("hysteresis", 0.2))
        self.state: int | None = None
        self._next_level_ns: int | None = None

    def _new_state(self, value: float) -> int | None:
        if self.kind == "light":
            if self.on_above is None or self.off_below is None:
                return None
            if value > self.on_above:
                return 1
            if value < self.off_below:
                return 0
            return self.state
        if self.normal is None or self.band is None:
            return None
        dev = abs(value - self.normal)
        if dev > self.band:
            return 1
        if dev < self.band * (1.0 - self.hysteresis):
            return 0
        return self.state

    def feed(self, s: Sample) -> list[Out]:
        value = float(s.value)
        out: list[Out] = []
        new = self._new_state(value)
        if new is not None and new != self.state:
            self.state = new
            out.append(Out(self.sensor_id, f"{self.kind}_state", s.t_ns, float(new)))
        if self._next_level_ns is None or s.t_ns >= self._next_level_ns or self.period_ns == 0:
            out.append(Out(self.sensor_id, self.kind, s.t_ns, value))
            if self.period_ns:
                # Next slot on the period grid, so levels of all agents line up in time.
                self._next_level_ns = (s.t_ns // self.period_ns + 1) * self.period_ns
        return out

    def flush(self, now_ns: int) -> list[Out]:
        return []


class PassThrough:
    """Switch presses (1/0) and replayed zone reports: published as they come."""

    def __init__(self, sensor: dict[str, Any]) -> None:
        self.sensor_id: str = sensor["id"]
        self.kind: str = sensor["kind"]
        # A switch's channel is its task (from the config); a zone's is the beacon (per sample).
        self.channel: str | None = sensor["channel"] if self.kind == "switch" else None

    def feed(self, s: Sample) -> list[Out]:
        return [Out(self.sensor_id, self.kind, s.t_ns, s.value, self.channel or s.channel)]

    def flush(self, now_ns: int) -> list[Out]:
        return []


class RssiAggregator:
    """BLE adverts -> one ``rssi`` reading per beacon per window (count, max, mean).

    Windows are aligned to multiples of ``window_ms`` in epoch time so all receivers share
    them; a reading is stamped with its window's start and covers ``[t, t + window_ms)``.
    A window is emitted as soon as ``flush`` is called with a time past its end, so no lag
    is added beyond the window itself (plus the agent's tick, 20 ms). An advert arriving
    for a window already emitted (a late callback) goes into the oldest open window and is
    counted in ``late``.
    """

    def __init__(self, sensor: dict[str, Any]) -> None:
        self.sensor_id: str = sensor["id"]
        self.window_ms = int(sensor.get("window_ms", 1000))
        self.window_ns = self.window_ms * 1_000_000
        self._open: dict[tuple[int, str], list[float]] = {}  # (window idx, beacon) -> [n, sum, max]
        self._closed_below = 0  # windows with idx < this were emitted
        self.late = 0

    def feed(self, s: Sample) -> list[Out]:
        idx = s.t_ns // self.window_ns
        if idx < self._closed_below:
            self.late += 1
            idx = self._closed_below
        rssi = float(s.value)
        acc = self._open.get((idx, s.channel))
        if acc is None:
            self._open[(idx, s.channel)] = [1.0, rssi, rssi]
        else:
            acc[0] += 1
            acc[1] += rssi
            acc[2] = max(acc[2], rssi)
        return []

    def flush(self, now_ns: int) -> list[Out]:
        if not self._open:
            self._closed_below = max(self._closed_below, now_ns // self.window_ns)
            return []
        done = now_ns // self.window_ns  # windows with idx < done have ended
        ready = sorted(k for k in self._open if k[0] < done)
        out = []
        for key in ready:
            n, total, best = self._open.pop(key)
            out.append(
                Out(
                    self.sensor_id,
                    "rssi",
                    key[0] * self.window_ns,
                    round(total / n, 2),
                    key[1],
                    count=int(n),
                    rssi_max_dbm=best,
                    window_ms=self.window_ms,
                )
            )
        self._closed_below = max(self._closed_below, done)
        return out


Processor = LevelProcessor | PassThrough | RssiAggregator


def build_processor(sensor: dict[str, Any]) -> Processor:
    kind = sensor["kind"]
    if kind in ("light", "pressure"):
        return LevelProcessor(sensor)
    if kind == "ble":
        return RssiAggregator(sensor)
    return PassThrough(sensor)
