"""Which database errors answer UNAVAILABLE (retry) rather than INTERNAL."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from govkit.db import database_unavailable


class _DriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _error(sqlstate: str | None, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, _DriverError(sqlstate), connection_invalidated=invalidated)


def test_a_database_that_cannot_serve_now_is_unavailable() -> None:
    assert database_unavailable(_error("53300"))  # too many clients
    assert database_unavailable(_error("57P01"))  # admin shutdown
    assert database_unavailable(_error("08006"))  # connection failure
    assert database_unavailable(_error(None, invalidated=True))  # the connection died mid-call


def test_a_mistake_in_the_request_or_the_code_is_not() -> None:
    assert not database_unavailable(_error("23505"))  # unique violation
    assert not database_unavailable(_error("3D000"))  # no such database: configuration, not load
    assert not database_unavailable(_error(None))
    assert not database_unavailable(ValueError("not a database error"))


def test_a_pool_whose_connections_all_stayed_busy_is_unavailable() -> None:
    assert database_unavailable(PoolTimeout("QueuePool limit of size 4 overflow 2 reached"))
