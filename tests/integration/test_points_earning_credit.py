"""Points earned from tickets' events (exactly once), appeals, and the bank's credit tiers with the
resident's consent and audit log, against real identity, blocks, tickets and points processes."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import grpc
import httpx
import nats

from gov.blocks.v1 import blocks_pb2
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.points.v1 import points_pb2 as pb
from gov.points.v1.points_pb2_grpc import PointsServiceStub
from gov.tickets.v1 import tickets_pb2
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from govkit.devstack import Stack
from govkit.events import MSG_ID_HEADER, parse_event
from govkit.protobuf import timestamp
from tests.support.events import event_types
from tests.support.identity import IdentityClient, md
from tests.support.points import Village, account, award, make_indicator, refused
from tests.support.tickets import Person, make_world, new_ticket


async def balance_of(points: PointsServiceStub, person: Person, want: int, within: float = 20) -> int:
    """The person's balance once it reaches `want` (or whatever it is after `within` seconds)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        acct = await points.GetAccount(pb.GetAccountRequest(name=person.name), metadata=person.md)
        if acct.balance >= want or asyncio.get_running_loop().time() > deadline:
            return acct.balance
        await asyncio.sleep(0.2)


async def republish(nats_url: str, subject: str, resource: str, stream: str = "TICKETS") -> str:
    """Publish a stored event again under a new message id, as a redelivery would bring it."""
    nc = await nats.connect(nats_url)
    try:
        jsm = nc.jsm()
        info = await jsm.stream_info(stream)
        for seq in range(info.state.last_seq, info.state.first_seq - 1, -1):
            msg = await jsm.get_msg(stream, seq)
            event = parse_event(msg.data)
            if msg.subject == subject and event.resource == resource:
                headers = dict(msg.headers or {})
                headers[MSG_ID_HEADER] = f"{headers.get(MSG_ID_HEADER, event.id)}:again"
                await nc.jetstream().publish(subject, msg.data, headers=headers)
                return event.id
        raise AssertionError(f"no {subject} about {resource} on the stream")
    finally:
        await nc.close()


# ---------------------------------------------------------------- automatic earning


async def test_an_accepted_report_earns_its_reporter_once_however_often_the_event_arrives(
    points: PointsServiceStub,
    tickets: TicketsServiceStub,
    blocks: BlocksServiceStub,
    identity: IdentityClient,
    stack: Stack,
) -> None:
    world = await make_world(blocks, tickets, identity)
    user, _, token = await identity.make_user(world.district, [("leader", world.district)])
    leader = Person(user.name, token)
    indicator = await points.CreateIndicator(
        pb.CreateIndicatorRequest(
            indicator=pb.Indicator(
                node=world.district,
                code="report-accepted",
                display_name="有效反映问题",
                kind=pb.INDICATOR_KIND_REWARD,
                points=3,
            )
        ),
        metadata=leader.md,
    )
    rule = await points.CreateEarningRule(
        pb.CreateEarningRuleRequest(
            earning_rule=pb.EarningRule(
                node=world.street, trigger=pb.TRIGGER_REPORT_ACCEPTED, indicator=indicator.name
            )
        ),
        metadata=leader.md,
    )
    assert rule.active
    resident = world.staff["resident"]

    async def report_and_accept() -> tickets_pb2.Ticket:
        t = await tickets.CreateTicket(
            tickets_pb2.CreateTicketRequest(ticket=new_ticket(world)), metadata=resident.md
        )
        return await tickets.TransitionTicket(
            tickets_pb2.TransitionTicketRequest(name=t.name, action=tickets_pb2.ACTION_ACCEPT),
            metadata=world.staff["dispatcher"].md,
        )

    first = await report_and_accept()
    assert await balance_of(points, resident, 3) == 3
    # The same event again (a redelivery under a new message id): nothing changes.
    event_id = await republish(stack.nats_url, "tickets.v1.ticket.accepted", first.name)
    # A later report is handled after the duplicate (stream order), so once it has earned, the
    # duplicate has been seen.
    await report_and_accept()
    assert await balance_of(points, resident, 6) == 6
    await asyncio.sleep(1)
    assert await balance_of(points, resident, 7, within=0) == 6
    earned = await points.GetAward(pb.GetAwardRequest(name=f"awards/ev-{event_id}"), metadata=resident.md)
    assert earned.source_event == f"tickets.v1.ticket.accepted:{event_id}"
    assert earned.recorded_by == "system" and earned.points == 3
    # Reports staff file on patrol earn nobody anything.
    patrol = await tickets.CreateTicket(
        tickets_pb2.CreateTicketRequest(ticket=new_ticket(world, source=tickets_pb2.TICKET_SOURCE_PATROL)),
        metadata=world.staff["governor"].md,
    )
    await tickets.TransitionTicket(
        tickets_pb2.TransitionTicketRequest(name=patrol.name, action=tickets_pb2.ACTION_ACCEPT),
        metadata=world.staff["dispatcher"].md,
    )
    await report_and_accept()
    assert await balance_of(points, resident, 9) == 9
    assert await balance_of(points, world.staff["governor"], 1, within=0) == 0


