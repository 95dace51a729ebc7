"""Tickets follow the region tree's node moves (`blocks.v1.node.changed` with a new parent).

A ticket stores its node and the levels above it (district, street, community, for statistics),
a unit the node it serves. When blocks moves a node, everything at or below it is rewritten to
the new path, so staff scoped to the new path (identity moves their bindings the same way) see
their tickets and the old path covers nothing; a move across districts carries the tickets'
part of the district month sums along. Moves apply in blocks' order, each once
(govkit.treemoves), and one `tickets.v1.tickets.relocated` event announces each.
"""

from __future__ import annotations

from sqlalchemy import case, func, literal
from sqlalchemy.ext.asyncio import AsyncSession

from gov.tickets.v1 import events_pb2
from govkit import treemoves
from govkit.auth.scopes import ancestors
from govkit.db import utcnow
from govkit.sqlpaths import within
from services.tickets import statistics
from services.tickets.catalogue import emit
from services.tickets.models import MOVES, Ticket, Unit

_LEVELS = ((1, Ticket.district), (2, Ticket.street), (3, Ticket.community))


async def relocate(session: AsyncSession, move: treemoves.Move, actor: str) -> None:
    previous, new = move.previous, move.path
    depth = previous.count("/") + 1
    await statistics.relocate(session, within(Ticket.node, previous), new.split("/")[0])
    levels: dict[str, object] = {}
    for level, column in _LEVELS:
        if level < depth:  # above the moved node: the new parent's chain
            levels[column.key] = ancestors(new)[level - 1]
        else:  # at or below it: the same place under the new path ("" stays "": a street's ticket)
            levels[column.key] = case(
                (column == "", ""), else_=literal(new) + func.substr(column, len(previous) + 1)
            )
    tickets = await treemoves.rewrite(session, Ticket.node, previous, new, update_time=utcnow(), **levels)
    units = await treemoves.rewrite(session, Unit.node, previous, new)
    await emit(
        session,
        actor,
        "tickets.v1.tickets.relocated",
        events_pb2.TicketsRelocated(
            previous_path=previous, path=new, tree_version=move.seq, tickets=tickets, units=units
        ),
        f"nodes/{new}",
    )


SPEC = treemoves.follow_moves("tickets-node-moves", MOVES, relocate)
