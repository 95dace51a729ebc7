"""Rows to protobuf messages and enum names both ways."""

from __future__ import annotations

import json
from typing import Any

from gov.points.v1 import events_pb2
from gov.points.v1 import points_pb2 as pb
from govkit import protobuf
from govkit.protobuf import timestamp
from services.points import models

# Enum values <-> the lower-case names the tables store; the flows call them convert.name_of/value_of.
name_of = protobuf.stored_name
value_of = protobuf.from_stored_name


def indicator(row: models.Indicator) -> pb.Indicator:
    return pb.Indicator(
        name=f"indicators/{row.id}",
        node=row.node,
        code=row.code,
        display_name=row.display_name,
        description=row.description,
        kind=value_of(pb.IndicatorKind, row.kind),
        points=row.points,
        evidence_required=row.evidence_required,
        approval_required=row.approval_required,
        cap_count=row.cap_count,
        cap_period=value_of(pb.Period, row.cap_period),
        validity_months=row.validity_months,
        credit_household=row.credit_household,
        active=row.active,
        version=row.version,
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )


def award(row: models.Award, entry_id: str | None = None) -> pb.Award:
    return pb.Award(
        name=f"awards/{row.id}",
        recipient=row.recipient,
        account=f"accounts/{row.account_id}",
        indicator=f"indicators/{row.indicator_id}",
        indicator_version=row.indicator_version,
        kind=value_of(pb.IndicatorKind, row.kind),
        points=row.points,
        node=row.node,
        note=row.note,
        evidence_uris=json.loads(row.evidence),
        state=value_of(pb.AwardState, row.state),
        recorded_by=row.recorded_by,
        decided_by=row.decided_by,
        decision_note=row.decision_note,
        applied_points=row.applied,
        outstanding_points=row.outstanding,
        entry=f"entries/{entry_id or row.id}",
        approval_deadline=timestamp(row.approval_deadline),
        create_time=timestamp(row.create_time),
        decide_time=timestamp(row.decide_time),
        appeal_state=value_of(pb.AppealState, row.appeal_state),
        appeal_reason=row.appeal_reason,
        appeal_answer=row.appeal_answer,
        source_event=row.source_event,
        household_award=f"awards/{row.household_award}" if row.household_award else "",
    )


def award_facts(row: models.Award) -> events_pb2.AwardFacts:
    return protobuf.project(award(row), events_pb2.AwardFacts, award=f"awards/{row.id}")


def account(row: models.Account, expiring: int = 0, next_expiry: Any = None) -> pb.Account:
    balance = row.credits_posted - row.debits_posted
    return pb.Account(
        name=f"accounts/{row.id}",
        owner=row.owner,
        node=row.node,
        balance=balance,
        available=balance - row.debits_pending,
        reserved=row.debits_pending,
        pending_credits=row.credits_pending,
        outstanding_penalty=row.outstanding,
        credits_posted=row.credits_posted,
        debits_posted=row.debits_posted,
        credits_pending=row.credits_pending,
        debits_pending=row.debits_pending,
        expiring_points=expiring,
        next_expire_time=timestamp(next_expiry),
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )


def _entry_name(entry_id: str | None) -> str:
    return f"entries/{entry_id}" if entry_id else ""


def entry(row: models.Entry, expired_entries: list[str] | None = None) -> pb.Entry:
    return pb.Entry(
        name=f"entries/{row.id}",
        kind=value_of(pb.EntryKind, row.kind),
        phase=value_of(pb.EntryPhase, row.phase),
        debit_account=f"accounts/{row.debit_account}",
        credit_account=f"accounts/{row.credit_account}",
        amount=row.amount,
        pending_entry=_entry_name(row.pending_id),
        reverses=_entry_name(row.reverses),
        settles=_entry_name(row.settles),
        expired_entries=[f"entries/{e}" for e in expired_entries or []],
        outstanding_delta=row.outstanding_delta,
        award=f"awards/{row.award_id}" if row.award_id else "",
        redemption=f"redemptions/{row.redemption_id}" if row.redemption_id else "",
        actor=row.actor,
        note=row.note,
        expire_time=timestamp(row.expire_time),
        timeout_time=timestamp(row.timeout_time),
        create_time=timestamp(row.create_time),
    )


def entry_facts(row: models.Entry, expired_entries: list[str] | None = None) -> events_pb2.EntryFacts:
    return protobuf.project(
        entry(row, expired_entries),
        events_pb2.EntryFacts,
        entry=f"entries/{row.id}",
        account=f"accounts/{row.account_id}",
    )


def exchange_point(row: models.ExchangePoint) -> pb.ExchangePoint:
    return pb.ExchangePoint(
        name=f"exchangePoints/{row.id}",
        node=row.node,
        display_name=row.display_name,
        address=row.address,
        staff=[f"users/{u}" for u in json.loads(row.staff)],
        active=row.active,
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )


def item(row: models.Item) -> pb.Item:
    return pb.Item(
        name=f"exchangePoints/{row.exchange_point_id}/items/{row.id}",
        display_name=row.display_name,
        description=row.description,
        kind=value_of(pb.ItemKind, row.kind),
        price=row.price,
        stock=row.stock,
        limit_per_person=row.limit_per_person,
        limit_period=value_of(pb.Period, row.limit_period),
        active=row.active,
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )


def redemption(row: models.Redemption) -> pb.Redemption:
    return pb.Redemption(
        name=f"redemptions/{row.id}",
        item=f"exchangePoints/{row.exchange_point_id}/items/{row.item_id}",
        quantity=row.quantity,
        account=f"accounts/{row.account_id}",
        resident=row.resident,
        points=row.points,
        state=value_of(pb.RedemptionState, row.state),
        entry=f"entries/{row.id}",
        expire_time=timestamp(row.expire_time),
        fulfilled_by=row.fulfilled_by,
        cancelled_by=row.cancelled_by,
        reason=row.reason,
        create_time=timestamp(row.create_time),
        update_time=timestamp(row.update_time),
    )


def redemption_facts(row: models.Redemption) -> events_pb2.RedemptionFacts:
    return protobuf.project(
        redemption(row),
        events_pb2.RedemptionFacts,
        redemption=f"redemptions/{row.id}",
        exchange_point=f"exchangePoints/{row.exchange_point_id}",
    )
