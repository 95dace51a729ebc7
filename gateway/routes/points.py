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

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from gateway.blocks_resources import NODE_REF_MAX_LENGTH, NODE_REF_PATTERN, path_of
from gateway.params import REQUEST_ID_PATTERN, PageSize, PageToken, request_id
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
    to_pb,
)
from gateway.problems import Problem
from gateway.rest.routes import PAGE, Endpoints, Param
from gateway.upstream import Caller, CallerDep, call, upstreams
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


api = Endpoints(router, _points, prefix="/api/v1/points")


def _me(caller: Caller) -> str:
    if not caller.principal.is_user:
        raise Problem(403, "only a person has their own points", slug="permission-denied")
    return caller.principal.subject


# ----------------------------------------------------------------------------- indicators

api.get(
    "/indicators",
    "list_indicators",
    rpc="ListIndicators",
    view=IndicatorPage,
    summary="Indicators in force at a node (or published there)",
    params={
        "node": RequiredNode,
        "published_here": Param(
            Annotated[bool, Query(description="Only those published at the node itself, inactive too")],
            False,
        ),
        "kind": Param(IndicatorKindName | None, None),
        **PAGE,
    },
    message=lambda node, published_here, kind, page_size, page_token: pb.ListIndicatorsRequest(
        node=path_of(node),
        published_here=published_here,
        kind=to_pb(kind),
        page_size=page_size,
        page_token=page_token,
    ),
)
api.post(
    "/indicators",
    "create_indicator",
    rpc="CreateIndicator",
    view=Indicator,
    status_code=201,
    summary="Publish an indicator at a node (leaders whose scope covers it)",
    body=NewIndicator,
    message=lambda body: pb.CreateIndicatorRequest(indicator=body.to_pb(pb.Indicator)),
    location=lambda indicator, _: f"/indicators/{indicator.id}",
)
api.get(
    "/indicators/{indicator_id}",
    "get_indicator",
    rpc="GetIndicator",
    view=Indicator,
    summary="Get an indicator (or a past version of it)",
    params={
        "indicator_id": IndicatorId,
        "version": Param(
            Annotated[int, Query(ge=0, le=1_000_000, description="A past version; 0: the current one")], 0
        ),
    },
    message=lambda indicator_id, version: pb.GetIndicatorRequest(
        name=f"indicators/{indicator_id}", version=version
    ),
)


def _update_indicator(indicator_id: str, body: IndicatorPatch) -> pb.UpdateIndicatorRequest:
    indicator, mask = body.patch(pb.Indicator, name=f"indicators/{indicator_id}")
    return pb.UpdateIndicatorRequest(indicator=indicator, update_mask=mask)


api.patch(
    "/indicators/{indicator_id}",
    "update_indicator",
    rpc="UpdateIndicator",
    view=Indicator,
    summary="Change an indicator (a new version; `active: false` takes no new awards)",
    params={"indicator_id": IndicatorId},
    body=IndicatorPatch,
    message=_update_indicator,
)
api.put(
    "/indicators/{indicator_id}/availability/{node}",
    "set_indicator_availability",
    rpc="SetIndicatorAvailability",
    view=IndicatorAvailability,
    summary="Switch an inherited indicator off (or on again) for a node and everything below it",
    params={"indicator_id": IndicatorId, "node": NodeRef},
    body=AvailabilityBody,
    message=lambda indicator_id, node, body: pb.SetIndicatorAvailabilityRequest(
        availability=pb.IndicatorAvailability(
            indicator=f"indicators/{indicator_id}", node=path_of(node), disabled=body.disabled
        )
    ),
)


# ----------------------------------------------------------------------------- awards

