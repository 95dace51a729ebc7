"""Credit tiers for a partner bank: per district, thresholds of net conduct (and a clean record)
mapped to credit lines. The bank's service account asks for a resident's tier; it is answered only
while the resident's consent to that bank is on record, and every query, answered or refused, is
written to an audit log the resident reads."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gov.points.v1 import events_pb2
from gov.points.v1 import points_pb2 as pb
from govkit import keyset, pagination, validation
from govkit.auth.principal import Principal
from govkit.auth.scopes import validate_path
from govkit.db import get_row, new_id
from govkit.errors import InvalidArgument, PermissionDenied
from govkit.keyset import newest_first, time_id_cursor
from govkit.protobuf import timestamp
from services.points import domain, repository
from services.points.catalogue import require_configure
from services.points.domain import AwardState, IndicatorKind, Tier
from services.points.flows import PointsFlows
from services.points.models import Account, Award, CreditConsent, CreditPolicy, CreditQuery


def _tier_message(tier: Tier) -> pb.CreditTier:
    return pb.CreditTier(
        display_name=tier.display_name,
        min_points=tier.min_points,
        clean_months=tier.clean_months,
        credit_amount=tier.credit_amount,
    )


def policy_message(row: CreditPolicy) -> pb.CreditPolicy:
    return pb.CreditPolicy(
        name=f"creditPolicies/{row.district}",
        district=row.district,
        window_months=row.window_months,
        tiers=[_tier_message(Tier(**t)) for t in json.loads(row.tiers)],
        update_time=timestamp(row.update_time),
    )


def consent_message(row: CreditConsent) -> pb.CreditConsent:
    return pb.CreditConsent(
        name=f"users/{row.user_id}/creditConsents/{row.bank}",
        bank=f"serviceAccounts/{row.bank}",
        granted=row.granted,
        grant_time=timestamp(row.grant_time),
        revoke_time=timestamp(row.revoke_time),
    )


def query_message(row: CreditQuery) -> pb.CreditQuery:
    return pb.CreditQuery(
        name=f"users/{row.user_id}/creditQueries/{row.id}",
        caller=row.caller,
        answered=row.answered,
        refusal=row.refusal,
        tier=row.tier,
        time=timestamp(row.time),
    )


async def net_conduct(
    session: AsyncSession, account_id: str, since: dt.datetime
) -> tuple[int, dt.datetime | None]:
    """(awards minus penalties by points since `since`, the last penalty's time): posted ones only,
    so a rejected, expired or reversed award does not count."""
    when = func.coalesce(Award.decide_time, Award.create_time)
    signed = case((Award.kind == IndicatorKind.PENALTY.value, -Award.points), else_=Award.points)
    net = await session.scalar(
        select(func.coalesce(func.sum(signed), 0)).where(
            Award.account_id == account_id, Award.state == AwardState.POSTED.value, when >= since
        )
    )
    last = await session.scalar(
        select(func.max(when)).where(
            Award.account_id == account_id,
            Award.state == AwardState.POSTED.value,
            Award.kind == IndicatorKind.PENALTY.value,
        )
    )
    return int(net or 0), last


class Credit:
    def __init__(self, flows: PointsFlows) -> None:
        self.flows = flows
        self.db = flows.db

    async def set_policy(self, principal: Principal, msg: pb.CreditPolicy) -> CreditPolicy:
        district = validate_path(msg.district, field="policy.district", allow_global=False)
        if "/" in district:
            raise InvalidArgument("must be a district (the first level of the tree)", field="policy.district")
        require_configure(principal, district)
        tiers = domain.check_tiers(
            [Tier(t.display_name.strip(), t.min_points, t.clean_months, t.credit_amount) for t in msg.tiers],
            msg.window_months,
        )
        async with self.db.transaction() as session:
            row = await session.get(CreditPolicy, district, with_for_update=True)
            if row is None:
                row = CreditPolicy(district=district)
                session.add(row)
            row.window_months = msg.window_months
            row.tiers = json.dumps([t.__dict__ for t in tiers], ensure_ascii=False)
            row.update_time = self.flows.clock()
        return row

    async def get_policy(self, name: str) -> CreditPolicy:
        district = name.removeprefix("creditPolicies/")
        async with self.db.sessions() as session:
            return await get_row(session, CreditPolicy, district, f"no creditPolicies/{district}")

    async def set_consent(self, principal: Principal, bank: str, granted: bool) -> CreditConsent:
        if not principal.is_user:
            raise PermissionDenied("a resident grants or revokes their own consent")
        bank_id = validation.resource_id(bank, "serviceAccounts", "bank")
        now = self.flows.clock()
        async with self.db.transaction() as session:
            row = await session.get(CreditConsent, (principal.user_id, bank_id), with_for_update=True)
            if row is None:
                row = CreditConsent(
                    user_id=principal.user_id, bank=bank_id, grant_time=None, revoke_time=None
                )
                session.add(row)
            row.granted = granted
            if granted:
                row.grant_time, row.revoke_time = now, None
            else:
                row.revoke_time = now
            await repository.emit(
                session,
                principal.subject,
                f"points.v1.consent.{'granted' if granted else 'revoked'}",
                events_pb2.ConsentChanged(
                    resident=principal.subject, bank=f"serviceAccounts/{bank_id}", granted=granted
                ),
                f"users/{principal.user_id}/creditConsents/{bank_id}",
            )
        return row

    async def list_consents(
        self, principal: Principal, page_size: int, page_token: str
    ) -> tuple[list[CreditConsent], str]:
        if not principal.is_user:
            raise PermissionDenied("a resident lists their own consents")
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("consents", principal.subject)
        cursor = pagination.decode_token(page_token, fp, b=str)
        stmt = select(CreditConsent).where(CreditConsent.user_id == principal.user_id)
        return await keyset.ascending(self.db, stmt, CreditConsent.bank, "b", cursor, size, fp)

    async def get_tier(self, principal: Principal, resident: str) -> pb.CreditTierAnswer:
        user_id = validation.resource_id(resident, "users", "resident")
        now = self.flows.clock()
        answer: pb.CreditTierAnswer | None = None
        refusal = ""
        if not principal.subject.startswith("serviceAccounts/"):
            refusal = "only a bank's service account asks for a credit tier"
        else:
            bank_id = principal.subject.removeprefix("serviceAccounts/")
            async with self.db.sessions() as session:
                consent = await session.get(CreditConsent, (user_id, bank_id))
                if consent is None or not consent.granted:
                    refusal = "the resident's consent for this bank is not on record"
                else:
                    answer = await self._answer(session, user_id, now)
                    if answer is None:
                        refusal = "no credit policy for the resident's district"
        # Audited whatever the outcome, before the caller hears it.
        async with self.db.transaction() as session:
            session.add(
                CreditQuery(
                    id=new_id(),
                    user_id=user_id,
                    caller=principal.subject,
                    answered=answer is not None,
                    refusal=refusal,
                    tier=answer.tier.display_name if answer is not None else "",
                    time=now,
                )
            )
        if answer is None:
            raise PermissionDenied(refusal)
        return answer

    async def _answer(
        self, session: AsyncSession, user_id: str, now: dt.datetime
    ) -> pb.CreditTierAnswer | None:
        account = await session.get(Account, domain.account_id(f"users/{user_id}"))
        district = account.node.split("/")[0] if account is not None and account.node else ""
        policy = await session.get(CreditPolicy, district) if district else None
        if policy is None:
            return None
        assert account is not None
        since = domain.add_months(now, -policy.window_months)
        net, last_penalty = await net_conduct(session, account.id, since)
        tier = domain.choose_tier([Tier(**t) for t in json.loads(policy.tiers)], net, last_penalty, now)
        return pb.CreditTierAnswer(
            resident=f"users/{user_id}",
            district=district,
            tier=_tier_message(tier) if tier is not None else None,
            net_points=net,
            last_penalty_time=timestamp(last_penalty),
            time=timestamp(now),
        )

    async def list_queries(
        self, principal: Principal, parent: str, page_size: int, page_token: str
    ) -> tuple[list[CreditQuery], str]:
        user_id = validation.resource_id(parent, "users", "parent")
        if principal.subject != f"users/{user_id}":
            raise PermissionDenied("a resident reads their own credit queries")
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("credit-queries", user_id)
        cursor = time_id_cursor(page_token, fp)
        stmt = select(CreditQuery).where(CreditQuery.user_id == user_id)
        return await newest_first(self.db, stmt, CreditQuery.time, CreditQuery.id, cursor, size, fp)