async def test_earning_rules_take_only_rewards_without_evidence(
    points: PointsServiceStub, village: Village
) -> None:
    penalty = await make_indicator(points, village, kind=pb.INDICATOR_KIND_PENALTY)
    with_evidence = await make_indicator(points, village, evidence_required=True)
    for indicator in (penalty, with_evidence):
        await refused(
            points.CreateEarningRule(
                pb.CreateEarningRuleRequest(
                    earning_rule=pb.EarningRule(
                        node=village.district, trigger=pb.TRIGGER_TICKET_RATED, indicator=indicator
                    )
                ),
                metadata=village.staff["leader"].md,
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )


async def test_a_visit_that_resolved_an_issue_earns_the_household_once_and_others_earn_nothing(
    points: PointsServiceStub,
    blocks: BlocksServiceStub,
    identity: IdentityClient,
    village: Village,
    stack: Stack,
) -> None:
    leader = village.staff["leader"]
    indicator = await make_indicator(points, village, points=6, display_name="入户走访解决问题")
    rule = await points.CreateEarningRule(
        pb.CreateEarningRuleRequest(
            earning_rule=pb.EarningRule(
                node=village.block, trigger=pb.TRIGGER_VISIT_ISSUE_RESOLVED, indicator=indicator
            )
        ),
        metadata=leader.md,
    )
    assert rule.trigger == pb.TRIGGER_VISIT_ISSUE_RESOLVED
    household = await blocks.CreateHousehold(
        blocks_pb2.CreateHouseholdRequest(
            household=blocks_pb2.Household(
                code=f"h{uuid.uuid4().hex[:10]}", block=village.block, address="5栋302"
            )
        ),
        metadata=md(identity.admin_token),
    )
    home = pb.GetAccountRequest(name=household.name)

    async def household_balance(want: int, within: float = 20) -> int:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            try:
                balance = (await points.GetAccount(home, metadata=leader.md)).balance
            except grpc.aio.AioRpcError as err:
                assert err.code() == grpc.StatusCode.NOT_FOUND, err.details()
                balance = 0  # no account until the first award
            if balance >= want or asyncio.get_running_loop().time() > deadline:
                return balance
            await asyncio.sleep(0.2)

    governor = village.staff["governor"]
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:

        async def visit(**body: object) -> dict:
            reply = await http.post(
                f"/api/v1/households/{household.name.removeprefix('households/')}/visits",
                json={"notes": "入户走访", **body},
                headers={"Authorization": f"Bearer {governor.token}"},
            )
            assert reply.status_code == 201, reply.text
            return reply.json()

        first = await visit(issues_found=["楼道灯损坏"], issues_resolved=["楼道灯已修复"])
        assert first["issues_resolved"] == ["楼道灯已修复"]
        assert await household_balance(6) == 6
        # The same event again, a visit that resolved nothing, then one that did: handled in stream
        # order, so once the last has earned, the two before it have been seen.
        event_id = await republish(stack.nats_url, "blocks.v1.visit.recorded", first["name"], stream="BLOCKS")
        nothing = await visit(issues_found=["独居老人"])
        assert nothing["issues_resolved"] == []
        await visit(issues_resolved=["下水道疏通"])
        assert await household_balance(12) == 12
        await asyncio.sleep(1)
        assert await household_balance(13, within=0) == 12
    earned = await points.GetAward(pb.GetAwardRequest(name=f"awards/ev-{event_id}"), metadata=leader.md)
    assert (earned.recipient, earned.points, earned.recorded_by) == (household.name, 6, "system")
    assert earned.source_event == f"blocks.v1.visit.recorded:{event_id}"
    assert earned.account == f"accounts/h-{household.name.removeprefix('households/')}"


# ---------------------------------------------------------------- appeals


async def test_a_resident_appeals_a_penalty_to_the_supervisor(
    points: PointsServiceStub, village: Village
) -> None:
    reward = await make_indicator(points, village, points=20)
    penalty = await make_indicator(points, village, kind=pb.INDICATOR_KIND_PENALTY, points=8)
    await award(points, village, reward)
    fined = await award(points, village, penalty)
    other = await award(points, village, penalty)
    me = village.residents[0].md
    await refused(
        points.AppealAward(
            pb.AppealAwardRequest(name=fined.name, reason="不是我"), metadata=village.residents[1].md
        ),
        grpc.StatusCode.NOT_FOUND,  # someone else's penalty is not theirs to see
    )
    appealed = await points.AppealAward(
        pb.AppealAwardRequest(name=fined.name, reason="当天我不在家"), metadata=me
    )
    assert appealed.appeal_state == pb.APPEAL_STATE_OPEN
    await refused(
        points.AppealAward(pb.AppealAwardRequest(name=fined.name, reason="再申诉"), metadata=me),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    for who in ("governor", "assistant"):
        await refused(
            points.DecideAppeal(
                pb.DecideAppealRequest(
                    name=fined.name, reverse=True, answer="同意", request_id=uuid.uuid4().hex
                ),
                metadata=village.staff[who].md,
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        )
    decided = await points.DecideAppeal(
        pb.DecideAppealRequest(name=fined.name, reverse=True, answer="核实属实", request_id=uuid.uuid4().hex),
        metadata=village.staff["supervisor"].md,
    )
    assert (decided.appeal_state, decided.state) == (pb.APPEAL_STATE_REVERSED, pb.AWARD_STATE_REVERSED)
    assert (await account(points, village)).balance == 12
    await points.AppealAward(pb.AppealAwardRequest(name=other.name, reason="理由"), metadata=me)
    upheld = await points.DecideAppeal(
        pb.DecideAppealRequest(name=other.name, reverse=False, answer="维持"),
        metadata=village.staff["supervisor"].md,
    )
    assert (upheld.appeal_state, upheld.state) == (pb.APPEAL_STATE_UPHELD, pb.AWARD_STATE_POSTED)
    assert (await account(points, village)).balance == 12


# ---------------------------------------------------------------- credit tiers


async def test_the_bank_sees_a_tier_only_with_consent_and_every_query_is_audited(
    points: PointsServiceStub, village: Village, identity: IdentityClient
) -> None:
    leader = village.staff["leader"].md
    await points.SetCreditPolicy(
        pb.SetCreditPolicyRequest(
            policy=pb.CreditPolicy(
                district=village.district,
                window_months=12,
                tiers=[
                    pb.CreditTier(display_name="二级信用户", min_points=10, credit_amount=30_000),
                    pb.CreditTier(
                        display_name="一级信用户", min_points=20, clean_months=6, credit_amount=100_000
                    ),
                ],
            )
        ),
        metadata=leader,
    )
    await award(points, village, await make_indicator(points, village, points=25))
    created = await identity.make_service_account("合作银行")
    bank = md(await identity.service_token(created))
    resident = village.residents[0]
    ask = pb.GetCreditTierRequest(resident=resident.name)
    await refused(points.GetCreditTier(ask, metadata=bank), grpc.StatusCode.PERMISSION_DENIED)
    consent = await points.GrantCreditConsent(
        pb.GrantCreditConsentRequest(bank=created.service_account.name), metadata=resident.md
    )
    assert consent.granted
    answer = await points.GetCreditTier(ask, metadata=bank)
    assert (answer.tier.display_name, answer.tier.credit_amount, answer.net_points) == (
        "一级信用户",
        100_000,
        25,
    )
    # A recent penalty: net 17 and not clean for six months, so the lower tier.
    await award(
        points, village, await make_indicator(points, village, kind=pb.INDICATOR_KIND_PENALTY, points=8)
    )
    answer = await points.GetCreditTier(ask, metadata=bank)
    assert (answer.tier.display_name, answer.net_points) == ("二级信用户", 17)
    await refused(points.GetCreditTier(ask, metadata=leader), grpc.StatusCode.PERMISSION_DENIED)  # not a bank
    await points.RevokeCreditConsent(
        pb.RevokeCreditConsentRequest(bank=created.service_account.name), metadata=resident.md
    )
    await refused(points.GetCreditTier(ask, metadata=bank), grpc.StatusCode.PERMISSION_DENIED)
    log = await points.ListCreditQueries(
        pb.ListCreditQueriesRequest(parent=resident.name), metadata=resident.md
    )
    assert [(q.caller, q.answered, q.tier) for q in reversed(log.queries)] == [
        (created.service_account.name, False, ""),
        (created.service_account.name, True, "一级信用户"),
        (created.service_account.name, True, "二级信用户"),
        (village.staff["leader"].name, False, ""),
        (created.service_account.name, False, ""),
    ]
    await refused(
        points.ListCreditQueries(
            pb.ListCreditQueriesRequest(parent=resident.name), metadata=village.residents[1].md
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )


# ---------------------------------------------------------------- party members' service points


async def test_service_points_post_on_check_out_once_and_only_inside_the_block(
    points: PointsServiceStub, village: Village
) -> None:
    now = dt.datetime.now(dt.UTC)
    activity = await points.CreateActivity(
        pb.CreateActivityRequest(
            activity=pb.Activity(
                block=village.block,
                display_name="楼道清洁志愿服务",
                place="3栋楼下",
                start_time=timestamp(now - dt.timedelta(minutes=10)),
                end_time=timestamp(now + dt.timedelta(hours=2)),
                capacity=2,
                points=5,
            )
        ),
        metadata=village.staff["leader"].md,
    )
    members = village.residents
    community = village.block.rsplit("/", 1)[0]
    for m in members[:3]:
        await points.RegisterPartyMember(
            pb.RegisterPartyMemberRequest(
                party_member=pb.PartyMember(community=community, work_unit="区人社局")
            ),
            metadata=m.md,
        )
    lat, lng = village.inside
    here = pb.CheckInRequest(activity=activity.name, latitude=lat, longitude=lng)
    away = pb.CheckInRequest(
        activity=activity.name, latitude=village.next_door[0], longitude=village.next_door[1]
    )
    # Outside the activity's block: refused, nothing recorded, nothing earned.
    await refused(points.CheckIn(away, metadata=members[0].md), grpc.StatusCode.FAILED_PRECONDITION)
    await refused(
        points.CheckOut(pb.CheckOutRequest(activity=activity.name), metadata=members[0].md),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    checked = await points.CheckIn(here, metadata=members[0].md)
    assert checked.member == members[0].name and not checked.offline
    await refused(points.CheckIn(here, metadata=members[0].md), grpc.StatusCode.ALREADY_EXISTS)  # twice
    out = await points.CheckOut(pb.CheckOutRequest(activity=activity.name), metadata=members[0].md)
    assert out.award and out.check_out_time.seconds
    await refused(
        points.CheckOut(pb.CheckOutRequest(activity=activity.name), metadata=members[0].md),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert (await account(points, village, 0)).balance == 5
    # Offline: the block's staff check a member in; a resident cannot do it for someone else.
    await refused(
        points.CheckIn(
            pb.CheckInRequest(activity=activity.name, member=members[1].name), metadata=members[2].md
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    offline = await points.CheckIn(
        pb.CheckInRequest(activity=activity.name, member=members[1].name),
        metadata=village.staff["governor"].md,
    )
    assert offline.offline and offline.checked_in_by == village.staff["governor"].name
    # Two places, both taken.
    await refused(points.CheckIn(here, metadata=members[2].md), grpc.StatusCode.FAILED_PRECONDITION)
    await points.CheckOut(
        pb.CheckOutRequest(activity=activity.name, member=members[1].name),
        metadata=village.staff["governor"].md,
    )
    assert (await account(points, village, 1)).balance == 5
    assert await balance_of(points, members[2], 1, within=0) == 0  # never had an account
    # Not a registered member: no check-in.
    stranger = await points.CreateActivity(
        pb.CreateActivityRequest(
            activity=pb.Activity(
                block=village.block,
                display_name="敬老院探访",
                start_time=timestamp(now),
                end_time=timestamp(now + dt.timedelta(hours=1)),
                capacity=5,
                points=3,
            )
        ),
        metadata=village.staff["leader"].md,
    )
    await refused(
        points.CheckIn(
            pb.CheckInRequest(activity=stranger.name, latitude=lat, longitude=lng),
            metadata=village.staff["governor"].md,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


# ---------------------------------------------------------------- red and black lists


async def test_red_and_black_lists_rank_net_conduct_and_penalties_and_publishing_is_explicit(
    points: PointsServiceStub,
    village: Village,
    stack: Stack,
    blocks: BlocksServiceStub,
    identity: IdentityClient,
) -> None:
    # The first two residents' household file names them (the block's staff read names there).
    await blocks.CreateHousehold(
        blocks_pb2.CreateHouseholdRequest(
            household=blocks_pb2.Household(
                code=f"h{uuid.uuid4().hex[:10]}",
                block=village.block,
                address="3栋101",
                residents=[
                    blocks_pb2.Resident(
                        display_name="张三丰",
                        relation=blocks_pb2.RELATION_HEAD,
                        user=village.residents[0].name,
                    ),
                    blocks_pb2.Resident(
                        display_name="欧阳修",
                        relation=blocks_pb2.RELATION_SPOUSE,
                        user=village.residents[1].name,
                    ),
                ],
            )
        ),
        metadata=md(identity.admin_token),
    )
    good = await make_indicator(points, village, points=10, display_name="垃圾分类")
    bad = await make_indicator(
        points, village, kind=pb.INDICATOR_KIND_PENALTY, points=4, display_name="高空抛物"
    )
    worse = await make_indicator(
        points, village, kind=pb.INDICATOR_KIND_PENALTY, points=25, display_name="违章搭建"
    )
    await award(points, village, good, 0)
    await award(points, village, good, 0)
    await award(points, village, good, 1)
    await award(points, village, bad, 1)
    await award(points, village, worse, 2)
    now = dt.datetime.now(dt.UTC)
    spec = pb.ComputeRankingRequest(
        node=village.block,
        kind=pb.RANKING_KIND_RED,
        subject=pb.RANKING_SUBJECT_RESIDENTS,
        start_time=timestamp(now - dt.timedelta(days=1)),
        end_time=timestamp(now + dt.timedelta(days=1)),
    )
    red = await points.ComputeRanking(spec, metadata=village.staff["leader"].md)
    residents = [r.name for r in village.residents]
    assert [(p.rank, p.owner, p.points, p.display_name) for p in red.places] == [
        (1, residents[0], 20, "测***"),
        (2, residents[1], 6, "测***"),
    ]
    assert [(i.display_name, i.count, i.points) for i in red.places[1].indicators] == [
        ("垃圾分类", 1, 10),
        ("高空抛物", 1, -4),
    ]
    black_spec = pb.ComputeRankingRequest()
    black_spec.CopyFrom(spec)
    black_spec.kind = pb.RANKING_KIND_BLACK
    black = await points.ComputeRanking(black_spec, metadata=village.staff["leader"].md)
    assert [(p.owner, p.points) for p in black.places] == [(residents[2], 25), (residents[1], 4)]
    await refused(
        points.ComputeRanking(spec, metadata=village.residents[0].md), grpc.StatusCode.PERMISSION_DENIED
    )
    # Nothing is public until someone publishes it; the block's governor may.
    assert not (
        await points.ListRankings(
            pb.ListRankingsRequest(node=village.block), metadata=village.residents[0].md
        )
    ).rankings
    publish = pb.PublishRankingRequest(
        ranking=spec, title="本月红榜", request_id=f"red-{uuid.uuid4().hex[:8]}"
    )
    await refused(
        points.PublishRanking(publish, metadata=village.residents[0].md), grpc.StatusCode.PERMISSION_DENIED
    )
    published = await points.PublishRanking(publish, metadata=village.staff["governor"].md)
    assert published.name and published.published_by == village.staff["governor"].name
    assert await points.PublishRanking(publish, metadata=village.staff["governor"].md) == published
    seen = await points.GetRanking(
        pb.GetRankingRequest(name=published.name), metadata=village.residents[2].md
    )
    # Published by the governor, who reads names from the block's household files.
    assert [p.display_name for p in seen.places] == ["张**", "欧阳*"] and seen.title == "本月红榜"
    listed = await points.ListRankings(
        pb.ListRankingsRequest(node=village.block), metadata=village.residents[0].md
    )
    assert [r.name for r in listed.rankings] == [published.name]
    # Read until the stream pauses for 2 s: a second publication of the same list would show here.
    types = await event_types(stack.nats_url, "points.v1.list.published", published.name, settle=2)
    assert types == ["points.v1.list.published"]
