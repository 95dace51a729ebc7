"""Seed the notifications demo into a running system, for `make run` (after `demo.seed_points`).

Over gRPC, like any ops tool: the demo residents of the street's first community (one household
head per block, with an account) are linked to their household in the register, so a notice
reaches them; the district leader sends that community a safety notice (防溺水); once it has
reached everyone, the first half of them read it in their inbox. The read receipts then show who
has not read it: `GET /api/v1/notifications/notices/{id}/recipients?read=unread`.

Safe to run again: a linked resident stays linked, and the notice is sent once (found by title).

    python -m demo.seed_notifications   (GOV_IDENTITY_ADDR, GOV_BLOCKS_ADDR, GOV_NOTIFICATIONS_ADDR,
                                         ADMIN_LOGIN, ADMIN_PASSWORD, DEMO_STAFF_PASSWORD)
"""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf import field_mask_pb2

from demo import points as demo_points
from demo.places import Resident, block_residents
from demo.seed_tickets import Account, Logins, _user
from demo.seeding import DemoAccounts, run_seeder
from demo.seeding import call as _call
from demo.street import load_street
from gov.blocks.v1 import blocks_pb2 as bpb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub
from gov.notifications.v1 import notifications_pb2 as pb
from gov.notifications.v1.notifications_pb2_grpc import NotificationsServiceStub
from services.blocks import importfiles

TITLE = "防溺水安全提醒"
BODY = (
    "暑期将至，请家长看护好孩子：不私自下水游泳，不到河边、水塘边玩耍，"
    "发现有人落水请立即呼救并拨打110。——万楼街道"
)
WAIT_SECONDS = 60
Metadata = tuple[tuple[str, str], ...]


class Seeder:
    def __init__(
        self,
        identity: IdentityServiceStub,
        blocks: BlocksServiceStub,
        notifications: NotificationsServiceStub,
        admin: Account,
        password: str,
    ) -> None:
        self.identity, self.blocks, self.notifications = identity, blocks, notifications
        self.admin, self.password = admin, password
        self.logins = Logins(identity)
        files = load_street()
        self.staff = importfiles.parse_staff(files.staff_csv)
        plan = demo_points.PLAN
        self.community = f"{demo_points.STREET}/{plan.communities[0].code}"
        self.community_name = plan.communities[0].name
        every = block_residents(files, plan, range(1, sum(c.blocks for c in plan.communities) + 1))
        self.residents: list[Resident] = [
            r for r in every.values() if r.path.startswith(self.community + "/")
        ]

    async def as_(self, account: Account) -> Metadata:
        return await self.logins.md(account.login, account.password)

    @property
    def leader(self) -> Account:
        for row in self.staff:
            if row.path == demo_points.DISTRICT and row.role == "leader":
                return Account(row.phone, row.name, self.password)
        raise RuntimeError("the blocks demo has no district leader: run demo.seed_blocks first")

    async def link(self) -> int:
        """Each demo resident's account on their household's register entry; how many were new."""
        admin = await self.as_(self.admin)
        linked = 0
        for r in self.residents:
            user = await _user(self.identity, admin, r.phone, r.name, r.path, self.password, "resident")
            page = await _call(
                self.blocks.ListHouseholds,
                bpb.ListHouseholdsRequest(node=r.path, query=r.household_code, page_size=10),
                admin,
            )
            household = next((h for h in page.households if h.code == r.household_code), None)
            if household is None:
                raise RuntimeError(f"household {r.household_code} missing: run demo.seed_blocks first")
            residents = list(household.residents)
            me = next((x for x in residents if x.display_name == r.name), None)
            if me is None or me.user == user:
                continue
            me.user = user
            await _call(
                self.blocks.UpdateHousehold,
                bpb.UpdateHouseholdRequest(
                    household=bpb.Household(name=household.name, residents=residents),
                    update_mask=field_mask_pb2.FieldMask(paths=["residents"]),
                ),
                admin,
            )
            linked += 1
        return linked

    async def notice(self) -> tuple[pb.Notice, bool]:
        """The community's notice (sent now unless it was already), once it has reached everyone."""
        md = await self.as_(self.leader)
        listed = await _call(
            self.notifications.ListNotices,
            pb.ListNoticesRequest(node=self.community, page_size=200),
            md,
        )
        found = next((n for n in listed.notices if n.title == TITLE), None)
        new = found is None
        if found is None:
            found = await _call(
                self.notifications.CreateNotice,
                pb.CreateNoticeRequest(
                    notice=pb.Notice(
                        node=self.community, title=TITLE, body=BODY, urgent=True, category="safety"
                    ),
                    request_id=f"demo-notice-{self.community.replace('/', '.')}",
                ),
                md,
            )
        for _ in range(WAIT_SECONDS * 4):
            got = await _call(self.notifications.GetNotice, pb.GetNoticeRequest(name=found.name), md)
            if got.state != pb.NOTICE_STATE_SENDING:
                return got, new
            await asyncio.sleep(0.25)
        raise RuntimeError(f"the notice {found.name} did not finish within {WAIT_SECONDS}s")

    async def read_some(self, notice: str) -> int:
        """The first half of the residents read the notice; how many read it now (not before)."""
        read = 0
        for r in self.residents[: (len(self.residents) + 1) // 2]:
            md = await self.logins.md(r.phone, self.password)
            items = await _call(
                self.notifications.ListInboxItems, pb.ListInboxItemsRequest(page_size=200), md
            )
            names = [i.name for i in items.items if i.resource == notice]
            if names:
                marked = await _call(
                    self.notifications.MarkInboxItemsRead, pb.MarkInboxItemsReadRequest(names=names), md
                )
                read += 1 if marked.marked else 0
        return read


async def seed(
    identity_addr: str,
    blocks_addr: str,
    notifications_addr: str,
    accounts: DemoAccounts,
) -> str:
    async with (
        grpc.aio.insecure_channel(identity_addr) as ich,
        grpc.aio.insecure_channel(blocks_addr) as bch,
        grpc.aio.insecure_channel(notifications_addr) as nch,
    ):
        seeder = Seeder(
            IdentityServiceStub(ich),
            BlocksServiceStub(bch),
            NotificationsServiceStub(nch),
            Account(accounts.admin_login, "admin", accounts.admin_password),
            accounts.staff_password,
        )
        linked = await seeder.link()
        notice, new = await seeder.notice()
        readers = await seeder.read_some(notice.name)
        final = await _call(
            seeder.notifications.GetNotice,
            pb.GetNoticeRequest(name=notice.name),
            await seeder.as_(seeder.leader),
        )
    notice_id = notice.name.removeprefix("notices/")
    state = "new" if new else "existing"
    return "\n".join(
        [
            f"notifications: {len(seeder.residents)} demo residents of {seeder.community_name} on their "
            f"household register ({linked} newly linked); notice {notice_id} ({state}) "
            f"reached {final.recipients_written}, {final.read_count} read it ({readers} this run)",
            f"    who has not read it: GET /api/v1/notifications/notices/{notice_id}/recipients?read=unread "
            f"(as the leader)",
        ]
    )


def main() -> int:
    return run_seeder(
        "demo.seed_notifications",
        lambda env: seed(
            env["GOV_IDENTITY_ADDR"],
            env["GOV_BLOCKS_ADDR"],
            env["GOV_NOTIFICATIONS_ADDR"],
            DemoAccounts.from_env(env),
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
