"""The delivery worker against real databases and a real HTTP robot: two workers never send one
delivery twice, and a delivery left `sending` by a dead worker is taken over when its lease ends."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest_asyncio

from govkit import migrations
from govkit.auth.service_tokens import ServiceTokens
from govkit.db import Database, utcnow
from services.notifications.addresses import AddressBook
from services.notifications.channels import WebhookChannel
from services.notifications.directory import Directory
from services.notifications.domain import RetryPolicy, State
from services.notifications.models import Delivery, Endpoint
from services.notifications.worker import DeliveryWorker, WorkerSettings, limiters
from tests.support.databases import Databases
from tests.support.webhooks import Robot, serve

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "notifications" / "migrations"
SETTINGS = WorkerSettings(
    policy=RetryPolicy(max_attempts=3, base=dt.timedelta(seconds=0.1), cap=dt.timedelta(seconds=0.2)),
    # Long enough that a slow, shared machine never lets a lease lapse mid-send in these tests.
    lease=dt.timedelta(seconds=30),
    interval=0.5,
    concurrency=4,
    batch=10,
)


@pytest_asyncio.fixture
async def db(databases: Databases) -> AsyncIterator[Database]:
    url = databases.url("notifications-worker")
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS, url)
    database = Database(url)
    yield database
    await database.close()


def worker(db: Database, http: object) -> DeliveryWorker:
    # Webhook addresses come from the endpoints table; the directory (phones) is never asked here.
    idle = grpc.aio.insecure_channel("127.0.0.1:9")
    directory = Directory(ServiceTokens(idle, "unused", "unused"), idle, idle, idle, idle)
    return DeliveryWorker(
        db,
        {"webhook": WebhookChannel(http)},  # type: ignore[arg-type]
        limiters({"webhook": 1000.0}),
        AddressBook(db, directory),
        SETTINGS,
    )


async def queue(db: Database, owner: str, count: int, **state: object) -> list[str]:
    now = utcnow()
    ids = [str(uuid.uuid4()) for _ in range(count)]
    async with db.transaction() as session:
        for delivery_id in ids:
            delivery = Delivery.untried(
                id=delivery_id,
                event_id=str(uuid.uuid4()),
                recipient=owner,
                channel="webhook",
                kind="ticket.assigned",
                node="yuhu",
                subject="s",
                body="b",
                link="",
                state=State.QUEUED.value,
                due=now,
                now=now,
            )
            for column, value in state.items():
                setattr(delivery, column, value)
            session.add(delivery)
    return ids


async def states(db: Database, ids: list[str]) -> dict[str, tuple[str, int]]:
    async with db.sessions() as session:
        rows = [await session.get(Delivery, i) for i in ids]
    return {r.id: (r.state, r.attempts) for r in rows if r is not None}


async def robot_endpoint(db: Database, robot: Robot) -> str:
    owner = f"units/u-{uuid.uuid4().hex[:8]}"
    async with db.transaction() as session:
        session.add(
            Endpoint(
                id=str(uuid.uuid4()),
                owner=owner,
                channel="webhook",
                address=robot.url,
                secret="0123456789abcdef",
                node="yuhu",
                create_time=utcnow(),
            )
        )
    return owner


async def test_two_workers_send_each_delivery_once(db: Database) -> None:
    import httpx

    with contextlib.contextmanager(serve)(Robot([200])) as robot:
        owner = await robot_endpoint(db, robot)
        ids = await queue(db, owner, 30)
        async with httpx.AsyncClient(timeout=5) as http:
            workers = [worker(db, http), worker(db, http)]
            tasks = [asyncio.create_task(w.run()) for w in workers]
            try:
                deadline = asyncio.get_running_loop().time() + 30
                while any(s != (State.SENT.value, 1) for s in (await states(db, ids)).values()):
                    pending = {k: v for k, v in (await states(db, ids)).items() if v != (State.SENT.value, 1)}
                    assert asyncio.get_running_loop().time() < deadline, pending
                    await asyncio.sleep(0.1)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        keys = [r.headers["X-Gov-Delivery"] for r in robot.received]
        assert len(keys) == 30 and len(set(keys)) == 30


async def test_a_delivery_left_sending_by_a_dead_worker_is_taken_over_after_its_lease(db: Database) -> None:
    import httpx

    with contextlib.contextmanager(serve)(Robot([200])) as robot:
        owner = await robot_endpoint(db, robot)
        # Claimed by a worker that died: `sending`, one attempt, its lease running for another second.
        lease_end = utcnow() + dt.timedelta(seconds=1)
        (stuck,) = await queue(db, owner, 1, state=State.SENDING.value, attempts=1, lease_until=lease_end)
        async with httpx.AsyncClient(timeout=5) as http:
            w = worker(db, http)
            assert await w.claim() == []  # not while the lease holds
            await asyncio.sleep(1.2)
            (row,) = await w.claim()
            assert (row.id, row.state, row.attempts) == (stuck, State.SENDING.value, 2)
            assert await w.claim() == []  # held now by this worker
