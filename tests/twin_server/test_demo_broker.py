"""The demo's embedded broker keeps its own errors in its log, off the demo's console."""

from __future__ import annotations

import time

from services import free_port

from twin_server.cli.demo import EmbeddedBroker


def test_an_error_on_the_broker_loop_goes_to_its_log_not_the_console(tmp_path, capfd) -> None:
    log = tmp_path / "broker.log"
    broker = EmbeddedBroker(free_port(), log)
    broker.start()
    try:

        def crash() -> None:  # what amqtt 0.12 raises when two clients subscribe at once
            raise RuntimeError("dictionary changed size during iteration")

        broker._loop.call_soon_threadsafe(crash)
        deadline = time.monotonic() + 5
        while "dictionary changed size" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        broker.stop()
    text = log.read_text()
    assert "broker loop:" in text and "RuntimeError: dictionary changed size during iteration" in text
    assert "Traceback" not in capfd.readouterr().err
