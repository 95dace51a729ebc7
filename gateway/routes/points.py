"""Points: indicators, awards, accounts and statements, the love bank, automatic earning, credit tiers
and consent, party members' service points, red and black lists.

Each route is one upstream call to the PointsService, declared with gateway.rest.routes; JSON shapes
live in gateway.points_resources. Who may see or do what is the service's decision (the caller's token
goes with every call): another resident's account is a 404, an action outside one's role a 403.
Commands the service makes idempotent by a request id (awards, redemptions, reversals, appeal
reversals, publications) take it from the `Idempotency-Key` header; without one the gateway makes a
fresh id, so such a request is not safe to retry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from google.protobuf.message import Message

from gateway.blocks_resources import NODE_REF_MAX_LENGTH, NODE_REF_PATTERN, path_of
from gateway.params import REQUEST_ID_PATTERN, request_id
from gateway.points_resources import (
    ACCOUNT_ID_PATTERN,
    ENTRY_ID_PATTERN,
    ID_PATTERN,
    Account,
    Activity,
    ActivityPage,
    Appeal,
    AppealDecision,
    Attendance,
    AvailabilityBody,
    Award,
    AwardPage,
    AwardStateName,
    Cancellation,
    CheckInBody,
    CheckOutBody,
    CreditConsent,
    CreditConsentPage,
    CreditPolicy,
    CreditPolicyBody,
    CreditQueryPage,
    CreditTierAnswer,
    Decision,
    EarningRule,
    EarningRulePage,
    EarningRulePatch,
    Entry,
    EntryPage,
    ExchangePoint,
    ExchangePointPage,
    ExchangePointPatch,
    Indicator,
    IndicatorAvailability,
    IndicatorKindName,
    IndicatorPage,
    IndicatorPatch,
    Item,
    ItemPage,
    ItemPatch,
    NewActivity,
    NewAward,
    NewEarningRule,
    NewExchangePoint,
    NewIndicator,
    NewItem,
    NewPartyMember,
    NewRanking,
    NewRedemption,
    PartyMember,
    Ranking,
    RankingPage,
    RankingQuery,
    Redemption,
    RedemptionPage,
    RedemptionStateName,
    Reversal,
)
from gateway.problems import Problem
from gateway.rest.resource import Resource
from gateway.rest.routes import PAGE, Endpoints, Param
from gateway.upstream import Caller, upstreams
from gov.points.v1 import points_pb2 as pb
from gov.points.v1.points_pb2_grpc import PointsServiceStub

router = APIRouter(prefix="/api/v1/points", tags=["points"])


def _id_path(description: str, pattern: str = ID_PATTERN, max_length: int = 64) -> object:
    return Annotated[str, Path(max_length=max_length, pattern=pattern, description=description)]


IndicatorId = _id_path("Id of the indicator")
AwardId = _id_path("Id of the award (the Idempotency-Key it was created with)", REQUEST_ID_PATTERN)
AccountId = _id_path("`u-{user id}` or `h-{household id}`", ACCOUNT_ID_PATTERN, 66)
EntryId = _id_path("Id of the entry", ENTRY_ID_PATTERN, 100)
ExchangePointId = _id_path("Id of the exchange point")
ItemId = _id_path("Id of the item")
RedemptionId = _id_path("Id of the redemption (the Idempotency-Key it was created with)", REQUEST_ID_PATTERN)
RuleId = _id_path("Id of the earning rule")
ActivityId = _id_path("Id of the activity")
RankingId = _id_path("Id of the published ranking", REQUEST_ID_PATTERN)
UserId = _id_path("The id of `users/{id}`")
BankId = _id_path("The id of the bank's `serviceAccounts/{id}`")
NodeRef = Annotated[
    str,
    Path(
        max_length=NODE_REF_MAX_LENGTH,
        pattern=NODE_REF_PATTERN,
        description="A node's ref (dots)",
        examples=["yuhu.wanlou.yaowan"],
    ),
]
District = Annotated[str, Path(max_length=32, pattern=NODE_REF_PATTERN, description="Code of the district")]


def _node_query(description: str) -> object:
    return Annotated[
        str,
        Query(
            max_length=NODE_REF_MAX_LENGTH,
            pattern=rf"^$|{NODE_REF_PATTERN}",
            description=description,
            examples=["yuhu.wanlou"],
        ),
    ]


RequiredNode = Annotated[
    str,
    Query(
        max_length=NODE_REF_MAX_LENGTH,
        pattern=NODE_REF_PATTERN,
        description="A node's ref (dots)",
        examples=["yuhu.wanlou"],
    ),
]


def _points(request: Request) -> PointsServiceStub:
    return upstreams(request).points


api = Endpoints(router, _points, prefix="/api/v1/points", messages=pb)
NODE = Param(RequiredNode, encode=path_of)


def _me(caller: Caller) -> str:
    if not caller.principal.is_user:
        raise Problem(403, "only a person has their own points", slug="permission-denied")
    return caller.principal.subject


# ----------------------------------------------------------------------------- indicators

indicators = Resource(
    api, "/indicators", pb.Indicator, ("indicator_id", IndicatorId), view=Indicator, page=IndicatorPage
)
indicators.list(
    "Indicators in force at a node (or published there)",
    params={
        "node": NODE,
        "published_here": Param(
            Annotated[bool, Query(description="Only those published at the node itself, inactive too")],
            False,
        ),
        "kind": Param(IndicatorKindName | None, None),
    },
)
indicators.create("Publish an indicator at a node (leaders whose scope covers it)", body=NewIndicator)
indicators.get(
    "Get an indicator (or a past version of it)",
    params={
        "version": Param(
            Annotated[int, Query(ge=0, le=1_000_000, description="A past version; 0: the current one")], 0
        )
    },
)
indicators.update(
    "Change an indicator (a new version; `active: false` takes no new awards)", body=IndicatorPatch
)
indicators.action(
    "PUT",
    "/availability/{node}",
    "set_indicator_availability",
    "Switch an inherited indicator off (or on again) for a node and everything below it",
    params={"node": NodeRef},
    body=AvailabilityBody,
    view=IndicatorAvailability,
    message=lambda indicator_id, node, body: pb.SetIndicatorAvailabilityRequest(
        availability=pb.IndicatorAvailability(
            indicator=f"indicators/{indicator_id}", node=path_of(node), disabled=body.disabled
        )
    ),
)


# ----------------------------------------------------------------------------- awards

awards = Resource(api, "/awards", pb.Award, ("award_id", AwardId), view=Award, page=AwardPage)
awards.create(
    "Record an award or a penalty (the block's governor and assistants)",
    description=(
        "The award's id is the `Idempotency-Key`: a retry returns the first award, another request "
        "under the same key is a 422 (`idempotency-key-reused`). An indicator that needs approval "
        "leaves it `pending_approval`."
    ),
    body=NewAward,
    idempotent=True,
)
awards.list(
    "Awards you may see (your scope's, and your own), newest first",
    params={
        "node": Param(_node_query("Awards at or below this node"), "", encode=path_of),
        "recipient": Param(
            Annotated[
                str,
                Query(
                    max_length=80,
                    pattern=r"^$|^(users|households)/[A-Za-z0-9_-]{1,64}$",
                    description="`users/{id}` or `households/{id}`",
                ),
            ],
            "",
        ),
        "state": Param(AwardStateName | None, None),
    },
)
awards.get("Get an award")
awards.action(
    "POST",
    "/approve",
    "approve_award",
    "Approve an award awaiting approval (the block's supervisor, never their own)",
    body=Decision,
)
awards.action(
    "POST",
    "/reject",
    "reject_award",
    "Reject an award awaiting approval (the block's supervisor; `note` says why)",
    body=Decision,
)
awards.action(
    "POST", "/appeal", "appeal_award", "Appeal a penalty of your own to the block's supervisor", body=Appeal
)
awards.action(
    "POST",
    "/appeal/decision",
    "decide_appeal",
    "Uphold or reverse an appealed penalty (the block's supervisor)",
    description="Reversing writes a reversal entry whose id is the `Idempotency-Key`.",
    body=AppealDecision,
    idempotent=True,
    message=lambda award_id, body, idempotency_key: pb.DecideAppealRequest(
        name=f"awards/{award_id}",
        reverse=body.reverse,
        answer=body.answer,
        request_id=request_id(idempotency_key) if body.reverse else "",
    ),
)


# ----------------------------------------------------------------------------- accounts and entries

accounts = Resource(api, "/accounts", pb.Account, ("account_id", AccountId), view=Account)
accounts.get("An account: your own, your household's, or one your scope covers (else 404)")
statement = Resource(
    api, "/entries", pb.Entry, ("entry_id", EntryId), view=Entry, page=EntryPage, parent=accounts
)
statement.list("An account's statement, newest first")
entries = Resource(api, "/entries", pb.Entry, ("entry_id", EntryId), view=Entry)
entries.get("Get a ledger entry")
entries.action(
    "POST",
    "/reversal",
    "reverse_entry",
    "Correct a posted award, penalty or redemption with a reversal entry",
    status_code=201,
    description="The reversal entry's id is the `Idempotency-Key`: a retry returns the same entry.",
    body=Reversal,
    idempotent=True,
    location=entries.location_of,
)


# ----------------------------------------------------------------------------- exchange points and items

exchange_points = Resource(
    api,
    "/exchange-points",
    pb.ExchangePoint,
    ("exchange_point_id", ExchangePointId),
    view=ExchangePoint,
    page=ExchangePointPage,
)
exchange_points.list(
    "Exchange points serving a node (or above it); all without a node",
    params={"node": Param(_node_query("A node's ref (dots)"), "", encode=path_of)},
)
exchange_points.create("Open an exchange point (leaders whose scope covers the node)", body=NewExchangePoint)
exchange_points.get("Get an exchange point")
exchange_points.update("Change an exchange point (`staff` replaces the list)", body=ExchangePointPatch)
items = Resource(
    api, "/items", pb.Item, ("item_id", ItemId), view=Item, page=ItemPage, parent=exchange_points
)
items.list("What an exchange point offers", params={"include_inactive": Param(bool, False)})
items.create("Offer an item at an exchange point", body=NewItem)
items.get("Get an item")
items.update("Change an item (price, stock, limits; `active: false` takes it off the shelf)", body=ItemPatch)


# ----------------------------------------------------------------------------- redemptions

redemptions = Resource(
    api, "/redemptions", pb.Redemption, ("redemption_id", RedemptionId), view=Redemption, page=RedemptionPage
)
redemptions.create(
    "Redeem points for an item: the points and the stock are held until the counter hands it over",
    description=(
        "The redemption's id is the `Idempotency-Key`: a retry returns the first redemption, another "
        "request under the same key is a 422 (`idempotency-key-reused`). Not enough points or stock, "
        "or a limit reached, is a 409."
    ),
    body=NewRedemption,
    idempotent=True,
    message=lambda body, idempotency_key: pb.CreateRedemptionRequest(
        redemption=body.message(), request_id=request_id(idempotency_key)
    ),
)
redemptions.list(
    "Your own redemptions, or (staff) an exchange point's, newest first",
    params={
        "exchange_point": Param(
            Annotated[str, Query(max_length=64, pattern=rf"^$|{ID_PATTERN}", description="Id: its staff")],
            "",
            encode=lambda point: f"exchangePoints/{point}" if point else "",
        ),
        "state": Param(RedemptionStateName | None, None),
    },
)
redemptions.get("Get a redemption (yours, or your exchange point's)")
redemptions.action(
    "POST",
    "/fulfil",
    "fulfil_redemption",
    "Hand the item over at the counter (the exchange point's staff): the points are spent",
)
redemptions.action(
    "POST",
    "/cancel",
    "cancel_redemption",
    "Cancel a reserved redemption: the points and the stock return",
    body=Cancellation,
)


# ----------------------------------------------------------------------------- earning rules

rules = Resource(
    api, "/earning-rules", pb.EarningRule, ("rule_id", RuleId), view=EarningRule, page=EarningRulePage
)
rules.list("Automatic earning rules at a node or above it", params={"node": NODE})
rules.create(
    "Award a reward automatically when another service's event says so (once per event)", body=NewEarningRule
)
rules.update("Change an earning rule's indicator, or switch it off", body=EarningRulePatch)


# ----------------------------------------------------------------------------- credit tiers and consent

policies = Resource(api, "/credit-policies", pb.CreditPolicy, ("district", District), view=CreditPolicy)
policies.get("A district's credit tiers for its partner bank")
policies.action(
    "PUT",
    "",
    "set_credit_policy",
    "Set a district's credit tiers (its leaders; replaces the policy)",
    body=CreditPolicyBody,
    message=lambda district, body: pb.SetCreditPolicyRequest(
        policy=body.to_pb(pb.CreditPolicy, district=district)
    ),
)
api.get(
    "/residents/{user_id}/credit-tier",
    "get_credit_tier",
    rpc="GetCreditTier",
    view=CreditTierAnswer,
    summary="A resident's credit tier (a bank's service account, with the resident's consent)",
    description="Every query, answered or refused, is written to the log the resident reads.",
    params={"user_id": Param(UserId, encode=lambda user_id: f"users/{user_id}", field="resident")},
)
api.get(
    "/me/credit-consents",
    "list_my_credit_consents",
    rpc="ListCreditConsents",
    view=CreditConsentPage,
    summary="The banks you let see your credit tier (and those you no longer do)",
    params=PAGE,
)
BANK = {"bank_id": Param(BankId, encode=lambda bank_id: f"serviceAccounts/{bank_id}", field="bank")}
api.put(
    "/me/credit-consents/{bank_id}",
    "grant_credit_consent",
    rpc="GrantCreditConsent",
    view=CreditConsent,
    summary="Let a bank see your credit tier",
    params=BANK,
)
api.route(
    "DELETE",
    "/me/credit-consents/{bank_id}",
    "revoke_credit_consent",
    rpc="RevokeCreditConsent",
    view=CreditConsent,
    summary="Stop a bank seeing your credit tier (the record stays, with its revoke time)",
    params=BANK,
)


# ----------------------------------------------------------------------------- party members and activities

members = Resource(api, "/party-members", pb.PartyMember, ("user_id", UserId), view=PartyMember)
members.create(
    "Register yourself as a working party member reporting to a community (双报到)",
    body=NewPartyMember,
    name="register_party_member",
    rpc="RegisterPartyMember",
    location=lambda member, _: f"/party-members/{member.name.removeprefix('partyMembers/')}",
)
members.get("A party member's registration (yourself, or one your scope covers)")
activities = Resource(
    api, "/activities", pb.Activity, ("activity_id", ActivityId), view=Activity, page=ActivityPage
)
activities.list("Volunteer activities at or below a node", params={"node": NODE})
activities.create("Announce a volunteer activity at a block (its staff)", body=NewActivity)
activities.get("Get an activity")
for verb, summary, body in (
    ("in", "Check in: yourself where you are (inside the block), or (staff) a member offline", CheckInBody),
    ("out", "Check out: the activity's points post, once", CheckOutBody),
):
    activities.action(
        "POST", f"/check-{verb}", f"check_{verb}", summary, body=body, view=Attendance, name_field="activity"
    )


# ----------------------------------------------------------------------------- red and black lists

api.post(
    "/rankings/drafts",
    "compute_ranking",
    rpc="ComputeRanking",
    view=Ranking,
    summary="Compute a red or black list for a node and period (a draft for the node's staff; not stored)",
    body=RankingQuery,
    message=lambda body: body.query(),
)
rankings = Resource(api, "/rankings", pb.Ranking, ("ranking_id", RankingId), view=Ranking, page=RankingPage)
rankings.create(
    "Publish a red or black list: a stored snapshot and an event",
    description="The ranking's id is the `Idempotency-Key`: a retry returns the first publication.",
    body=NewRanking,
    idempotent=True,
    name="publish_ranking",
    rpc="PublishRanking",
    message=lambda body, idempotency_key: pb.PublishRankingRequest(
        ranking=body.query(), title=body.title, request_id=request_id(idempotency_key)
    ),
)
rankings.list("Lists published for a node, newest first", params={"node": NODE})
rankings.get("Get a published list")


# ----------------------------------------------------------------------------- the caller's own
# The request names the caller, whom only the verified token says.

api.get(
    "/me/account",
    "get_my_account",
    rpc="GetAccount",
    view=Account,
    summary="Your own points account (empty until your first award)",
    with_caller=True,
    message=lambda caller: pb.GetAccountRequest(name=_me(caller)),
)


def _mine(rpc: str) -> Callable[..., Message]:
    """The caller's own list: its parent is the caller."""
    return lambda caller, **page: api.request(rpc, parent=_me(caller), **page)


for path, name, rpc, view, summary in (
    ("/me/entries", "list_my_entries", "ListEntries", EntryPage, "Your own statement, newest first"),
    (
        "/me/credit-queries",
        "list_my_credit_queries",
        "ListCreditQueries",
        CreditQueryPage,
        "Who asked for your credit tier, answered or refused, newest first",
    ),
):
    mine = _mine(rpc)
    api.get(path, name, rpc=rpc, view=view, summary=summary, params=PAGE, with_caller=True, message=mine)
