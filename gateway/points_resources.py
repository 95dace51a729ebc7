"""JSON shapes of the points REST resources, declared over the protobuf messages (gateway.rest).

References in JSON are short: an indicator, award, account, entry, exchange point, item, redemption,
earning rule, activity or ranking by its id; a person by `users/{id}`, a household by `households/{id}`,
a bank by `serviceAccounts/{id}`. Region nodes are paths with slashes in JSON (with the `ref`, dots,
beside them for URLs), and either separator in bodies. Enums are lower-case names without their prefix
(`pending_approval`, `reward`), times RFC 3339 in UTC, points whole numbers.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from gateway.blocks_resources import HouseholdId as HouseholdRef
from gateway.blocks_resources import NodePath
from gateway.blocks_resources import UserName as UserRef
from gateway.rest import Body, Named, Out, ProtoEnum, View, from_pb, patch_of, proto_enums, to_pb
from gateway.rest.names import (
    id_out,
    path_out,
    ref_out,
    short,
    short_out,
)
from gov.points.v1 import points_pb2 as pb

__all__ = ["from_pb", "to_pb"]

_CODE = r"[a-z0-9][a-z0-9_-]{0,39}"
CODE_PATTERN = rf"^{_CODE}$"
"""An indicator code (1-40 of a-z, 0-9, '_' and '-'), unique within its node: `corridor-clear`."""
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""Ids the service makes (indicators, exchange points, items, earning rules, activities)."""
"""Ids taken from the caller's Idempotency-Key (awards, redemptions, reversals, rankings)."""
ENTRY_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,100}$"
"""Entry ids: a request id, or one derived from it (an award's post, a redemption's void)."""
ACCOUNT_ID_PATTERN = r"^[uh]-[A-Za-z0-9_-]{1,64}$"
"""`u-{user id}` for a resident's account, `h-{household id}` for a household's."""


# ----------------------------------------------------------------------------- enums


class IndicatorKindName(ProtoEnum, proto=pb.IndicatorKind): ...


class PeriodName(ProtoEnum, proto=pb.Period): ...


class AwardStateName(ProtoEnum, proto=pb.AwardState): ...


class AppealStateName(ProtoEnum, proto=pb.AppealState): ...


class EntryKindName(ProtoEnum, proto=pb.EntryKind): ...


class EntryPhaseName(ProtoEnum, proto=pb.EntryPhase): ...


class ItemKindName(ProtoEnum, proto=pb.ItemKind): ...


class RedemptionStateName(ProtoEnum, proto=pb.RedemptionState): ...


class TriggerName(ProtoEnum, proto=pb.Trigger): ...


class RankingKindName(ProtoEnum, proto=pb.RankingKind): ...


class RankingSubjectName(ProtoEnum, proto=pb.RankingSubject): ...


PROTO_ENUMS = proto_enums(
    IndicatorKindName,
    PeriodName,
    AwardStateName,
    AppealStateName,
    EntryKindName,
    EntryPhaseName,
    ItemKindName,
    RedemptionStateName,
    TriggerName,
    RankingKindName,
    RankingSubjectName,
)


# ----------------------------------------------------------------------------- field types

