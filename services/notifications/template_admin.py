"""Message templates through the API: read the text in use, edit it (checked first), preview it."""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import dataclass
from itertools import product

from govkit import pagination
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.auth.scopes import GLOBAL
from govkit.db import Database, utcnow
from govkit.errors import InvalidArgument, NotFound, PermissionDenied
from services.notifications import sms, templates
from services.notifications.intake import load_edits
from services.notifications.models import TemplateText
from services.notifications.texts import CHANNELS, LOCALES, PARAMETERS


@dataclass(frozen=True)
class TemplateView:
    kind: str
    channel: str
    locale: str
    subject: str
    body: str
    customized: bool
    update_time: dt.datetime | None

    @property
    def name(self) -> str:
        return f"templates/{self.kind}/{self.channel}/{self.locale}"


@dataclass(frozen=True)
class Preview:
    subject: str
    body: str
    sms_parts: builtins.list[str]


def parse_name(name: str, field: str = "name") -> tuple[str, str, str]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "templates":
        raise InvalidArgument("must be templates/{kind}/{channel}/{locale}", field=field)
    _, kind, channel, locale = parts
    if kind not in PARAMETERS:
        raise NotFound(f"no message kind {kind!r}")
    if channel not in CHANNELS:
        raise InvalidArgument(f"channel must be one of {', '.join(CHANNELS)}", field=field)
    if locale not in LOCALES:
        raise InvalidArgument(f"locale must be one of {', '.join(LOCALES)}", field=field)
    return kind, channel, locale


def _staff(principal: Principal) -> None:
    if not principal.scopes_for(Permission.NOTIFICATIONS_MANAGE):
        raise PermissionDenied("notifications.manage is not granted to the caller")


class Templates:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _view(self, kind: str, channel: str, locale: str) -> TemplateView:
        async with self.db.sessions() as session:
            row = await session.get(TemplateText, (kind, channel, locale))
        if row is not None:
            return TemplateView(kind, channel, locale, row.subject, row.body, True, row.update_time)
        subject, body, _ = templates.source(kind, channel, locale, {})
        return TemplateView(kind, channel, locale, subject, body, False, None)

    async def get(self, principal: Principal, name: str) -> TemplateView:
        _staff(principal)
        return await self._view(*parse_name(name))

    async def list(
        self, principal: Principal, kind: str, *, page_size: int, page_token: str
    ) -> tuple[builtins.list[TemplateView], str]:
        _staff(principal)
        if kind and kind not in PARAMETERS:
            raise InvalidArgument("no such message kind", field="kind")
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("templates", kind)
        cursor = pagination.decode_token(page_token, fp, name=str)
        kinds = [kind] if kind else sorted(PARAMETERS)
        names = sorted(f"templates/{k}/{c}/{loc}" for k, c, loc in product(kinds, CHANNELS, LOCALES))
        if cursor is not None:
            names = [n for n in names if n > cursor["name"]]
        async with self.db.sessions() as session:
            edits = await load_edits(session)
        views = []
        for name in names[: size + 1]:
            k, c, loc = parse_name(name)
            if (k, c, loc) in edits:
                subject, body = edits[(k, c, loc)]
                views.append(TemplateView(k, c, loc, subject, body, True, None))
            else:
                subject, body, _ = templates.source(k, c, loc, {})
                views.append(TemplateView(k, c, loc, subject, body, False, None))
        return pagination.cut(views, size, fp, lambda v: {"name": v.name})

    async def update(self, principal: Principal, name: str, subject: str, body: str) -> TemplateView:
        principal.require(Permission.NOTIFICATIONS_MANAGE, GLOBAL)
        kind, channel, locale = parse_name(name, "template.name")
        if not body.strip():
            raise InvalidArgument("is required", field="template.body")
        if len(subject) > 200:
            raise InvalidArgument("at most 200 characters", field="template.subject")
        templates.check(kind, subject, body)
        now = utcnow()
        async with self.db.transaction() as session:
            row = await session.get(TemplateText, (kind, channel, locale))
            if row is None:
                row = TemplateText(kind=kind, channel=channel, locale=locale)
                session.add(row)
            row.subject, row.body, row.updated_by, row.update_time = subject, body, principal.subject, now
        return TemplateView(kind, channel, locale, subject, body, True, now)

    async def preview(
        self, principal: Principal, name: str, subject: str, body: str, params: dict[str, str]
    ) -> Preview:
        _staff(principal)
        kind, channel, locale = parse_name(name)
        if not subject and not body:
            current = await self._view(kind, channel, locale)
            subject, body = current.subject, current.body
        out = templates.check(kind, subject, body, params)
        parts = [p.labelled() for p in sms.split(out.body)] if channel == "sms" else []
        return Preview(out.subject, out.body, parts)
