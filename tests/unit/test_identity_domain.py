from __future__ import annotations

import datetime as dt

import pytest

from govkit.auth.principal import Binding, Principal
from govkit.auth.roles import Role
from govkit.errors import InvalidArgument
from services.identity import domain


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138 1234 5678",
        "008613812345678",
        "8613812345678",
    ],
)
def test_phone_spellings_normalize_to_e164(raw: str) -> None:
    assert domain.normalize_phone(raw) == "+8613812345678"


@pytest.mark.parametrize(
    "raw", ["", "12812345678", "1381234567", "138123456789", "abc", "+1 650 555 0100", "1" * 50]
)
def test_bad_phones_name_the_field(raw: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.normalize_phone(raw)
    assert err.value.field == "phone"


def test_login_key_is_the_phone_or_the_lowercased_username() -> None:
    assert domain.login_key("138 1234 5678") == "+8613812345678"
    assert domain.login_key("Zhang.San") == "zhang.san"


@pytest.mark.parametrize(
    ("raw", "ok"), [("zhang.san", True), ("ab", False), ("1abc", False), ("a" * 33, False)]
)
def test_usernames(raw: str, ok: bool) -> None:
    if ok:
        assert domain.normalize_username(raw) == raw
    else:
        with pytest.raises(InvalidArgument):
            domain.normalize_username(raw)


POLICY = domain.LockoutPolicy(threshold=3, window=dt.timedelta(minutes=15), duration=dt.timedelta(minutes=5))
T0 = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


def test_lockout_engages_at_threshold_within_window() -> None:
    state = None
    for i in range(3):
        state = domain.record_failure(state, T0 + dt.timedelta(minutes=i), POLICY)
    assert (
        state is not None and state.locked_until == T0 + dt.timedelta(minutes=2, seconds=0) + POLICY.duration
    )
    assert domain.is_locked(state, T0 + dt.timedelta(minutes=3))
    assert not domain.is_locked(state, T0 + dt.timedelta(minutes=8))


def test_failures_outside_the_window_start_a_new_count() -> None:
    state = domain.record_failure(None, T0, POLICY)
    state = domain.record_failure(state, T0 + dt.timedelta(minutes=1), POLICY)
    state = domain.record_failure(state, T0 + dt.timedelta(minutes=20), POLICY)
    assert state.failures == 1 and state.locked_until is None


def test_a_dispatcher_cannot_manage_an_account_holding_a_stronger_role() -> None:
    dispatcher = Principal("users/d", (Binding(Role.DISPATCHER, "yuhu/wanlou"),))
    assert domain.can_manage(dispatcher, "yuhu/wanlou/c1", [Binding(Role.GOVERNOR, "yuhu/wanlou/c1/b1")])
    assert not domain.can_manage(dispatcher, "yuhu/wanlou", [Binding(Role.LEADER, "yuhu/wanlou")])
    assert not domain.can_manage(dispatcher, "yuhu/hetang", [])


def test_readable_scopes_are_minimal() -> None:
    p = Principal("users/x", (Binding(Role.DISPATCHER, "yuhu/wanlou"), Binding(Role.LEADER, "yuhu")))
    assert domain.readable_scopes(p) == ["yuhu"]
