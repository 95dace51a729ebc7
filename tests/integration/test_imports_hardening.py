"""Imports, hardened: streamed (never whole in memory), refused to callers who may not import before
the file is read, formula cells refused, large files checked and written a chunk at a time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import grpc
import httpx
import pytest

from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from govkit.devstack import Stack
from services.blocks.grpc_api import ADMITTED_KEY
from tests.support.blocks import make_tree, square
from tests.support.identity import IdentityClient, md

API = "/api/v1"
HOUSEHOLDS = "code,block_path,building_code,address,tags\n"
RESIDENTS = "household_code,name,relation,phone,birth_year,id_suffix\n"


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=120) as client:
        yield client


def _csv(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}


async def _block(blocks: BlocksServiceStub, identity: IdentityClient) -> str:
    _, community = await make_tree(blocks, identity.admin_token, {"b01": square(-15_000, 7)})
    return f"{community}/b01"


async def _households(blocks: BlocksServiceStub, token: str, block: str) -> int:
    stats = await blocks.GetNodeStatistics(pb.GetNodeStatisticsRequest(name=block), metadata=md(token))
    return stats.households


async def _raw_post(url: str, path: str, headers: dict[str, str], declared: int, sent: bytes) -> bytes:
    """POST with a body of `declared` bytes of which only `sent` are ever sent: a gateway that waits
    for the body before answering would hang here."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {declared}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + sent)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
    finally:
        writer.close()


