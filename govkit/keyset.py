"""Keyset pages over one query (AIP-158 tokens from govkit.pagination): in one unique column's order,
or newest first in (time, id) order, how lists of records (awards, redemptions, queries...) page."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from govkit import pagination
from govkit.db import Database

M = TypeVar("M")


def time_id_cursor(token: str, filters_fingerprint: str, id_key: str = "i") -> dict[str, Any] | None:
    """The page token of a newest-first list, decoded (INVALID_ARGUMENT if forged)."""
    return pagination.decode_token(token, filters_fingerprint, t=dt.datetime, **{id_key: str})


async def newest_first(
    db: Database,
    stmt: Select[M],
    time: InstrumentedAttribute[dt.datetime],
    ident: InstrumentedAttribute[str],
    cursor: dict[str, Any] | None,
    size: int,
    filters_fingerprint: str,
    id_key: str = "i",
) -> tuple[list[M], str]:
    """One page of `stmt` newest first (ties by id, descending) after `cursor`, and the next token.

    `id_key` names the id in the token: notifications issued its tokens with `id` before it moved here.
    """
    if cursor:
        t = cursor["t"]
        stmt = stmt.where((time < t) | ((time == t) & (ident < cursor[id_key])))
    async with db.sessions() as session:
        rows = list((await session.scalars(stmt.order_by(time.desc(), ident.desc()).limit(size + 1))).all())
    return pagination.cut(
        rows,
        size,
        filters_fingerprint,
        lambda r: {"t": getattr(r, time.key).isoformat(), id_key: getattr(r, ident.key)},
    )


async def ascending(
    db: Database,
    stmt: Select[M],
    column: InstrumentedAttribute[Any],
    key: str,
    cursor: dict[str, Any] | None,
    size: int,
    filters_fingerprint: str,
) -> tuple[list[M], str]:
    """One page of `stmt` in the order of `column` (unique) after the cursor's `key`, and the next token."""
    if cursor:
        stmt = stmt.where(column > cursor[key])
    async with db.sessions() as session:
        rows = list((await session.scalars(stmt.order_by(column).limit(size + 1))).all())
    return pagination.cut(rows, size, filters_fingerprint, lambda r: {key: getattr(r, column.key)})
