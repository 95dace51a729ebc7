"""Thin gRPC adapter for the points service."""

from __future__ import annotations

from dataclasses import dataclass

from gov.points.v1 import points_pb2 as pb
from gov.points.v1 import points_pb2_grpc
from govkit.auth.principal import current_principal
from govkit.grpc_server import ServicerContext
from govkit.protobuf import timestamp, update_paths
from services.points import convert
from services.points.catalogue import EXCHANGE_POINT_FIELDS, INDICATOR_FIELDS, ITEM_FIELDS, Catalogue
from services.points.credit import Credit, consent_message, policy_message, query_message
from services.points.earning import RULE_FIELDS, Earning, rule_message
from services.points.flows import PointsFlows
from services.points.lovebank import LoveBank
from services.points.rankings import Rankings
from services.points.volunteering import (
    Volunteering,
    activity_message,
    attendance_message,
    member_message,
)

SERVICE = "gov.points.v1.PointsService"


@dataclass(eq=False)
class PointsServicer(points_pb2_grpc.PointsServiceServicer):
    catalogue: Catalogue
    flows: PointsFlows
    lovebank: LoveBank
    earning: Earning
    credit: Credit
    rankings: Rankings

    def __post_init__(self) -> None:
        self.volunteering = Volunteering(self.flows)

    # indicators
    async def CreateIndicator(
        self, request: pb.CreateIndicatorRequest, context: ServicerContext
    ) -> pb.Indicator:
        return convert.indicator(
            await self.catalogue.create_indicator(current_principal(), request.indicator)
        )

    async def GetIndicator(self, request: pb.GetIndicatorRequest, context: ServicerContext) -> pb.Indicator:
        current_principal()
        return await self.catalogue.get_indicator(request.name, request.version)

    async def ListIndicators(
        self, request: pb.ListIndicatorsRequest, context: ServicerContext
    ) -> pb.ListIndicatorsResponse:
        current_principal()
        rows, token = await self.catalogue.list_indicators(request)
        return pb.ListIndicatorsResponse(
            indicators=[convert.indicator(r) for r in rows], next_page_token=token
        )

    async def UpdateIndicator(
        self, request: pb.UpdateIndicatorRequest, context: ServicerContext
    ) -> pb.Indicator:
        paths = update_paths(request, INDICATOR_FIELDS)
        return convert.indicator(
            await self.catalogue.update_indicator(current_principal(), request.indicator, paths)
        )

    async def SetIndicatorAvailability(
        self, request: pb.SetIndicatorAvailabilityRequest, context: ServicerContext
    ) -> pb.IndicatorAvailability:
        row = await self.catalogue.set_availability(current_principal(), request.availability)
        return pb.IndicatorAvailability(
            indicator=f"indicators/{row.indicator_id}",
            node=row.node,
            disabled=row.disabled,
            update_time=timestamp(row.update_time),
        )

    # awards
    async def CreateAward(self, request: pb.CreateAwardRequest, context: ServicerContext) -> pb.Award:
        return convert.award(
            await self.flows.create_award(current_principal(), request.award, request.request_id)
        )

    async def GetAward(self, request: pb.GetAwardRequest, context: ServicerContext) -> pb.Award:
        return convert.award(await self.flows.get_award(current_principal(), request.name))

    async def ListAwards(
        self, request: pb.ListAwardsRequest, context: ServicerContext
    ) -> pb.ListAwardsResponse:
        rows, token = await self.flows.list_awards(current_principal(), request)
        return pb.ListAwardsResponse(awards=[convert.award(r) for r in rows], next_page_token=token)

    async def ApproveAward(self, request: pb.ApproveAwardRequest, context: ServicerContext) -> pb.Award:
        return convert.award(
            await self.flows.decide_award(current_principal(), request.name, approve=True, note=request.note)
        )

    async def RejectAward(self, request: pb.RejectAwardRequest, context: ServicerContext) -> pb.Award:
        return convert.award(
            await self.flows.decide_award(current_principal(), request.name, approve=False, note=request.note)
        )

    # ledger
    async def GetAccount(self, request: pb.GetAccountRequest, context: ServicerContext) -> pb.Account:
        return await self.flows.get_account(current_principal(), request.name)

    async def ListEntries(
        self, request: pb.ListEntriesRequest, context: ServicerContext
    ) -> pb.ListEntriesResponse:
        entries, token = await self.flows.list_entries(
            current_principal(), request.parent, request.page_size, request.page_token
        )
        return pb.ListEntriesResponse(entries=entries, next_page_token=token)

    async def GetEntry(self, request: pb.GetEntryRequest, context: ServicerContext) -> pb.Entry:
        return await self.flows.get_entry(current_principal(), request.name)

    async def ReverseEntry(self, request: pb.ReverseEntryRequest, context: ServicerContext) -> pb.Entry:
        return await self.flows.reverse_entry(
            current_principal(), request.name, request.reason, request.request_id
        )

    # love bank
    async def CreateExchangePoint(
        self, request: pb.CreateExchangePointRequest, context: ServicerContext
    ) -> pb.ExchangePoint:
        return convert.exchange_point(
            await self.catalogue.create_exchange_point(current_principal(), request.exchange_point)
        )

    async def GetExchangePoint(
        self, request: pb.GetExchangePointRequest, context: ServicerContext
    ) -> pb.ExchangePoint:
        current_principal()
        return convert.exchange_point(await self.catalogue.get_exchange_point(request.name))

    async def ListExchangePoints(
        self, request: pb.ListExchangePointsRequest, context: ServicerContext
    ) -> pb.ListExchangePointsResponse:
        current_principal()
        rows, token = await self.catalogue.list_exchange_points(
            request.node, request.page_size, request.page_token
        )
        return pb.ListExchangePointsResponse(
            exchange_points=[convert.exchange_point(r) for r in rows], next_page_token=token
        )

    async def UpdateExchangePoint(
        self, request: pb.UpdateExchangePointRequest, context: ServicerContext
    ) -> pb.ExchangePoint:
        paths = update_paths(request, EXCHANGE_POINT_FIELDS)
        return convert.exchange_point(
            await self.catalogue.update_exchange_point(current_principal(), request.exchange_point, paths)
        )

    async def CreateItem(self, request: pb.CreateItemRequest, context: ServicerContext) -> pb.Item:
        return convert.item(
            await self.catalogue.create_item(current_principal(), request.parent, request.item)
        )

    async def GetItem(self, request: pb.GetItemRequest, context: ServicerContext) -> pb.Item:
        current_principal()
        return convert.item(await self.catalogue.get_item(request.name))

    async def ListItems(self, request: pb.ListItemsRequest, context: ServicerContext) -> pb.ListItemsResponse:
        current_principal()
        rows, token = await self.catalogue.list_items(request)
        return pb.ListItemsResponse(items=[convert.item(r) for r in rows], next_page_token=token)

    async def UpdateItem(self, request: pb.UpdateItemRequest, context: ServicerContext) -> pb.Item:
        paths = update_paths(request, ITEM_FIELDS)
        return convert.item(await self.catalogue.update_item(current_principal(), request.item, paths))

    async def CreateRedemption(
        self, request: pb.CreateRedemptionRequest, context: ServicerContext
    ) -> pb.Redemption:
        return convert.redemption(
            await self.lovebank.create(current_principal(), request.redemption, request.request_id)
        )

    async def GetRedemption(
        self, request: pb.GetRedemptionRequest, context: ServicerContext
    ) -> pb.Redemption:
        return convert.redemption(await self.lovebank.get(current_principal(), request.name))

    async def ListRedemptions(
        self, request: pb.ListRedemptionsRequest, context: ServicerContext
    ) -> pb.ListRedemptionsResponse:
        rows, token = await self.lovebank.list(current_principal(), request)
        return pb.ListRedemptionsResponse(
            redemptions=[convert.redemption(r) for r in rows], next_page_token=token
        )

    async def FulfilRedemption(
        self, request: pb.FulfilRedemptionRequest, context: ServicerContext
    ) -> pb.Redemption:
        return convert.redemption(await self.lovebank.fulfil(current_principal(), request.name))

    async def CancelRedemption(
        self, request: pb.CancelRedemptionRequest, context: ServicerContext
    ) -> pb.Redemption:
        return convert.redemption(
            await self.lovebank.cancel(current_principal(), request.name, request.reason)
        )

    # automatic earning
    async def CreateEarningRule(
        self, request: pb.CreateEarningRuleRequest, context: ServicerContext
    ) -> pb.EarningRule:
        return rule_message(await self.earning.create_rule(current_principal(), request.earning_rule))

    async def ListEarningRules(
        self, request: pb.ListEarningRulesRequest, context: ServicerContext
    ) -> pb.ListEarningRulesResponse:
        current_principal()
        rows, token = await self.earning.list_rules(request.node, request.page_size, request.page_token)
        return pb.ListEarningRulesResponse(
            earning_rules=[rule_message(r) for r in rows], next_page_token=token
        )

    async def UpdateEarningRule(
        self, request: pb.UpdateEarningRuleRequest, context: ServicerContext
    ) -> pb.EarningRule:
        paths = update_paths(request, RULE_FIELDS)
        return rule_message(await self.earning.update_rule(current_principal(), request.earning_rule, paths))

    # appeals
    async def AppealAward(self, request: pb.AppealAwardRequest, context: ServicerContext) -> pb.Award:
        return convert.award(await self.flows.appeal(current_principal(), request.name, request.reason))

    async def DecideAppeal(self, request: pb.DecideAppealRequest, context: ServicerContext) -> pb.Award:
        return convert.award(
            await self.flows.decide_appeal(
                current_principal(),
                request.name,
                reverse=request.reverse,
                answer=request.answer,
                request_id=request.request_id,
            )
        )

    # credit tiers
    async def SetCreditPolicy(
        self, request: pb.SetCreditPolicyRequest, context: ServicerContext
    ) -> pb.CreditPolicy:
        return policy_message(await self.credit.set_policy(current_principal(), request.policy))

    async def GetCreditPolicy(
        self, request: pb.GetCreditPolicyRequest, context: ServicerContext
    ) -> pb.CreditPolicy:
        current_principal()
        return policy_message(await self.credit.get_policy(request.name))

    async def GrantCreditConsent(
        self, request: pb.GrantCreditConsentRequest, context: ServicerContext
    ) -> pb.CreditConsent:
        return consent_message(await self.credit.set_consent(current_principal(), request.bank, True))

    async def RevokeCreditConsent(
        self, request: pb.RevokeCreditConsentRequest, context: ServicerContext
    ) -> pb.CreditConsent:
        return consent_message(await self.credit.set_consent(current_principal(), request.bank, False))

    async def ListCreditConsents(
        self, request: pb.ListCreditConsentsRequest, context: ServicerContext
    ) -> pb.ListCreditConsentsResponse:
        rows, token = await self.credit.list_consents(
            current_principal(), request.page_size, request.page_token
        )
        return pb.ListCreditConsentsResponse(
            consents=[consent_message(r) for r in rows], next_page_token=token
        )

    async def GetCreditTier(
        self, request: pb.GetCreditTierRequest, context: ServicerContext
    ) -> pb.CreditTierAnswer:
        return await self.credit.get_tier(current_principal(), request.resident)

    async def ListCreditQueries(
        self, request: pb.ListCreditQueriesRequest, context: ServicerContext
    ) -> pb.ListCreditQueriesResponse:
        rows, token = await self.credit.list_queries(
            current_principal(), request.parent, request.page_size, request.page_token
        )
        return pb.ListCreditQueriesResponse(queries=[query_message(r) for r in rows], next_page_token=token)

    # party members' service points
    async def RegisterPartyMember(
        self, request: pb.RegisterPartyMemberRequest, context: ServicerContext
    ) -> pb.PartyMember:
        return member_message(await self.volunteering.register(current_principal(), request.party_member))

    async def GetPartyMember(
        self, request: pb.GetPartyMemberRequest, context: ServicerContext
    ) -> pb.PartyMember:
        return member_message(await self.volunteering.get_member(current_principal(), request.name))

    async def CreateActivity(
        self, request: pb.CreateActivityRequest, context: ServicerContext
    ) -> pb.Activity:
        return activity_message(
            await self.volunteering.create_activity(current_principal(), request.activity)
        )

    async def GetActivity(self, request: pb.GetActivityRequest, context: ServicerContext) -> pb.Activity:
        current_principal()
        return activity_message(await self.volunteering.get_activity(request.name))

    async def ListActivities(
        self, request: pb.ListActivitiesRequest, context: ServicerContext
    ) -> pb.ListActivitiesResponse:
        current_principal()
        rows, token = await self.volunteering.list_activities(
            request.node, request.page_size, request.page_token
        )
        return pb.ListActivitiesResponse(
            activities=[activity_message(r) for r in rows], next_page_token=token
        )

    async def CheckIn(self, request: pb.CheckInRequest, context: ServicerContext) -> pb.Attendance:
        return attendance_message(await self.volunteering.check_in(current_principal(), request))

    async def CheckOut(self, request: pb.CheckOutRequest, context: ServicerContext) -> pb.Attendance:
        return attendance_message(await self.volunteering.check_out(current_principal(), request))

    # red and black lists
    async def ComputeRanking(self, request: pb.ComputeRankingRequest, context: ServicerContext) -> pb.Ranking:
        return await self.rankings.compute(current_principal(), request)

    async def PublishRanking(self, request: pb.PublishRankingRequest, context: ServicerContext) -> pb.Ranking:
        return await self.rankings.publish(current_principal(), request)

    async def GetRanking(self, request: pb.GetRankingRequest, context: ServicerContext) -> pb.Ranking:
        current_principal()
        return await self.rankings.get(request.name)

    async def ListRankings(
        self, request: pb.ListRankingsRequest, context: ServicerContext
    ) -> pb.ListRankingsResponse:
        current_principal()
        rows, token = await self.rankings.list(request.node, request.page_size, request.page_token)
        return pb.ListRankingsResponse(rankings=rows, next_page_token=token)
