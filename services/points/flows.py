"""Points' use cases on the ledger: awards and penalties (with the supervisor's approval where the
indicator asks for it), accounts and statements, reversals.

Each mutating use case is one transaction: the account row locked, the rules applied, the
entries, balances and events (transactional outbox) written together, so a crash keeps all or
none of them. A retried request (same id, same body) returns what the first one did.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Sequence

import grpc
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gov.blocks.v1 import blocks_pb2, blocks_pb2_grpc
from gov.points.v1 import events_pb2
from gov.points.v1 import points_pb2 as pb
from govkit import blockstaff, pagination, peers, validation
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission, Role
from govkit.auth.scopes import covers, validate_path
from govkit.db import Database, utcnow
from govkit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unavailable
from govkit.keyset import newest_first, time_id_cursor
from govkit.sqlpaths import any_within
from services.points import catalogue, convert, domain, repository
from services.points.catalogue import Catalogue, resource_id, terms_of
from services.points.domain import AwardState, IndicatorKind
from services.points.ledger import ISSUANCE, PENALTIES, REDEEMED, Kind, Phase
from services.points.models import Account, Award, Entry, Indicator, Lot

_URI = re.compile(r"^https?://[^\s]{1,490}$")
MAX_EVIDENCE = 10
# Token roles whose scope lets staff read accounts and awards below it (changes need live rights).
_READERS = frozenset(
    {Role.ADMIN, Role.LEADER, Role.DISPATCHER, Role.GOVERNOR, Role.ASSISTANT, Role.SUPERVISOR}
)
_COUNTED = (AwardState.PENDING_APPROVAL.value, AwardState.POSTED.value)


@dataclasses.dataclass(frozen=True)
class Settings:
    approval_timeout: dt.timedelta = dt.timedelta(days=30)
    redemption_hold: dt.timedelta = dt.timedelta(hours=72)
    expiry_notice: dt.timedelta = dt.timedelta(days=30)


def household_share_id(award_id: str) -> str:
    """The id of a household's share of a member's award: derived, so a retry finds the same one."""
    return "hh-" + hashlib.sha256(award_id.encode()).hexdigest()[:40]


def reader_scopes(principal: Principal) -> list[str]:
    return sorted({b.scope for b in principal.bindings if b.role in _READERS})


def can_read(principal: Principal, owner: str, node: str) -> bool:
    return owner == principal.subject or any(covers(s, node) for s in reader_scopes(principal))


def evidence(uris: Sequence[str]) -> list[str]:
    if len(uris) > MAX_EVIDENCE:
        raise InvalidArgument(f"at most {MAX_EVIDENCE} links", field="award.evidence_uris")
    for i, uri in enumerate(uris):
        if not _URI.match(uri):
            raise InvalidArgument(
                "must be an http(s) URL of at most 500 characters", field=f"award.evidence_uris[{i}]"
            )
    return list(uris)


class PointsFlows:
    def __init__(
        self,
        db: Database,
        catalogue: Catalogue,
        blocks: blocks_pb2_grpc.BlocksServiceStub | None,
        settings: Settings | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.db = db
        self.catalogue = catalogue
        self.blocks = blocks
        self.settings = settings or Settings()
        self.clock = clock

    async def staff_roles(self, principal: Principal, block: str) -> frozenset[str]:
        return await blockstaff.staff_roles(self.blocks, principal, block)

    # ---------------------------------------------------------------- awards

    async def create_award(self, principal: Principal, msg: pb.Award, request_id: str) -> Award:
        award_id = domain.request_id(request_id)
        account_id = domain.account_id(msg.recipient, "award.recipient")
        node = validate_path(msg.node, field="award.node", allow_global=False)
        indicator_id = resource_id(msg.indicator, "indicators", "award.indicator")
        note = validation.text(msg.note, "award.note", max_len=500, required=False, multiline=True)
        uris = evidence(msg.evidence_uris)
        household = (
            f"households/{validation.resource_id(msg.household, 'households', 'award.household')}"
            if msg.household
            else ""
        )
        body: dict[str, object] = {
            "recipient": msg.recipient,
            "node": node,
            "indicator": indicator_id,
            "note": note,
            "evidence": uris,
            "by": principal.subject,
            "household": household,
        }
        existing = await self._award_row(award_id)
        if existing is not None:
            domain.same_request(existing.request_hash, body, "award", award_id)
            return existing
        domain.check_recorder(await self.staff_roles(principal, node), node)
        if msg.recipient.startswith("households/"):
            await self._household_at(principal, msg.recipient, node)
        if household:
            if not msg.recipient.startswith("users/"):
                raise InvalidArgument(
                    "only a resident's award names their household", field="award.household"
                )
            await self._household_at(principal, household, node, member=msg.recipient)
        try:
            return await self._record(
                principal,
                award_id,
                account_id,
                msg.recipient,
                node,
                indicator_id,
                note,
                uris,
                body,
                household,
            )
        except IntegrityError:
            existing = await self._award_row(award_id)
            if existing is None:  # the id is taken by another kind of entry
                domain.raise_conflict("entry", award_id)
            domain.same_request(existing.request_hash, body, "award", award_id)
            return existing

    async def _household_at(self, principal: Principal, household: str, node: str, member: str = "") -> None:
        """The household is in `node` (and `member` is one of its linked residents), as blocks says."""
        if self.blocks is None:
            raise Unavailable("the blocks service is not configured")
        found = await peers.ask(
            self.blocks.GetHousehold,
            blocks_pb2.GetHouseholdRequest(name=household),
            principal,
            peer="blocks",
            refused="no such household within the caller's reach",
            field="award.household" if member else "award.recipient",
        )
        field = "award.household" if member else "award.recipient"
        if found.block != node:
            raise InvalidArgument(f"{household} is not in {node}", field=field)
        if member and member not in {r.user for r in found.residents}:
            raise InvalidArgument(f"{member} is not a resident of {household}", field=field)

    async def _record(
        self,
        principal: Principal,
        award_id: str,
        account_id: str,
        recipient: str,
        node: str,
        indicator_id: str,
        note: str,
        uris: list[str],
        body: dict[str, object],
        household: str = "",
    ) -> Award:
        async with self.db.transaction() as session:
            indicator = await self.catalogue.in_force(session, indicator_id, node)
            shared = indicator.credit_household and recipient.startswith("users/")
            if shared and not household:
                raise InvalidArgument(
                    "is required: this indicator credits the resident's household too",
                    field="award.household",
                )
            award = await self.record_in(
                session, principal.subject, award_id, account_id, recipient, node, indicator, note, uris, body
            )
            if shared:
                # The household's share: its own award on its own account, in the same transaction
                # (the member's account is locked first, then the household's, always in that order).
                share = await self.record_in(
                    session,
                    principal.subject,
                    household_share_id(award_id),
                    domain.account_id(household),
                    household,
                    node,
                    indicator,
                    note,
                    uris,
                    {**body, "share_of": award_id},
                    source_event=f"awards/{award_id}",
                    capped=False,
                )
                award.household_award = share.id
            return award

    async def record_in(
        self,
        session: AsyncSession,
        recorder: str,
        award_id: str,
        account_id: str,
        recipient: str,
        node: str,
        indicator: Indicator,
        note: str,
        uris: list[str],
        body: dict[str, object],
        source_event: str = "",
        *,
        capped: bool = True,
    ) -> Award:
        """Record an award inside the caller's transaction (a call's, or an event handler's).

        `capped=False` for a household's share: the cap counts each resident's own awards."""
        now = self.clock()
        terms = terms_of(indicator)
        domain.check_evidence(terms, uris)
        await repository.ensure_account(session, account_id, node, now)
        loaded = await repository.load(session, account_id)
        assert loaded is not None
        if terms.cap_count and capped:
            assert terms.cap_period is not None
            taken = await session.scalar(
                select(func.count()).where(
                    Award.account_id == account_id,
                    Award.indicator_id == indicator.id,
                    Award.state.in_(_COUNTED),
                    Award.create_time >= domain.period_start(terms.cap_period, now),
                )
            )
            domain.check_cap(terms, int(taken or 0))
        held = terms.approval_required
        award = Award(
            id=award_id,
            account_id=account_id,
            recipient=recipient,
            indicator_id=indicator.id,
            indicator_version=indicator.version,
            kind=terms.kind.value,
            points=terms.points,
            node=node,
            note=note,
            evidence=json.dumps(uris),
            state=(AwardState.PENDING_APPROVAL if held else AwardState.POSTED).value,
            recorded_by=recorder,
            decided_by="",
            decision_note="",
            applied=0,
            outstanding=0,
            approval_deadline=now + self.settings.approval_timeout if held else None,
            create_time=now,
            decide_time=None,
            request_hash=domain.fingerprint(body),
            appeal_state="",
            appeal_reason="",
            appeal_answer="",
            source_event=source_event,
            household_award="",
        )
        session.add(award)
        await session.flush()
        if held:
            if terms.kind == IndicatorKind.REWARD:
                # The points are held, not in the balance, until the supervisor decides.
                entry = await repository.add_entry(
                    session,
                    id=award_id,
                    kind=Kind.AWARD,
                    phase=Phase.PENDING,
                    debit=ISSUANCE,
                    credit=account_id,
                    account=account_id,
                    amount=terms.points,
                    actor=recorder,
                    now=now,
                    award_id=award_id,
                    timeout_time=award.approval_deadline,
                )
                loaded.book.hold_credit(terms.points)
                await repository.announce(session, entry)
            await self._announce_award(session, recorder, award, "pending")
        else:
            await self._post(session, loaded, award, terms.validity_months, recorder, now, held=False)
        await repository.save(session, loaded, now)
        return award

    async def post_award(
        self, session: AsyncSession, loaded: repository.Loaded, award: Award, now: dt.datetime, *, actor: str
    ) -> None:
        """Post an award made outside the catalogue (service points): never expires."""
        await self._post(session, loaded, award, 0, actor, now, held=False)

    async def _post(
        self,
        session: AsyncSession,
        loaded: repository.Loaded,
        award: Award,
        validity_months: int,
        actor: str,
        now: dt.datetime,
        *,
        held: bool,
    ) -> None:
        """Put an award's points (or a penalty's) into the ledger."""
        account_id = loaded.book.account
        if award.kind == IndicatorKind.PENALTY:
            entry = await repository.add_entry(
                session,
                id=award.id,
                kind=Kind.PENALTY,
                phase=Phase.POSTED,
                debit=account_id,
                credit=PENALTIES,
                account=account_id,
                amount=0,
                actor=actor,
                now=now,
                award_id=award.id,
            )
            applied, outstanding, allocations = loaded.book.penalize(award.id, entry.seq, award.points)
            entry.amount, entry.outstanding_delta = applied, outstanding
            award.applied, award.outstanding = applied, outstanding
            await session.flush()
            await repository.allocate(session, entry.id, allocations)
            await repository.announce(session, entry)
            return
        expires = domain.expiry_of(now, validity_months)
        entry = await repository.add_entry(
            session,
            id=f"{award.id}:post" if held else award.id,
            kind=Kind.AWARD,
            phase=Phase.POST if held else Phase.POSTED,
            debit=ISSUANCE,
            credit=account_id,
            account=account_id,
            amount=award.points,
            actor=actor,
            now=now,
            pending_id=award.id if held else None,
            award_id=award.id,
            expire_time=expires,
        )
        # The lot is named by the award's id, whether it posted at once or after approval.
        settlements = loaded.book.credit(award.id, entry.seq, award.points, now, expires, was_held=held)
        award.applied = award.points
        await repository.announce(session, entry)
        await repository.settle(session, loaded, settlements, entry, actor, now)

    async def _announce_award(self, session: AsyncSession, actor: str, award: Award, verb: str) -> None:
        await repository.emit(
            session,
            actor,
            f"points.v1.award.{verb}",
            events_pb2.AwardChanged(
                award=convert.award_facts(award),
                appeal_state=convert.value_of(pb.AppealState, award.appeal_state),
            ),
            f"awards/{award.id}",
        )

    async def _award_row(self, award_id: str) -> Award | None:
        async with self.db.sessions() as session:
            return await session.get(Award, award_id)

    async def get_award(self, principal: Principal, name: str) -> Award:
        row = await self._award_row(resource_id(name, "awards"))
        if row is None or not can_read(principal, row.recipient, row.node):
            raise NotFound(f"no {name}")
        return row

    async def list_awards(self, principal: Principal, req: pb.ListAwardsRequest) -> tuple[list[Award], str]:
        size = pagination.page_size(req.page_size)
        state = convert.name_of(pb.AwardState, req.state, "state", required=False)
        node = validate_path(req.node, field="node") if req.node else ""
        fp = pagination.fingerprint("awards", node, req.recipient, state, principal.subject)
        cursor = time_id_cursor(req.page_token, fp)
        scopes = reader_scopes(principal)
        stmt = select(Award).where(any_within(Award.node, scopes) | (Award.recipient == principal.subject))
        if node:
            stmt = stmt.where(any_within(Award.node, [node]))
        if req.recipient:
            stmt = stmt.where(Award.recipient == req.recipient)
        if state:
            stmt = stmt.where(Award.state == state)
        return await newest_first(self.db, stmt, Award.create_time, Award.id, cursor, size, fp)

    async def decide_award(self, principal: Principal, name: str, *, approve: bool, note: str) -> Award:
        award_id = resource_id(name, "awards")
        note = validation.text(note, "note", max_len=500, required=not approve, multiline=True)
        award = await self._award_row(award_id)
        if award is None:
            raise NotFound(f"no {name}")
        roles = await self.staff_roles(principal, award.node)
        domain.check_decider(AwardState(award.state), award.recorded_by, principal.subject, roles, award.node)
        now = self.clock()
        async with self.db.transaction() as session:
            loaded = await repository.load(session, award.account_id)
            assert loaded is not None
            award = await session.get(Award, award_id, with_for_update=True, populate_existing=True)
            assert award is not None
            if award.state != AwardState.PENDING_APPROVAL:
                raise FailedPrecondition(f"the award is {award.state}, not waiting for approval")
            award.decided_by, award.decision_note, award.decide_time = principal.subject, note, now
            reward = award.kind == IndicatorKind.REWARD
            if approve:
                award.state = AwardState.POSTED.value
                validity = await self._validity(session, award)
                await self._post(session, loaded, award, validity, principal.subject, now, held=reward)
            else:
                award.state = AwardState.REJECTED.value
                if reward:
                    await self.void(
                        session, loaded, award.id, Kind.AWARD, award.points, principal.subject, now
                    )
            await repository.save(session, loaded, now)
            await self._announce_award(
                session, principal.subject, award, "approved" if approve else "rejected"
            )
        return award

    async def _validity(self, session: AsyncSession, award: Award) -> int:
        """Validity of the indicator version the award was made under (read in the open transaction:
        a second connection while holding this one could starve the pool under load)."""
        snap = await catalogue.indicator_version(session, award.indicator_id, award.indicator_version)
        return snap.validity_months

    async def void(
        self,
        session: AsyncSession,
        loaded: repository.Loaded,
        pending_id: str,
        kind: Kind,
        amount: int,
        actor: str,
        now: dt.datetime,
        note: str = "",
    ) -> None:
        account_id = loaded.book.account
        credit_side = kind == Kind.AWARD
        entry = await repository.add_entry(
            session,
            id=f"{pending_id}:void",
            kind=kind,
            phase=Phase.VOID,
            debit=ISSUANCE if credit_side else account_id,
            credit=account_id if credit_side else REDEEMED,
            account=account_id,
            amount=amount,
            actor=actor,
            now=now,
            pending_id=pending_id,
            award_id=pending_id if credit_side else None,
            redemption_id=None if credit_side else pending_id,
            note=note,
        )
        if credit_side:
            loaded.book.release_credit(amount)
        else:
            loaded.book.unreserve(amount)
        await repository.announce(session, entry)

    async def expire_award(self, session: AsyncSession, award_id: str, now: dt.datetime) -> bool:
        """Void an award nobody decided in time (the sweeper); False if it was decided meanwhile."""
        award = await session.get(Award, award_id)
        if award is None:
            return False
        loaded = await repository.load(session, award.account_id)
        assert loaded is not None
        award = await session.get(Award, award_id, with_for_update=True, populate_existing=True)
        if award is None or award.state != AwardState.PENDING_APPROVAL:
            return False
        award.state, award.decide_time = AwardState.EXPIRED.value, now
        if award.kind == IndicatorKind.REWARD:
            await self.void(
                session, loaded, award.id, Kind.AWARD, award.points, "system", now, "approval timed out"
            )
        await repository.save(session, loaded, now)
        await self._announce_award(session, "system", award, "rejected")
        return True

    # ---------------------------------------------------------------- accounts and entries

    async def _account(self, principal: Principal, name: str) -> Account:
        if name.startswith(("users/", "households/")):
            account_id = domain.account_id(name, "name")
        else:
            account_id = resource_id(name, "accounts")
        async with self.db.sessions() as session:
            row = await session.get(Account, account_id)
        if row is None:
            owner = domain.owner_of(account_id)
            if owner == principal.subject:
                # A resident with no points yet has an empty account, not an error.
                now = self.clock()
                return Account(
                    id=account_id,
                    owner=owner,
                    node="",
                    credits_posted=0,
                    debits_posted=0,
                    credits_pending=0,
                    debits_pending=0,
                    outstanding=0,
                    create_time=now,
                    update_time=now,
                )
            raise NotFound(f"no {name}")
        if not can_read(principal, row.owner, row.node) and not await self._member_of(principal, row.owner):
            raise NotFound(f"no {name}")
        return row

    async def _member_of(self, principal: Principal, owner: str) -> bool:
        """The caller is a linked resident of the household `owner`, as blocks shows them."""
        if not owner.startswith("households/") or not principal.is_user or self.blocks is None:
            return False
        try:
            household = await self.blocks.GetHousehold(
                blocks_pb2.GetHouseholdRequest(name=owner), metadata=peers.on_behalf_of(principal), timeout=5
            )
        except grpc.aio.AioRpcError:
            return False
        return principal.subject in {r.user for r in household.residents}

    async def get_account(self, principal: Principal, name: str) -> pb.Account:
        row = await self._account(principal, name)
        horizon = self.clock() + self.settings.expiry_notice
        async with self.db.sessions() as session:
            expiring, first = (
                await session.execute(
                    select(func.coalesce(func.sum(Lot.remaining), 0), func.min(Lot.expires_at)).where(
                        Lot.account_id == row.id, Lot.remaining > 0, Lot.expires_at <= horizon
                    )
                )
            ).one()
        return convert.account(row, int(expiring), first)

    async def list_entries(
        self, principal: Principal, parent: str, page_size: int, page_token: str
    ) -> tuple[list[pb.Entry], str]:
        account = await self._account(principal, parent)
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("entries", account.id)
        cursor = pagination.decode_token(page_token, fp, s=int)
        stmt = select(Entry).where(Entry.account_id == account.id)
        if cursor:
            stmt = stmt.where(Entry.seq < cursor["s"])
        async with self.db.sessions() as session:
            rows = list((await session.scalars(stmt.order_by(Entry.seq.desc()).limit(size + 1))).all())
            rows, token = pagination.cut(rows, size, fp, lambda r: {"s": r.seq})
            return await self._entries(session, rows), token

    async def _entries(self, session: AsyncSession, rows: Sequence[Entry]) -> list[pb.Entry]:
        expiries = [r.id for r in rows if r.kind == Kind.EXPIRY]
        named = await repository.allocations_of(session, expiries)
        return [convert.entry(r, [lot for lot, _ in named.get(r.id, [])]) for r in rows]

    async def get_entry(self, principal: Principal, name: str) -> pb.Entry:
        entry_id = resource_id(name, "entries")
        async with self.db.sessions() as session:
            row = await session.scalar(select(Entry).where(Entry.id == entry_id))
            if row is None:
                raise NotFound(f"no {name}")
            account = await session.get(Account, row.account_id)
            if account is None or not can_read(principal, account.owner, account.node):
                raise NotFound(f"no {name}")
            return (await self._entries(session, [row]))[0]

    # ---------------------------------------------------------------- reversals

    async def reverse_entry(self, principal: Principal, name: str, reason: str, request_id: str) -> pb.Entry:
        target_id = resource_id(name, "entries")
        reversal_id = domain.request_id(request_id)
        reason = validation.text(reason, "reason", max_len=500, multiline=True)
        async with self.db.sessions() as session:
            existing = await session.scalar(select(Entry).where(Entry.id == reversal_id))
            target = await session.scalar(select(Entry).where(Entry.id == target_id))
            account = await session.get(Account, target.account_id) if target else None
        if existing is not None:
            if existing.reverses != target_id or existing.actor != principal.subject:
                domain.raise_conflict("entry", reversal_id)
            return (await self._read_entries([existing]))[0]
        if target is None or account is None:
            raise NotFound(f"no {name}")
        await self._require_corrector(principal, account, target)
        if target.kind not in (Kind.AWARD, Kind.PENALTY, Kind.REDEMPTION) or target.phase not in (
            Phase.POSTED,
            Phase.POST,
        ):
            raise FailedPrecondition(
                "only a posted award, penalty or redemption can be reversed; "
                "a pending one is decided or voided instead"
            )
        now = self.clock()
        try:
            async with self.db.transaction() as session:
                row = await self._reverse(session, principal.subject, target, reversal_id, reason, now)
                return (await self._entries(session, [row]))[0]
        except IntegrityError:
            async with self.db.sessions() as session:
                existing = await session.scalar(select(Entry).where(Entry.id == reversal_id))
                already = await session.scalar(select(Entry.id).where(Entry.reverses == target_id))
            if existing is not None and existing.reverses == target_id:
                return (await self._read_entries([existing]))[0]
            if already is not None:
                raise FailedPrecondition(f"{name} is already reversed") from None
            domain.raise_conflict("entry", reversal_id)
            raise

    async def _read_entries(self, rows: Sequence[Entry]) -> list[pb.Entry]:
        async with self.db.sessions() as session:
            return await self._entries(session, rows)

    async def _require_corrector(self, principal: Principal, account: Account, target: Entry) -> None:
        """A leader whose scope covers the account, or the supervisor of the award's block (live)."""
        if principal.can(Permission.POINTS_CONFIGURE, account.node):
            return
        if target.award_id:
            award = await self._award_row(target.award_id)
            if award is not None and domain.APPROVERS & await self.staff_roles(principal, award.node):
                return
        raise PermissionDenied(
            "only the block's supervisor or a leader over the account corrects its entries"
        )

    async def _reverse(
        self,
        session: AsyncSession,
        actor: str,
        target: Entry,
        reversal_id: str,
        reason: str,
        now: dt.datetime,
    ) -> Entry:
        if await session.scalar(select(Entry.id).where(Entry.reverses == target.id)):
            raise FailedPrecondition(f"entries/{target.id} is already reversed")
        account_id = target.account_id
        if target.kind == Kind.AWARD:
            lot_id = target.award_id or target.id
            loaded = await repository.load(session, account_id, lots=[lot_id])
            assert loaded is not None
            taken, owed, allocations = loaded.book.reverse_credit(lot_id, target.amount, reversal_id, 0)
            row = await repository.add_entry(
                session,
                id=reversal_id,
                kind=Kind.REVERSAL,
                phase=Phase.POSTED,
                debit=account_id,
                credit=ISSUANCE,
                account=account_id,
                amount=taken,
                actor=actor,
                now=now,
                reverses=target.id,
                outstanding_delta=owed,
                award_id=target.award_id,
                note=reason,
            )
            for debt in loaded.book.debts:
                if debt.entry_id == reversal_id:
                    debt.seq = row.seq
        else:
            settlements = []
            if target.kind == Kind.PENALTY:
                paid = list(await session.scalars(select(Entry.id).where(Entry.settles == target.id)))
                settlements = list((await repository.allocations_of(session, paid)).items())
            own = (await repository.allocations_of(session, [target.id])).get(target.id, [])
            lots = {lot for lot, _ in own} | {lot for _, a in settlements for lot, _ in a}
            loaded = await repository.load(session, account_id, lots=lots, debts=[target.id])
            assert loaded is not None
            credited, allocations = loaded.book.reverse_debit(own, settlements)
            cancelled = loaded.book.cancel_debt(target.id)
            row = await repository.add_entry(
                session,
                id=reversal_id,
                kind=Kind.REVERSAL,
                phase=Phase.POSTED,
                debit=PENALTIES if target.kind == Kind.PENALTY else REDEEMED,
                credit=account_id,
                account=account_id,
                amount=credited,
                actor=actor,
                now=now,
                reverses=target.id,
                outstanding_delta=-cancelled,
                award_id=target.award_id,
                redemption_id=target.redemption_id,
                note=reason,
            )
        await repository.allocate(session, row.id, allocations)
        await repository.save(session, loaded, now)
        if target.award_id:
            award = await session.get(Award, target.award_id)
            if award is not None:
                award.state = AwardState.REVERSED.value
        await repository.announce(session, row)
        return row

    # ---------------------------------------------------------------- appeals

    async def appeal(self, principal: Principal, name: str, reason: str) -> Award:
        award_id = resource_id(name, "awards")
        reason = validation.text(reason, "reason", max_len=500, multiline=True)
        async with self.db.transaction() as session:
            award = await session.get(Award, award_id, with_for_update=True)
            if award is None or not can_read(principal, award.recipient, award.node):
                raise NotFound(f"no {name}")
            domain.check_appeal(
                IndicatorKind(award.kind),
                AwardState(award.state),
                award.appeal_state,
                award.recipient,
                principal.subject,
            )
            award.appeal_state, award.appeal_reason = domain.AppealState.OPEN.value, reason
            await self._announce_award(session, principal.subject, award, "appealed")
        return award

    async def decide_appeal(
        self, principal: Principal, name: str, *, reverse: bool, answer: str, request_id: str
    ) -> Award:
        """The block's supervisor (live, never the one who recorded the penalty) answers."""
        award_id = resource_id(name, "awards")
        answer = validation.text(answer, "answer", max_len=500, multiline=True)
        reversal_id = domain.request_id(request_id) if reverse else ""
        award = await self._award_row(award_id)
        if award is None:
            raise NotFound(f"no {name}")
        roles = await self.staff_roles(principal, award.node)
        if not roles & domain.APPROVERS:
            raise PermissionDenied(f"only the supervisor of {award.node} decides appeals there")
        if principal.subject == award.recorded_by:
            raise PermissionDenied("the person who recorded a penalty cannot decide its appeal")
        now = self.clock()
        async with self.db.transaction() as session:
            await repository.load(session, award.account_id)  # the account's lock first, as everywhere
            award = await session.get(Award, award_id, with_for_update=True, populate_existing=True)
            assert award is not None
            if award.appeal_state != domain.AppealState.OPEN:
                raise FailedPrecondition("no open appeal on this award")
            if reverse:
                target = await session.scalar(select(Entry).where(Entry.id == award.id))
                assert target is not None
                await self._reverse(session, principal.subject, target, reversal_id, answer, now)
            award.appeal_state = (domain.AppealState.REVERSED if reverse else domain.AppealState.UPHELD).value
            award.appeal_answer = answer
            await self._announce_award(session, principal.subject, award, "appeal_decided")
        return award
