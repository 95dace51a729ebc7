"""Bulk import of region trees, boundaries, buildings, households and residents.

Each file is all-or-nothing (one transaction) and idempotent: rows are matched on their
natural keys (node path, building code in its block, household code, resident name in its
household) and only real differences are written, so re-importing a file changes nothing.
Every bad row is reported with its line number; nothing is committed if any row is bad.

Memory stays bounded whatever the file's size: a file arrives in chunks and is spooled to disk
(`uploads.Upload`), buildings, households and residents are then read back and applied a chunk of
rows at a time (`importwrites`), and only the tree files (nodes, boundaries: thousands of rows,
at most MAX_TREE_BYTES) are read whole. A caller who may import that kind of file nowhere is
refused before any of it is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1 import events_pb2
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.db import Database
from govkit.errors import DomainError, InvalidArgument, PermissionDenied
from govkit.events import build_event
from govkit.outbox import add_event
from services.blocks import importfiles, importwrites
from services.blocks.access import load_access
from services.blocks.domain import BLOCK_EDITORS, Access
from services.blocks.importfiles import Checker, RowError
from services.blocks.importwrites import NOT_PERMITTED_BLOCK, NOT_PERMITTED_TREE, Counts
from services.blocks.models import platform
from services.blocks.uploads import MIB, Upload

MAX_BYTES = 200 * MIB
# Nodes and boundaries files are parsed whole (a GeoJSON document has to be): a district's are a few
# hundred KiB; a whole city's boundaries in one file may need splitting by district.
MAX_TREE_BYTES = 16 * MIB
# Chunks a file is copied in (the command line), and the size callers should stream it in.
READ_CHUNK = 1 * MIB
# gRPC trailers are small: the first errors travel as details, the count in the message.
MAX_REPORTED = 100
KINDS = {
    pb.IMPORT_KIND_NODES: "nodes",
    pb.IMPORT_KIND_BOUNDARIES: "boundaries",
    pb.IMPORT_KIND_BUILDINGS: "buildings",
    pb.IMPORT_KIND_HOUSEHOLDS: "households",
    pb.IMPORT_KIND_RESIDENTS: "residents",
}
TREE_KINDS = ("nodes", "boundaries")


def kind_of(kind_value: int) -> str:
    kind = KINDS.get(kind_value)
    if kind is None:
        raise InvalidArgument("is required", field="kind")
    return kind


def max_bytes(kind: str) -> int:
    return MAX_TREE_BYTES if kind in TREE_KINDS else MAX_BYTES


def may_import(access: Access, kind: str) -> bool:
    """Whether the caller could import this kind of file anywhere at all (each row is checked too)."""
    if kind in TREE_KINDS:
        return bool(access.principal.scopes_for(Permission.REGIONS_MANAGE))
    return bool(access.principal.scopes_for(Permission.HOUSEHOLDS_WRITE)) or any(
        held & BLOCK_EDITORS for held in access.staffed.values()
    )


def _failed(kind: str, errors: list[RowError]) -> DomainError:
    first = errors[0]
    if all(e.message in (NOT_PERMITTED_TREE, NOT_PERMITTED_BLOCK) for e in errors):
        return PermissionDenied(f"{kind}: {first.message} (line {first.line}: {first.field})")
    return InvalidArgument(
        f"{kind}: {len(errors)} bad row(s), nothing imported; "
        f"first: line {first.line}, {first.field}: {first.message}",
        violations=[(f"line {e.line}: {e.field}", e.message) for e in errors[:MAX_REPORTED]],
    )


def _response(counts: Counts, errors: Sequence[RowError] = ()) -> pb.ImportFileResponse:
    return pb.ImportFileResponse(
        rows=counts.rows,
        created=counts.created,
        updated=counts.updated,
        unchanged=counts.unchanged,
        errors=[
            pb.ImportRowError(line=e.line, field=e.field, message=e.message) for e in errors[:MAX_REPORTED]
        ],
    )


class ImportFlows:
    def __init__(
        self, db: Database, on_geometry_change: Callable[[], None], spool_dir: str | None = None
    ) -> None:
        self.db = db
        self.on_geometry_change = on_geometry_change
        self.spool_dir = spool_dir

    async def admit(self, principal: Principal, kind_value: int) -> tuple[str, Access]:
        """The kind's name and the caller's access, or PERMISSION_DENIED for a caller who may import
        this kind of file nowhere (a resident, say): asked before any of the file is read."""
        kind = kind_of(kind_value)
        access = await load_access(self.db, principal)
        if not may_import(access, kind):
            what = "manage the region tree" if kind in TREE_KINDS else "change households in any block"
            raise PermissionDenied(f"{kind}: the caller may not {what}, so may not import this file")
        return kind, access

    def upload(self, kind: str) -> Upload:
        return Upload(max_bytes(kind), self.spool_dir)

    async def import_file(
        self, principal: Principal, kind_value: int, content: bytes, *, validate_only: bool = False
    ) -> pb.ImportFileResponse:
        """A file given whole (the unary ImportFile, the demo seed, tests)."""
        kind, access = await self.admit(principal, kind_value)
        with self.upload(kind) as upload:
            upload.write(content)
            upload.finish()
            return await self.import_upload(access, kind_value, upload, validate_only=validate_only)

    async def import_stream(
        self,
        principal: Principal,
        kind_value: int,
        chunks: AsyncIterator[bytes],
        *,
        validate_only: bool = False,
    ) -> pb.ImportFileResponse:
        """A file arriving in chunks: the caller is admitted before the first is read."""
        _, access = await self.admit(principal, kind_value)
        return await self.receive(access, kind_value, chunks, validate_only=validate_only)

    async def receive(
        self, access: Access, kind_value: int, chunks: AsyncIterator[bytes], *, validate_only: bool
    ) -> pb.ImportFileResponse:
        """The file of an admitted caller, spooled to disk as it comes, then imported."""
        with self.upload(kind_of(kind_value)) as upload:
            async for chunk in chunks:
                upload.write(chunk)
            upload.finish()
            return await self.import_upload(access, kind_value, upload, validate_only=validate_only)

    async def import_path(
        self, principal: Principal, kind_value: int, path: Path, *, validate_only: bool = False
    ) -> pb.ImportFileResponse:
        """A file on disk (the command line), copied a chunk at a time."""

        async def read() -> AsyncIterator[bytes]:
            with path.open("rb") as file:
                while chunk := await asyncio.to_thread(file.read, READ_CHUNK):
                    yield chunk

        return await self.import_stream(principal, kind_value, read(), validate_only=validate_only)

    async def import_upload(
        self, access: Access, kind_value: int, upload: Upload, *, validate_only: bool
    ) -> pb.ImportFileResponse:
        kind = kind_of(kind_value)
        check = Checker(kind)
        async with self.db.write_sessions() as session:
            transaction = await session.begin()
            try:
                if kind in TREE_KINDS:
                    counts, errors = await self._apply_tree(session, access, kind, upload, check)
                else:
                    counts = await self._apply_rows(session, access, kind, upload, check, validate_only)
                    errors = check.sorted_errors()
                if errors or validate_only:
                    await transaction.rollback()
                    if errors and not validate_only:
                        raise _failed(kind, errors)
                    return _response(counts, errors)
                # One summary event, not one per row: an import of 200,000 households is one change.
                await add_event(
                    session,
                    platform.outbox,
                    build_event(
                        "blocks.v1.import.completed",
                        events_pb2.ImportCompleted(
                            kind=kind_value,
                            created=counts.created,
                            updated=counts.updated,
                            unchanged=counts.unchanged,
                        ),
                        actor=access.principal.subject,
                        resource=f"imports/{kind}",
                    ),
                )
                await transaction.commit()
            except BaseException:
                if transaction.is_active:
                    await transaction.rollback()
                raise
        if kind in TREE_KINDS:
            self.on_geometry_change()
        return _response(counts)

    async def _apply_tree(
        self, session: AsyncSession, access: Access, kind: str, upload: Upload, check: Checker
    ) -> tuple[Counts, list[RowError]]:
        """Nodes or boundaries: parsed whole (an ImportFileError for a bad file), then applied."""
        parse = getattr(importfiles, f"parse_{kind}")
        text = await asyncio.to_thread(upload.read_text)
        try:
            rows = await asyncio.to_thread(parse, text)
        except importfiles.ImportFileError as exc:
            return Counts(), exc.errors
        del text
        apply = getattr(importwrites, f"apply_{kind}")
        counts, errors = await apply(session, access, rows)
        return counts, check.sorted_errors(errors)

    async def _apply_rows(
        self,
        session: AsyncSession,
        access: Access,
        kind: str,
        upload: Upload,
        check: Checker,
        validate_only: bool,
    ) -> Counts:
        """Buildings, households or residents: read, checked and written a chunk at a time; parsing
        runs in a thread, so the event loop keeps answering other calls meanwhile."""
        writer = importwrites.WRITERS[kind](session, access, check, write=not validate_only)
        await writer.start()
        with upload.text() as text:
            chunks = iter(importwrites.chunks(importwrites.ROWS[kind](text, check)))
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                await writer.add(chunk)
        return writer.counts