Code = Annotated[str, StringConstraints(max_length=40, pattern=CODE_PATTERN)]
IndicatorRef = Annotated[
    str,
    StringConstraints(max_length=75, pattern=r"^(indicators/)?[A-Za-z0-9_-]{1,64}$"),
    AfterValidator(lambda v: v.removeprefix("indicators/")),
    Named("indicators"),
]
Recipient = Annotated[
    str, StringConstraints(max_length=80, pattern=r"^(users|households)/[A-Za-z0-9_-]{1,64}$")
]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Description = Annotated[str, StringConstraints(max_length=2000)]
Note = Annotated[str, StringConstraints(max_length=2000)]
Reason = Annotated[str, StringConstraints(max_length=500)]
Address = Annotated[str, StringConstraints(max_length=200)]
EvidenceUris = Annotated[
    list[Annotated[str, StringConstraints(max_length=500, pattern=r"^https?://\S+$")]],
    Field(max_length=10, description="http(s) links to photos or documents already uploaded"),
]
Points = Annotated[int, Field(ge=1, le=1_000_000)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
Months = Annotated[int, Field(ge=0, le=600)]
ACTIVE = {"active": bool}
"""What every PATCH body here may set besides the create body's fields: `active: false` retires."""


# ----------------------------------------------------------------------------- indicators


class Indicator(
    View,
    message=pb.Indicator,
    fields={
        "id": id_out(),
        "name": "Resource name, `indicators/{id}`",
        "node": path_out("Path of the node that publishes it; every node below inherits it"),
        "node_ref": ref_out("node"),
        "code": "Unique within its node",
        "display_name": None,
        "description": None,
        "kind": None,
        "points": "Points an award gives (a penalty takes)",
        "evidence_required": "An award must carry evidence links",
        "approval_required": "The block's supervisor approves an award before it counts",
        "cap_count": "At most this many awards per resident per `cap_period`; 0: no cap",
        "cap_period": None,
        "validity_months": "Earned points expire this many months later; 0: never",
        "credit_household": "An award also credits (or debits) the resident's household",
        "active": "Inactive indicators take no new awards",
        "version": "1 on creation, +1 on every change; awards keep the version they were made under",
        "create_time": None,
        "update_time": None,
    },
): ...


class IndicatorPage(View, item=Indicator, source="indicators"): ...


class NewIndicator(Body):
    node: NodePath = Field(description="Path of the publishing node (slashes or dots)", examples=["yuhu"])
    code: Code = Field(examples=["corridor-clear"])
    display_name: DisplayName = Field(examples=["保持楼道畅通"])
    description: Description = ""
    kind: IndicatorKindName
    points: Points = Field(examples=[5])
    evidence_required: bool = False
    approval_required: bool = False
    cap_count: Count = 0
    cap_period: PeriodName | None = Field(None, description="Required with a cap")
    validity_months: Months = 0
    credit_household: bool = False


IndicatorPatch = patch_of(
    NewIndicator,
    "IndicatorPatch",
    fixed=("node", "code", "kind"),
    extra=ACTIVE,
    doc="Only the fields present are changed; each change makes a new version.",
)


class IndicatorAvailability(
    View,
    message=pb.IndicatorAvailability,
    fields={
        "indicator": short_out("indicators", "Id of the indicator"),
        "node": path_out("Path of the node (at or below the indicator's) it is switched off or on for"),
        "node_ref": ref_out("node"),
        "disabled": None,
        "update_time": None,
    },
): ...


class AvailabilityBody(Body):
    disabled: bool = Field(description="true: not in force at this node and below", examples=[True])


# ----------------------------------------------------------------------------- awards


class Award(
    View,
    message=pb.Award,
    fields={
        "id": id_out("The Idempotency-Key it was created with"),
        "name": "Resource name, `awards/{id}`",
        "recipient": "`users/{id}` or `households/{id}`",
        "account": short_out("accounts", "Id of the account it credits or debits"),
        "indicator": short_out("indicators", "Id of the indicator"),
        "indicator_version": None,
        "kind": None,
        "points": None,
        "node": path_out("Path of the block where it happened"),
        "node_ref": ref_out("node"),
        "note": None,
        "evidence_uris": None,
        "state": None,
        "recorded_by": None,
        "decided_by": Out(nullable=True),
        "decision_note": Out(nullable=True),
        "applied_points": "Penalties: the part taken from the redeemable balance",
        "outstanding_points": "Penalties: the part left for later awards to settle",
        "entry": short_out("entries", "Id of its ledger entry"),
        "approval_deadline": None,
        "create_time": None,
        "decide_time": None,
        "appeal_state": None,
        "appeal_reason": Out(nullable=True),
        "appeal_answer": Out(nullable=True),
        "source_event": Out(description="The event that earned it (automatic earning)", nullable=True),
        "household": short_out("households", "Id of the recipient's household"),
        "household_award": short_out("awards", "Id of the household's share"),
    },
): ...


class AwardPage(View, item=Award, source="awards"): ...


class NewAward(Body):
    recipient: Recipient = Field(examples=["users/0f6c..."])
    indicator: IndicatorRef = Field(description="Id of an indicator in force at the block")
    node: NodePath = Field(description="Path of the block where it happened", examples=["yuhu/wanlou/b07"])
    note: Note = ""
    evidence_uris: EvidenceUris = Field(default_factory=list)
    household: HouseholdRef | None = Field(
        None, description="The recipient's household, for indicators that credit households too"
    )


class Decision(Body):
    note: Note = Field("", description="Reject: why (required)")


class Appeal(Body):
    reason: Annotated[Reason, StringConstraints(min_length=1)] = Field(examples=["当天我不在家"])


class AppealDecision(Body):
    reverse: bool = Field(description="true: reverse the penalty; false: uphold it")
    answer: Annotated[Note, StringConstraints(min_length=1)] = Field(examples=["经核实，撤销扣分"])


# ----------------------------------------------------------------------------- accounts and entries


class Account(
    View,
    message=pb.Account,
    fields={
        "id": id_out("`u-{user id}` for a resident, `h-{household id}` for a household"),
        "name": "Resource name, `accounts/{id}`",
        "owner": "`users/{id}` or `households/{id}`",
        "node": path_out("Path of the block of its first award"),
        "balance": "Posted credits minus debits; never negative",
        "available": "What can be redeemed now: balance minus reserved",
        "reserved": "Held by pending redemptions",
        "pending_credits": "Awards waiting for approval (not in the balance)",
        "outstanding_penalty": "Penalties not yet settled; the next awards settle them first",
        "credits_posted": None,
        "debits_posted": None,
        "credits_pending": None,
        "debits_pending": None,
        "expiring_points": "Points that expire within the notice window",
        "next_expire_time": None,
        "create_time": None,
        "update_time": None,
    },
): ...


class Entry(
    View,
    message=pb.Entry,
    fields={
        "id": id_out(),
        "name": "Resource name, `entries/{id}`",
        "kind": None,
        "phase": None,
        "debit_account": short_out("accounts", "Id of the account debited"),
        "credit_account": short_out("accounts", "Id of the account credited"),
        "amount": None,
        "pending_entry": short_out("entries", "Post and void: the pending entry they resolve"),
        "reverses": short_out("entries", "Reversal: the entry it corrects"),
        "expired_entries": Out(
            convert=lambda n: short(n, "entries"), description="Expiry: the earning entries it expires"
        ),
        "outstanding_delta": "Change to the account's outstanding penalty",
        "award": short_out("awards", "Id of the award it records"),
        "redemption": short_out("redemptions", "Id of the redemption it records"),
        "actor": "`users/{id}`, `serviceAccounts/{id}` or `system`",
        "note": None,
        "expire_time": "Earning entries: when the points still unspent expire",
        "timeout_time": "Pending entries: when they void themselves",
        "settles": short_out("entries", "Settlement: the penalty whose outstanding part it pays"),
        "create_time": None,
    },
): ...


class EntryPage(View, item=Entry, source="entries"): ...


class Reversal(Body):
    reason: Annotated[Reason, StringConstraints(min_length=1)] = Field(examples=["录入错误"])


# ----------------------------------------------------------------------------- love bank


class ExchangePoint(
    View,
    message=pb.ExchangePoint,
    fields={
        "id": id_out(),
        "name": "Resource name, `exchangePoints/{id}`",
        "node": path_out("Path of the community (or other node) it serves"),
        "node_ref": ref_out("node"),
        "display_name": None,
        "address": None,
        "staff": "Who fulfil redemptions at the counter, `users/{id}`",
        "active": None,
        "create_time": None,
        "update_time": None,
    },
): ...


class ExchangePointPage(View, item=ExchangePoint, source="exchange_points"): ...


Staff = Annotated[list[UserRef], Field(max_length=50)]


class NewExchangePoint(Body):
    node: NodePath = Field(description="Path of the node it serves", examples=["yuhu/wanlou/yaowan"])
    display_name: DisplayName = Field(examples=["窑湾社区爱心超市"])
    address: Address = ""
    staff: Staff = Field(default_factory=list, description="`users/{id}` or bare ids")


ExchangePointPatch = patch_of(
    NewExchangePoint,
    "ExchangePointPatch",
    fixed=("node",),
    extra=ACTIVE,
    doc="Only the fields present are changed; `staff` replaces the list.",
)


class Item(
    View,
    message=pb.Item,
    fields={
        "id": id_out(),
        "name": "Resource name, `exchangePoints/{id}/items/{id}`",
        "exchange_point": Out(
            compute=lambda i: i.name.removeprefix("exchangePoints/").split("/", 1)[0],
            annotation=str,
            description="Id of the exchange point",
        ),
        "display_name": None,
        "description": None,
        "kind": None,
        "price": "Points per unit",
        "stock": "Units on hand (reserved ones already taken off)",
        "limit_per_person": "At most this many units per person per `limit_period`; 0: no limit",
        "limit_period": None,
        "active": None,
        "create_time": None,
        "update_time": None,
    },
): ...


class ItemPage(View, item=Item, source="items"): ...


class NewItem(Body):
    display_name: DisplayName = Field(examples=["洗衣液 2kg"])
    description: Description = ""
    kind: ItemKindName
    price: Points = Field(examples=[30])
    stock: Count = Field(examples=[20])
    limit_per_person: Count = 0
    limit_period: PeriodName | None = Field(None, description="Required with a limit")


ItemPatch = patch_of(NewItem, "ItemPatch", extra=ACTIVE)


class Redemption(
    View,
    message=pb.Redemption,
    fields={
        "id": id_out("The Idempotency-Key it was created with"),
        "name": "Resource name, `redemptions/{id}`",
        "item": "`exchangePoints/{id}/items/{id}`",
        "quantity": None,
        "account": short_out("accounts", "Id of the account it spends from"),
        "resident": None,
        "points": "price x quantity",
        "state": None,
        "entry": short_out("entries", "Id of the pending entry holding the points"),
        "expire_time": "Voids itself when not collected by then",
        "fulfilled_by": Out(nullable=True),
        "cancelled_by": Out(nullable=True),
        "reason": Out(description="Why it was cancelled", nullable=True),
        "create_time": None,
        "update_time": None,
    },
): ...


class RedemptionPage(View, item=Redemption, source="redemptions"): ...


class NewRedemption(Body):
    exchange_point: Annotated[str, StringConstraints(pattern=ID_PATTERN)] = Field(
        description="Id of the exchange point"
    )
    item: Annotated[str, StringConstraints(pattern=ID_PATTERN)] = Field(description="Id of the item there")
    quantity: Annotated[int, Field(ge=1, le=1000)] = 1

    def message(self) -> pb.Redemption:
        return pb.Redemption(
            item=f"exchangePoints/{self.exchange_point}/items/{self.item}", quantity=self.quantity
        )


class Cancellation(Body):
    reason: Reason = Field("", examples=["居民不再需要"])


# ----------------------------------------------------------------------------- automatic earning


class EarningRule(
    View,
    message=pb.EarningRule,
    fields={
        "id": id_out(),
        "name": "Resource name, `earningRules/{id}`",
        "node": path_out("Events at or below this node match; the nearest node's rule applies"),
        "node_ref": ref_out("node"),
        "trigger": None,
        "indicator": short_out("indicators", "Id of the reward it awards"),
        "active": None,
        "create_time": None,
        "update_time": None,
    },
): ...


class EarningRulePage(View, item=EarningRule, source="earning_rules"): ...


class NewEarningRule(Body):
    node: NodePath = Field(examples=["yuhu/wanlou"])
    trigger: TriggerName
    indicator: IndicatorRef = Field(description="Id of a reward without evidence, in force at the node")


EarningRulePatch = patch_of(NewEarningRule, "EarningRulePatch", fixed=("node", "trigger"), extra=ACTIVE)


# ----------------------------------------------------------------------------- credit tiers


class CreditTier(
    View,
    message=pb.CreditTier,
    fields={
        "display_name": None,
        "min_points": "Net conduct over the policy's window, at least this",
        "clean_months": "And no penalty in the last this many months (0: no such condition)",
        "credit_amount": "Unsecured credit line, in yuan",
    },
): ...


class CreditPolicy(
    View,
    message=pb.CreditPolicy,
    fields={
        "name": "`creditPolicies/{district}`",
        "district": None,
        "window_months": None,
        "tiers": None,
        "update_time": None,
    },
): ...


class NewCreditTier(Body):
    display_name: DisplayName = Field(examples=["一级信用户"])
    min_points: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] = Field(examples=[20])
    clean_months: Annotated[int, Field(ge=0, le=60)] = 0
    credit_amount: Annotated[int, Field(ge=0, le=100_000_000)] = Field(examples=[100_000])


