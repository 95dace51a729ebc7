"""Prometheus metrics (issue 12, item 2): every component serves the documented series on a port of
its own (docs/metrics.md), and the outbox's age rises while the relay's NATS is away."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from govkit.devstack import SERVICES, Stack
from tests.conftest import stack_of_its_own, start_identity
from tests.integration.test_gateway_tickets import _act, _category, _report, _unit
from tests.support.blocks import make_tree
from tests.support.databases import Databases
from tests.support.identity import ADMIN_LOGIN, ADMIN_PASSWORD, IdentityClient

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    reply = httpx.get(url, timeout=5)
    assert reply.status_code == 200, reply.text
    samples: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    assert found, f"no {name}{labels} among {sorted({n for n, _ in samples})}"
    return sum(found)


async def _eventually_positive(url: str, name: str, within: float = 15, **labels: str) -> float:
    deadline = time.monotonic() + within
    while True:
        try:
            got = value(scrape(url), name, **labels)
        except AssertionError:
            got = 0.0
        if got > 0 or time.monotonic() > deadline:
            assert got > 0, f"{name}{labels} still {got} at {url}"
            return got
        await asyncio.sleep(0.5)


async def test_every_component_serves_the_named_series_after_a_ticket(
    stack: Stack, identity: IdentityClient, blocks: BlocksServiceStub
) -> None:
    admin = identity.admin_token
    street, community = await make_tree(blocks, admin, {"b01": None})
    block = f"{community}/b01"
    _, _, resident = await identity.make_user(block, [("resident", block)])
    _, _, dispatcher = await identity.make_user(street, [("dispatcher", street)])
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:
        await _unit(http, admin, street)
        category = await _category(http, admin)
        created = await _report(http, resident, category["code"], block, "metrics: 电梯困人")
        assert created.status_code == 201, created.text
        # Accepted: points' earning consumer handles the event.
        ticket_id = created.json()["id"]
        accepted = await _act(http, dispatcher, ticket_id, action="accept", note="有效")
        assert accepted.status_code == 200, accepted.text
        # A ticket that does not exist: the caller's mistake, counted by its code, not as an error.
        other_id = ticket_id[:-4] + ("0000" if not ticket_id.endswith("0000") else "1111")
        missing = await http.get(f"/api/v1/tickets/{other_id}", headers={"Authorization": f"Bearer {admin}"})
        assert missing.status_code == 404, missing.text

    gateway = stack.metrics_urls["gateway"]
    route = {"method": "POST", "route": "/api/v1/tickets", "status": "201"}
    assert value(scrape(gateway), "gov_http_requests_total", **route) > 0
    assert value(scrape(gateway), "gov_http_request_duration_seconds_count", **route) > 0
    # A path with an id is counted under its template, not one series per ticket.
    transitions = {"method": "POST", "route": "/api/v1/tickets/{ticket_id}/transitions", "status": "200"}
    assert value(scrape(gateway), "gov_http_requests_total", **transitions) > 0
    assert ticket_id not in str(scrape(gateway))

    tickets = stack.metrics_urls["tickets"]
    create = {"method": "/gov.tickets.v1.TicketsService/CreateTicket", "code": "OK"}
    samples = scrape(tickets)
    assert value(samples, "gov_grpc_server_requests_total", **create) > 0
    assert value(samples, "gov_grpc_server_handling_seconds_count", **create) > 0
    assert value(samples, "gov_tickets_created_total") > 0
    get = "/gov.tickets.v1.TicketsService/GetTicket"
    assert value(samples, "gov_grpc_server_requests_total", method=get, code="NOT_FOUND") > 0
    assert not [
        ls for n, ls in samples if n == "gov_grpc_server_errors_total" and ("code", "NOT_FOUND") in ls
    ]
    assert value(samples, "gov_events_committed_total", type="tickets.v1.ticket.created") > 0
    assert value(samples, "gov_db_pool_size", service="tickets") > 0
    value(samples, "gov_db_pool_connections_in_use", service="tickets")  # present (0 between calls)
    await _eventually_positive(tickets, "gov_outbox_published_events_total", service="tickets")
    assert value(scrape(tickets), "gov_outbox_oldest_age_seconds", service="tickets") >= 0

    # Consumers report their outcomes and lag: points earns from tickets' events.
    points = stack.metrics_urls["points"]
    await _eventually_positive(
        points, "gov_consumer_events_total", consumer="points-earning", outcome="applied"
    )
    value(scrape(points), "gov_consumer_pending_messages", consumer="points-earning", stream="TICKETS")
    value(scrape(stack.metrics_urls["identity"]), "gov_consumer_pending_messages", stream="BLOCKS")

    for name in (*SERVICES, "gateway"):
        assert any(n.startswith("gov_") for n, _ in scrape(stack.metrics_urls[name])), name


@pytest.fixture
def relay_stack(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """NATS and identity of their own: this test kills the NATS."""
    with stack_of_its_own(tmp_path_factory, "metrics-outage") as s:
        s.start_nats()
        start_identity(s, databases)
        yield s


async def test_outbox_age_rises_while_nats_is_away(relay_stack: Stack) -> None:
    url = relay_stack.metrics_urls["identity"]
    client = IdentityClient(relay_stack.addrs["identity"])
    client.admin_token = (await client.login(ADMIN_LOGIN, ADMIN_PASSWORD)).access_token
    try:
        nats_port = int(relay_stack.nats_url.rsplit(":", 1)[1])
        relay_stack.kill_proc(relay_stack.proc("nats"))
        await client.make_user("yuhu")  # its event waits in the outbox
        await _eventually_positive(url, "gov_outbox_pending_rows", service="identity")
        first = value(scrape(url), "gov_outbox_oldest_age_seconds", service="identity")
        await asyncio.sleep(2.5)
        later = value(scrape(url), "gov_outbox_oldest_age_seconds", service="identity")
        assert later >= first + 2, (first, later)

        relay_stack.start_nats(port=nats_port, streams=False)  # the same store: streams are there
        deadline = time.monotonic() + 30
        while value(scrape(url), "gov_outbox_pending_rows", service="identity") > 0:
            assert time.monotonic() < deadline, "the outbox did not drain after NATS came back"
            await asyncio.sleep(0.5)
        assert value(scrape(url), "gov_outbox_oldest_age_seconds", service="identity") == 0
    finally:
        await client.close()