async def test_a_resident_is_refused_before_the_file_is_read(
    http: httpx.AsyncClient, stack: Stack, blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    block = await _block(blocks, identity)
    _, _, resident = await identity.make_user(block, [("resident", block)])
    rows = HOUSEHOLDS + f"H-{uuid.uuid4().hex[:8]},{block},,地址,\n"
    for query in ("", "?validate_only=true"):
        reply = await http.post(
            f"{API}/imports/households{query}", content=rows.encode(), headers=_csv(resident)
        )
        assert reply.status_code == 403, reply.text
        assert reply.headers["content-type"] == "application/problem+json"
        assert "may not change households in any block" in reply.json()["detail"]
    # The gateway answers while 10 MiB of body are still owed: it never waited for them.
    head = await _raw_post(
        stack.gateway_url, f"{API}/imports/residents", _csv(resident), 10 * 1024 * 1024, RESIDENTS.encode()
    )
    assert head.startswith(b"HTTP/1.1 403"), head
    # A tree file needs the right to manage the tree: a dispatcher may import households, not nodes.
    street = block.rsplit("/", 2)[0]
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    nodes = f"path,name,kind\n{block.split('/')[0]},雨湖区,district\n"
    reply = await http.post(f"{API}/imports/nodes", content=nodes.encode(), headers=_csv(dispatcher))
    assert reply.status_code == 403 and "manage the region tree" in reply.json()["detail"]
    assert await _households(blocks, identity.admin_token, block) == 0


async def test_the_stream_is_refused_after_its_first_message(
    blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    block = await _block(blocks, identity)
    _, _, resident = await identity.make_user(block, [("resident", block)])
    call = blocks.StreamImportFile(metadata=md(resident))
    await call.write(pb.ImportFileChunk(kind=pb.IMPORT_KIND_HOUSEHOLDS))
    assert ADMITTED_KEY not in dict(await call.initial_metadata())  # refused before any content
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Without a token the stream is refused at once, before the server reads any message. A first
    # write would race that refusal: when the call has ended first, grpc fails the write locally and
    # reports INTERNAL instead of the server's status.
    anonymous = blocks.StreamImportFile()
    assert await asyncio.wait_for(anonymous.code(), 10) == grpc.StatusCode.UNAUTHENTICATED
    # An admitted caller is told so in the initial metadata, then sends the content.
    admitted = blocks.StreamImportFile(metadata=md(identity.admin_token))
    await admitted.write(pb.ImportFileChunk(kind=pb.IMPORT_KIND_HOUSEHOLDS, validate_only=True))
    assert dict(await admitted.initial_metadata())[ADMITTED_KEY] == "households"
    await admitted.write(pb.ImportFileChunk(content=(HOUSEHOLDS + f"H1,{block},,地").encode()))
    await admitted.write(pb.ImportFileChunk(content="址,\n".encode()))
    await admitted.done_writing()
    checked = await admitted
    assert (checked.rows, checked.created, list(checked.errors)) == (1, 1, [])


async def test_a_file_larger_than_one_grpc_message_streams_through_the_gateway(
    http: httpx.AsyncClient, blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    block = await _block(blocks, identity)
    admin = identity.admin_token
    tag = uuid.uuid4().hex[:6]
    street = "窑湾路" * 60  # 180 characters, 540 bytes: the file passes 8 MiB with 16,000 rows
    rows = HOUSEHOLDS + "".join(f"{tag}-{i},{block},,{street}{i}号,\n" for i in range(16_000))
    content = rows.encode()
    assert len(content) > 8 * 1024 * 1024  # more than a gRPC request may carry

    async def body() -> AsyncIterator[bytes]:  # chunked transfer: no Content-Length to trust
        for start in range(0, len(content), 300_000):
            yield content[start : start + 300_000]

    first = await http.post(f"{API}/imports/households", content=body(), headers=_csv(admin))
    assert first.status_code == 200, first.text
    assert first.json() == {"rows": 16_000, "created": 16_000, "updated": 0, "unchanged": 0, "errors": []}
    again = await http.post(f"{API}/imports/households", content=content, headers=_csv(admin))
    assert again.json()["unchanged"] == 16_000
    assert await _households(blocks, admin, block) == 16_000
    # The limit is the kind's: 16 MiB for a tree file, refused from its Content-Length alone.
    head = await _raw_post(
        http.base_url.__str__(), f"{API}/imports/nodes", _csv(admin), 17 * 1024 * 1024, b""
    )
    assert head.startswith(b"HTTP/1.1 413"), head


async def test_a_bad_file_is_checked_chunk_by_chunk_and_nothing_is_kept(
    http: httpx.AsyncClient, blocks: BlocksServiceStub, identity: IdentityClient
) -> None:
    block = await _block(blocks, identity)
    admin = identity.admin_token
    tag = uuid.uuid4().hex[:6]
    lines = [f"{tag}-{i},{block},,窑湾路{i}号," for i in range(12_000)]  # three chunks of 5,000
    lines[7_000] = f"{tag}-5,{block},,重复的户号,"  # line 7,002 repeats line 7's code
    lines[11_000] = f'{tag}-x,{block},,=HYPERLINK("http://x.example"),'  # line 11,002
    lines[11_500] = f"{tag}-y,{block}9,,不存在的区块,"  # line 11,502
    reply = await http.post(
        f"{API}/imports/households", content=(HOUSEHOLDS + "\n".join(lines)), headers=_csv(admin)
    )
    assert reply.status_code == 400, reply.text
    errors = [(e["field"], e["message"]) for e in reply.json()["errors"]]
    assert errors[0] == ("line 7002: code", "duplicate household code: already on line 7")
    assert errors[1][0] == "line 11002: address" and "formula" in errors[1][1]
    assert errors[2][0] == "line 11502: block_path"
    assert len(errors) == 3
    # The first chunks were written inside the transaction; it was rolled back.
    assert await _households(blocks, admin, block) == 0
    checked = await http.post(
        f"{API}/imports/households?validate_only=true",
        content=HOUSEHOLDS + "\n".join(lines),
        headers=_csv(admin),
    )
    assert checked.status_code == 200 and len(checked.json()["errors"]) == 3
    # Residents of households that do not exist: each row named, across chunks.
    residents = RESIDENTS + "".join(
        f"{tag}-nope{i},张{i},head,+86 138 0000 {i:04d},,\n" for i in range(6_000)
    )
    failed = await http.post(f"{API}/imports/residents", content=residents, headers=_csv(admin))
    # 400 every time: a hundred errors' trailers once came to 8.4 KiB, over what a gRPC client takes
    # for sure, and about one import in thirty got 429 (test_grpc_trailers).
    assert failed.status_code == 400, failed.text
    body = failed.json()
    assert body["detail"].startswith("residents: 6000 bad row(s), nothing imported")
    # The first rows' errors travel, in order, as many as fit in the trailers (82 of these); the
    # count is in the detail.
    fields = [e["field"] for e in body["errors"]]
    assert 50 <= len(fields) < 100 and fields == [
        f"line {n}: household_code" for n in range(2, 2 + len(fields))
    ]