class CreditPolicyBody(Body):
    """The whole policy of the district in the URL: a PUT replaces it."""

    window_months: Annotated[int, Field(ge=1, le=60)] = Field(examples=[12])
    tiers: Annotated[list[NewCreditTier], Field(min_length=1, max_length=10)]


class CreditConsent(
    View,
    message=pb.CreditConsent,
    fields={
        "name": "`users/{id}/creditConsents/{bank id}`",
        "bank": "`serviceAccounts/{id}`",
        "granted": None,
        "grant_time": None,
        "revoke_time": None,
    },
): ...


class CreditConsentPage(View, item=CreditConsent, source="consents"): ...


class CreditTierAnswer(
    View,
    message=pb.CreditTierAnswer,
    fields={
        "resident": None,
        "district": None,
        "tier": Out(description="null when no tier's conditions are met", nullable=True),
        "net_points": None,
        "last_penalty_time": None,
        "time": None,
    },
): ...


class CreditQuery(
    View,
    message=pb.CreditQuery,
    fields={
        "id": id_out(),
        "name": "`users/{id}/creditQueries/{id}`",
        "caller": "Who asked: `serviceAccounts/{id}` (or a user, refused)",
        "answered": None,
        "refusal": Out(description="Why it was refused", nullable=True),
        "tier": Out(description="The tier's name when answered", nullable=True),
        "time": None,
    },
): ...


