"""The in-process fan-out behind WatchInbox: each person's streams get their items only; a stream
that falls behind is ended so its client resumes from the database."""

from __future__ import annotations

import datetime as dt

import pytest

from services.notifications.hub import InboxHub, Overflow
from services.notifications.models import InboxItem


def item(seq: int, recipient: str) -> InboxItem:
    return InboxItem(
        seq=seq,
        id=f"i{seq}",
        recipient=recipient,
        event_id="e",
        kind="k",
        title="t",
        body="b",
        link="",
        resource="r",
        node="",
        urgent=False,
        create_time=dt.datetime.now(dt.UTC),
        read_time=None,
    )


async def test_items_reach_only_their_recipients_streams() -> None:
    hub = InboxHub()
    alice, alice_2, bob = hub.subscribe("users/a"), hub.subscribe("users/a"), hub.subscribe("users/b")
    hub.publish([item(1, "users/a"), item(2, "users/c")])
    assert (await alice.get(0.1)).seq == 1  # type: ignore[union-attr]
    assert (await alice_2.get(0.1)).seq == 1  # type: ignore[union-attr]
    assert await bob.get(0.05) is None
    for sub in (alice, alice_2, bob):
        sub.close()
    assert hub.streams == 0


async def test_a_stream_that_falls_behind_is_ended_after_what_it_holds() -> None:
    hub = InboxHub()
    slow = hub.subscribe("users/a")
    hub.publish(item(n, "users/a") for n in range(1, 300))
    received = [(await slow.get(0.1)).seq for _ in range(256)]  # type: ignore[union-attr]
    assert received == list(range(1, 257))
    with pytest.raises(Overflow):
        await slow.get(0.1)
