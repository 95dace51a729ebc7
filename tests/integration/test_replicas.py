"""Traffic over replicas (issue 12, item 4): govkit's client channels go round-robin over every
address of a peer, so each replica of a service receives calls; servers age connections out."""

from __future__ import annotations

import asyncio

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gov.blocks.v1 import blocks_pb2 as pb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from govkit import channels
from govkit.devstack import Stack, free_port
from tests.support.blocks import make_tree
from tests.support.identity import IdentityClient, md

LIST_NODES = "/gov.blocks.v1.BlocksService/ListNodes"


def test_a_dns_name_is_resolved_by_grpc_and_an_address_is_kept() -> None:
    assert channels.target("blocks:50051") == "dns:///blocks:50051"
    assert (
        channels.target("blocks.gov.svc.cluster.local:50051") == "dns:///blocks.gov.svc.cluster.local:50051"
    )
    assert channels.target("127.0.0.1:50051") == "127.0.0.1:50051"
    assert channels.target("[::1]:50051") == "[::1]:50051"
    assert channels.target("dns:///blocks:50051") == "dns:///blocks:50051"
    assert channels.target("ipv4:10.0.0.1:1,10.0.0.2:1") == "ipv4:10.0.0.1:1,10.0.0.2:1"


async def _calls(metrics_url: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(metrics_url)).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gov_grpc_server_requests_total" and sample.labels.get("method") == LIST_NODES
    )


@pytest.fixture
def second_blocks(stack: Stack) -> str:
    """A second replica of blocks beside the stack's, on the same database."""
    name = f"blocks-replica-{free_port()}"
    port = free_port()
    proc = stack.start_service("blocks", stack.service_envs["blocks"], port=port, name=name)
    yield name
    stack.stop_proc(proc)


async def test_two_replicas_both_receive_calls_over_one_channel(
    stack: Stack, identity: IdentityClient, blocks: BlocksServiceStub, second_blocks: str
) -> None:
    admin = identity.admin_token
    street, _ = await make_tree(blocks, admin, {"b01": None})
    replicas = ["blocks", second_blocks]
    before = [await _calls(stack.metrics_urls[r]) for r in replicas]
    # One name for both, as a headless Service's DNS gives: a target over both addresses.
    both = ",".join(stack.addrs[r] for r in replicas)
    channel = channels.insecure_channel(f"ipv4:{both}")
    try:
        stub = BlocksServiceStub(channel)
        for _ in range(20):
            await stub.ListNodes(pb.ListNodesRequest(parent=street), metadata=md(admin))
    finally:
        await channel.close()
    await asyncio.sleep(0.2)
    after = [await _calls(stack.metrics_urls[r]) for r in replicas]
    received = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(received) == 20, received
    # Round-robin: each replica gets about half, not all of them going to the first.
    assert all(r >= 5 for r in received), received


async def test_servers_end_old_connections_so_clients_connect_again(
    stack: Stack, identity: IdentityClient, blocks: BlocksServiceStub
) -> None:
    """With a 1 s max connection age, one long-lived channel keeps working and is reconnected
    several times over 4 s (each time resolving its target again, which finds new replicas)."""
    admin = identity.admin_token
    street, _ = await make_tree(blocks, admin, {"b01": None})
    port = free_port()
    env = {
        **stack.service_envs["blocks"],
        "GOV_GRPC_MAX_CONNECTION_AGE_SECONDS": "1",
        "GOV_GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS": "1",
    }
    proc = await asyncio.to_thread(stack.start_service, "blocks", env, port=port, name=f"blocks-aged-{port}")
    me = psutil.Process()
    local_ports: set[int] = set()
    channel = channels.insecure_channel(f"127.0.0.1:{port}")
    try:
        stub = BlocksServiceStub(channel)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 4
        calls = 0
        while loop.time() < deadline:
            await stub.ListNodes(pb.ListNodesRequest(parent=street), metadata=md(admin), timeout=5)
            calls += 1
            local_ports |= {
                c.laddr.port for c in me.net_connections("tcp") if c.raddr and c.raddr.port == port
            }
            await asyncio.sleep(0.1)
    finally:
        await channel.close()
        await asyncio.to_thread(stack.stop_proc, proc)
    assert calls >= 10
    # A connection lives about 1-2 s (age plus jitter): at least two new ones after the first.
    assert len(local_ports) >= 3, local_ports
