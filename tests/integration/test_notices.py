"""Targeted notices end to end on a platform of their own (the service is killed and started again):
a notice to a few thousand residents survives a SIGKILL mid-way with no duplicate and no gap,
cancel stops it, the sender's scope bounds it, and read receipts show who has not read it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import uuid
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
import pytest_asyncio

from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.notifications.v1 import events_pb2
from gov.notifications.v1 import notifications_pb2 as pb
from gov.notifications.v1.notifications_pb2_grpc import NotificationsServiceStub
from govkit.devstack import Stack
from govkit.events import unpack_payload
from tests.conftest import notifications_env, stack_of_its_own, start_identity, start_migrated
from tests.support import waiting
from tests.support.blocks import make_tree
from tests.support.databases import Databases
from tests.support.identity import IdentityClient, find_event, md

# Small batches with a pause, so a notice to a few thousand takes seconds and can be killed mid-way.
FANOUT_ENV = {
    "GOV_NOTIFICATIONS_NOTICE_BATCH_HOUSEHOLDS": "25",
    "GOV_NOTIFICATIONS_NOTICE_PAUSE_SECONDS": "0.05",
    "GOV_NOTIFICATIONS_NOTICE_INTERVAL_SECONDS": "1",
}
HOUSEHOLDS = 700
RESIDENTS_PER_HOUSEHOLD = 3


# A notice to thousands takes its time on a loaded machine.
eventually = functools.partial(waiting.eventually, within=60)


@pytest.fixture(scope="module")
def notice_stack(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack_of_its_own(tmp_path_factory, "notices") as s:
        s.start_nats()
        start_identity(s, databases)
        start_migrated(s, "blocks", {"GOV_DATABASE_URL": databases.url("blocks")})
        # A database of its own: no other notifications process resumes these notices.
        s.start_service("notifications", notifications_env(s, databases.url("notices"), **FANOUT_ENV))
        yield s


class Place:
    def __init__(self, community: str, blocks: list[str], admin: str) -> None:
        self.community = community
        self.blocks = blocks
        self.admin = admin


@pytest_asyncio.fixture(scope="module")
async def clients(notice_stack: Stack) -> AsyncIterator[tuple[IdentityClient, BlocksServiceStub]]:
    identity = await IdentityClient(notice_stack.addrs["identity"]).start()
    channel = grpc.aio.insecure_channel(notice_stack.addrs["blocks"])
    try:
        yield identity, BlocksServiceStub(channel)
    finally:
        await channel.close()
        await identity.close()


async def notifications_stub(stack: Stack) -> tuple[grpc.aio.Channel, NotificationsServiceStub]:
    channel = grpc.aio.insecure_channel(stack.addrs["notifications"])
    return channel, NotificationsServiceStub(channel)


async def add_households(blocks: BlocksServiceStub, admin: str, block: str, users: list[list[str]]) -> None:
    """One household per entry, its residents linked to the given accounts."""
    slots = asyncio.Semaphore(8)

    async def one(residents: list[str]) -> None:
        household = blocks_pb2.Household(
            code=f"h-{uuid.uuid4().hex[:12]}",
            block=block,
            address="万楼社区1栋",
            residents=[
                blocks_pb2.Resident(display_name=f"居民{i}", relation=blocks_pb2.RELATION_OTHER, user=u)
                for i, u in enumerate(residents)
            ],
        )
        async with slots:
            await blocks.CreateHousehold(
                blocks_pb2.CreateHouseholdRequest(household=household), metadata=md(admin)
            )

    await asyncio.gather(*(one(r) for r in users))


async def everyone(n: NotificationsServiceStub, name: str, admin: str, read_filter: int = 0) -> list[str]:
    found: list[str] = []
    token = ""
    while True:
        page = await n.ListNoticeRecipients(
            pb.ListNoticeRecipientsRequest(name=name, filter=read_filter, page_size=200, page_token=token),  # type: ignore[arg-type]
            metadata=md(admin),
        )
        found += [r.user for r in page.recipients]
        token = page.next_page_token
        if not token:
            return found


async def test_a_notice_killed_mid_way_completes_once_each_and_cancel_stops_another(
    notice_stack: Stack, clients: tuple[IdentityClient, BlocksServiceStub]
) -> None:
    identity, blocks = clients
    admin = identity.admin_token
    _, community = await make_tree(blocks, admin, {"b01": None, "b02": None})
    block = f"{community}/b01"
    audience = [[f"users/{uuid.uuid4()}" for _ in range(RESIDENTS_PER_HOUSEHOLD)] for _ in range(HOUSEHOLDS)]
    # One resident registered in two households is told once.
    audience.append([audience[0][0]])
    # Another block of the community is in the audience; another community's is not.
    audience.append([f"users/{uuid.uuid4()}"])
    await add_households(blocks, admin, f"{community}/b02", [audience[-1]])
    await add_households(blocks, admin, block, audience[:-1])
    _, elsewhere = await make_tree(blocks, admin, {"b01": None})
    await add_households(blocks, admin, f"{elsewhere}/b01", [[f"users/{uuid.uuid4()}"]])
    expected = {u for h in audience for u in h}

    channel, n = await notifications_stub(notice_stack)
    request = pb.CreateNoticeRequest(
        notice=pb.Notice(
            node=community,
            title="防溺水提醒",
            body="暑期请看护好孩子,勿到河边戏水。",
            category="safety",
            urgent=True,
        ),
        request_id=str(uuid.uuid4()),
    )
    try:
        made = await n.CreateNotice(request, metadata=md(admin))
        assert made.state == pb.NOTICE_STATE_SENDING
        # The same request again: the same notice, nothing sent twice.
        again = await n.CreateNotice(request, metadata=md(admin))
        assert again.name == made.name

        async def part_way() -> pb.Notice | None:
            got = await n.GetNotice(pb.GetNoticeRequest(name=made.name), metadata=md(admin))
            return got if 0 < got.recipients_written < len(expected) // 2 else None

        await eventually(part_way, what="the fan-out under way")
    finally:
        await channel.close()
    notice_stack.kill_proc(notice_stack.proc("notifications"))
    env = notice_stack.service_envs["notifications"]
    port = int(notice_stack.addrs["notifications"].rsplit(":", 1)[1])
    notice_stack.start_service("notifications", env, port=port)

    channel, n = await notifications_stub(notice_stack)
    try:

        async def finished() -> pb.Notice | None:
            got = await n.GetNotice(pb.GetNoticeRequest(name=made.name), metadata=md(admin))
            return got if got.state == pb.NOTICE_STATE_COMPLETED else None

        done = await eventually(finished, within=120, what="the notice completed after the restart")
        assert done.recipients_total == done.recipients_written == len(expected)
        assert done.households_done == len(audience)
        told = await everyone(n, made.name, admin)
        assert len(told) == len(set(told)) == len(expected)  # no duplicate
        assert set(told) == expected  # no gap, nobody outside

        # Cancel stops a second notice part-way: no batch commits after it.
        second = await n.CreateNotice(
            pb.CreateNoticeRequest(notice=pb.Notice(node=block, title="停水通知", body="明日9-12时停水。")),
            metadata=md(admin),
        )

        async def started() -> pb.Notice | None:
            got = await n.GetNotice(pb.GetNoticeRequest(name=second.name), metadata=md(admin))
            return got if got.recipients_written > 0 else None

        await eventually(started, what="the second notice under way")
        cancelled = await n.CancelNotice(pb.CancelNoticeRequest(name=second.name), metadata=md(admin))
        assert cancelled.state == pb.NOTICE_STATE_CANCELLED
        assert 0 < cancelled.recipients_written < len(expected)
        await asyncio.sleep(1.5)
        later = await n.GetNotice(pb.GetNoticeRequest(name=second.name), metadata=md(admin))
        assert later.recipients_written == cancelled.recipients_written
        assert len(await everyone(n, second.name, admin)) == cancelled.recipients_written
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await n.CancelNotice(pb.CancelNoticeRequest(name=second.name), metadata=md(admin))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await channel.close()


async def test_scope_bounds_the_sender_and_receipts_show_who_has_not_read(
    notice_stack: Stack, clients: tuple[IdentityClient, BlocksServiceStub]
) -> None:
    identity, blocks = clients
    admin = identity.admin_token
    _, community = await make_tree(blocks, admin, {"b01": None, "b02": None})
    mine, other = f"{community}/b01", f"{community}/b02"
    governors = {}
    for block in (mine, other):
        user, _, token = await identity.make_user(block)
        await blocks.AssignStaff(
            blocks_pb2.AssignStaffRequest(
                assignment=blocks_pb2.StaffAssignment(
                    block=block, user=user.name, role=blocks_pb2.STAFF_ROLE_GOVERNOR
                )
            ),
            metadata=md(admin),
        )
        governors[block] = token
    residents = [await identity.make_user(mine, [("resident", mine)]) for _ in range(3)]
    await add_households(blocks, admin, mine, [[u.name] for u, _, _ in residents])
    # An elderly resident living alone: the tag filter picks their household only.
    channel, n = await notifications_stub(notice_stack)
    try:
        notice = pb.Notice(
            node=mine, title="燃气安全检查", body="本周六上门检查燃气管道。", category="safety"
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await n.CreateNotice(pb.CreateNoticeRequest(notice=notice), metadata=md(governors[other]))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await n.CreateNotice(
                pb.CreateNoticeRequest(notice=pb.Notice(node=mine, title="", body="x")),
                metadata=md(governors[mine]),
            )
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # A resident watching their inbox gets the notice as it is written (the bulk insert's
        # returned sequence), once.
        watched: list[pb.InboxItem] = []
        watch = n.WatchInbox(pb.WatchInboxRequest(), metadata=md(residents[1][2]))

        async def read_watch() -> None:
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
                async for event in watch:
                    if event.HasField("item"):
                        watched.append(event.item)

        reading = asyncio.create_task(read_watch())
        await asyncio.sleep(0.5)  # the stream is open before the notice is sent
        made = await n.CreateNotice(pb.CreateNoticeRequest(notice=notice), metadata=md(governors[mine]))

        async def finished() -> pb.Notice | None:
            got = await n.GetNotice(pb.GetNoticeRequest(name=made.name), metadata=md(governors[mine]))
            return got if got.state == pb.NOTICE_STATE_COMPLETED else None

        done = await eventually(finished, what="the small notice completed")
        await eventually(
            lambda: asyncio.sleep(0.1, [i for i in watched if i.resource == made.name]),
            what="the notice on the resident's stream",
        )
        watch.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        (streamed,) = [i for i in watched if i.resource == made.name]
        assert streamed.sequence > 0 and streamed.title == "燃气安全检查"
        assert done.recipients_total == 3 and done.read_count == 0
        # Ids only on the bus: sent when created, completed with how many were told.
        since = done.create_time.ToDatetime(dt.UTC) - dt.timedelta(seconds=5)
        sent = await find_event(notice_stack.nats_url, "notifications.v1.notice.sent", made.name, since)
        assert unpack_payload(sent, events_pb2.NoticeSent).node == mine
        completed = unpack_payload(
            await find_event(notice_stack.nats_url, "notifications.v1.notice.completed", made.name, since),
            events_pb2.NoticeCompleted,
        )
        assert (completed.state, completed.recipients) == (pb.NOTICE_STATE_COMPLETED, 3)
        # The governor of the other block sees neither the notice nor its receipts.
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await n.ListNoticeRecipients(
                pb.ListNoticeRecipientsRequest(name=made.name), metadata=md(governors[other])
            )
        assert hidden.value.code() == grpc.StatusCode.PERMISSION_DENIED

        # The first resident reads it in their inbox.
        reader = residents[0]
        items = await n.ListInboxItems(pb.ListInboxItemsRequest(), metadata=md(reader[2]))
        (item,) = [i for i in items.items if i.resource == made.name]
        assert item.urgent is False and item.title == "燃气安全检查"
        await n.MarkInboxItemsRead(pb.MarkInboxItemsReadRequest(names=[item.name]), metadata=md(reader[2]))

        unread = await everyone(n, made.name, governors[mine], pb.READ_FILTER_UNREAD)
        assert sorted(unread) == sorted(u.name for u, _, _ in residents[1:])
        assert await everyone(n, made.name, governors[mine], pb.READ_FILTER_READ) == [reader[0].name]
        got = await n.GetNotice(pb.GetNoticeRequest(name=made.name), metadata=md(governors[mine]))
        assert got.read_count == 1
        listed = await n.ListNotices(pb.ListNoticesRequest(node=mine), metadata=md(governors[mine]))
        assert [x.name for x in listed.notices] == [made.name]
    finally:
        await channel.close()
