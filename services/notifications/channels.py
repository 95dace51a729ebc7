"""Outside channels behind one interface: a message and where to send it in, sent or an error out.

Each send carries the delivery's dedupe key (webhook header, SMS request id, e-mail Message-ID):
a delivery is sent at least once, and a receiver that keeps the key drops a repeat sent after a
worker died between sending and recording it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib
import httpx

from services.notifications import sms
from services.notifications.domain import mask_phone

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Gov-Signature"
TIMESTAMP_HEADER = "X-Gov-Timestamp"
DELIVERY_HEADER = "X-Gov-Delivery"


@dataclass(frozen=True)
class Outgoing:
    delivery_id: str
    dedupe_key: str
    kind: str
    subject: str
    body: str
    link: str


@dataclass(frozen=True)
class Address:
    """Where one message goes: a robot URL and its secret, an e-mail address, a phone number."""

    target: str
    secret: str = ""


class SendError(Exception):
    """The channel did not take the message; the delivery is tried again later."""


class Channel(Protocol):
    name: str

    async def send(self, message: Outgoing, address: Address) -> None: ...


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over `timestamp.body`, hex: what a robot checks before trusting a message."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


async def _post(client: httpx.AsyncClient, who: str, url: str, **request: Any) -> None:
    """One POST to an outside party; unreachable or any answer but 2xx is a SendError naming `who`."""
    try:
        response = await client.post(url, **request)
    except httpx.HTTPError as exc:
        raise SendError(f"{who} unreachable: {type(exc).__name__}") from None
    if response.status_code >= 300:
        raise SendError(f"{who} answered {response.status_code}")


class WebhookChannel:
    """WeCom/DingTalk-style group robots: a signed JSON text message posted to the robot's URL."""

    name = "webhook"

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, message: Outgoing, address: Address) -> None:
        content = f"{message.subject}\n{message.body}" + (f"\n{message.link}" if message.link else "")
        payload = {
            "msgtype": "text",
            "text": {"content": content},
            "kind": message.kind,
            "id": message.dedupe_key,
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(address.secret, timestamp, body),
            DELIVERY_HEADER: message.dedupe_key,
        }
        await _post(self.client, "webhook", address.target, content=body, headers=headers)


class SmsProvider(Protocol):
    async def send_part(self, phone: str, part: sms.SmsPart, request_id: str) -> None: ...


class LogSmsProvider:
    """The default: writes each part to the log (numbers masked) instead of sending it."""

    async def send_part(self, phone: str, part: sms.SmsPart, request_id: str) -> None:
        log.info(
            "sms (log provider)",
            extra={
                "to": mask_phone(phone),
                "part": f"{part.index}/{part.total}",
                "text": part.text,
                "id": request_id,
            },
        )


class HttpSmsProvider:
    """A provider's HTTP API: one JSON POST per part, bearer-authenticated."""

    def __init__(self, client: httpx.AsyncClient, url: str, token: str) -> None:
        self.client, self.url, self.token = client, url, token

    async def send_part(self, phone: str, part: sms.SmsPart, request_id: str) -> None:
        payload = {"to": phone, "text": part.text, "part": part.index, "parts": part.total, "id": request_id}
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        await _post(self.client, "sms provider", self.url, json=payload, headers=headers)


class SmsChannel:
    name = "sms"

    def __init__(self, provider: SmsProvider) -> None:
        self.provider = provider

    async def send(self, message: Outgoing, address: Address) -> None:
        text = message.body + (f" {message.link}" if message.link else "")
        # A concatenated message's parts share its id; carriers join them on the phone.
        for part in sms.split(text):
            await self.provider.send_part(address.target, part, f"{message.dedupe_key}#{part.index}")


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str = ""
    password: str = ""
    start_tls: bool = False
    use_tls: bool = False
    timeout: float = 10.0


class EmailChannel:
    name = "email"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: Outgoing, address: Address) -> None:
        c = self.config
        mail = EmailMessage()
        mail["From"] = c.sender
        mail["To"] = address.target
        mail["Subject"] = message.subject
        # Stable per delivery: a resend after a crash is recognisable as the same message.
        mail["Message-ID"] = f"<{message.delivery_id}@notifications.gov>"
        mail.set_content(message.body + (f"\n\n{message.link}" if message.link else ""))
        try:
            await aiosmtplib.send(
                mail,
                hostname=c.host,
                port=c.port,
                username=c.username or None,
                password=c.password or None,
                start_tls=c.start_tls,
                use_tls=c.use_tls,
                timeout=c.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise SendError(f"smtp: {type(exc).__name__}") from None