api.post(
    "/awards",
    "create_award",
    rpc="CreateAward",
    view=Award,
    status_code=201,
    summary="Record an award or a penalty (the block's governor and assistants)",
    description=(
        "The award's id is the `Idempotency-Key`: a retry returns the first award, another request "
        "under the same key is a 422 (`idempotency-key-reused`). An indicator that needs approval "
        "leaves it `pending_approval`."
    ),
    body=NewAward,
    idempotent=True,
    message=lambda body, idempotency_key: pb.CreateAwardRequest(
        award=body.to_pb(pb.Award), request_id=request_id(idempotency_key)
    ),
    location=lambda award, _: f"/awards/{award.id}",
)
api.get(
    "/awards",
    "list_awards",
    rpc="ListAwards",
    view=AwardPage,
    summary="Awards you may see (your scope's, and your own), newest first",
    params={
        "node": Param(_node_query("Awards at or below this node"), ""),
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
        **PAGE,
    },
    message=lambda node, recipient, state, page_size, page_token: pb.ListAwardsRequest(
        node=path_of(node),
        recipient=recipient,
        state=to_pb(state),
        page_size=page_size,
        page_token=page_token,
    ),
)
api.get(
    "/awards/{award_id}",
    "get_award",
    rpc="GetAward",
    view=Award,
    summary="Get an award",
    params={"award_id": AwardId},
    message=lambda award_id: pb.GetAwardRequest(name=f"awards/{award_id}"),
)
api.post(
    "/awards/{award_id}/approve",
    "approve_award",
    rpc="ApproveAward",
    view=Award,
    summary="Approve an award awaiting approval (the block's supervisor, never their own)",
    params={"award_id": AwardId},
    body=Decision,
    message=lambda award_id, body: pb.ApproveAwardRequest(name=f"awards/{award_id}", note=body.note),
)
api.post(
    "/awards/{award_id}/reject",
    "reject_award",
    rpc="RejectAward",
    view=Award,
    summary="Reject an award awaiting approval (the block's supervisor; `note` says why)",
    params={"award_id": AwardId},
    body=Decision,
    message=lambda award_id, body: pb.RejectAwardRequest(name=f"awards/{award_id}", note=body.note),
)
api.post(
    "/awards/{award_id}/appeal",
    "appeal_award",
    rpc="AppealAward",
    view=Award,
    summary="Appeal a penalty of your own to the block's supervisor",
    params={"award_id": AwardId},
    body=Appeal,
    message=lambda award_id, body: pb.AppealAwardRequest(name=f"awards/{award_id}", reason=body.reason),
)
api.post(
    "/awards/{award_id}/appeal/decision",
    "decide_appeal",
    rpc="DecideAppeal",
    view=Award,
    summary="Uphold or reverse an appealed penalty (the block's supervisor)",
    description="Reversing writes a reversal entry whose id is the `Idempotency-Key`.",
    params={"award_id": AwardId},
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


api.get(
    "/accounts/{account_id}",
    "get_account",
    rpc="GetAccount",
    view=Account,
    summary="An account: your own, your household's, or one your scope covers (else 404)",
    params={"account_id": AccountId},
    message=lambda account_id: pb.GetAccountRequest(name=f"accounts/{account_id}"),
)
api.get(
    "/accounts/{account_id}/entries",
    "list_entries",
    rpc="ListEntries",
    view=EntryPage,
    summary="An account's statement, newest first",
    params={"account_id": AccountId, **PAGE},
    message=lambda account_id, page_size, page_token: pb.ListEntriesRequest(
        parent=f"accounts/{account_id}", page_size=page_size, page_token=page_token
    ),
)
api.get(
    "/entries/{entry_id}",
    "get_entry",
    rpc="GetEntry",
    view=Entry,
    summary="Get a ledger entry",
    params={"entry_id": EntryId},
    message=lambda entry_id: pb.GetEntryRequest(name=f"entries/{entry_id}"),
)
api.post(
    "/entries/{entry_id}/reversal",
    "reverse_entry",
    rpc="ReverseEntry",
    view=Entry,
    status_code=201,
    summary="Correct a posted award, penalty or redemption with a reversal entry",
    description="The reversal entry's id is the `Idempotency-Key`: a retry returns the same entry.",
    params={"entry_id": EntryId},
    body=Reversal,
    idempotent=True,
    message=lambda entry_id, body, idempotency_key: pb.ReverseEntryRequest(
        name=f"entries/{entry_id}", reason=body.reason, request_id=request_id(idempotency_key)
    ),
    location=lambda entry, _: f"/entries/{entry.id}",
)


# ----------------------------------------------------------------------------- exchange points and items

api.get(
    "/exchange-points",
    "list_exchange_points",
    rpc="ListExchangePoints",
    view=ExchangePointPage,
    summary="Exchange points serving a node (or above it); all without a node",
    params={"node": Param(_node_query("A node's ref (dots)"), ""), **PAGE},
    message=lambda node, page_size, page_token: pb.ListExchangePointsRequest(
        node=path_of(node), page_size=page_size, page_token=page_token
    ),
)
api.post(
    "/exchange-points",
    "create_exchange_point",
    rpc="CreateExchangePoint",
    view=ExchangePoint,
    status_code=201,
    summary="Open an exchange point (leaders whose scope covers the node)",
    body=NewExchangePoint,
    message=lambda body: pb.CreateExchangePointRequest(exchange_point=body.to_pb(pb.ExchangePoint)),
    location=lambda point, _: f"/exchange-points/{point.id}",
)
api.get(
    "/exchange-points/{exchange_point_id}",
    "get_exchange_point",
    rpc="GetExchangePoint",
    view=ExchangePoint,
    summary="Get an exchange point",
    params={"exchange_point_id": ExchangePointId},
    message=lambda exchange_point_id: pb.GetExchangePointRequest(name=f"exchangePoints/{exchange_point_id}"),
)


def _update_exchange_point(exchange_point_id: str, body: ExchangePointPatch) -> pb.UpdateExchangePointRequest:
    point, mask = body.patch(pb.ExchangePoint, name=f"exchangePoints/{exchange_point_id}")
    return pb.UpdateExchangePointRequest(exchange_point=point, update_mask=mask)


api.patch(
    "/exchange-points/{exchange_point_id}",
    "update_exchange_point",
    rpc="UpdateExchangePoint",
    view=ExchangePoint,
    summary="Change an exchange point (`staff` replaces the list)",
    params={"exchange_point_id": ExchangePointId},
    body=ExchangePointPatch,
    message=_update_exchange_point,
)
api.get(
    "/exchange-points/{exchange_point_id}/items",
    "list_items",
    rpc="ListItems",
    view=ItemPage,
    summary="What an exchange point offers",
    params={
        "exchange_point_id": ExchangePointId,
        "include_inactive": Param(bool, False),
        **PAGE,
    },
    message=lambda exchange_point_id, include_inactive, page_size, page_token: pb.ListItemsRequest(
        parent=f"exchangePoints/{exchange_point_id}",
        include_inactive=include_inactive,
        page_size=page_size,
        page_token=page_token,
    ),
)
api.post(
    "/exchange-points/{exchange_point_id}/items",
    "create_item",
    rpc="CreateItem",
    view=Item,
    status_code=201,
    summary="Offer an item at an exchange point",
    params={"exchange_point_id": ExchangePointId},
    body=NewItem,
    message=lambda exchange_point_id, body: pb.CreateItemRequest(
        parent=f"exchangePoints/{exchange_point_id}", item=body.to_pb(pb.Item)
    ),
    location=lambda item, p: f"/exchange-points/{p['exchange_point_id']}/items/{item.id}",
)
api.get(
    "/exchange-points/{exchange_point_id}/items/{item_id}",
    "get_item",
    rpc="GetItem",
    view=Item,
    summary="Get an item",
    params={"exchange_point_id": ExchangePointId, "item_id": ItemId},
    message=lambda exchange_point_id, item_id: pb.GetItemRequest(
        name=f"exchangePoints/{exchange_point_id}/items/{item_id}"
    ),
)


def _update_item(exchange_point_id: str, item_id: str, body: ItemPatch) -> pb.UpdateItemRequest:
    item, mask = body.patch(pb.Item, name=f"exchangePoints/{exchange_point_id}/items/{item_id}")
    return pb.UpdateItemRequest(item=item, update_mask=mask)


api.patch(
    "/exchange-points/{exchange_point_id}/items/{item_id}",
    "update_item",
    rpc="UpdateItem",
    view=Item,
    summary="Change an item (price, stock, limits; `active: false` takes it off the shelf)",
    params={"exchange_point_id": ExchangePointId, "item_id": ItemId},
    body=ItemPatch,
    message=_update_item,
)


# ----------------------------------------------------------------------------- redemptions

api.post(
    "/redemptions",
    "create_redemption",
    rpc="CreateRedemption",
    view=Redemption,
    status_code=201,
    summary="Redeem points for an item: the points and the stock are held until the counter hands it over",
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
    location=lambda redemption, _: f"/redemptions/{redemption.id}",
)
api.get(
    "/redemptions",
    "list_redemptions",
    rpc="ListRedemptions",
    view=RedemptionPage,
    summary="Your own redemptions, or (staff) an exchange point's, newest first",
    params={
        "exchange_point": Param(
            Annotated[str, Query(max_length=64, pattern=rf"^$|{ID_PATTERN}", description="Id: its staff")],
            "",
        ),
        "state": Param(RedemptionStateName | None, None),
        **PAGE,
    },
    message=lambda exchange_point, state, page_size, page_token: pb.ListRedemptionsRequest(
        exchange_point=f"exchangePoints/{exchange_point}" if exchange_point else "",
        state=to_pb(state),
        page_size=page_size,
        page_token=page_token,
    ),
)
api.get(
    "/redemptions/{redemption_id}",
    "get_redemption",
    rpc="GetRedemption",
    view=Redemption,
    summary="Get a redemption (yours, or your exchange point's)",
    params={"redemption_id": RedemptionId},
    message=lambda redemption_id: pb.GetRedemptionRequest(name=f"redemptions/{redemption_id}"),
)
api.post(
    "/redemptions/{redemption_id}/fulfil",
    "fulfil_redemption",
    rpc="FulfilRedemption",
    view=Redemption,
    summary="Hand the item over at the counter (the exchange point's staff): the points are spent",
    params={"redemption_id": RedemptionId},
    message=lambda redemption_id: pb.FulfilRedemptionRequest(name=f"redemptions/{redemption_id}"),
)
api.post(
    "/redemptions/{redemption_id}/cancel",
    "cancel_redemption",
    rpc="CancelRedemption",
    view=Redemption,
    summary="Cancel a reserved redemption: the points and the stock return",
    params={"redemption_id": RedemptionId},
    body=Cancellation,
    message=lambda redemption_id, body: pb.CancelRedemptionRequest(
        name=f"redemptions/{redemption_id}", reason=body.reason
    ),
)


# ----------------------------------------------------------------------------- earning rules

api.get(
    "/earning-rules",
    "list_earning_rules",
    rpc="ListEarningRules",
    view=EarningRulePage,
    summary="Automatic earning rules at a node or above it",
    params={"node": RequiredNode, **PAGE},
    message=lambda node, page_size, page_token: pb.ListEarningRulesRequest(
        node=path_of(node), page_size=page_size, page_token=page_token
    ),
)
api.post(
    "/earning-rules",
    "create_earning_rule",
    rpc="CreateEarningRule",
    view=EarningRule,
    status_code=201,
    summary="Award a reward automatically when another service's event says so (once per event)",
    body=NewEarningRule,
    message=lambda body: pb.CreateEarningRuleRequest(earning_rule=body.to_pb(pb.EarningRule)),
    location=lambda rule, _: f"/earning-rules/{rule.id}",
)


def _update_rule(rule_id: str, body: EarningRulePatch) -> pb.UpdateEarningRuleRequest:
    rule, mask = body.patch(pb.EarningRule, name=f"earningRules/{rule_id}")
    return pb.UpdateEarningRuleRequest(earning_rule=rule, update_mask=mask)


api.patch(
    "/earning-rules/{rule_id}",
    "update_earning_rule",
    rpc="UpdateEarningRule",
    view=EarningRule,
    summary="Change an earning rule's indicator, or switch it off",
    params={"rule_id": RuleId},
    body=EarningRulePatch,
    message=_update_rule,
)


# ----------------------------------------------------------------------------- credit tiers and consent

api.get(
    "/credit-policies/{district}",
    "get_credit_policy",
    rpc="GetCreditPolicy",
    view=CreditPolicy,
    summary="A district's credit tiers for its partner bank",
    params={"district": District},
    message=lambda district: pb.GetCreditPolicyRequest(name=f"creditPolicies/{district}"),
)
api.put(
    "/credit-policies/{district}",
    "set_credit_policy",
    rpc="SetCreditPolicy",
    view=CreditPolicy,
    summary="Set a district's credit tiers (its leaders; replaces the policy)",
    params={"district": District},
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
    params={"user_id": UserId},
    message=lambda user_id: pb.GetCreditTierRequest(resident=f"users/{user_id}"),
)
api.get(
    "/me/credit-consents",
    "list_my_credit_consents",
    rpc="ListCreditConsents",
    view=CreditConsentPage,
    summary="The banks you let see your credit tier (and those you no longer do)",
    params=PAGE,
    message=lambda page_size, page_token: pb.ListCreditConsentsRequest(
        page_size=page_size, page_token=page_token
    ),
)
api.put(
    "/me/credit-consents/{bank_id}",
    "grant_credit_consent",
    rpc="GrantCreditConsent",
    view=CreditConsent,
    summary="Let a bank see your credit tier",
    params={"bank_id": BankId},
    message=lambda bank_id: pb.GrantCreditConsentRequest(bank=f"serviceAccounts/{bank_id}"),
)
api.route(
    "DELETE",
    "/me/credit-consents/{bank_id}",
    "revoke_credit_consent",
    rpc="RevokeCreditConsent",
    view=CreditConsent,
    summary="Stop a bank seeing your credit tier (the record stays, with its revoke time)",
    params={"bank_id": BankId},
    message=lambda bank_id: pb.RevokeCreditConsentRequest(bank=f"serviceAccounts/{bank_id}"),
)


# ----------------------------------------------------------------------------- party members and activities

api.post(
    "/party-members",
    "register_party_member",
    rpc="RegisterPartyMember",
    view=PartyMember,
    status_code=201,
    summary="Register yourself as a working party member reporting to a community (双报到)",
    body=NewPartyMember,
    message=lambda body: pb.RegisterPartyMemberRequest(party_member=body.to_pb(pb.PartyMember)),
    location=lambda member, _: f"/party-members/{member.name.removeprefix('partyMembers/')}",
)
api.get(
    "/party-members/{user_id}",
    "get_party_member",
    rpc="GetPartyMember",
    view=PartyMember,
    summary="A party member's registration (yourself, or one your scope covers)",
    params={"user_id": UserId},
    message=lambda user_id: pb.GetPartyMemberRequest(name=f"partyMembers/{user_id}"),
)
api.get(
    "/activities",
    "list_activities",
    rpc="ListActivities",
    view=ActivityPage,
    summary="Volunteer activities at or below a node",
    params={"node": RequiredNode, **PAGE},
    message=lambda node, page_size, page_token: pb.ListActivitiesRequest(
        node=path_of(node), page_size=page_size, page_token=page_token
    ),
)
api.post(
    "/activities",
    "create_activity",
    rpc="CreateActivity",
    view=Activity,
    status_code=201,
    summary="Announce a volunteer activity at a block (its staff)",
    body=NewActivity,
    message=lambda body: pb.CreateActivityRequest(activity=body.to_pb(pb.Activity)),
    location=lambda activity, _: f"/activities/{activity.id}",
)
api.get(
    "/activities/{activity_id}",
    "get_activity",
    rpc="GetActivity",
    view=Activity,
    summary="Get an activity",
    params={"activity_id": ActivityId},
    message=lambda activity_id: pb.GetActivityRequest(name=f"activities/{activity_id}"),
)
api.post(
    "/activities/{activity_id}/check-in",
    "check_in",
    rpc="CheckIn",
    view=Attendance,
    summary="Check in: yourself where you are (inside the block), or (staff) a member offline",
    params={"activity_id": ActivityId},
    body=CheckInBody,
    message=lambda activity_id, body: body.to_pb(pb.CheckInRequest, activity=f"activities/{activity_id}"),
)
api.post(
    "/activities/{activity_id}/check-out",
    "check_out",
    rpc="CheckOut",
    view=Attendance,
    summary="Check out: the activity's points post, once",
    params={"activity_id": ActivityId},
    body=CheckOutBody,
    message=lambda activity_id, body: body.to_pb(pb.CheckOutRequest, activity=f"activities/{activity_id}"),
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
api.post(
    "/rankings",
    "publish_ranking",
    rpc="PublishRanking",
    view=Ranking,
    status_code=201,
    summary="Publish a red or black list: a stored snapshot and an event",
    description="The ranking's id is the `Idempotency-Key`: a retry returns the first publication.",
    body=NewRanking,
    idempotent=True,
    message=lambda body, idempotency_key: pb.PublishRankingRequest(
        ranking=body.query(), title=body.title, request_id=request_id(idempotency_key)
    ),
    location=lambda ranking, _: f"/rankings/{ranking.id}",
)
api.get(
    "/rankings",
    "list_rankings",
    rpc="ListRankings",
    view=RankingPage,
    summary="Lists published for a node, newest first",
    params={"node": RequiredNode, **PAGE},
    message=lambda node, page_size, page_token: pb.ListRankingsRequest(
        node=path_of(node), page_size=page_size, page_token=page_token
    ),
)
api.get(
    "/rankings/{ranking_id}",
    "get_ranking",
    rpc="GetRanking",
    view=Ranking,
    summary="Get a published list",
    params={"ranking_id": RankingId},
    message=lambda ranking_id: pb.GetRankingRequest(name=f"rankings/{ranking_id}"),
)


# ----------------------------------------------------------------------------- the caller's own
# Written out: the request names the caller, whom only the verified token says.


@router.get(
    "/me/account", response_model=Account, summary="Your own points account (empty until your first award)"
)
async def get_my_account(request: Request, caller: CallerDep) -> Account:
    reply = await call(request, _points(request).GetAccount, pb.GetAccountRequest(name=_me(caller)), caller)
    return Account.of(reply)


@router.get("/me/entries", response_model=EntryPage, summary="Your own statement, newest first")
async def list_my_entries(
    request: Request, caller: CallerDep, page_size: PageSize = 50, page_token: PageToken = ""
) -> EntryPage:
    message = pb.ListEntriesRequest(parent=_me(caller), page_size=page_size, page_token=page_token)
    return EntryPage.of(await call(request, _points(request).ListEntries, message, caller))


@router.get(
    "/me/credit-queries",
    response_model=CreditQueryPage,
    summary="Who asked for your credit tier, answered or refused, newest first",
)
async def list_my_credit_queries(
    request: Request, caller: CallerDep, page_size: PageSize = 50, page_token: PageToken = ""
) -> CreditQueryPage:
    message = pb.ListCreditQueriesRequest(parent=_me(caller), page_size=page_size, page_token=page_token)
    return CreditQueryPage.of(await call(request, _points(request).ListCreditQueries, message, caller))
