"""SQL for region-path scopes: "this column's path is at or below that node"."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import false, or_, true
from sqlalchemy.sql.elements import ColumnElement

from govkit.auth.scopes import GLOBAL


def within(column, path: str) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    """`column` is `path` or below it (`*` covers everything)."""
    if path == GLOBAL:
        return true()
    return or_(column == path, column.startswith(path + "/", autoescape=True))


def any_within(column, paths: Sequence[str]) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    return or_(*(within(column, p) for p in paths)) if paths else false()
