"""Working party members' service points ("report twice", 双报到): members register with their
community, check in at volunteer activities (online inside the activity's block, located through
blocks' LocateBlock; or offline, checked in by the block's staff) and earn on check-out, once.

Exact under concurrency: a check-in takes a place with a conditional UPDATE (`checked_in <
capacity`) and its row's primary key (activity, member) refuses a second one; the points post under
an id derived from (activity, member), so a second check-out cannot post them again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from gov.blocks.v1 import blocks_pb2
from gov.points.v1 import points_pb2 as pb
from govkit import pagination, peers, validation
from govkit.auth.principal import Principal
from govkit.auth.roles import Permission
from govkit.auth.scopes import validate_path
from govkit.db import get_row, new_id, rowcount
from govkit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from govkit.keyset import newest_first, time_id_cursor
from govkit.protobuf import optional_time, timestamp
from govkit.sqlpaths import within
from services.points import domain, repository
from services.points.catalogue import require_configure, resource_id
from services.points.domain import AwardState, IndicatorKind
from services.points.flows import PointsFlows
from services.points.models import Activity, Attendance, Award, PartyMember

# Members may check in this long before an activity starts.
EARLY = dt.timedelta(hours=1)


def member_message(row: PartyMember) -> pb.PartyMember:
    return pb.PartyMember(
        name=f"partyMembers/{row.user_id}",
        user=f"users/{row.user_id}",
        community=row.community,
        work_unit=row.work_unit,
        create_time=timestamp(row.create_time),
    )


def activity_message(row: Activity) -> pb.Activity:
    return pb.Activity(
        name=f"activities/{row.id}",
        block=row.block,
        display_name=row.display_name,
        place=row.place,
        start_time=timestamp(row.start_time),
        end_time=timestamp(row.end_time),
        capacity=row.capacity,
        points=row.points,
        checked_in=row.checked_in,
        create_time=timestamp(row.create_time),
    )


def attendance_message(row: Attendance) -> pb.Attendance:
    return pb.Attendance(
        name=f"activities/{row.activity_id}/attendances/{row.user_id}",
        member=f"users/{row.user_id}",
        check_in_time=timestamp(row.check_in_time),
        check_out_time=timestamp(row.check_out_time),
        offline=row.offline,
        checked_in_by=row.checked_in_by,
        award=f"awards/{row.award_id}" if row.award_id else "",
    )


def service_award_id(activity_id: str, user_id: str) -> str:
    return "svc-" + hashlib.sha256(f"{activity_id}:{user_id}".encode()).hexdigest()[:40]


class Volunteering:
    def __init__(self, flows: PointsFlows) -> None:
        self.flows = flows
        self.db = flows.db

    async def register(self, principal: Principal, msg: pb.PartyMember) -> PartyMember:
        if not principal.user_id:
            raise PermissionDenied("a party member registers themselves")
        community = validate_path(msg.community, field="party_member.community", allow_global=False)
        work_unit = validation.text(msg.work_unit, "party_member.work_unit", max_len=64, required=False)
        async with self.db.transaction() as session:
            row = await session.get(PartyMember, principal.user_id, with_for_update=True)
            if row is None:
                row = PartyMember(user_id=principal.user_id, create_time=self.flows.clock())
                session.add(row)
            row.community, row.work_unit = community, work_unit
        return row

    async def get_member(self, principal: Principal, name: str) -> PartyMember:
        uid = resource_id(name, "partyMembers")
        async with self.db.sessions() as session:
            row = await session.get(PartyMember, uid)
        if row is None or not (
            principal.user_id == uid or principal.can(Permission.POINTS_CONFIGURE, row.community)
        ):
            raise NotFound(f"no {name}")
        return row

    async def create_activity(self, principal: Principal, msg: pb.Activity) -> Activity:
        block = validate_path(msg.block, field="activity.block", allow_global=False)
        require_configure(principal, block)
        start, end = optional_time(msg, "start_time"), optional_time(msg, "end_time")
        if start is None or end is None or end <= start:
            raise InvalidArgument("start_time and a later end_time are required", field="activity.end_time")
        if not 1 <= msg.capacity <= 10_000:
            raise InvalidArgument("must be 1..10000", field="activity.capacity")
        if not 1 <= msg.points <= domain.MAX_POINTS:
            raise InvalidArgument(f"must be 1..{domain.MAX_POINTS}", field="activity.points")
        row = Activity(
            id=new_id(),
            block=block,
            display_name=validation.text(msg.display_name, "activity.display_name", max_len=64),
            place=validation.text(msg.place, "activity.place", max_len=200, required=False),
            start_time=start,
            end_time=end,
            capacity=msg.capacity,
            points=msg.points,
            checked_in=0,
            create_time=self.flows.clock(),
        )
        async with self.db.transaction() as session:
            session.add(row)
        return row

    async def get_activity(self, name: str) -> Activity:
        aid = resource_id(name, "activities")
        async with self.db.sessions() as session:
            return await get_row(session, Activity, aid, f"no {name}")

    async def list_activities(self, node: str, page_size: int, page_token: str) -> tuple[list[Activity], str]:
        path = validate_path(node, field="node")
        size = pagination.page_size(page_size)
        fp = pagination.fingerprint("activities", path)
        cursor = time_id_cursor(page_token, fp)
        stmt = select(Activity).where(within(Activity.block, path))
        return await newest_first(self.db, stmt, Activity.start_time, Activity.id, cursor, size, fp)

    async def _member_for(self, principal: Principal, activity: Activity, member: str) -> tuple[str, bool]:
        """(the member's user id, offline): oneself, or someone the block's staff check in."""
        if not member or member == principal.subject:
            if not principal.user_id:
                raise PermissionDenied("a party member checks in themselves")
            return principal.user_id, False
        roles = await self.flows.staff_roles(principal, activity.block)
        if not roles & domain.RECORDERS:
            raise PermissionDenied(f"only the staff of {activity.block} check members in offline")
        return resource_id(member, "users", "member"), True

    async def check_in(self, principal: Principal, req: pb.CheckInRequest) -> Attendance:
        activity = await self.get_activity(req.activity)
        user_id, offline = await self._member_for(principal, activity, req.member)
        async with self.db.sessions() as session:
            registered = await session.get(PartyMember, user_id)
        if registered is None:
            raise FailedPrecondition("only a registered party member checks in")
        now = self.flows.clock()
        if not activity.start_time - EARLY <= now <= activity.end_time:
            raise FailedPrecondition("the activity is not open for check-in now")
        if not offline:
            await self._require_inside(principal, activity, req.latitude, req.longitude)
        try:
            async with self.db.transaction() as session:
                row = Attendance(
                    activity_id=activity.id,
                    user_id=user_id,
                    check_in_time=now,
                    check_out_time=None,
                    offline=offline,
                    checked_in_by=principal.subject,
                    award_id="",
                )
                session.add(row)
                await session.flush()  # a second check-in fails here
                taken = await session.execute(
                    update(Activity)
                    .where(Activity.id == activity.id, Activity.checked_in < Activity.capacity)
                    .values(checked_in=Activity.checked_in + 1)
                )
                if rowcount(taken) != 1:
                    raise FailedPrecondition("the activity is full")
        except IntegrityError:
            raise AlreadyExists("already checked in at this activity") from None
        return row

    async def _require_inside(self, principal: Principal, activity: Activity, lat: float, lng: float) -> None:
        if not (math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180):
            raise InvalidArgument("latitude -90..90, longitude -180..180", field="latitude")
        if self.flows.blocks is None:
            raise FailedPrecondition("online check-in needs the blocks service")
        try:
            located = await peers.ask(
                self.flows.blocks.LocateBlock,
                blocks_pb2.LocateBlockRequest(lat=lat, lng=lng),
                principal,
                peer="blocks",
                refused="the point is not inside any block",
                field="latitude",
            )
        except InvalidArgument:
            located = None
        if located is None or located.block.path != activity.block:
            raise FailedPrecondition("the check-in is not inside the activity's block: it earns nothing")

    async def check_out(self, principal: Principal, req: pb.CheckOutRequest) -> Attendance:
        activity = await self.get_activity(req.activity)
        user_id, _ = await self._member_for(principal, activity, req.member)
        account_id = domain.account_id(f"users/{user_id}")
        now = self.flows.clock()
        async with self.db.transaction() as session:
            await repository.ensure_account(session, account_id, activity.block, now)
            loaded = await repository.load(session, account_id)
            assert loaded is not None
            row = await session.get(Attendance, (activity.id, user_id), with_for_update=True)
            if row is None:
                raise FailedPrecondition("not checked in at this activity")
            if row.check_out_time is not None:
                raise FailedPrecondition("already checked out: the points posted once")
            row.check_out_time = now
            award = Award(
                id=service_award_id(activity.id, user_id),
                account_id=account_id,
                recipient=f"users/{user_id}",
                indicator_id="",
                indicator_version=0,
                kind=IndicatorKind.REWARD.value,
                points=activity.points,
                node=activity.block,
                note=activity.display_name,
                evidence="[]",
                state=AwardState.POSTED.value,
                recorded_by=principal.subject,
                decided_by="",
                decision_note="",
                applied=0,
                outstanding=0,
                approval_deadline=None,
                create_time=now,
                decide_time=None,
                request_hash="",
                appeal_state="",
                appeal_reason="",
                appeal_answer="",
                source_event=f"activities/{activity.id}",
                household_award="",
            )
            session.add(award)
            await session.flush()
            await self.flows.post_award(session, loaded, award, now, actor=principal.subject)
            await repository.save(session, loaded, now)
            row.award_id = award.id
        return row
