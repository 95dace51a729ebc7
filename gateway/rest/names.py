"""Resource names as the REST style writes them: short ids and codes, node paths and their URL refs."""

from __future__ import annotations


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
