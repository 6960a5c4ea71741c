"""Timestamps: monotonic between anchors, wall-clock steps followed only when trustworthy."""

from __future__ import annotations

from edge_agent.clock import Clock, ReplayClock, ntp_synchronized, should_reanchor

S = 10**9


class FakeTime:
    def __init__(self) -> None:
        self.wall = 1_700_000_000 * S
        self.mono = 5 * S

    def advance(self, ns: int) -> None:
        self.wall += ns
        self.mono += ns


def test_wall_clock_step_does_not_move_timestamps_until_reanchored() -> None:
    ft = FakeTime()
    clock = Clock(wall_ns=lambda: ft.wall, mono_ns=lambda: ft.mono)
    t0 = clock.now_ns()
    ft.advance(S)
    ft.wall -= 30 * S  # NTP steps the wall clock back 30 s
    assert clock.now_ns() == t0 + S  # readings keep running forward
    assert clock.offset_ns() == -30 * S
    assert clock.reanchor(synced=True) == -30 * S
    assert clock.now_ns() == ft.wall and clock.steps == 1


def test_unsynced_clock_is_followed_only_for_manual_sized_steps() -> None:
    assert not should_reanchor(5 * S, synced=False)
    assert should_reanchor(7200 * S, synced=False)
    assert should_reanchor(5 * S, synced=None)
    assert not should_reanchor(S // 100, synced=True)  # jitter between the two clock reads
    ft = FakeTime()
    clock = Clock(wall_ns=lambda: ft.wall, mono_ns=lambda: ft.mono)
    ft.wall += 5 * S
    assert clock.reanchor(synced=False) == 0 and clock.steps == 0


def test_replay_clock_runs_at_speed_from_recorded_start() -> None:
    ft = FakeTime()
    clock = ReplayClock(1_600_000_000 * S, speed=10.0, mono_ns=lambda: ft.mono)
    ft.advance(2 * S)
    assert clock.now_ns() == 1_600_000_000 * S + 20 * S


def test_ntp_state_is_a_bool_or_unknown() -> None:
    assert ntp_synchronized() in (True, False, None)
