"""Query and header parameters every list or create endpoint shares, and per-route body limits."""

# No `from __future__ import annotations` here: free_text's dependency is annotated with values of
# its closure, which FastAPI can read only if the annotation is evaluated when the function is made.

import re
import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Query

from gateway.problems import Problem

# A caller-supplied request id (the Idempotency-Key) as the services accept it.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def request_id(key: str | None) -> str:
    """The service's request id from the Idempotency-Key header; a fresh one without it."""
    if key is None:
        return uuid.uuid4().hex
    if not _REQUEST_ID.match(key):
        message = "up to 64 of A-Z a-z 0-9 . _ : -"
        raise Problem(
            400,
            f"Idempotency-Key: {message}",
            slug="invalid-argument",
            errors=[{"field": "Idempotency-Key", "message": message}],
        )
    return key


PageSize = Annotated[int, Query(ge=1, le=200, description="Default 50")]
PageToken = Annotated[str, Query(max_length=500, description="`next_page_token` of the previous page")]
IdempotencyKey = Annotated[
    str | None, Header(max_length=100, description="A retry with the same key returns the first result")
]

# C0 and C1 control characters, DEL included: nothing a person searches for, and NUL breaks PostgreSQL.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def free_text(name: str, *, max_length: int, description: str) -> Any:
    """A free-text query parameter (`q: Annotated[str, free_text("q", ...)] = ""`).

    Control characters are refused here, the same way on every list: a 400 problem naming the
    parameter, rather than each service dropping, ignoring or refusing them its own way.
    """

    async def value(
        raw: Annotated[str, Query(alias=name, max_length=max_length, description=description)] = "",
    ) -> str:
        if _CONTROL.search(raw):
            message = "must not contain control characters"
            errors = [{"field": name, "message": message}]
            raise Problem(400, f"{name}: {message}", slug="invalid-argument", errors=errors)
        return raw

    return Depends(value)


F = TypeVar("F", bound=Callable[..., Any])
_BODY_LIMIT = "__gov_max_body_bytes__"


def body_limit(max_bytes: int) -> Callable[[F], F]:
    """Let one route take bodies up to `max_bytes` instead of GOV_MAX_BODY_BYTES (applied under @router).

    Not FastAPI's own `max_body_size=`: when a Content-Length is over it, Starlette replaces whatever
    the app answers with a text/plain 413, where this API answers problem+json."""
    if max_bytes < 0:
        raise ValueError("a body limit cannot be negative")

    def mark(endpoint: F) -> F:
        setattr(endpoint, _BODY_LIMIT, max_bytes)
        return endpoint

    return mark


def body_limit_of(endpoint: object, default: int) -> int:
    return getattr(endpoint, _BODY_LIMIT, default)
