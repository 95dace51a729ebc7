"""The tickets seeder's logins: a token is reused for a while, and there is none before the first
login, whatever the clock reads (it starts near zero on a machine booted a moment ago)."""

from __future__ import annotations

from typing import Any

from demo.seed_tickets import TOKEN_REUSE_SECONDS, Logins
from gov.identity.v1 import identity_pb2 as ipb


class NumberedTokens:
    """Identity's Login, as far as Logins uses it: each login gets the next numbered token."""

    def __init__(self) -> None:
        self.logins: list[str] = []

    async def Login(self, request: ipb.LoginRequest, **_: Any) -> ipb.TokenPair:
        self.logins.append(request.login)
        return ipb.TokenPair(access_token=f"token-{len(self.logins)}")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_the_first_call_logs_in_even_when_the_clock_has_just_started() -> None:
    identity, clock = NumberedTokens(), Clock(3.0)  # three seconds after boot
    logins = Logins(identity, clock)  # type: ignore[arg-type]
    assert await logins.md("admin", "pw") == (("authorization", "Bearer token-1"),)
    assert identity.logins == ["admin"]


async def test_a_token_is_reused_until_it_is_due_for_renewal_then_renewed() -> None:
    identity, clock = NumberedTokens(), Clock(3.0)
    logins = Logins(identity, clock)  # type: ignore[arg-type]
    await logins.md("admin", "pw")
    clock.now += TOKEN_REUSE_SECONDS - 1
    assert await logins.md("admin", "pw") == (("authorization", "Bearer token-1"),)
    assert await logins.md("17807320003", "pw") == (
        ("authorization", "Bearer token-2"),
    )  # each login its own
    clock.now += 2
    assert await logins.md("admin", "pw") == (("authorization", "Bearer token-3"),)
    assert identity.logins == ["admin", "17807320003", "admin"]
