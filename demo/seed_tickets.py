"""Seed the tickets demo into a running system, for `make run` (after `demo.seed_blocks`).

Over gRPC, like any ops tool: loads the working calendar (services/tickets/holidays/*.csv, the
files production loads too), creates the demo
street's handling units, an account for each unit's staff member (role unit_staff at the unit's
node, and a unit member), the category catalogue and a few resident accounts; then reports the
demo tickets (demo/wanlou/tickets.toml, read by `demo.tickets`) as their residents, block staff and the
dispatcher, and walks each through real transitions to its target state, logged in as the demo
account each step belongs to. Last, an identity service account for an Open311 app; its API key
(`<client_id>:<client_secret>`) is kept in a file (chmod 600) and reused on the next run.

Safe to run again: creates carry request ids or are skipped when they exist (ALREADY_EXISTS), and
a ticket is walked only as far as its timeline shows it has not been yet — so only tickets that
were just created (or a walk an earlier run did not finish) move.

    python -m demo.seed_tickets   (GOV_IDENTITY_ADDR, GOV_BLOCKS_ADDR, GOV_TICKETS_ADDR,
                                   ADMIN_LOGIN, ADMIN_PASSWORD, DEMO_STAFF_PASSWORD;
                                   optional OPEN311_API_KEY_FILE, default .data/open311-api-key)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from demo import tickets as wanlou
from demo.places import block_places
from demo.seeding import DemoAccounts, Metadata, call, login_line, run_seeder, service_account_key
from demo.street import load_street
from gov.blocks.v1 import blocks_pb2 as bpb
from gov.blocks.v1.blocks_pb2_grpc import BlocksServiceStub
from gov.identity.v1 import identity_pb2 as ipb
from gov.identity.v1.identity_pb2_grpc import IdentityServiceStub
from gov.tickets.v1 import tickets_pb2 as pb
from gov.tickets.v1.tickets_pb2_grpc import TicketsServiceStub
from services.blocks import importfiles
from services.tickets.calendar import parse_days

REPO = Path(__file__).resolve().parents[1]
# Production's calendar files; they stay in the service's package (and image).
HOLIDAYS_DIR = REPO / "services" / "tickets" / "holidays"
DEFAULT_API_KEY_FILE = REPO / ".data" / "open311-api-key"
OPEN311_APP_NAME = "Open311 demo app"
# Access tokens live 5 minutes by default; log in again well before.
TOKEN_REUSE_SECONDS = 200


# ------------------------------------------------------------------------------- calendar files


def holiday_days(year: int) -> list[tuple[dt.date, str, str]]:
    return parse_days((HOLIDAYS_DIR / f"{year}.csv").read_text(encoding="utf-8"))


def calendar_years() -> list[int]:
    return sorted(int(p.stem) for p in HOLIDAYS_DIR.glob("*.csv") if p.stem.isdigit())


def calendar_message(year: int) -> pb.CalendarYear:
    kinds = {"holiday": pb.DAY_KIND_HOLIDAY, "workday": pb.DAY_KIND_WORKDAY}
    return pb.CalendarYear(
        name=f"calendarYears/{year}",
        year=year,
        days=[
            pb.CalendarDay(date=day.isoformat(), kind=kinds[kind], display_name=name)
            for day, kind, name in holiday_days(year)
        ],
    )


# ------------------------------------------------------------------------------------ plumbing


async def _create(method: Callable[..., Awaitable[Any]], request: Any, md: Metadata) -> Any | None:
    """The created resource, or None when it exists already."""
    try:
        return await call(method, request, md)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
            return None
        raise


class Logins:
    """Access tokens of the demo accounts, each logged in once and again before it expires."""

    def __init__(self, identity: IdentityServiceStub, clock: Callable[[], float] = time.monotonic) -> None:
        self.identity = identity
        self.clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}  # login -> (token, clock time it was made)

    async def md(self, login: str, password: str) -> Metadata:
        # No token yet means "log in", whatever the clock reads: the monotonic clock starts near
        # zero at boot (and in a new time namespace), where a default "made at 0" would look fresh.
        kept = self._tokens.get(login)
        if kept is None or self.clock() - kept[1] > TOKEN_REUSE_SECONDS:
            pair = await call(self.identity.Login, ipb.LoginRequest(login=login, password=password), ())
            kept = (pair.access_token, self.clock())
            self._tokens[login] = kept
        return (("authorization", f"Bearer {kept[0]}"),)


@dataclass(frozen=True)
class Account:
    login: str  # a phone number
    name: str
    password: str


async def _user(
    identity: IdentityServiceStub, md: Metadata, phone: str, name: str, scope: str, password: str, kind: str
) -> str:
    """The account for a demo person, created if missing. Returns `users/{id}`."""
    created = await _create(
        identity.CreateUser,
        ipb.CreateUserRequest(
            user=ipb.User(phone=phone, display_name=name, scope=scope),
            password=password,
            request_id=f"demo-{kind}-{phone}",
        ),
        md,
    )
    if created is not None:
        return str(created.name)
    found = await call(
        identity.ListUsers, ipb.ListUsersRequest(query=phone.removeprefix("+86"), page_size=2), md
    )
    if len(found.users) != 1:
        raise RuntimeError(f"expected one account with phone {phone}, found {len(found.users)}")
    return str(found.users[0].name)


async def _bind(identity: IdentityServiceStub, md: Metadata, user: str, role: int, scope: str) -> None:
    await _create(
        identity.CreateRoleBinding,
        ipb.CreateRoleBindingRequest(parent=user, role_binding=ipb.RoleBinding(role=role, scope=scope)),
        md,
    )


# ------------------------------------------------------------------------------------- seeding


class Seeder:
    def __init__(
        self,
        identity: IdentityServiceStub,
        blocks: BlocksServiceStub,
        tickets: TicketsServiceStub,
        admin: Account,
        staff_password: str,
    ) -> None:
        self.identity, self.blocks, self.tickets = identity, blocks, tickets
        self.admin = admin
        self.staff_password = staff_password
        self.logins = Logins(identity)
        self.files = load_street()
        self.places = block_places(self.files, wanlou.PLAN)
        self.residents = wanlou.demo_residents(self.files)
        self.staff = importfiles.parse_staff(self.files.staff_csv)

    async def admin_md(self) -> Metadata:
        return await self.logins.md(self.admin.login, self.admin.password)

    async def as_(self, account: Account) -> Metadata:
        return await self.logins.md(account.login, account.password)

    # --- the people who act

    def _staff_member(self, path: str, role: str) -> Account:
        for row in self.staff:
            if row.path == path and row.role == role:
                return Account(row.phone, row.name, self.staff_password)
        raise RuntimeError(f"the blocks demo has no {role} at {path}")

    def reporter(self, ticket: wanlou.DemoTicket) -> Account:
        place = self.places[ticket.block]
        if ticket.reporter == "resident":
            resident = self.residents[ticket.block]
            return Account(resident.phone, resident.name, self.staff_password)
        if ticket.reporter == "dispatcher":
            return self._staff_member(wanlou.STREET, "dispatcher")
        return self._staff_member(place.path, ticket.reporter)

    def actor(self, ticket: wanlou.DemoTicket, step: wanlou.Step) -> tuple[Account, str]:
        """Who makes a step, and the unit they act for (units/{code}) if it is a unit action."""
        if step.actor.startswith("unit:"):
            unit = wanlou.UNITS_BY_CODE[step.actor.removeprefix("unit:")]
            return Account(unit.staff_phone, unit.staff_name, self.staff_password), f"units/{unit.code}"
        if step.actor == "dispatcher":
            return self._staff_member(wanlou.STREET, "dispatcher"), ""
        if step.actor == "leader":
            return self._staff_member(wanlou.DISTRICT, "leader"), ""
        if step.actor == "supervisor":
            return self._staff_member(self.places[ticket.block].path, "supervisor"), ""
        if step.actor == "reporter":
            return self.reporter(ticket), ""
        raise ValueError(f"unknown actor {step.actor!r} in demo ticket {ticket.key}")

    # --- configuration

    async def calendar(self) -> int:
        days = 0
        for year in calendar_years():
            message = calendar_message(year)
            await call(
                self.tickets.SetCalendarYear,
                pb.SetCalendarYearRequest(calendar_year=message),
                await self.admin_md(),
            )
            days += len(message.days)
        return days

    async def units(self) -> int:
        created = 0
        for unit in wanlou.UNITS:
            request = pb.CreateUnitRequest(unit=wanlou.unit_message(unit))
            reply = await _create(self.tickets.CreateUnit, request, await self.admin_md())
            created += reply is not None
        # Accounts in small parallel batches: each one costs an argon2 hash.
        md = await self.admin_md()
        password = self.staff_password
        users = await asyncio.gather(
            *(
                _user(self.identity, md, u.staff_phone, u.staff_name, u.node, password, "unit-staff")
                for u in wanlou.UNITS
            )
        )
        for unit, user in zip(wanlou.UNITS, users, strict=True):
            await _bind(self.identity, md, user, ipb.ROLE_UNIT_STAFF, unit.node)
            member = pb.AddUnitMemberRequest(parent=f"units/{unit.code}", user=user)
            await _create(self.tickets.AddUnitMember, member, md)
        return created

    async def categories(self) -> int:
        created = 0
        for category in wanlou.CATEGORIES:
            reply = await _create(
                self.tickets.CreateCategory,
                pb.CreateCategoryRequest(category=wanlou.category_message(category)),
                await self.admin_md(),
            )
            created += reply is not None
        return created

    async def resident_accounts(self) -> None:
        md = await self.admin_md()
        residents = list(self.residents.values())
        for i in range(0, len(residents), 8):
            batch = residents[i : i + 8]
            users = await asyncio.gather(
                *(
                    _user(self.identity, md, r.phone, r.name, r.path, self.staff_password, "resident")
                    for r in batch
                )
            )
            for resident, user in zip(batch, users, strict=True):
                await _bind(self.identity, md, user, ipb.ROLE_RESIDENT, resident.path)

    async def check_blocks(self) -> None:
        """Every demo ticket's point lies in its block: the demo street must be seeded first."""
        md = await self.admin_md()
        now = dt.datetime.now(dt.UTC)
        for ticket in wanlou.TICKETS:
            place = self.places[ticket.block]
            location = wanlou.ticket_message(ticket, place, now).location
            try:
                found = await call(
                    self.blocks.LocateBlock,
                    bpb.LocateBlockRequest(lat=location.latitude, lng=location.longitude),
                    md,
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                raise RuntimeError("the demo street is not seeded: run demo.seed_blocks first") from None
            if found.block.path != place.path:
                raise RuntimeError(
                    f"demo ticket {ticket.key}: its point lies in {found.block.path}, not {place.path}"
                )

    # --- tickets

    async def create_tickets(self, started: dt.datetime) -> tuple[dict[str, pb.Ticket], set[str]]:
        """Every demo ticket, created by its reporter unless an earlier run did; and which are new."""
        tickets: dict[str, pb.Ticket] = {}
        new: set[str] = set()
        for ticket in wanlou.TICKETS:
            reporter = self.reporter(ticket)
            message = wanlou.ticket_message(ticket, self.places[ticket.block], started)
            created = await call(
                self.tickets.CreateTicket,
                pb.CreateTicketRequest(ticket=message, request_id=f"demo-ticket-{ticket.key}"),
                await self.as_(reporter),
            )
            tickets[ticket.key] = created
            if created.create_time.ToDatetime(tzinfo=dt.UTC) >= started - dt.timedelta(seconds=5):
                new.add(ticket.key)
        return tickets, new

    async def _steps_done(self, name: str, steps: tuple[wanlou.Step, ...]) -> int:
        """How many of the steps the ticket's timeline already shows, in order."""
        done, token = 0, ""
        md = await self.admin_md()
        while True:
            page = await call(
                self.tickets.ListTimelineEntries,
                pb.ListTimelineEntriesRequest(parent=name, page_size=100, page_token=token),
                md,
            )
            for entry in page.entries:
                if done < len(steps) and entry.action == steps[done].action and entry.actor != "system":
                    done += 1
            token = page.next_page_token
            if not token:
                return done

    def _request(self, name: str, step: wanlou.Step, unit: str, tickets: dict[str, pb.Ticket]) -> Any:
        return pb.TransitionTicketRequest(
            name=name,
            action=step.action,
            note=step.note,
            reason=step.reason,
            lead_unit=f"units/{step.lead_unit}" if step.lead_unit else "",
            assisting_units=[f"units/{u}" for u in step.assisting_units],
            unit=unit,
            original=tickets[step.original].name if step.original else "",
            mediation_outcome=step.mediation_outcome,
            score=step.score,
            comment=step.comment,
        )

    async def walk(
        self, ticket: wanlou.DemoTicket, current: pb.Ticket, tickets: dict[str, pb.Ticket]
    ) -> bool:
        """Move one ticket on to its target state. Returns whether it took any step."""
        done = await self._steps_done(current.name, ticket.steps) if ticket.steps else 0
        if done == len(ticket.steps):
            return False
        for step in ticket.steps[done:]:
            account, unit = self.actor(ticket, step)
            try:
                current = await call(
                    self.tickets.TransitionTicket,
                    self._request(current.name, step, unit, tickets),
                    await self.as_(account),
                )
            except grpc.aio.AioRpcError as exc:
                raise RuntimeError(
                    f"demo ticket {ticket.key} ({current.name}): {pb.Action.Name(step.action)} as "
                    f"{account.name} ({account.login}) failed: {exc.code().name} {exc.details()}"
                ) from None
        if current.state != ticket.target:
            raise RuntimeError(
                f"demo ticket {ticket.key} ({current.name}) ended {pb.TicketState.Name(current.state)}, "
                f"not {pb.TicketState.Name(ticket.target)}"
            )
        return True

    async def walk_all(self, tickets: dict[str, pb.Ticket], new: set[str]) -> int:
        walked = 0
        for ticket in wanlou.TICKETS:
            current = tickets[ticket.key]
            if ticket.key not in new and current.state == ticket.target:
                continue  # seeded by an earlier run; what happened to it since is left alone
            try:
                walked += await self.walk(ticket, current, tickets)
            except RuntimeError as exc:
                if ticket.key in new:
                    raise
                # A ticket from an earlier run that has moved on since: not ours to push any more.
                print(f"demo.seed_tickets: left as it is: {exc}", file=sys.stderr)
        return walked

    # --- Open311

    async def open311_key(self, key_file: Path) -> str:
        """The Open311 app's API key: the one kept in key_file if it still works, else a new one."""
        key, _ = await service_account_key(self.identity, key_file, OPEN311_APP_NAME, await self.admin_md())
        return key


async def seed(
    identity_addr: str,
    blocks_addr: str,
    tickets_addr: str,
    accounts: DemoAccounts,
    key_file: Path = DEFAULT_API_KEY_FILE,
) -> str:
    started = dt.datetime.now(dt.UTC)
    async with (
        grpc.aio.insecure_channel(identity_addr) as ich,
        grpc.aio.insecure_channel(blocks_addr) as bch,
        grpc.aio.insecure_channel(tickets_addr) as tch,
    ):
        seeder = Seeder(
            IdentityServiceStub(ich),
            BlocksServiceStub(bch),
            TicketsServiceStub(tch),
            Account(accounts.admin_login, "admin", accounts.admin_password),
            accounts.staff_password,
        )
        await seeder.check_blocks()
        days = await seeder.calendar()
        new_units = await seeder.units()
        new_categories = await seeder.categories()
        await seeder.resident_accounts()
        tickets, new = await seeder.create_tickets(started)
        walked = await seeder.walk_all(tickets, new)
        key = await seeder.open311_key(key_file)

    def sample(role: str, account: Account, where: str) -> str:
        return login_line(role, account.login, account.name, where)

    rapid = wanlou.UNITS_BY_CODE["wanlou-rapid"]
    first = wanlou.TICKETS[0]
    lines = [
        f"tickets: {len(wanlou.UNITS)} units, {len(wanlou.CATEGORIES)} categories, "
        f"{len(wanlou.TICKETS)} demo tickets ({len(new)} new, {walked} walked; "
        f"{new_units} units and {new_categories} categories new); "
        f"calendar {', '.join(map(str, calendar_years()))} ({days} days)",
        sample("resident", seeder.reporter(first), seeder.places[first.block].path),
        sample("unit staff", Account(rapid.staff_phone, rapid.staff_name, ""), rapid.display_name),
        f"  Open311 API key: {key}",
    ]
    return "\n".join(lines)


def main() -> int:
    return run_seeder(
        "demo.seed_tickets",
        lambda env: seed(
            env["GOV_IDENTITY_ADDR"],
            env["GOV_BLOCKS_ADDR"],
            env["GOV_TICKETS_ADDR"],
            DemoAccounts.from_env(env),
            Path(env.get("OPEN311_API_KEY_FILE") or DEFAULT_API_KEY_FILE),
        ),
    )


if __name__ == "__main__":
    raise SystemExit(main())