class CreditQueryPage(View, item=CreditQuery, source="queries"): ...


# ----------------------------------------------------------------------------- party members


class PartyMember(
    View,
    message=pb.PartyMember,
    fields={
        "name": "`partyMembers/{user id}`",
        "user": None,
        "community": path_out("Path of the community they report to"),
        "community_ref": ref_out("community"),
        "work_unit": None,
        "create_time": None,
    },
): ...


class NewPartyMember(Body):
    community: NodePath = Field(examples=["yuhu/wanlou/yaowan"])
    work_unit: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(examples=["区人社局"])


class Activity(
    View,
    message=pb.Activity,
    fields={
        "id": id_out(),
        "name": "Resource name, `activities/{id}`",
        "block": path_out("Path of the block where it takes place"),
        "block_ref": ref_out("block"),
        "display_name": None,
        "place": None,
        "start_time": None,
        "end_time": None,
        "capacity": None,
        "points": "Earned on check-out",
        "checked_in": None,
        "create_time": None,
    },
): ...


class ActivityPage(View, item=Activity, source="activities"): ...


class NewActivity(Body):
    block: NodePath = Field(examples=["yuhu/wanlou/yaowan/b07"])
    display_name: DisplayName = Field(examples=["楼道清洁志愿服务"])
    place: Address = ""
    start_time: dt.datetime
    end_time: dt.datetime
    capacity: Annotated[int, Field(ge=1, le=10_000)] = Field(examples=[20])
    points: Points = Field(examples=[5])

    @model_validator(mode="after")
    def _order(self) -> NewActivity:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self


