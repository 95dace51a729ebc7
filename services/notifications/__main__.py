"""`python -m services.notifications serve|migrate`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx

from gov.common.v1 import event_pb2
from gov.notifications.v1 import notifications_pb2_grpc
from govkit import service_cli
from govkit.auth.service_tokens import ServiceTokens
from govkit.consumer import ConsumerSpec, Writes
from govkit.db import utcnow
from govkit.grpc_server import ServiceDefinition, ServiceRuntime
from services.notifications.addresses import AddressBook
from services.notifications.channels import (
    Channel,
    EmailChannel,
    HttpSmsProvider,
    LogSmsProvider,
    SmsChannel,
    SmsProvider,
    SmtpConfig,
    WebhookChannel,
)
from services.notifications.deliveries import Deliveries
from services.notifications.digests import DigestRunner
from services.notifications.directory import Directory
from services.notifications.domain import RetryPolicy
from services.notifications.endpoints import Endpoints
from services.notifications.fanout import FanOutSettings, NoticeFanOut
from services.notifications.grpc_api import SERVICE, NotificationsServicer
from services.notifications.hub import InboxHub
from services.notifications.inbox import Inbox
from services.notifications.intake import Intake, IntakeSettings
from services.notifications.models import platform
from services.notifications.notices import Notices
from services.notifications.preferences import Preferences, QuietDefaults
from services.notifications.routing import SUBJECTS
from services.notifications.settings import NotificationsSettings
from services.notifications.template_admin import Templates
from services.notifications.worker import DeliveryWorker, WorkerSettings, limiters

MIGRATIONS = Path(__file__).parent / "migrations"


def channels(settings: NotificationsSettings, http: httpx.AsyncClient) -> dict[str, Channel]:
    provider: SmsProvider = LogSmsProvider()
    if settings.notifications_sms_provider == "http":
        provider = HttpSmsProvider(
            http,
            settings.notifications_sms_http_url,
            settings.notifications_sms_http_token.get_secret_value(),
        )
    smtp = SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value(),
        start_tls=settings.smtp_starttls,
        use_tls=settings.smtp_use_tls,
        timeout=settings.notifications_send_timeout_seconds,
    )
    return {"webhook": WebhookChannel(http), "sms": SmsChannel(provider), "email": EmailChannel(smtp)}


def service_clock(offset_seconds: float) -> Callable[[], dt.datetime]:
    """Now for quiet hours, digests and deliveries: the system's, shifted only by test settings."""
    if not offset_seconds:
        return utcnow
    shift = dt.timedelta(seconds=offset_seconds)
    return lambda: utcnow() + shift


def worker_settings(s: NotificationsSettings) -> WorkerSettings:
    return WorkerSettings(
        policy=RetryPolicy(
            max_attempts=s.notifications_max_attempts,
            base=dt.timedelta(seconds=s.notifications_backoff_seconds),
            cap=dt.timedelta(seconds=s.notifications_backoff_max_seconds),
        ),
        lease=dt.timedelta(seconds=s.notifications_lease_seconds),
        interval=s.notifications_worker_interval_seconds,
        concurrency=s.notifications_worker_concurrency,
    )


def definition(settings: NotificationsSettings) -> ServiceDefinition:
    parts: dict[str, object] = {}

    def register(server: grpc.aio.Server, runtime: ServiceRuntime) -> None:
        assert runtime.identity_channel is not None
        tokens = ServiceTokens(
            runtime.identity_channel,
            settings.notifications_client_id,
            settings.notifications_client_secret.get_secret_value(),
        )
        directory = Directory(
            tokens,
            runtime.identity_channel,
            runtime.channel(settings.blocks_addr),
            runtime.channel(settings.tickets_addr),
            runtime.channel(settings.points_addr),
        )
        http = httpx.AsyncClient(timeout=settings.notifications_send_timeout_seconds, follow_redirects=False)
        rates = {
            "webhook": settings.notifications_rate_webhook,
            "sms": settings.notifications_rate_sms,
            "email": settings.notifications_rate_email,
        }
        clock = service_clock(settings.notifications_clock_offset_seconds)
        worker = DeliveryWorker(
            runtime.db,
            channels(settings, http),
            limiters(rates),
            AddressBook(runtime.db, directory),
            worker_settings(settings),
            clock,
        )
        hub = InboxHub()
        quiet = QuietDefaults(
            settings.notifications_quiet_start,
            settings.notifications_quiet_end,
            settings.notifications_quiet_time_zone,
        )
        intake = Intake(
            directory,
            hub,
            worker.wake,
            IntakeSettings(
                link_base=settings.notifications_link_base,
                email_enabled=bool(settings.smtp_host),
                quiet=quiet,
            ),
            clock,
        )
        fanout = NoticeFanOut(
            runtime.db,
            directory,
            hub,
            FanOutSettings(
                page_size=settings.notifications_notice_batch_households,
                pause=settings.notifications_notice_pause_seconds,
                interval=settings.notifications_notice_interval_seconds,
                link_base=settings.notifications_link_base,
            ),
        )
        digests = DigestRunner(runtime.db, worker.wake, settings.notifications_digest_interval_seconds, clock)
        parts.update(worker=worker, intake=intake, fanout=fanout, digests=digests)
        servicer = NotificationsServicer(
            Inbox(runtime.db, hub, settings.notifications_heartbeat_seconds),
            Deliveries(runtime.db, worker.wake),
            Endpoints(runtime.db, directory),
            Templates(runtime.db),
            Notices(runtime.db, directory.blocks, fanout.wake),
            Preferences(runtime.db, quiet),
        )
        notifications_pb2_grpc.add_NotificationsServiceServicer_to_server(servicer, server)

    async def intake(event: event_pb2.Event) -> Writes:
        # Set by register(), which the runtime calls before it connects the bus and starts consumers.
        intake = parts["intake"]
        assert isinstance(intake, Intake)
        return await intake.prepare(event)

    async def deliver(runtime: ServiceRuntime) -> None:
        await parts["worker"].run()  # type: ignore[attr-defined]

    async def fan_out(runtime: ServiceRuntime) -> None:
        # Resumes every notice a previous process left sending, then follows new ones.
        await parts["fanout"].run()  # type: ignore[attr-defined]

    async def digest(runtime: ServiceRuntime) -> None:
        await parts["digests"].run()  # type: ignore[attr-defined]

    return service_cli.service_definition(
        "notifications",
        settings,
        platform,
        register,
        SERVICE,
        background=[deliver, fan_out, digest],
        consumers=[
            ConsumerSpec(
                durable=f"notifications-{stream.lower()}",
                stream=stream,
                subjects=list(subjects),
                prepare=intake,
                # A fetched batch in one transaction (one commit, then an ack per event): at hundreds
                # of events a second, one transaction and commit per event was what held it back.
                batched=True,
                batch=100,
            )
            for stream, subjects in SUBJECTS.items()
        ],
    )


def main(argv: list[str] | None = None) -> int:
    return service_cli.main("notifications", NotificationsSettings, definition, MIGRATIONS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
