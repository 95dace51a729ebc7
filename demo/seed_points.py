"""Seed the points demo into a running system, for `make run` (after `demo.seed_blocks`).

Over gRPC, like any ops tool, as the demo's own people: the district leader publishes the reference
indicators (demo/wanlou/points.toml, read by `demo.points`), opens a love-bank exchange point in every
community (staffed by an assistant of its first block) with its items, and sets the partner bank's
credit tiers; each block's governor records awards for one demo resident of the block; the
residents redeem an item (every other one collected at the counter); one in a few gets a penalty
after redeeming (so some penalties stay outstanding); the leader publishes this month's red list of
the street. Last, an identity service account for the partner bank (its key kept in a file, chmod
600, reused next run), and the first demo resident's consent that the bank may see their tier.

Safe to run again: indicators exist by code, points and items by name, awards, redemptions and the
list carry request ids, so a second run changes nothing.

    python -m demo.seed_points   (GOV_IDENTITY_ADDR, GOV_BLOCKS_ADDR, GOV_POINTS_ADDR, ADMIN_LOGIN,
                                  ADMIN_PASSWORD, DEMO_STAFF_PASSWORD; optional BANK_API_KEY_FILE,
                                  default .data/bank-api-key)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc

from demo import points as demo_points
from demo.places import Resident, block_residents
from demo.seed_tickets import Account, Logins, _bind, _create, _user
from demo.seeding import DemoAccounts, Metadata, call, login_line, run_seeder, service_account_key
from demo.street import load_street
from gov.identity.v1 import identity_pb2 as ipb
from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub
from gov.points.v1 import points_pb2 as pb
from gov.points.v1.points_pb2_grpc import PointsServiceStub
from govkit.protobuf import timestamp
from services.blocks import importfiles

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BANK_KEY_FILE = REPO / ".data" / "bank-api-key"
BANK_NAME = "演示合作银行"
CST = dt.timezone(dt.timedelta(hours=8), "CST")


def month_bounds(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """This calendar month in China Standard Time."""
    local = now.astimezone(CST)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


class Seeder:
    def __init__(
        self, identity: IdentityServiceStub, points: PointsServiceStub, admin: Account, staff_password: str
    ) -> None:
        self.identity, self.points = identity, points
        self.admin = admin
        self.password = staff_password
        self.logins = Logins(identity)
        self.data = demo_points.load()
        self.files = load_street()
        self.staff = importfiles.parse_staff(self.files.staff_csv)
        blocks = sum(c.blocks for c in demo_points.PLAN.communities)
        self.residents: dict[int, Resident] = block_residents(
            self.files, demo_points.PLAN, range(1, blocks + 1)
        )

    async def as_(self, account: Account) -> Metadata:
        return await self.logins.md(account.login, account.password)

    def member(self, path: str, role: str) -> Account:
        for row in self.staff:
            if row.path == path and row.role == role:
                return Account(row.phone, row.name, self.password)
        raise RuntimeError(f"the blocks demo has no {role} at {path}: run demo.seed_blocks first")

    @property
    def leader(self) -> Account:
        return self.member(demo_points.DISTRICT, "leader")

    async def indicators(self) -> tuple[dict[str, str], int]:
        """Code -> indicators/{id} of the district's indicators, and how many were new."""
        md = await self.as_(self.leader)
        new = 0
        for spec in self.data.indicators:
            made = await _create(
                self.points.CreateIndicator,
                pb.CreateIndicatorRequest(indicator=demo_points.indicator_message(spec)),
                md,
            )
            new += made is not None
        names: dict[str, str] = {}
        token = ""
        while True:
            page = await call(
                self.points.ListIndicators,
                pb.ListIndicatorsRequest(
                    node=demo_points.DISTRICT, published_here=True, page_size=200, page_token=token
                ),
                md,
            )
            names.update({i.code: i.name for i in page.indicators})
            token = page.next_page_token
            if not token:
                return names, new

    async def love_bank(self) -> tuple[dict[str, str], int]:
        """Community path -> the demo item's name there; and how many points and items were new."""
        leader = await self.as_(self.leader)
        admin = await self.as_(self.admin)
        redeem: dict[str, str] = {}
        new = 0
        for community in demo_points.PLAN.communities:
            node = f"{demo_points.STREET}/{community.code}"
            name = community.name + self.data.point_suffix
            found = await call(
                self.points.ListExchangePoints, pb.ListExchangePointsRequest(node=node), leader
            )
            point = next(
                (p for p in found.exchange_points if p.node == node and p.display_name == name), None
            )
            if point is None:
                first_block = next(r.path for r in self.staff if r.path.startswith(node + "/"))
                keeper = self.member(first_block, "assistant")
                user = await _user(
                    self.identity, admin, keeper.login, keeper.name, first_block, self.password, "staff"
                )
                point = await call(
                    self.points.CreateExchangePoint,
                    pb.CreateExchangePointRequest(
                        exchange_point=pb.ExchangePoint(node=node, display_name=name, staff=[user])
                    ),
                    leader,
                )
                new += 1
            items = await call(
                self.points.ListItems, pb.ListItemsRequest(parent=point.name, page_size=200), leader
            )
            have = {i.display_name: i.name for i in items.items}
            for spec in self.data.items:
                if spec.name not in have:
                    made = await call(
                        self.points.CreateItem,
                        pb.CreateItemRequest(parent=point.name, item=demo_points.item_message(spec)),
                        leader,
                    )
                    have[spec.name] = made.name
                    new += 1
            redeem[node] = have[self.data.demo.redeem]
        return redeem, new

    def keeper_of(self, community: str) -> Account:
        first_block = next(r.path for r in self.staff if r.path.startswith(community + "/"))
        return self.member(first_block, "assistant")

    async def resident_accounts(self) -> None:
        md = await self.as_(self.admin)
        for resident in self.residents.values():
            user = await _user(
                self.identity, md, resident.phone, resident.name, resident.path, self.password, "resident"
            )
            await _bind(self.identity, md, user, ipb.ROLE_RESIDENT, resident.path)

    async def _award(self, resident: Resident, user: str, indicator: str, code: str) -> None:
        governor = self.member(resident.path, "governor")
        try:
            await call(
                self.points.CreateAward,
                pb.CreateAwardRequest(
                    award=pb.Award(recipient=user, indicator=indicator, node=resident.path, note="演示数据"),
                    request_id=f"demo-{resident.phone.removeprefix('+86')}-{code}",
                ),
                await self.as_(governor),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:  # a cap reached on a later run
                raise

    async def conduct(self, indicators: dict[str, str], redeem: dict[str, str]) -> tuple[int, int, int]:
        """(awards, redemptions, penalties) of the demo residents."""
        admin = await self.as_(self.admin)
        demo = self.data.demo
        awards = redemptions = penalties = 0
        for i, resident in enumerate(self.residents.values()):
            account = Account(resident.phone, resident.name, self.password)
            user = await _user(
                self.identity, admin, resident.phone, resident.name, resident.path, self.password, "resident"
            )
            for code in demo.awards:
                await self._award(resident, user, indicators[code], code)
                awards += 1
            community = resident.path.rsplit("/", 1)[0]
            try:
                made = await call(
                    self.points.CreateRedemption,
                    pb.CreateRedemptionRequest(
                        redemption=pb.Redemption(item=redeem[community], quantity=1),
                        request_id=f"demo-redeem-{resident.phone.removeprefix('+86')}",
                    ),
                    await self.as_(account),
                )
                redemptions += 1
                if i % 2 == 0 and made.state == pb.REDEMPTION_STATE_RESERVED:
                    await call(
                        self.points.FulfilRedemption,
                        pb.FulfilRedemptionRequest(name=made.name),
                        await self.as_(self.keeper_of(community)),
                    )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
            if i % demo.penalty_every == demo.penalty_every - 1:
                await self._award(resident, user, indicators[demo.penalty], demo.penalty)
                penalties += 1
        return awards, redemptions, penalties

    async def red_list(self, now: dt.datetime) -> str:
        start, end = month_bounds(now)
        published = await call(
            self.points.PublishRanking,
            pb.PublishRankingRequest(
                ranking=pb.ComputeRankingRequest(
                    node=demo_points.STREET,
                    kind=pb.RANKING_KIND_RED,
                    subject=pb.RANKING_SUBJECT_RESIDENTS,
                    start_time=timestamp(start),
                    end_time=timestamp(end),
                    size=10,
                ),
                title=f"{demo_points.PLAN.street[1]}{start.year}年{start.month}月红榜",
                request_id=f"demo-red-{start:%Y-%m}",
            ),
            await self.as_(self.leader),
        )
        return f"{published.name} ({published.title}, {len(published.places)} places)"

    async def bank(self, key_file: Path) -> tuple[str, str]:
        """(the bank's key `<client_id>:<client_secret>`, its serviceAccounts/{id}), made once."""
        return await service_account_key(self.identity, key_file, BANK_NAME, await self.as_(self.admin))

    async def credit(self, bank: str) -> Resident:
        await call(
            self.points.SetCreditPolicy,
            pb.SetCreditPolicyRequest(policy=demo_points.credit_policy(self.data)),
            await self.as_(self.leader),
        )
        first = next(iter(self.residents.values()))
        await call(
            self.points.GrantCreditConsent,
            pb.GrantCreditConsentRequest(bank=bank),
            await self.as_(Account(first.phone, first.name, self.password)),
        )
        return first


async def seed(
    identity_addr: str,
    points_addr: str,
    accounts: DemoAccounts,
    key_file: Path = DEFAULT_BANK_KEY_FILE,
) -> str:
    async with grpc.aio.insecure_channel(identity_addr) as ich, grpc.aio.insecure_channel(points_addr) as pch:
        seeder = Seeder(
            IdentityServiceStub(ich),
            PointsServiceStub(pch),
            Account(accounts.admin_login, "admin", accounts.admin_password),
            accounts.staff_password,
        )
        indicators, new_indicators = await seeder.indicators()
        redeem, new_shop = await seeder.love_bank()
        await seeder.resident_accounts()
        awards, redemptions, penalties = await seeder.conduct(indicators, redeem)
        red = await seeder.red_list(dt.datetime.now(dt.UTC))
        _, bank = await seeder.bank(key_file)
        consenting = await seeder.credit(bank)
    leader = seeder.leader
    return "\n".join(
        [
            f"points: {len(indicators)} indicators ({new_indicators} new), "
            f"{len(demo_points.PLAN.communities)} love-bank points with {len(seeder.data.items)} items each "
            f"({new_shop} new), {len(seeder.residents)} demo residents: {awards} awards, "
            f"{redemptions} redemptions, {penalties} penalties; red list {red}",
            login_line("leader", leader.login, leader.name, demo_points.DISTRICT),
            login_line(
                "resident", consenting.phone, consenting.name, f"{consenting.path}; consents to the bank"
            ),
            f"  Partner bank ({BANK_NAME}, {bank}): its client_id:client_secret is in {key_file}",
        ]
    )


def main() -> int:
    return run_seeder(
        "demo.seed_points",
        lambda env: seed(
            env["GOV_IDENTITY_ADDR"],
            env["GOV_POINTS_ADDR"],
            DemoAccounts.from_env(env),
            Path(env.get("BANK_API_KEY_FILE") or DEFAULT_BANK_KEY_FILE),
        ),
        (RuntimeError, demo_points.DemoDataError),
    )


if __name__ == "__main__":
    raise SystemExit(main())
