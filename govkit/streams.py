"""JetStream streams owned by the deployment: declared in streams.toml, applied by one command.

    python -m govkit.streams apply [--file F] [--force] [--dry-run]

Creates the streams that are missing and brings the declared settings of existing ones to the
declaration, printing each change. A change that could lose stored events (a shorter max_age, a
smaller max_bytes or max_msgs, a subject dropped, another storage) is refused unless --force; the
run then changes nothing at all and exits 1. Settings the declaration does not name (anything an
operator set beyond them) are kept. Running it again changes nothing.

`--file` takes the packaged TOML's structure as TOML or JSON (the Helm chart renders its values to
JSON in a ConfigMap). The NATS URL comes from GOV_NATS_URL, as for the services.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from govkit import bus

DECLARATIONS = Path(__file__).with_name("streams.toml")
APPLY_COMMAND = "python -m govkit.streams apply"

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_KEYS = {"subjects", "replicas", "max_age", "max_bytes", "max_msgs", "discard", "duplicate_window", "storage"}


class DeclarationError(ValueError):
    """The declaration file is malformed; the message names the stream and key."""


def parse_duration(value: object, where: str) -> float:
    """ "0s", "90s", "10m", "168h", "7d" (or a number of seconds) -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _DURATION.match(str(value).strip())
    if match is None:
        raise DeclarationError(f"{where}: {value!r} is not a duration such as 0s, 10m, 168h or 7d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: float) -> str:
    if seconds <= 0:
        return "0s (unlimited)"
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{int(seconds // _UNIT_SECONDS[unit])}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class StreamDeclaration:
    name: str
    subjects: tuple[str, ...]
    replicas: int = 1
    max_age: float = 0.0  # seconds, 0 = unlimited
    max_bytes: int = -1  # -1 = unlimited
    max_msgs: int = -1
    discard: str = "old"
    duplicate_window: float = 600.0
    storage: str = "file"

    @classmethod
    def parse(cls, name: str, raw: Mapping[str, Any]) -> StreamDeclaration:
        where = f"streams.{name}"
        unknown = set(raw) - _KEYS
        if unknown:
            raise DeclarationError(f"{where}: unknown keys {sorted(unknown)}")
        subjects = raw.get("subjects")
        if not isinstance(subjects, list) or not all(isinstance(s, str) and s for s in subjects or [0]):
            raise DeclarationError(f"{where}.subjects: a non-empty list of subjects is required")

        def integer(key: str, default: int, low: int) -> int:
            value = raw.get(key, default)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise DeclarationError(f"{where}.{key}: an integer >= {low} is required, not {value!r}")
            return value

        discard = raw.get("discard", "old")
        if discard not in ("old", "new"):
            raise DeclarationError(f"{where}.discard: 'old' or 'new', not {discard!r}")
        storage = raw.get("storage", "file")
        if storage not in ("file", "memory"):
            raise DeclarationError(f"{where}.storage: 'file' or 'memory', not {storage!r}")
        replicas = integer("replicas", 1, 1)
        if replicas > 5:
            raise DeclarationError(f"{where}.replicas: at most 5 (JetStream's limit)")
        return cls(
            name=name,
            subjects=tuple(subjects),
            replicas=replicas,
            max_age=parse_duration(raw.get("max_age", "0s"), f"{where}.max_age"),
            max_bytes=integer("max_bytes", -1, -1),
            max_msgs=integer("max_msgs", -1, -1),
            discard=discard,
            duplicate_window=parse_duration(raw.get("duplicate_window", "10m"), f"{where}.duplicate_window"),
            storage=storage,
        )


def load(path: Path | None = None) -> dict[str, StreamDeclaration]:
    """The declarations of `path` (TOML, or JSON when it ends in .json), by default the packaged ones."""
    path = path or DECLARATIONS
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise DeclarationError(f"{path}: {exc}") from None
    streams = raw.get("streams") if isinstance(raw, dict) else None
    if not isinstance(streams, dict) or not streams:
        raise DeclarationError(f"{path}: no [streams.<NAME>] tables")
    decls = {}
    for name, body in streams.items():
        if not isinstance(body, dict):
            raise DeclarationError(f"{path}: streams.{name} must be a table")
        decls[name] = StreamDeclaration.parse(name, body)
    return decls


# --- comparing with what the server has -------------------------------------------------------


@dataclass(frozen=True)
class Change:
    stream: str
    key: str  # "create" for a new stream
    old: str
    new: str
    lossy: bool = False

    def __str__(self) -> str:
        if self.key == "create":
            return f"+ {self.stream}: create ({self.new})"
        mark = "!" if self.lossy else "~"
        note = "  (could lose stored events)" if self.lossy else ""
        return f"{mark} {self.stream}.{self.key}: {self.old} -> {self.new}{note}"


def _limit(value: int | None) -> int:
    return -1 if value is None or value < 0 else value


def _lower(new: float, old: float, unlimited: float) -> bool:
    """A lower limit than before (with `unlimited` meaning no limit)."""
    if new == unlimited:
        return False
    return old == unlimited or new < old


def _close(a: float, b: float) -> bool:
    return abs(a - b) < 0.001  # the server keeps nanoseconds; floats round-trip through them


def _storage(config: StreamConfig) -> str:
    return "memory" if config.storage == StorageType.MEMORY else "file"


def _discard(config: StreamConfig) -> str:
    return "new" if config.discard == DiscardPolicy.NEW else "old"


def differences(decl: StreamDeclaration, current: StreamConfig) -> list[Change]:
    name = decl.name
    changes: list[Change] = []
    old_subjects = list(current.subjects or [])
    if sorted(old_subjects) != sorted(decl.subjects):
        dropped = set(old_subjects) - set(decl.subjects)
        changes.append(Change(name, "subjects", str(old_subjects), str(list(decl.subjects)), bool(dropped)))
    replicas = current.num_replicas or 1
    if replicas != decl.replicas:
        changes.append(Change(name, "replicas", str(replicas), str(decl.replicas)))
    max_age = current.max_age or 0.0
    if not _close(max_age, decl.max_age):
        lossy = _lower(decl.max_age, max_age, 0.0)
        changes.append(
            Change(name, "max_age", format_duration(max_age), format_duration(decl.max_age), lossy)
        )
    for key in ("max_bytes", "max_msgs"):
        old = _limit(getattr(current, key))
        new = getattr(decl, key)
        if old != new:
            changes.append(Change(name, key, str(old), str(new), _lower(new, old, -1)))
    if _discard(current) != decl.discard:
        changes.append(Change(name, "discard", _discard(current), decl.discard))
    window = current.duplicate_window or 0.0
    if not _close(window, decl.duplicate_window):
        changes.append(
            Change(name, "duplicate_window", format_duration(window), format_duration(decl.duplicate_window))
        )
    if _storage(current) != decl.storage:
        changes.append(Change(name, "storage", _storage(current), decl.storage, lossy=True))
    return changes


def desired_config(decl: StreamDeclaration, current: StreamConfig | None = None) -> StreamConfig:
    """The declaration over the current configuration: settings it does not name are kept."""
    fields: dict[str, Any] = {
        "name": decl.name,
        "subjects": list(decl.subjects),
        "num_replicas": decl.replicas,
        "max_age": decl.max_age,
        "max_bytes": decl.max_bytes,
        "max_msgs": decl.max_msgs,
        "discard": DiscardPolicy.NEW if decl.discard == "new" else DiscardPolicy.OLD,
        "duplicate_window": decl.duplicate_window,
        "storage": StorageType.MEMORY if decl.storage == "memory" else StorageType.FILE,
    }
    if current is None:
        return StreamConfig(**fields)
    return dataclasses.replace(current, **fields)


@dataclass
class Plan:
    create: list[StreamDeclaration]
    update: list[tuple[StreamDeclaration, StreamConfig]]
    changes: list[Change]

    @property
    def lossy(self) -> list[Change]:
        return [c for c in self.changes if c.lossy]


async def plan(js: JetStreamContext, decls: Mapping[str, StreamDeclaration]) -> Plan:
    result = Plan([], [], [])
    for decl in decls.values():
        try:
            info = await js.stream_info(decl.name)
        except NotFoundError:
            result.create.append(decl)
            summary = (
                f"subjects={list(decl.subjects)} replicas={decl.replicas} "
                f"max_age={format_duration(decl.max_age)} max_bytes={decl.max_bytes} storage={decl.storage}"
            )
            result.changes.append(Change(decl.name, "create", "", summary))
            continue
        diffs = differences(decl, info.config)
        if diffs:
            result.update.append((decl, info.config))
            result.changes.extend(diffs)
    return result


class LossyChange(RuntimeError):
    def __init__(self, changes: Sequence[Change]) -> None:
        super().__init__("refused: " + "; ".join(str(c) for c in changes))
        self.changes = list(changes)


async def apply(
    js: JetStreamContext,
    decls: Mapping[str, StreamDeclaration] | None = None,
    *,
    force: bool = False,
    dry_run: bool = False,
) -> list[Change]:
    """Bring the server's streams to the declarations; returns what changed (or would change).

    Raises LossyChange, having changed nothing, when a change could lose events and not `force`."""
    decls = load() if decls is None else decls
    found = await plan(js, decls)
    if found.lossy and not force:
        raise LossyChange(found.lossy)
    if dry_run:
        return found.changes
    for decl in found.create:
        await js.add_stream(desired_config(decl))
    for decl, current in found.update:
        await js.update_stream(desired_config(decl, current))
    return found.changes


async def missing(js: JetStreamContext, names: Sequence[str]) -> list[str]:
    """Which of the named streams do not exist (what a service checks at start)."""
    absent = []
    for name in names:
        try:
            await js.stream_info(name)
        except NotFoundError:
            absent.append(name)
    return absent


# --- command line -----------------------------------------------------------------------------


async def _run(args: argparse.Namespace) -> int:
    decls = load(Path(args.file) if args.file else None)
    url = os.environ.get("GOV_NATS_URL", "nats://127.0.0.1:4222")

    async def _quiet(_exc: Exception) -> None:
        return None  # the failure is reported once, below, not as a traceback per attempt

    try:
        # Two attempts, then give up: a hook Job that cannot reach NATS fails and is retried.
        nc = await nats.connect(
            url,
            name="gov-streams-apply",
            connect_timeout=5,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=1,
            error_cb=_quiet,
            **bus.tls_options(os.environ.get("GOV_TLS_NATS_CA_FILE") or None),
        )
    except Exception as exc:
        print(f"error: cannot reach NATS at {url} (GOV_NATS_URL): {exc!r}", file=sys.stderr)
        return 3
    try:
        try:
            changes = await apply(nc.jetstream(), decls, force=args.force, dry_run=args.dry_run)
        except LossyChange as exc:
            for change in exc.changes:
                print(change)
            print(
                f"refused: {len(exc.changes)} change(s) could lose stored events; nothing was changed. "
                "Run again with --force to apply them.",
                file=sys.stderr,
            )
            return 1
    finally:
        await nc.close()
    for change in changes:
        print(change)
    verb = "would apply" if args.dry_run else "applied"
    done = f"{verb} {len(changes)} change(s)" if changes else "no changes"
    print(f"{len(decls)} streams declared; {done}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m govkit.streams", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    apply_parser = sub.add_parser("apply", help="create missing streams and apply declared settings")
    add = apply_parser.add_argument
    add("--file", help="declarations (TOML, or JSON ending in .json); default: the packaged ones")
    add("--force", action="store_true", help="also apply changes that could lose stored events")
    add("--dry-run", action="store_true", help="print the changes, make none")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except (DeclarationError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
