"""Small input checks that raise InvalidArgument naming the field."""

from __future__ import annotations

import re

from govkit.errors import InvalidArgument

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text(value: str, field: str, *, max_len: int, min_len: int = 1, required: bool = True) -> str:
    value = value.strip()
    if not value:
        if required:
            raise InvalidArgument("is required", field=field)
        return ""
    if len(value) < min_len:
        raise InvalidArgument(f"must be at least {min_len} characters", field=field)
    if len(value) > max_len:
        raise InvalidArgument(f"must be at most {max_len} characters", field=field)
    if _CONTROL.search(value):
        raise InvalidArgument("must not contain control characters", field=field)
    return value


def request_id(value: str) -> str:
    if len(value) > 100:
        raise InvalidArgument("must be at most 100 characters", field="request_id")
    return value


def resource_id(name: str, collection: str, field: str = "name") -> str:
    """`users/abc` or `abc` -> `abc`."""
    rid = name.removeprefix(f"{collection}/")
    if not rid or "/" in rid or len(rid) > 64:
        raise InvalidArgument(f"must be '{collection}/{{id}}'", field=field)
    return rid
