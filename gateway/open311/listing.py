"""Page N of the service requests matching Open311 filters, merged from several ticket listings.

ListTickets (an api_key's own requests) and ListPublicTickets (public categories, no key) filter by
one state and one category; Open311 asks for several (`status=open` is five states, `service_code`
a list). Each (listing, state, category) is one stream, newest first; the streams are merged by
creation time, a ticket that two streams give (an app's own report in a public category) is taken
once, preferring the full Ticket over its public view, and the first (page - 1) * page_size
results are skipped. Streams fetch only as many tickets as the page still needs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import Request

from gateway.open311.auth import Account, Anonymous
from gateway.open311.errors import invalid
from gateway.upstream import upstreams
from gov.tickets.v1 import tickets_pb2 as pb

MAX_FETCH = 200
# page * page_size may not exceed this: deeper pages need a narrower query (dates, service_code).
MAX_DEPTH = 10_000

Item = pb.Ticket | pb.PublicTicket
# (page_token, page_size) -> (tickets, next_page_token)
Fetch = Callable[[str, int], Awaitable[tuple[Sequence[Item], str]]]


def _newest_first(ticket: Item) -> tuple[int, int, str]:
    return (ticket.create_time.seconds, ticket.create_time.nanos, ticket.name)


class _Stream:
    def __init__(self, fetch: Fetch) -> None:
        self.fetch = fetch
        self.buffer: deque[Item] = deque()
        self.token = ""
        self.done = False

    async def fill(self, wanted: int) -> None:
        """Fetch when empty: up to `wanted` tickets (skipping empty pages)."""
        while not self.buffer and not self.done:
            tickets, self.token = await self.fetch(self.token, max(1, min(MAX_FETCH, wanted)))
            self.buffer.extend(tickets)
            self.done = not self.token


def _queries(base: Any, states: Sequence[int], categories: Sequence[str]) -> list[Any]:
    """`base` once per (state, category) pair; none given means all."""
    out = []
    for state in states or (0,):
        for category in categories or ("",):
            query = type(base)()
            query.CopyFrom(base)
            query.state, query.category = state, category
            out.append(query)
    return out


def _streams(
    caller: Account | Anonymous,
    listing: Callable[..., Awaitable[Any]],
    base: Any,
    states: Sequence[int],
    categories: Sequence[str],
) -> list[_Stream]:
    """A stream per (state, category) of `base`, each paging through `listing` as `caller`."""

    def fetcher(query: Any) -> Fetch:
        async def fetch(token: str, size: int) -> tuple[Sequence[Item], str]:
            query.page_token, query.page_size = token, size
            reply = await caller.call(listing, query)
            return reply.tickets, reply.next_page_token

        return fetch

    return [_Stream(fetcher(q)) for q in _queries(base, states, categories)]


def own_streams(
    request: Request,
    account: Account,
    base: pb.ListTicketsRequest,
    states: Sequence[int],
    categories: Sequence[str],
) -> list[_Stream]:
    """The tickets the api_key's account may see (the requests it filed)."""
    return _streams(account, upstreams(request).tickets.ListTickets, base, states, categories)


def public_streams(
    request: Request,
    base: pb.ListPublicTicketsRequest,
    states: Sequence[int],
    categories: Sequence[str],
) -> list[_Stream]:
    """Tickets of public categories, their public fields only: asked for without any token."""
    listing = upstreams(request).tickets.ListPublicTickets
    return _streams(Anonymous(request), listing, base, states, categories)


async def page_of(streams: Sequence[_Stream], *, page: int, page_size: int) -> list[Item]:
    """Tickets (page - 1) * page_size to page * page_size of the streams merged, newest first."""
    wanted = page * page_size
    if wanted > MAX_DEPTH:
        raise invalid("page", f"page × page_size may not exceed {MAX_DEPTH}; narrow the query")
    skip, taken = wanted - page_size, 0
    found: list[Item] = []
    while taken < wanted:
        await asyncio.gather(*(s.fill(wanted - taken) for s in streams))
        ready = [s for s in streams if s.buffer]
        if not ready:
            break
        key = max(_newest_first(s.buffer[0]) for s in ready)
        # The same ticket from several streams (its own and the public view) is one result.
        same = [s.buffer.popleft() for s in ready if _newest_first(s.buffer[0]) == key]
        newest = next((t for t in same if isinstance(t, pb.Ticket)), same[0])
        taken += 1
        if taken > skip:
            found.append(newest)
    return found
