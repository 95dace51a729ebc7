"""Red and black lists (红黑榜): residents or households ranked by net conduct (awards minus
penalties) or by penalties over a node and period, with the indicators behind each place. A draft
is computed for the node's staff; publishing is an explicit act that stores a snapshot (masked
names only) and announces it."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import grpc
from google.protobuf import json_format
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from gov.blocks.v1 import blocks_pb2
from gov.identity.v1 import identity_pb2, identity_pb2_grpc
from gov.points.v1 import events_pb2
from gov.points.v1 import points_pb2 as pb
from govkit import pagination, validation
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.auth.scopes import covers, validate_path
from govkit.errors import InvalidArgument, NotFound, PermissionDenied
from govkit.keyset import newest_first, time_id_cursor
from govkit.peers import on_behalf_of
from govkit.protobuf import period, timestamp
from govkit.sqlpaths import within
from services.points import convert, domain, repository
from services.points.catalogue import resource_id
from services.points.domain import AwardState, IndicatorKind
from services.points.flows import PointsFlows, reader_scopes
from services.points.models import Award, Indicator, PublishedRanking

MAX_PLACES = 100


def ordered(indicators: list[pb.RankingIndicator]) -> list[pb.RankingIndicator]:
    """The indicators behind a place, most points (either sign) first."""
    return sorted(indicators, key=lambda i: (-abs(i.points), i.display_name))


class Rankings:
    def __init__(self, flows: PointsFlows, identity: identity_pb2_grpc.IdentityServiceStub | None) -> None:
        self.flows = flows
        self.db = flows.db
        self.identity = identity

    async def compute(self, principal: Principal, req: pb.ComputeRankingRequest) -> pb.Ranking:
        node = validate_path(req.node, field="node", allow_global=False)
        if not any(covers(scope, node) for scope in reader_scopes(principal)) and not (
            await self.flows.staff_roles(principal, node)
        ):
            raise PermissionDenied(f"only staff whose scope covers {node} rank it")
        kind = convert.name_of(pb.RankingKind, req.kind, "kind")
        subject = convert.name_of(pb.RankingSubject, req.subject, "subject")
        start, end = period(req)
        if start is None or end is None:
            raise InvalidArgument("start_time and end_time are required", field="start_time")
        size = req.size or 20
        if not 1 <= size <= MAX_PLACES:
            raise InvalidArgument(f"must be 1..{MAX_PLACES}", field="size")
        when = func.coalesce(Award.decide_time, Award.create_time)
        prefix = "u-" if subject == "residents" else "h-"
        async with self.db.sessions() as session:
            rows = (
                await session.execute(
                    select(
                        Award.account_id, Award.indicator_id, Award.kind, func.count(), func.sum(Award.points)
                    )
                    .where(
                        Award.state == AwardState.POSTED.value,
                        within(Award.node, node),
                        when >= start,
                        when < end,
                        Award.account_id.startswith(prefix),
                    )
                    .group_by(Award.account_id, Award.indicator_id, Award.kind)
                )
            ).all()
            ids = sorted({r[1] for r in rows if r[1]})
            names = (
                {
                    i.id: i.display_name
                    for i in (await session.scalars(select(Indicator).where(Indicator.id.in_(ids)))).all()
                }
                if ids
                else {}
            )
        behind: dict[str, list[pb.RankingIndicator]] = defaultdict(list)
        net: dict[str, int] = defaultdict(int)
        penalties: dict[str, int] = defaultdict(int)
        for account_id, indicator_id, award_kind, count, points in rows:
            signed = -int(points) if award_kind == IndicatorKind.PENALTY else int(points)
            net[account_id] += signed
            if award_kind == IndicatorKind.PENALTY:
                penalties[account_id] += int(points)
            behind[account_id].append(
                pb.RankingIndicator(
                    indicator=f"indicators/{indicator_id}" if indicator_id else "",
                    display_name=names.get(indicator_id, "志愿服务") if indicator_id else "志愿服务",
                    count=int(count),
                    points=signed,
                )
            )
        scores = net if kind == "red" else penalties
        places = domain.rank([(a, s) for a, s in scores.items() if s > 0])[:size]
        owners = [domain.owner_of(a) for _, a, _ in places]
        shown = await self._masked_names(principal, node, owners)
        return pb.Ranking(
            node=node,
            kind=req.kind,
            subject=req.subject,
            start_time=timestamp(start),
            end_time=timestamp(end),
            places=[
                pb.RankingPlace(
                    rank=place,
                    owner=owner,
                    display_name=name,
                    points=score,
                    indicators=ordered(behind[account]),
                )
                for (place, account, score), owner, name in zip(places, owners, shown, strict=True)
            ],
        )

    async def _masked_names(self, principal: Principal, node: str, owners: list[str]) -> list[str]:
        """Each owner's name as a notice shows it, read as the caller: from identity where the
        caller may read users, else from the households of the node (block staff read those);
        `*` where the caller may read neither."""
        names = dict(
            zip(owners, await asyncio.gather(*(self._name(principal, o) for o in owners)), strict=True)
        )
        missing = {o for o, n in names.items() if n is None and o.startswith("users/")}
        if missing:
            found = await self._residents_of(principal, node, missing)
            names.update({o: found[o] for o in missing if o in found})
        return [domain.mask_name(n) if n else "*" for n in (names[o] for o in owners)]

    async def _name(self, principal: Principal, owner: str) -> str | None:
        try:
            if owner.startswith("users/") and self.identity is not None:
                user = await self.identity.GetUser(
                    identity_pb2.GetUserRequest(name=owner), metadata=on_behalf_of(principal), timeout=5
                )
                return user.display_name
            if owner.startswith("households/") and self.flows.blocks is not None:
                household = await self.flows.blocks.GetHousehold(
                    blocks_pb2.GetHouseholdRequest(name=owner), metadata=on_behalf_of(principal), timeout=5
                )
                return household.residents[0].display_name if household.residents else None
        except grpc.aio.AioRpcError:
            pass
        return None

    async def _residents_of(self, principal: Principal, node: str, users: set[str]) -> dict[str, str]:
        """Names of linked residents in the node's households (bounded: a few thousand households)."""
        found: dict[str, str] = {}
        if self.flows.blocks is None:
            return found
        token = ""
        for _ in range(20):
            try:
                page = await self.flows.blocks.ListHouseholds(
                    blocks_pb2.ListHouseholdsRequest(node=node, page_size=200, page_token=token),
                    metadata=on_behalf_of(principal),
                    timeout=10,
                )
            except grpc.aio.AioRpcError:
                return found
            for household in page.households:
                for resident in household.residents:
                    if resident.user in users:
                        found[resident.user] = resident.display_name
            token = page.next_page_token
            if not token or len(found) == len(users):
                return found
        return found

    async def publish(self, principal: Principal, req: pb.PublishRankingRequest) -> pb.Ranking:
        ranking_id = domain.request_id(req.request_id)
        title = validation.text(req.title, "title", max_len=64)
        node = validate_path(req.ranking.node, field="ranking.node", allow_global=False)
        body = {
            "spec": json_format.MessageToJson(req.ranking, sort_keys=True),
            "title": title,
            "by": principal.subject,
        }
        existing = await self._row(ranking_id)
        if existing is not None:
            domain.same_request(existing.request_hash, body, "ranking", ranking_id)
            return json_format.Parse(existing.snapshot, pb.Ranking())
        leader = principal.can(Permission.POINTS_CONFIGURE, node)
        if not leader and not await self.flows.staff_roles(principal, node) & domain.RECORDERS:
            raise PermissionDenied(f"only a leader over {node} or its block's staff publish its lists")
        ranking = await self.compute(principal, req.ranking)
        now = self.flows.clock()
        ranking.name, ranking.title = f"rankings/{ranking_id}", title
        ranking.published_by = principal.subject
        ranking.publish_time.FromDatetime(now)
        try:
            async with self.db.transaction() as session:
                session.add(
                    PublishedRanking(
                        id=ranking_id,
                        node=node,
                        snapshot=json_format.MessageToJson(ranking),
                        published_by=principal.subject,
                        publish_time=now,
                        request_hash=domain.fingerprint(body),
                    )
                )
                await session.flush()
                await repository.emit(
                    session,
                    principal.subject,
                    "points.v1.list.published",
                    events_pb2.ListPublished(
                        ranking=ranking.name,
                        node=node,
                        kind=ranking.kind,
                        subject=ranking.subject,
                        start_time=ranking.start_time,
                        end_time=ranking.end_time,
                        places=len(ranking.places),
                    ),
                    ranking.name,
                )
        except IntegrityError:
            existing = await self._row(ranking_id)
            assert existing is not None
            domain.same_request(existing.request_hash, body, "ranking", ranking_id)
            return json_format.Parse(existing.snapshot, pb.Ranking())
        return ranking

    async def _row(self, ranking_id: str) -> PublishedRanking | None:
        async with self.db.sessions() as session:
            return await session.get(PublishedRanking, ranking_id)

    async def get(self, name: str) -> pb.Ranking:
        row = await self._row(resource_id(name, "rankings"))
        if row is None:
            raise NotFound(f"no {name}")
        return json_format.Parse(row.snapshot, pb.Ranking())

    async def list(self, node: str, page_size: int, page_token: str) -> tuple[list[pb.Ranking], str]:
        path = validate_path(node, field="node", allow_global=False)
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("rankings", path)
        cursor = time_id_cursor(page_token, fp)
        stmt = select(PublishedRanking).where(PublishedRanking.node == path)
        rows, token = await newest_first(
            self.db, stmt, PublishedRanking.publish_time, PublishedRanking.id, cursor, size, fp
        )
        return [json_format.Parse(r.snapshot, pb.Ranking()) for r in rows], token
