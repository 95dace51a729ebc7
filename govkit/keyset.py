"""Newest-first pages in (time, id) order: how lists of records (awards, redemptions, queries...)
page, with the cursor `{"t": time, "i": id}` of govkit.pagination."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from govkit import pagination
from govkit.db import Database

M = TypeVar("M")


def time_id_cursor(token: str, filters_fingerprint: str) -> dict[str, Any] | None:
    """The page token of a newest-first list, decoded (INVALID_ARGUMENT if forged)."""
    return pagination.decode_token(token, filters_fingerprint, t=dt.datetime, i=str)


async def newest_first(
    db: Database,
    stmt: Select[M],
    time: InstrumentedAttribute[dt.datetime],
    ident: InstrumentedAttribute[str],
    cursor: dict[str, Any] | None,
    size: int,
    filters_fingerprint: str,
) -> tuple[list[M], str]:
    """One page of `stmt` newest first (ties by id, descending) after `cursor`, and the next token."""
    if cursor:
        t = cursor["t"]
        stmt = stmt.where((time < t) | ((time == t) & (ident < cursor["i"])))
    async with db.sessions() as session:
        rows = list((await session.scalars(stmt.order_by(time.desc(), ident.desc()).limit(size + 1))).all())
    return pagination.cut(
        rows,
        size,
        filters_fingerprint,
        lambda r: {"t": getattr(r, time.key).isoformat(), "i": getattr(r, ident.key)},
    )
