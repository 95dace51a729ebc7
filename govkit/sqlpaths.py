"""SQL for region-path scopes: "this column's path is at or below that node"."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import SQLColumnExpression, false, or_, true
from sqlalchemy.sql.elements import ColumnElement

from govkit.auth.scopes import GLOBAL


def within(column: SQLColumnExpression[str | None], path: str) -> ColumnElement[bool]:
    """`column` is `path` or below it (`*` covers everything)."""
    if path == GLOBAL:
        return true()
    return or_(column == path, column.startswith(path + "/", autoescape=True))


def any_within(column: SQLColumnExpression[str | None], paths: Sequence[str]) -> ColumnElement[bool]:
    return or_(*(within(column, p) for p in paths)) if paths else false()