class Attendance(
    View,
    message=pb.Attendance,
    fields={
        "name": "`activities/{id}/attendances/{user id}`",
        "member": None,
        "check_in_time": None,
        "check_out_time": None,
        "offline": "Checked in by the block's staff",
        "checked_in_by": None,
        "award": short_out("awards", "Id of the award once the points posted"),
    },
): ...


class CheckInBody(Body):
    """Online: where you are now (inside the activity's block). Offline: the member staff check in."""

    latitude: Annotated[float, Field(ge=-90, le=90)] | None = Field(None, examples=[27.8512])
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = Field(None, examples=[112.9034])
    member: UserRef | None = Field(None, description="Staff: the member checked in; omit for yourself")

    @model_validator(mode="after")
    def _point(self) -> CheckInBody:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude come together")
        return self


class CheckOutBody(Body):
    member: UserRef | None = Field(None, description="Staff: the member checked out; omit for yourself")


# ----------------------------------------------------------------------------- rankings


class RankingIndicator(
    View,
    message=pb.RankingIndicator,
    fields={
        "indicator": short_out("indicators", "Id of the indicator; null for service points"),
        "display_name": None,
        "count": None,
        "points": "Signed: penalties negative",
    },
): ...


class RankingPlace(
    View,
    message=pb.RankingPlace,
    fields={
        "rank": "Equal points share a rank",
        "owner": "`users/{id}` or `households/{id}`",
        "display_name": "Surname and a masked given name",
        "points": None,
        "indicators": None,
    },
): ...


class Ranking(
    View,
    message=pb.Ranking,
    fields={
        "id": Out("name", "null for a draft", convert=lambda n: short(n, "rankings"), annotation=str | None),
        "name": "`rankings/{id}` once published; empty for a draft",
        "node": path_out(),
        "node_ref": ref_out("node"),
        "kind": None,
        "subject": None,
        "start_time": None,
        "end_time": None,
        "title": None,
        "places": None,
        "published_by": Out(nullable=True),
        "publish_time": None,
    },
): ...


class RankingPage(View, item=Ranking, source="rankings"): ...


class RankingQuery(Body):
    """Awards made at or below `node` in [start_time, end_time)."""

    node: NodePath = Field(examples=["yuhu/wanlou/yaowan"])
    kind: RankingKindName
    subject: RankingSubjectName
    start_time: dt.datetime
    end_time: dt.datetime
    size: Annotated[int, Field(ge=1, le=100)] = 20

    skip: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _order(self) -> RankingQuery:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self

    def query(self) -> pb.ComputeRankingRequest:
        return self.to_pb(pb.ComputeRankingRequest, skip=self.skip)


class NewRanking(RankingQuery):
    title: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        examples=["2025年第二季度红榜"]
    )

    skip: ClassVar[frozenset[str]] = frozenset({"title"})
