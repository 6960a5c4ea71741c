"""Edge processing: hysteresis, excursions, level period, BLE windows; all pure functions."""

from __future__ import annotations

import pytest

from edge_agent.drivers import Sample
from edge_agent.processing import LevelProcessor, PassThrough, RssiAggregator

S = 10**9
T0 = 1_700_000_000 * S


def feed_all(proc, values, step_ns=S // 10):
    outs = []
    for i, v in enumerate(values):
        outs += proc.feed(Sample("x", T0 + i * step_ns, v))
    return outs


def test_light_hysteresis_ignores_flicker_between_thresholds() -> None:
    p = LevelProcessor(
        {"id": "light", "kind": "light", "on_above": 0.6, "off_below": 0.4, "level_period_s": 3600}
    )
    values = [0.1, 0.5, 0.7, 0.55, 0.45, 0.65, 0.3, 0.5, 0.41, 0.39]
    events = [((o.t_ns - T0) // (S // 10), o.value) for o in feed_all(p, values) if o.kind == "light_state"]
    # off at the first sample, on at 0.7, off at 0.3; 0.55, 0.45, 0.65 (already on), 0.41 ignored
    assert events == [(0, 0.0), (2, 1.0), (6, 0.0)]


def test_state_event_comes_out_with_the_detecting_sample_before_its_level() -> None:
    p = LevelProcessor(
        {"id": "light", "kind": "light", "on_above": 0.6, "off_below": 0.4, "level_period_s": 0.0}
    )
    out = p.feed(Sample("light", T0, 0.9))
    assert [(o.kind, o.value, o.t_ns) for o in out] == [("light_state", 1.0, T0), ("light", 0.9, T0)]


def test_pressure_excursion_both_directions_with_hysteresis() -> None:
    p = LevelProcessor(
        {
            "id": "pressure",
            "kind": "pressure",
            "normal": 0.5,
            "band": 0.1,
            "hysteresis": 0.5,
            "level_period_s": 3600,
        }
    )
    values = [0.5, 0.62, 0.57, 0.54, 0.5, 0.35, 0.44, 0.5]
    out = [
        (int((o.t_ns - T0) // (S // 10)), o.value) for o in feed_all(p, values) if o.kind == "pressure_state"
    ]
    # 0.57 and 0.44 stay in the excursion (dev >= 0.05); 0.54 and 0.5 end it; 0.35 (below) starts one.
    assert out == [(0, 0.0), (1, 1.0), (3, 0.0), (5, 1.0), (7, 0.0)]


def test_levels_published_on_the_period_grid() -> None:
    p = LevelProcessor({"id": "light", "kind": "light", "level_period_s": 1.0})
    outs = feed_all(p, [0.5] * 35)  # 3.5 s at 10 Hz
    assert [o.t_ns - T0 for o in outs] == [0, S, 2 * S, 3 * S]
    assert all(o.kind == "light" for o in outs)  # no thresholds: no state events


def test_switch_passes_presses_and_releases() -> None:
    p = PassThrough({"id": "sw-tool", "kind": "switch", "channel": "tool_change"})
    outs = feed_all(p, [1.0, 0.0, 1.0])
    assert [(o.value, o.channel, o.kind) for o in outs] == [
        (v, "tool_change", "switch") for v in (1.0, 0.0, 1.0)
    ]


def test_rssi_windows_count_max_mean_and_flush_on_time() -> None:
    agg = RssiAggregator({"id": "ble", "window_ms": 1000})
    adverts = [
        (0.05, "b-01", -60),
        (0.5, "b-01", -70),
        (0.7, "b-02", -80),
        (0.99, "b-01", -65),
        (1.2, "b-01", -50),
    ]
    for t, b, r in adverts:
        assert agg.feed(Sample("ble", T0 + int(t * S), float(r), b)) == []
    assert agg.flush(T0 + S - 1) == []  # window [0, 1) s not over yet
    out = agg.flush(T0 + S)  # the instant it ends
    assert [(o.channel, o.t_ns, o.count, o.rssi_max_dbm, o.value, o.window_ms) for o in out] == [
        ("b-01", T0, 3, -60.0, -65.0, 1000),
        ("b-02", T0, 1, -80.0, -80.0, 1000),
    ]
    late = agg.feed(Sample("ble", T0 + int(0.9 * S), -90.0, "b-02"))  # callback after its window closed
    assert late == [] and agg.late == 1
    out2 = agg.flush(T0 + 2 * S)
    assert [(o.channel, o.count, o.t_ns) for o in out2] == [("b-01", 1, T0 + S), ("b-02", 1, T0 + S)]
    assert agg.flush(T0 + 10 * S) == []


def test_agent_flushes_replayed_windows_on_virtual_time(tmp_path) -> None:
    # At 50x, a 1 s window lasts 20 ms of real time: the agent must wake that often.
    import time

    from edge_helpers import write_config

    from edge_agent.agent import Agent
    from edge_agent.config import load_config

    (tmp_path / "r.csv").write_text(
        "time,kind,source,channel,value\n1700000000.2,rssi,R3,b-01,-70\n1700000030.0,rssi,R3,b-01,-60\n"
    )
    body = (
        '[replay]\nfile = "r.csv"\nspeed = 50.0\n[[sensors]]\nid = "ble"\nkind = "ble"\ndriver = "replay"\n'
    )
    agent = Agent(load_config(write_config(tmp_path, body)), connect=False)
    agent.start()
    got = []
    t0 = time.monotonic()
    while not got and time.monotonic() - t0 < 5:
        got += [r for r in agent.step() if r.kind == "rssi"]
    # The wait until the next window end is computed in real time: 1 virtual s = 20 ms.
    timeout_s = agent._timeout_s(1_700_000_005 * 10**9)
    agent.close()
    assert [(r.channel, r.count, r.t_ns) for r in got] == [("b-01", 1, 1_700_000_000 * 10**9)]
    assert timeout_s == pytest.approx(0.021, abs=1e-6)
