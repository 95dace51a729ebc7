"""Notifications' configuration (environment variables with the GOV_ prefix)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, model_validator

from govkit.config import ServiceSettings


class NotificationsSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///.data/notifications.db"
    grpc_port: int = Field(50055, ge=1, le=65535)
    identity_addr: str = Field("127.0.0.1:50051", min_length=3)
    blocks_addr: str = Field("127.0.0.1:50052", min_length=3)
    tickets_addr: str = Field("127.0.0.1:50053", min_length=3)
    points_addr: str = Field("127.0.0.1:50054", min_length=3)
    # The service account notifications reads contact details and staffing with (client credentials).
    notifications_client_id: str = Field(..., min_length=1)
    notifications_client_secret: SecretStr = Field(..., min_length=1)
    # Where links in messages point (the resident app or web site).
    notifications_link_base: str = "https://gov.example.org"
    # Deliveries: attempts before a dead letter, and the exponential backoff between them.
    notifications_max_attempts: int = Field(5, ge=1, le=50)
    notifications_backoff_seconds: float = Field(2.0, gt=0, le=3600)
    notifications_backoff_max_seconds: float = Field(600.0, gt=0, le=86400)
    # A claimed delivery not finished within this long is taken over by another worker.
    notifications_lease_seconds: float = Field(60.0, gt=0, le=3600)
    # The worker wakes on new deliveries in-process; this slow timer catches retries and leases.
    notifications_worker_interval_seconds: float = Field(5.0, gt=0, le=600)
    notifications_worker_concurrency: int = Field(8, ge=1, le=256)
    # WatchInbox sends a heartbeat after this long without an item.
    notifications_heartbeat_seconds: float = Field(15.0, gt=0, le=300)
    # Sends per second per channel (token buckets), and the request timeout of outside channels.
    notifications_rate_webhook: float = Field(20.0, gt=0)
    notifications_rate_sms: float = Field(10.0, gt=0)
    notifications_rate_email: float = Field(10.0, gt=0)
    notifications_send_timeout_seconds: float = Field(10.0, gt=0, le=120)
    # Targeted notices: households per fan-out batch (one transaction each), the pause between
    # batches that leaves room for the service's other work, and how often unfinished notices are
    # looked for when the fan-out is not woken.
    notifications_notice_batch_households: int = Field(200, ge=1, le=200)
    notifications_notice_pause_seconds: float = Field(0.01, ge=0, le=10)
    notifications_notice_interval_seconds: float = Field(10.0, gt=0, le=600)
    # Quiet hours for people who set none: non-urgent messages on outside channels wait for the
    # window's end (HH:MM or HH:MM:SS; an end before the start wraps past midnight; IANA zone).
    notifications_quiet_start: str = Field("22:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")
    notifications_quiet_end: str = Field("07:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")
    notifications_quiet_time_zone: str = "Asia/Shanghai"
    # For tests and demos only, never in production: the service's clock runs this many seconds
    # ahead of (or, negative, behind) the system's. Quiet hours, digests and the delivery worker
    # read it, so a running service can be put at 06:59:50 in Shanghai and seen to release held
    # messages at 07:00. Other timestamps (inbox reads, audit times) keep the system's clock.
    notifications_clock_offset_seconds: float = Field(0.0, ge=-400 * 86400, le=400 * 86400)
    # How often held deliveries are looked at for digests now due.
    notifications_digest_interval_seconds: float = Field(30.0, gt=0, le=3600)
    # SMS: `log` writes each message to the log; `http` posts JSON to the provider's URL.
    notifications_sms_provider: Literal["log", "http"] = "log"
    notifications_sms_http_url: str = ""
    notifications_sms_http_token: SecretStr = SecretStr("")
    # E-mail over SMTP; no host means e-mail is off (no deliveries are queued for it).
    smtp_host: str = ""
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "notifications@gov.example.org"
    smtp_starttls: bool = False
    smtp_use_tls: bool = False

    @model_validator(mode="after")
    def _quiet_zone_known(self) -> NotificationsSettings:
        try:
            ZoneInfo(self.notifications_quiet_time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("GOV_NOTIFICATIONS_QUIET_TIME_ZONE must be an IANA time zone") from None
        return self

    @model_validator(mode="after")
    def _sms_provider_complete(self) -> NotificationsSettings:
        if self.notifications_sms_provider == "http" and not self.notifications_sms_http_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(
                "GOV_NOTIFICATIONS_SMS_HTTP_URL must be an http(s) URL with the http SMS provider"
            )
        return self
