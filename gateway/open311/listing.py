"""Page N of the service requests matching Open311 filters, from the tickets service's ListTickets.

ListTickets filters by one state and one category; Open311 asks for several (`status=open` is five
states, `service_code` a list). Each (state, category) pair is one stream, newest first; the streams
are merged by creation time and the first (page - 1) * page_size results skipped. Streams fetch
only as many tickets as the page still needs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from fastapi import Request

from gateway.open311.auth import Account
from gateway.open311.errors import invalid
from gateway.upstream import upstreams
from gov.tickets.v1 import tickets_pb2 as pb

MAX_FETCH = 200
# page * page_size may not exceed this: deeper pages need a narrower query (dates, service_code).
MAX_DEPTH = 10_000


def _newest_first(ticket: pb.Ticket) -> tuple[int, int, str]:
    return (ticket.create_time.seconds, ticket.create_time.nanos, ticket.name)


class _Stream:
    def __init__(self, request: Request, account: Account, query: pb.ListTicketsRequest) -> None:
        self.request = request
        self.account = account
        self.query = query
        self.buffer: deque[pb.Ticket] = deque()
        self.token = ""
        self.done = False

    async def fill(self, wanted: int) -> None:
        """Fetch when empty: up to `wanted` tickets (skipping empty pages)."""
        while not self.buffer and not self.done:
            query = pb.ListTicketsRequest()
            query.CopyFrom(self.query)
            query.page_size = max(1, min(MAX_FETCH, wanted))
            query.page_token = self.token
            reply = await self.account.call(upstreams(self.request).tickets.ListTickets, query)
            self.buffer.extend(reply.tickets)
            self.token = reply.next_page_token
            self.done = not self.token


async def page_of(
    request: Request,
    account: Account,
    base: pb.ListTicketsRequest,
    *,
    states: Sequence[pb.TicketState],
    categories: Sequence[str],
    page: int,
    page_size: int,
) -> list[pb.Ticket]:
    """Tickets (page - 1) * page_size to page * page_size, newest first, of every state in `states`
    (none: all) and category (`categories/{code}`; none: all) matching `base`'s other filters."""
    wanted = page * page_size
    if wanted > MAX_DEPTH:
        raise invalid("page", f"page × page_size may not exceed {MAX_DEPTH}; narrow the query")
    streams = []
    for state in states or (pb.TICKET_STATE_UNSPECIFIED,):
        for category in categories or ("",):
            query = pb.ListTicketsRequest()
            query.CopyFrom(base)
            query.state, query.category = state, category
            streams.append(_Stream(request, account, query))
    skip, taken = wanted - page_size, 0
    found: list[pb.Ticket] = []
    while taken < wanted:
        await asyncio.gather(*(s.fill(wanted - taken) for s in streams))
        ready = [s for s in streams if s.buffer]
        if not ready:
            break
        newest = max(ready, key=lambda s: _newest_first(s.buffer[0])).buffer.popleft()
        taken += 1
        if taken > skip:
            found.append(newest)
    return found
