"""Opaque page tokens (AIP-158): keyset cursors bound to the filters they were issued for."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from govkit.errors import InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def page_size(requested: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    if requested < 0:
        raise InvalidArgument("must not be negative", field="page_size")
    return default if requested == 0 else min(requested, maximum)


def fingerprint(*filters: Any) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_token(cursor: dict[str, Any], filters_fingerprint: str) -> str:
    raw = json.dumps({"c": cursor, "f": filters_fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, filters_fingerprint: str) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        cursor = data["c"]
        issued_for = data["f"]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("is not a token this API issued", field="page_token") from None
    if issued_for != filters_fingerprint:
        raise InvalidArgument("was issued for different filters", field="page_token")
    if not isinstance(cursor, dict):
        raise InvalidArgument("is not a token this API issued", field="page_token")
    return cursor


def cut(
    rows: list[T], size: int, filters_fingerprint: str, cursor: Callable[[T], dict[str, Any]]
) -> tuple[list[T], str]:
    """A page from `size + 1` fetched rows, and the token for the next page ("" on the last)."""
    if len(rows) <= size:
        return rows, ""
    rows = rows[:size]
    return rows, encode_token(cursor(rows[-1]), filters_fingerprint)
