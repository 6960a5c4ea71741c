"""The running agent: drivers -> processing -> outbox -> publisher, on a few threads.

Drivers call :meth:`Agent.emit` from their own threads; the agent thread takes samples
from a queue, runs the processors, commits the outputs to the outbox (with their sequence
numbers) and wakes the publisher. State changes therefore reach the wire within
milliseconds of detection; BLE windows are flushed the moment they end.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from typing import Any

from edge_agent.clock import Clock, ReplayClock, ntp_synchronized
from edge_agent.config import Config
from edge_agent.drivers import DRIVERS, Driver, Sample
from edge_agent.outbox import Outbox
from edge_agent.processing import Out, Processor, RssiAggregator, build_processor
from edge_agent.publisher import Publisher
from edge_agent.version import __version__
from edge_agent.wire import Reading, Status, WireError

__all__ = ["Agent", "reading_of"]

log = logging.getLogger("edge_agent")

_UNITS = {"switch": "bool", "light_state": "bool", "pressure_state": "bool", "rssi": "dBm", "zone": "zone"}
#: How often the clock is checked for wall-clock steps and NTP state, seconds.
CLOCK_CHECK_S = 5.0
#: How often a sensor that failed to open is tried again, seconds.
DRIVER_RETRY_S = 30.0


def reading_of(out: Out, cfg: Config) -> Reading:
    """Attach site, device, source and unit to a processor output (seq is set by the outbox)."""
    sensor = cfg.sensor(out.sensor)
    if out.kind == "rssi":
        source = cfg.agent.receiver
    elif out.kind == "zone":
        source = sensor["locator"]
    else:
        source = cfg.agent.machine
    unit = _UNITS.get(out.kind) or sensor.get("unit", "raw")
    value = out.value if isinstance(out.value, str) else float(out.value)
    return Reading(
        site=cfg.agent.site,
        device=cfg.agent.device,
        sensor=out.sensor,
        kind=out.kind,
        t_ns=out.t_ns,
        seq=0,
        source=source,
        value=value,
        unit=unit,
        channel=out.channel,
        count=out.count,
        rssi_max_dbm=out.rssi_max_dbm,
        window_ms=out.window_ms,
    )


class Agent:
    """One edge agent.

    Parameters
    ----------
    cfg : Config
        Validated configuration.
    connect : bool
        Start the MQTT publisher (False for offline tools that only need drivers).
    """

    def __init__(self, cfg: Config, connect: bool = True) -> None:
        self.cfg = cfg
        self.replay = None
        if cfg.replay is not None:
            from edge_agent.drivers.replay import ReplaySource, read_replay_rows

            rows, rejected = read_replay_rows(cfg.replay.file)
            if cfg.replay.restamp or not rows:
                self.clock: Clock = Clock()
            else:
                self.clock = ReplayClock(rows[0][0], cfg.replay.speed)
            self.replay = ReplaySource(
                rows, self.clock, cfg.replay.speed, cfg.replay.restamp, cfg.replay.loop, rejected
            )
        else:
            self.clock = Clock()
        self.synced: bool | None = ntp_synchronized()
        self.outbox = Outbox(
            cfg.outbox_path,
            cfg.outbox.max_rows,
            cfg.outbox.synchronous,
            int(cfg.outbox.max_mb * 2**20) if cfg.outbox.max_mb else None,
        )
        self.processors: dict[str, Processor] = {s["id"]: build_processor(s) for s in cfg.sensors}
        self.drivers: dict[str, Driver] = {}
        self.driver_errors: dict[str, str] = {}
        self.rejected = 0
        self.published_readings = 0
        self._queue: queue.SimpleQueue[Sample] = queue.SimpleQueue()
        self._stop = threading.Event()
        self.publisher = None
        if connect:
            self.publisher = Publisher(
                cfg.mqtt, cfg.agent.site, cfg.agent.device, self.outbox, self.status, cfg.outbox
            )

    # -- drivers ---------------------------------------------------------------------
    def build_driver(self, sensor: dict[str, Any]) -> Driver:
        cls = DRIVERS[sensor["driver"]]
        if sensor["driver"] == "replay":
            return cls(
                sensor,
                self.clock,
                source=self.replay,
                machine=self.cfg.agent.machine,  # type: ignore[call-arg]
                receiver=self.cfg.agent.receiver,
            )
        return cls(sensor, self.clock)

    def open_drivers(self, start: bool = False) -> None:
        """Open (and optionally start) every driver not open yet.

        A sensor that cannot be opened (ADC unplugged, no BlueZ, scanner missing) is logged,
        reported in the status message (``driver_errors``) and retried every
        ``DRIVER_RETRY_S``; the other sensors keep working meanwhile.
        """
        for s in self.cfg.sensors:
            sid = s["id"]
            if sid in self.drivers:
                continue
            driver = None
            try:
                driver = self.build_driver(s)
                if start:
                    driver.start(self.emit)
            except Exception as exc:
                if driver is not None:
                    with contextlib.suppress(Exception):
                        driver.close()  # any hardware failure: report, retry, never stop the rest
                message = f"{type(exc).__name__}: {exc}"[:160]
                if self.driver_errors.get(sid) != message:
                    log.error(
                        "sensor %s unavailable (retrying every %.0f s): %s", sid, DRIVER_RETRY_S, message
                    )
                self.driver_errors[sid] = message
                continue
            self.drivers[sid] = driver
            self.driver_errors.pop(sid, None)

    def emit(self, sample: Sample) -> None:
        """Called by drivers from their threads."""
        self._queue.put(sample)

    # -- processing ------------------------------------------------------------------
    def status(self) -> Status:
        pub = self.publisher
        outbox: dict[str, Any] = {
            # Per sensor, the oldest seq the outbox still holds: the server names a gap below
            # it lost (nothing can fill it any more) instead of waiting for it.
            "seq_kept_from": self.outbox.kept_from(),
            "outbox_unstored": self.outbox.unstored,
        }
        if self.outbox.disk_full_at is not None:
            outbox["outbox_disk_full_at"] = round(self.outbox.disk_full_at, 3)
            outbox["outbox_error"] = (self.outbox.last_error or "")[:200]
        if pub is not None:
            outbox["outbox_keep_until"] = "server" if pub.server_acks else "broker"
            outbox["outbox_resent"] = pub.resent
        return Status(
            self.cfg.agent.site,
            self.cfg.agent.device,
            online=True,
            t_ns=self.clock.now_ns(),
            clock_synced=self.synced,
            agent_version=__version__,
            extra={
                "outbox_pending": self.outbox.pending,
                "outbox_dropped": self.outbox.counter("dropped"),
                "clock_steps": self.clock.steps,
                "rejected": self.rejected,
                "driver_errors": dict(self.driver_errors),
                **outbox,
            },
        )

    def process(self, samples: list[Sample], now_ns: int) -> list[Reading]:
        """Run processors over samples, flush due windows, commit to the outbox."""
        outs: list[Out] = []
        for s in samples:
            proc = self.processors.get(s.sensor)
            if proc is None:
                self.rejected += 1
                continue
            try:
                outs.extend(proc.feed(s))
            except (TypeError, ValueError):
                self.rejected += 1  # e.g. a non-numeric replayed value: counted, skipped
        for proc in self.processors.values():
            outs.extend(proc.flush(now_ns))
        readings = []
        for o in outs:
            try:
                readings.append(reading_of(o, self.cfg).check())
            except WireError as exc:
                self.rejected += 1
                log.warning("reading rejected: %s", exc)
        stored = self.outbox.append(readings)
        self.published_readings += len(stored)
        if stored and self.publisher is not None:
            self.publisher.kick()
        return stored

    def _timeout_s(self, now_ns: int) -> float:
        # Sleep until the next BLE window ends (so windows leave on time), at most 0.5 s.
        # Replays run on virtual time: speed virtual seconds pass per real second.
        speed = getattr(self.clock, "speed", 1.0)
        timeout = 0.5
        for proc in self.processors.values():
            if isinstance(proc, RssiAggregator):
                due = (now_ns // proc.window_ns + 1) * proc.window_ns
                timeout = min(timeout, (due - now_ns) / 1e9 / speed + 0.001)
        return max(timeout, 0.001)

    def step(self) -> list[Reading]:
        """Wait for samples (or the next window end) and process them once."""
        samples: list[Sample] = []
        try:
            samples.append(self._queue.get(timeout=self._timeout_s(self.clock.now_ns())))
            while len(samples) < 1000:
                samples.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return self.process(samples, self.clock.now_ns())

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        if self.drivers:  # opened by the caller (tests, tools): start them
            for d in self.drivers.values():
                d.start(self.emit)
        self.open_drivers(start=True)
        # After the drivers: the first online status already lists the sensors that failed.
        if self.publisher is not None:
            self.publisher.start()
        if self.replay is not None:
            self.replay.start()

    def run(self, stop: threading.Event | None = None) -> None:
        """Run until ``stop`` (or :meth:`stop`) is set."""
        stop = stop or self._stop
        self.start()
        next_clock = time.monotonic() + CLOCK_CHECK_S
        next_status = time.monotonic() + self.cfg.agent.status_period_s
        next_retry = time.monotonic() + DRIVER_RETRY_S
        try:
            while not stop.is_set() and not self._stop.is_set():
                self.step()
                mono = time.monotonic()
                if mono >= next_clock:
                    next_clock = mono + CLOCK_CHECK_S
                    self.synced = ntp_synchronized()
                    step_ns = self.clock.reanchor(self.synced)
                    if step_ns:
                        log.warning("wall clock stepped by %.3f s; re-anchored", step_ns / 1e9)
                if self.driver_errors and mono >= next_retry:
                    next_retry = mono + DRIVER_RETRY_S
                    self.open_drivers(start=True)
                if mono >= next_status and self.publisher is not None:
                    next_status = mono + self.cfg.agent.status_period_s
                    self.publisher.publish_status()
        finally:
            self.close()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        if self.replay is not None:
            self.replay.stop()
        for d in self.drivers.values():
            try:
                d.close()
            except Exception:  # closing hardware must not hide the real shutdown
                log.exception("closing driver %s", d.sensor_id)
        # Commit what the drivers delivered before they stopped: nothing is lost on SIGTERM.
        leftovers: list[Sample] = []
        while True:
            try:
                leftovers.append(self._queue.get_nowait())
            except queue.Empty:
                break
        # Partial BLE windows are flushed too (their count says how many adverts they hold).
        self.process(leftovers, self.clock.now_ns() + 3600 * 10**9)
        if self.publisher is not None:
            if self.publisher.connected.is_set():
                self.publisher.flush(self.cfg.agent.stop_drain_s)
            self.publisher.stop()
        self.outbox.close()
