"""Service accounts: the credentials internal systems log in with."""

from __future__ import annotations

import datetime as dt
import secrets

from gov.identity.v1 import events_pb2
from govkit import pagination
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.auth.scopes import GLOBAL
from govkit.db import new_id, utcnow
from services.identity import convert, domain, repository
from services.identity.flows.common import FlowBase, time_cursor
from services.identity.models import ServiceAccount


class ServiceAccountFlows(FlowBase):
    async def create_service_account(
        self, principal: Principal, display_name: str
    ) -> tuple[ServiceAccount, str]:
        principal.require(Permission.SERVICE_ACCOUNTS_MANAGE, GLOBAL)
        name = domain.display_name(display_name)
        secret = secrets.token_urlsafe(32)
        secret_hash = await self.passwords.hash(secret)
        async with self.db.transaction() as session:
            account = ServiceAccount(
                id=new_id(),
                client_id=f"sa-{secrets.token_hex(8)}",
                display_name=name,
                secret_hash=secret_hash,
                disabled=False,
                create_time=utcnow(),
            )
            session.add(account)
            await session.flush()
            await self._emit(
                session,
                principal,
                "identity.v1.service_account.created",
                events_pb2.ServiceAccountCreated(service_account=convert.service_account(account)),
                f"serviceAccounts/{account.id}",
            )
        return account, secret

    async def list_service_accounts(
        self, principal: Principal, *, page_size: int, page_token: str
    ) -> tuple[list[ServiceAccount], str]:
        principal.require(Permission.SERVICE_ACCOUNTS_MANAGE, GLOBAL)
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("service_accounts")
        cursor = pagination.decode_token(page_token, fp, t=dt.datetime, id=str)
        after = (cursor["t"], cursor["id"]) if cursor else None
        async with self.db.sessions() as session:
            rows = await repository.list_service_accounts(session, after=after, limit=size + 1)
        rows, next_token = pagination.cut(rows, size, fp, time_cursor)
        return rows, next_token
