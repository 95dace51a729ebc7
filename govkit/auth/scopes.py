"""Region-tree scopes: a node is named by its path of codes from the district down.

`yuhu/wanlou/taoyuan/b07` is block b07 of community taoyuan of street wanlou of district
yuhu. A binding at scope S covers S and everything below it, so "does this scope cover
that resource" is a string prefix test any service makes without a call. `*` covers all.
"""

from __future__ import annotations

import re

from govkit.errors import InvalidArgument

GLOBAL = "*"
MAX_DEPTH = 8
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def covers(scope: str, path: str) -> bool:
    if scope == GLOBAL:
        return True
    if path == GLOBAL:
        return False
    return path == scope or path.startswith(scope + "/")


def validate_path(path: str, *, field: str = "scope", allow_global: bool = True) -> str:
    """Return the path, or raise InvalidArgument naming `field`."""
    if path == GLOBAL:
        if allow_global:
            return path
        raise InvalidArgument("the global scope '*' is not allowed here", field=field)
    if not path:
        raise InvalidArgument("is required (a path of codes such as 'yuhu/wanlou')", field=field)
    codes = path.split("/")
    if len(codes) > MAX_DEPTH:
        raise InvalidArgument(f"at most {MAX_DEPTH} levels", field=field)
    for code in codes:
        if not _CODE.match(code):
            raise InvalidArgument(
                f"{code!r} is not a code: 1-32 of a-z, 0-9, '_' and '-', starting with a letter or digit",
                field=field,
            )
    return path


def ancestors(path: str) -> list[str]:
    """`a/b/c` -> [`a`, `a/b`, `a/b/c`]."""
    if path == GLOBAL:
        return [GLOBAL]
    codes = path.split("/")
    return ["/".join(codes[: i + 1]) for i in range(len(codes))]
