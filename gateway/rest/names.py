"""Resource names as the REST style writes them: short ids and codes, node paths and their URL refs."""

from __future__ import annotations

from gateway.rest.views import Out


def short(name: str, collection: str) -> str | None:
    """`units/wanlou-rapid` -> `wanlou-rapid`; empty -> None."""
    return name.removeprefix(f"{collection}/") or None


def last_segment(name: str) -> str:
    """`nodes/yuhu/b07/staff/42` -> `42`."""
    return name.rsplit("/", 1)[-1]


def path_of(ref: str) -> str:
    """`yuhu.wanlou` (or `yuhu/wanlou`) -> `yuhu/wanlou`."""
    return ref.replace(".", "/")


def ref_of(path: str) -> str:
    """`yuhu/wanlou` (or `nodes/yuhu/wanlou`) -> `yuhu.wanlou`, the form that fits one URL segment."""
    return path.removeprefix("nodes/").replace("/", ".")


def node_path(name: str) -> str:
    """`nodes/yuhu/wanlou` (or `yuhu/wanlou`) -> `yuhu/wanlou`."""
    return name.removeprefix("nodes/")


def user_name(value: str) -> str:
    """`42` (or `users/42`) -> `users/42`."""
    return value if value.startswith("users/") else f"users/{value}"


def short_out(collection: str, description: str | None = None) -> Out:
    """A resource name read as its id (`awards/x` -> `x`), null when empty."""
    return Out(convert=lambda name: short(name, collection), annotation=str | None, description=description)


def id_out(description: str | None = None) -> Out:
    """The message's own name read as its last segment."""
    return Out("name", description, convert=last_segment)


def path_out(description: str | None = None, source: str | None = None) -> Out:
    """A node name read as its path, null when empty."""
    return Out(source, description, convert=node_path, nullable=True)


def ref_out(source: str, description: str = "The same path with dots, for URLs") -> Out:
    """A node name read as its ref, null when empty."""
    return Out(source, description, convert=ref_of, nullable=True)
