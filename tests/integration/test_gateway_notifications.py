"""The notifications REST resources and the SSE inbox stream end to end, through the real gateway: real
ticket events on NATS become inbox items the notifications service writes, and an httpx streaming
client reads them as Server-Sent Events (live, resumed with Last-Event-ID, never another person's)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats

from gateway.notifications_resources import PROTO_ENUMS
from gov.tickets.v1 import events_pb2 as ticket_events
from gov.tickets.v1 import tickets_pb2
from govkit.devstack import SERVICES, Stack, free_port
from govkit.events import MSG_ID_HEADER, build_event
from tests.support.gateway import auth, is_problem, ok
from tests.support.identity import IdentityClient
from tests.support.mailsink import MailSink
from tests.support.tickets import Person
from tests.support.waiting import eventually

API = "/api/v1/notifications"


async def _person(identity: IdentityClient) -> Person:
    user, _, token = await identity.make_user("yuhu", [("resident", "yuhu")])
    return Person(user.name, token)


async def ticket_event(nats_url: str, reporter: Person, action: str = "accepted") -> str:
    """A ticket's transition onto the TICKETS stream, as the tickets service's outbox relay puts it:
    its reporter hears about it (one inbox item each)."""
    ticket = f"tickets/t-{uuid.uuid4().hex[:12]}"
    payload = ticket_events.TicketTransitioned(
        ticket=ticket_events.TicketSummary(
            name=ticket,
            category="categories/lift",
            state=tickets_pb2.TICKET_STATE_ACCEPTED,
            node="yuhu/sse/b01",
            street="yuhu/sse",
            district="yuhu",
            reporter=reporter.name,
        )
    )
    event = build_event(f"tickets.v1.ticket.{action}", payload, actor="system", resource=ticket)
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(event.type, event.envelope, headers={MSG_ID_HEADER: event.id})
    finally:
        await nc.close()
    return ticket


@dataclass
class Stream:
    """An SSE connection read in the background: its events and its keep-alive comments."""

    response: httpx.Response | None = None
    events: list[dict[str, str]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def items(self) -> list[dict[str, Any]]:
        return [json.loads(e["data"]) for e in self.events if e.get("event") == "inbox_item"]

    @property
    def ids(self) -> list[int]:
        return [int(e["id"]) for e in self.events]


@contextlib.asynccontextmanager
async def stream(
    http: httpx.AsyncClient, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    s = Stream()

    async def read() -> None:
        async with http.stream("GET", f"{API}/stream", headers=headers, params=params, timeout=None) as r:
            s.response = r
            if r.status_code != 200:
                await r.aread()
                s.opened.set()
                return
            s.opened.set()
            current: dict[str, str] = {}
            async for line in r.aiter_lines():
                if line == "":
                    if "data" in current:  # as EventSource: a block without data (retry:) is no event
                        s.events.append(current)
                    current = {}
                elif line.startswith(":"):
                    s.comments.append(line)
                else:
                    key, _, value = line.partition(":")
                    current[key] = value.removeprefix(" ")

    task = asyncio.create_task(read())
    try:
        await asyncio.wait_for(s.opened.wait(), 30)
        yield s
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _listening(s: Stream) -> None:
    """Opened and idle long enough for a keep-alive: the upstream WatchInbox is subscribed."""
    assert s.response is not None and s.response.status_code == 200
    await eventually(lambda: asyncio.sleep(0, s.comments), within=10, what="a keep-alive")


async def _inbox(http: httpx.AsyncClient, person: Person, **params: object) -> list[dict[str, Any]]:
    page = ok(await http.get(f"{API}/inbox", headers=auth(person), params={"page_size": 200, **params}))
    return list(page["items"])


async def test_a_stream_carries_the_owners_new_items_and_resumes_exactly_after_last_event_id(
    http: httpx.AsyncClient, identity: IdentityClient, stack: Stack
) -> None:
    alice, bob = await _person(identity), await _person(identity)
    async with stream(http, auth(alice)) as a, stream(http, params={"access_token": bob.token}) as b:
        assert a.response is not None
        assert a.response.headers["content-type"].startswith("text/event-stream")
        assert a.response.headers["cache-control"] == "no-store"
        assert a.response.headers["x-accel-buffering"] == "no"
        await _listening(a)
        await _listening(b)
        ticket = await ticket_event(stack.nats_url, alice)
        await eventually(lambda: asyncio.sleep(0, a.items), what="the streamed item")
        first = a.events[0]
        assert first["event"] == "inbox_item"
        item = a.items[0]
        assert item["resource"] == ticket and item["kind"] == "ticket.accepted"
        assert item["name"].startswith(f"{alice.name}/inboxItems/") and int(first["id"]) == item["sequence"]
        # The data is the item exactly as the inbox list shows it.
        assert item in await _inbox(http, alice)
        await asyncio.sleep(2.5)  # keep-alives go on while idle; bob never sees alice's item
        assert b.events == [] and len(b.comments) >= 2
    last = a.ids[-1]

    # Away: three items are written while nobody listens.
    missed = [await ticket_event(stack.nats_url, alice, a) for a in ("dispatched", "resolved", "reopened")]

    async def all_written() -> list[dict[str, Any]] | None:
        found = [i for i in await _inbox(http, alice) if i["sequence"] > last]
        return found if len(found) == 3 else None

    written = sorted(await eventually(all_written, what="the missed items"), key=lambda i: i["sequence"])
    assert {i["resource"] for i in written} == set(missed)

    async with stream(http, {**auth(alice), "Last-Event-ID": str(last)}) as resumed:
        await eventually(lambda: asyncio.sleep(0, len(resumed.items) >= 3), what="the missed items again")
        assert resumed.items[:3] == written  # what was missed, in order: no gap, no duplicate
        await _listening(resumed)
        live = await ticket_event(stack.nats_url, alice, "merged")
        await eventually(lambda: asyncio.sleep(0, len(resumed.items) >= 4), what="the live item")
        assert resumed.items[3]["resource"] == live
        assert len(resumed.items) == 4 and resumed.ids == sorted(set(resumed.ids)) and resumed.ids[0] > last

    # EventSource clients that cannot set headers: the same through the query.
    async with stream(http, params={"access_token": alice.token, "last_event_id": str(last)}) as again:
        await eventually(lambda: asyncio.sleep(0, len(again.items) >= 4), what="the items after last")
        assert [i["sequence"] for i in again.items] == resumed.ids


async def test_a_stream_needs_a_person_and_a_well_formed_last_event_id(
    http: httpx.AsyncClient, identity: IdentityClient
) -> None:
    async with stream(http) as anonymous:
        assert anonymous.response is not None
        problem = is_problem(anonymous.response, 401)
        assert problem["instance"] == f"{API}/stream"
    async with stream(http, params={"access_token": "not-a-token"}) as forged:
        assert forged.response is not None
        is_problem(forged.response, 401)
    person = await _person(identity)
    async with stream(http, {**auth(person), "Last-Event-ID": "abc"}) as bad:
        assert bad.response is not None
        assert is_problem(bad.response, 400)["errors"][0]["field"] == "Last-Event-ID"
    reply = await http.post(f"{API}/stream", headers=auth(person))
    assert reply.status_code == 405


async def _open_streams(stack: Stack) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(stack.metrics_urls["gateway"])).text
    found = re.search(r'^gov_sse_streams_open\{route="/api/v1/notifications/stream"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_a_client_that_goes_away_ends_its_stream_and_the_token_stays_out_of_the_logs(
    http: httpx.AsyncClient, identity: IdentityClient, stack: Stack
) -> None:
    person = await _person(identity)
    before = await _open_streams(stack)
    async with stream(http, params={"access_token": person.token}) as s:
        await _listening(s)
        assert await _open_streams(stack) == before + 1

    # The client closed its connection: the gateway ends the relay and cancels the upstream stream.
    async def closed() -> bool:
        return await _open_streams(stack) == before

    await eventually(closed, within=10, what="the stream closed at the gateway")
    gateway_log = stack.proc("gateway").log_path.read_text(errors="replace")
    assert person.token not in gateway_log


async def test_a_stopping_gateway_ends_its_streams_at_once(identity: IdentityClient, stack: Stack) -> None:
    """A gateway of its own (this test stops it): SIGTERM ends open streams well before uvicorn's
    10 s graceful timeout, and the process exits cleanly."""
    port = free_port()
    addrs = {f"GOV_{name.upper()}_ADDR": addr for name, addr in stack.addrs.items() if name in SERVICES}
    env = stack.env(
        GOV_HTTP_PORT=str(port),
        GOV_HTTP_HOST="127.0.0.1",
        GOV_NATS_URL=stack.nats_url,
        GOV_METRICS_PORT=str(free_port()),
        GOV_METRICS_HOST="127.0.0.1",
        GOV_SSE_HEARTBEAT_SECONDS="1",
        **addrs,
    )
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, returns at once
        [sys.executable, "-m", "gateway"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:

            async def ready() -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    return (await http.get("/readyz")).status_code == 200
                return False

            await eventually(ready, what="the second gateway")
            person = await _person(identity)
            async with stream(http, auth(person)) as s:
                await _listening(s)
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                await asyncio.get_running_loop().run_in_executor(None, proc.wait, 20)
                assert time.monotonic() - started < 5
        # uvicorn raises the signal again once it has shut down cleanly: killed by it, not by SIGKILL.
        assert proc.returncode in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_the_inbox_lists_with_an_unread_filter_and_pages_counts_and_marks_read(
    http: httpx.AsyncClient, identity: IdentityClient, stack: Stack
) -> None:
    alice, bob = await _person(identity), await _person(identity)
    for action in ("accepted", "dispatched", "resolved"):
        await ticket_event(stack.nats_url, alice, action)
    await ticket_event(stack.nats_url, bob)

    async def three() -> list[dict[str, Any]] | None:
        items = await _inbox(http, alice)
        return items if len(items) == 3 else None

    items = await eventually(three, what="alice's three items")
    assert [i["sequence"] for i in items] == sorted((i["sequence"] for i in items), reverse=True)
    assert all(i["read_time"] is None and isinstance(i["create_time"], str) for i in items)
    count = ok(await http.get(f"{API}/inbox/unread-count", headers=auth(alice)))
    assert count == {"unread": 3}

    first = ok(await http.get(f"{API}/inbox", headers=auth(alice), params={"page_size": 2}))
    assert len(first["items"]) == 2 and first["next_page_token"]
    second = ok(
        await http.get(
            f"{API}/inbox",
            headers=auth(alice),
            params={"page_size": 2, "page_token": first["next_page_token"]},
        )
    )
    assert [i["id"] for i in first["items"] + second["items"]] == [i["id"] for i in items]
    assert second["next_page_token"] == ""
    token = first["next_page_token"]
    forged = await http.get(f"{API}/inbox", headers=auth(bob), params={"page_token": token})
    is_problem(forged, 400)

    newest, middle, oldest = items
    marked = ok(await http.post(f"{API}/inbox/read", headers=auth(alice), json={"ids": [newest["id"]]}))
    assert marked == {"marked": 1, "unread": 2}
    unread = await _inbox(http, alice, unread="true")
    assert [i["id"] for i in unread] == [middle["id"], oldest["id"]]
    # By sequence: everything up to the middle one; the newest keeps its read time.
    marked = ok(
        await http.post(f"{API}/inbox/read", headers=auth(alice), json={"up_to_sequence": middle["sequence"]})
    )
    assert marked == {"marked": 2, "unread": 0}

    # Another person's item id names nothing of the caller's: bob's stays unread.
    async def bobs() -> list[dict[str, Any]] | None:
        return await _inbox(http, bob) or None

    # Bob's event came last and may still be on its way: only alice's three were awaited above.
    bob_item = (await eventually(bobs, what="bob's item"))[0]
    assert (
        ok(await http.post(f"{API}/inbox/read", headers=auth(alice), json={"ids": [bob_item["id"]]}))[
            "marked"
        ]
        == 0
    )
    assert ok(await http.get(f"{API}/inbox/unread-count", headers=auth(bob))) == {"unread": 1}
    is_problem(await http.post(f"{API}/inbox/read", headers=auth(alice), json={}), 400)
    is_problem(await http.post(f"{API}/inbox/read", headers=auth(alice), json={"ids": ["x" * 65]}), 422)
    is_problem(await http.get(f"{API}/inbox"), 401)


async def test_endpoints_and_deliveries_are_for_operators_and_a_retry_of_a_sent_one_is_refused(
    http: httpx.AsyncClient, identity: IdentityClient, stack: Stack, mail_sink: MailSink
) -> None:
    admin = identity.admin_token
    resident = await _person(identity)
    address = f"r-{uuid.uuid4().hex[:10]}@example.org"
    new = {"owner": resident.name, "channel": "email", "address": address}
    key = f"k-{uuid.uuid4().hex}"
    # A person's e-mail address is theirs to set: not another person's, not even an operator's.
    is_problem(await http.post(f"{API}/endpoints", headers=auth(await _person(identity)), json=new), 403)
    is_problem(await http.post(f"{API}/endpoints", headers=auth(admin), json=new), 403)
    created = await http.post(f"{API}/endpoints", headers=auth(resident, key), json=new)
    endpoint = ok(created, 201)
    assert created.headers["location"] == f"{API}/endpoints/{endpoint['id']}"
    assert endpoint["owner"] == resident.name and endpoint["channel"] == "email"
    replay = ok(await http.post(f"{API}/endpoints", headers=auth(resident, key), json=new), 201)
    assert replay["id"] == endpoint["id"]
    sms = {**new, "channel": "sms"}
    is_problem(await http.post(f"{API}/endpoints", headers=auth(resident), json=sms), 400)
    listed = ok(await http.get(f"{API}/endpoints", headers=auth(resident), params={"owner": resident.name}))
    assert [e["id"] for e in listed["items"]] == [endpoint["id"]]
    # A block's group robot: operators only; the node may be written with dots; the secret never shows.
    node = f"yuhu/r{uuid.uuid4().hex[:8]}"
    robot = {
        "owner": f"nodes/{node.replace('/', '.')}",
        "channel": "webhook",
        "address": "https://robot.example.org/hook",
        "secret": "s" * 20,
    }
    is_problem(await http.post(f"{API}/endpoints", headers=auth(resident), json=robot), 403)
    hook = ok(await http.post(f"{API}/endpoints", headers=auth(admin), json=robot), 201)
    assert hook["owner"] == f"nodes/{node}" and "secret" not in hook
    assert ok(await http.get(f"{API}/endpoints", headers=auth(admin), params={"owner": f"nodes/{node}"}))[
        "items"
    ] == [hook]
    assert (await http.delete(f"{API}/endpoints/{hook['id']}", headers=auth(admin))).status_code == 204

    try:
        await ticket_event(stack.nats_url, resident)

        async def sent() -> list[dict[str, Any]] | None:
            page = ok(
                await http.get(
                    f"{API}/deliveries",
                    headers=auth(admin),
                    params={"node": "*", "recipient": resident.name, "channel": "email", "state": "sent"},
                )
            )
            return page["items"] or None

        [delivery] = await eventually(sent, what="the e-mail delivery")
        assert delivery["kind"] == "ticket.accepted" and delivery["node"] == "yuhu/sse/b01"
        by_node = ok(
            await http.get(
                f"{API}/deliveries",
                headers=auth(admin),
                params={"node": "yuhu.sse", "recipient": resident.name},
            )
        )
        assert delivery["id"] in [d["id"] for d in by_node["items"]]
        again = await http.post(f"{API}/deliveries/{delivery['id']}/retry", headers=auth(admin))
        assert is_problem(again, 409)["type"].endswith("failed-precondition")
        is_problem(await http.get(f"{API}/deliveries", headers=auth(resident), params={"node": "*"}), 403)
        is_problem(await http.post(f"{API}/deliveries/{delivery['id']}/retry", headers=auth(resident)), 403)
        is_problem(await http.get(f"{API}/deliveries", headers=auth(admin), params={"node": "a/b"}), 422)
        is_problem(
            await http.get(f"{API}/deliveries", headers=auth(admin), params={"node": "*", "state": "x"}), 422
        )
    finally:
        deleted = await http.delete(f"{API}/endpoints/{endpoint['id']}", headers=auth(resident))
        assert deleted.status_code == 204
    listed = ok(await http.get(f"{API}/endpoints", headers=auth(resident), params={"owner": resident.name}))
    assert listed["items"] == []


async def test_templates_are_listed_patched_field_by_field_and_previewed_by_operators(
    http: httpx.AsyncClient, identity: IdentityClient
) -> None:
    admin = identity.admin_token
    resident = await _person(identity)
    is_problem(await http.get(f"{API}/templates", headers=auth(resident)), 403)
    page = ok(await http.get(f"{API}/templates", headers=auth(admin), params={"kind": "ticket.reopened"}))
    assert page["items"] and {t["kind"] for t in page["items"]} == {"ticket.reopened"}
    path = f"{API}/templates/ticket.reopened/email/en"
    original = ok(await http.get(path, headers=auth(admin)))
    assert original["channel"] == "email" and original["locale"] == "en" and original["parameters"]
    is_problem(await http.patch(path, headers=auth(resident), json={"subject": "x"}), 403)
    try:
        subject = {"subject": "Reopened: {{ ticket_id }}"}
        changed = ok(await http.patch(path, headers=auth(admin), json=subject))
        assert changed["subject"] == "Reopened: {{ ticket_id }}" and changed["customized"] is True
        assert changed["body"] == original["body"]  # left out: kept
        is_problem(await http.patch(path, headers=auth(admin), json={}), 400)
        is_problem(await http.patch(path, headers=auth(admin), json={"body": "{{ broken"}), 400)
        preview = ok(
            await http.post(
                f"{path}/preview", headers=auth(admin), json={"parameters": {"ticket_id": "T-42"}}
            )
        )
        assert preview["subject"] == "Reopened: T-42"
        sms = ok(
            await http.post(
                f"{API}/templates/ticket.reopened/sms/zh-CN/preview",
                headers=auth(admin),
                json={"body": "工单{{ ticket_id }}" + "很长的短信内容" * 12},
            )
        )
        assert len(sms["sms_parts"]) >= 2
    finally:
        ok(
            await http.patch(
                path, headers=auth(admin), json={"subject": original["subject"], "body": original["body"]}
            )
        )
    is_problem(await http.get(f"{API}/templates/ticket.reopened/fax/en", headers=auth(admin)), 422)


def test_json_enums_match_the_proto() -> None:
    for cls, (proto, prefix) in PROTO_ENUMS.items():
        names = {v.name.removeprefix(f"{prefix}_").lower() for v in proto.DESCRIPTOR.values if v.number}
        assert {m.value for m in cls} == names


async def test_the_openapi_document_declares_the_notifications_paths_with_typed_schemas(
    http: httpx.AsyncClient,
) -> None:
    ready = ok(await http.get("/readyz"))
    assert ready["checks"]["notifications"] == "SERVING"
    doc = ok(await http.get("/openapi.json"))
    paths = doc["paths"]
    for path, methods in {
        f"{API}/inbox": {"get"},
        f"{API}/inbox/unread-count": {"get"},
        f"{API}/inbox/read": {"post"},
        f"{API}/stream": {"get"},
        f"{API}/deliveries": {"get"},
        f"{API}/deliveries/{{delivery_id}}/retry": {"post"},
        f"{API}/endpoints": {"get", "post"},
        f"{API}/endpoints/{{endpoint_id}}": {"delete"},
        f"{API}/templates": {"get"},
        f"{API}/templates/{{kind}}/{{channel}}/{{locale}}": {"get", "patch"},
        f"{API}/templates/{{kind}}/{{channel}}/{{locale}}/preview": {"post"},
    }.items():
        assert methods <= set(paths[path]), path
    stream_op = paths[f"{API}/stream"]["get"]
    assert list(stream_op["responses"]["200"]["content"]) == ["text/event-stream"]
    params = {(p["in"], p["name"]) for p in stream_op["parameters"]}
    assert {("header", "Last-Event-ID"), ("query", "last_event_id"), ("query", "access_token")} <= params
    # access_token is this route's alone.
    assert all(p["name"] != "access_token" for p in paths[f"{API}/inbox"]["get"]["parameters"])
    schemas = doc["components"]["schemas"]
    item = schemas["InboxItem"]["properties"]
    assert item["sequence"]["type"] == "integer" and item["urgent"]["type"] == "boolean"
    assert {"type": "string", "format": "date-time"} in item["read_time"]["anyOf"]
    assert set(schemas["ChannelName"]["enum"]) == {"inbox", "webhook", "sms", "email"}
    assert "dead" in schemas["DeliveryStateName"]["enum"]
    assert "secret" not in schemas["Endpoint"]["properties"]
