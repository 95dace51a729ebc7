"""The login delay: free attempts, then a wait that doubles per failure up to a cap."""

from __future__ import annotations

import datetime as dt

from services.identity import domain

S = dt.timedelta(seconds=1)
POLICY = domain.LockoutPolicy(threshold=3, window=600 * S, duration=10 * S, max_delay=60 * S)
T0 = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


def test_delay_is_free_then_doubles_up_to_the_cap() -> None:
    assert [POLICY.delay_after(n).total_seconds() for n in range(1, 9)] == [0, 0, 10, 20, 40, 60, 60, 60]
    assert POLICY.delay_after(10_000) == 60 * S  # no overflow however many failures


def test_each_failure_after_the_wait_waits_twice_as_long() -> None:
    state, now = None, T0
    waits = []
    for _ in range(6):
        assert domain.is_locked(state, now) is None
        state = domain.record_failure(state, now, POLICY)
        waits.append((state.locked_until - now).total_seconds() if state.locked_until else 0)
        now = state.locked_until or now + S
    assert waits == [0, 0, 10, 20, 40, 60]
    # Attempts during the wait are refused and change nothing (the caller does not count them).
    assert domain.is_locked(state, now - S) == state.locked_until


def test_a_quiet_window_after_the_wait_starts_over() -> None:
    state = None
    for i in range(4):
        state = domain.record_failure(state, T0 + i * S, POLICY)
    assert state is not None and state.locked_until is not None
    later = state.locked_until + POLICY.window
    fresh = domain.record_failure(state, later, POLICY)
    assert fresh.failures == 1 and fresh.locked_until is None
    # Just inside the window the count goes on.
    assert domain.record_failure(state, later - S, POLICY).failures == 5
