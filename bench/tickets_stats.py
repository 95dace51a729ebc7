"""Benchmark the cockpit statistics (GetTicketStatistics) on a district's million tickets.

    .venv/bin/python bench/tickets_stats.py [--backend sqlite|postgres] [--tickets 1000000]
                                            [--repeat 10] [--seed 7] [--try-fixes] [--keep] [--json OUT]

1. load    A fresh tickets database (a SQLite file in a temporary directory, or a new PostgreSQL
           database on 127.0.0.1:5432, dropped afterwards unless --keep) migrated to head. Then,
           generated from --seed (the same seed gives the same rows) and written straight into the
           tables, not through the service: the units (8 per street, 6 district departments), 30
           categories, and --tickets tickets of one district (yuhu: 10 streets x 7 communities x 10
           blocks, paths like yuhu/s03/c2/b17) reported over the two years before END, each with the
           `ticket_units` rows of its dispatch. Timestamps, deadlines and overdue flags follow the
           lifecycle and the sweeper's rules; the cockpit columns (acknowledge_bucket, resolve_bucket,
           on_time, same_day) are filled by services.tickets.facts.refresh itself. Written with
           SQLAlchemy Core executemany, one transaction per --batch tickets (PostgreSQL with
           --pg-load copy: COPY through asyncpg). Then the districts' month sums are rebuilt with
           services.tickets.statistics.rebuild (what `python -m services.tickets rebuild-statistics`
           runs after a bulk load) and PostgreSQL gets VACUUM (ANALYZE). Reported: time generating
           rows, time in the database, tickets/s, rebuild time, database size. --load-only stops here.
2. serve   NATS, identity (SQLite, an admin created with cheap argon2) and tickets on the loaded
           database, as real processes (govkit.devstack.Stack). The admin logs in over gRPC.
3. query   Seven GetTicketStatistics calls over gRPC with the admin's token, each one warm-up and
           then --repeat timed calls, one after the other: p50/min/max latency and the figures.
4. check   Queries 3 (a street's month) and 7 (the district over 365 days not on month
           boundaries: month sums plus two partial months) recomputed from the raw rows (the
           district/street column, exact durations, exact nearest-rank quantiles by sorting):
           counts and rates must match exactly, medians within the 2.5% of the log buckets; query
           1's states must equal what the generator wrote; the sweeper must find no deadline the
           generator left unflagged.
5. explain For every query slower than --slow-ms at p50: the statements the service sends
           (captured by running services.tickets.statistics in this process), each timed on its
           own with its plan (EXPLAIN (ANALYZE, BUFFERS) with a custom and with the generic plan, or
           EXPLAIN QUERY PLAN); below a district also the same figures from one GROUP BY statement
           instead of three, checked equal.
6. fixes   With --try-fixes: candidate fixes applied to the bench database only (PostgreSQL:
           plan_cache_mode = force_custom_plan; SQLite: ANALYZE), and the queries measured again
           over gRPC. services/ is not changed.

Not a test: it prints tables (and writes --json). Exit 1 if a check failed, 2 if the database or
the stack could not be prepared.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import datetime as dt
import json
import math
import os
import random
import secrets
import sqlite3
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psutil
import sqlalchemy
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import case, event, func, insert, or_, select

from bench._common import (
    DatabaseUnavailable,
    FreshDatabase,
    add_backend,
    add_json,
    pg_connect,
    print_heading,
    software_and_machine,
    temp_folder,
    write_json,
)
from demo import tickets as demo
from gov.identity.v1 import identity_pb2, identity_pb2_grpc
from gov.tickets.v1 import tickets_pb2 as pb
from gov.tickets.v1 import tickets_pb2_grpc
from govkit.auth.principal import Binding, Principal
from govkit.auth.roles import Role
from govkit.db import Database, make_engine
from govkit.devstack import Stack
from services.tickets import facts, statistics
from services.tickets.__main__ import MIGRATIONS
from services.tickets.access import Viewer
from services.tickets.calendar import CHINA_STANDARD_TIME as CST
from services.tickets.flows import OPEN_STATES
from services.tickets.models import Breach, Category, MonthBuckets, MonthStats, Ticket, TicketUnit, Unit
from services.tickets.statistics import STATES as SERVICE_STATES
from services.tickets.statistics import StatisticsFlows
from services.tickets.sweeper import Sweeper

ADMIN_LOGIN = "admin"

# The data ends here (midnight China Standard Time) and starts SPAN_DAYS before. A run after
# END + 3 days (the longest SLA) finds every open ticket's deadlines passed, as the flags say.
END = dt.datetime(2026, 11, 16, tzinfo=CST)
SPAN_DAYS = 730
START = END - dt.timedelta(days=SPAN_DAYS)
END_TS = END.timestamp()
START_TS = START.timestamp()
DAY = 86_400.0
HOUR = 3_600.0
MINUTE = 60.0

DISTRICT = "yuhu"
STREET_NAMES = ("万楼", "窑湾", "城正街", "广场", "雨湖路", "云塘", "先锋", "昭潭", "护潭", "长城")
COMMUNITIES_PER_STREET = 7
BLOCKS_PER_COMMUNITY = 10  # 70 blocks a street, numbered b01..b70 within it: yuhu/s03/c2/b17
STREET_LEVEL_SHARE = 0.03  # address-only reports filed against the street, not a block
# Each street's eight units: its four centers and four offices (code suffix, kind, name).
STREET_UNITS = (
    ("guidance", "comprehensive_guidance", "综合指挥中心"),
    ("livelihood", "livelihood", "民生服务中心"),
    ("rapid", "rapid_response", "快速处置中心"),
    ("economy", "economic_development", "经济发展中心"),
    ("police", "department", "派出所"),
    ("judicial", "department", "司法所"),
    ("property", "department", "物业管理办公室"),
    ("grid", "department", "网格管理站"),
)
CENTER_OF_KIND = {kind: suffix for suffix, kind, _ in STREET_UNITS if kind != "department"}
DEPARTMENTS = tuple(u for u in demo.UNITS if u.kind == pb.UNIT_KIND_DEPARTMENT)  # the 6 of the district

# The demo catalogue's 25 categories and five more (code, name, group, kind, priority, matter class,
# center kind or "", department or "").
EXTRA_CATEGORIES = (
    (
        "property-dispute",
        "物业纠纷",
        "邻里纠纷",
        "dispute",
        "normal",
        "co_handled",
        "comprehensive_guidance",
        "",
    ),
    ("labour-dispute", "劳资纠纷", "邻里纠纷", "dispute", "normal", "public", "comprehensive_guidance", ""),
    ("stray-animals", "流浪动物", "环境卫生", "general", "low", "co_handled", "rapid_response", ""),
    ("tree-hazard", "树木倒伏隐患", "道路与照明", "general", "high", "public", "", "yuhu-urban"),
    ("pest-control", "蚊蝇鼠害", "环境卫生", "general", "low", "co_handled", "livelihood", ""),
)
# Relative volume of each category (the common complaints dominate).
CATEGORY_WEIGHTS = {
    "property-service": 120,
    "garbage-overflow": 90,
    "illegal-parking": 85,
    "noise-nuisance": 80,
    "illegal-dumping": 60,
    "streetlight-out": 45,
    "road-damage": 40,
    "neighbour-dispute": 40,
    "sewage-blockage": 35,
    "elderly-home-care": 30,
    "ebike-charging": 30,
    "property-dispute": 30,
    "fire-lane-blocked": 25,
    "construction-noise": 25,
    "subsistence-allowance": 25,
    "public-security": 25,
    "stray-animals": 25,
    "food-safety": 20,
    "water-outage": 20,
    "pest-control": 18,
    "lift-failure": 15,
    "family-dispute": 15,
    "elderly-welfare-check": 15,
    "business-service": 15,
    "manhole-cover": 12,
    "temporary-assistance": 12,
    "building-hazard": 12,
    "tree-hazard": 12,
    "labour-dispute": 10,
    "gas-leak": 5,
}
# SLA on the calendar clock: 2 h to acknowledge and 3 days to resolve; urgent categories 15 min / 4 h.
SLA = {"urgent": (15 * MINUTE, 4 * HOUR)}
DEFAULT_SLA = (2 * HOUR, 3 * DAY)
# Medians of report -> lead unit's acknowledgement, and of acknowledgement -> resolution.
ACK_MEDIAN = {"urgent": 8 * MINUTE, "high": 25 * MINUTE, "normal": 40 * MINUTE, "low": 60 * MINUTE}
WORK_MEDIAN = {"urgent": 2 * HOUR, "high": 16 * HOUR, "normal": 24 * HOUR, "low": 36 * HOUR}
DISPUTE_WORK_MEDIAN = 60 * HOUR
ACK_RANGE = (5 * MINUTE, 3 * DAY)
RESOLVE_RANGE = (1 * HOUR, 20 * DAY)

# Final state mix (before the last days' tickets are cut short by END).
STATE_MIX = {
    "closed": 70,
    "resolved": 10,
    "in_progress": 5,
    "dispatched": 5,
    "accepted": 3,
    "submitted": 3,
    "rejected": 2,
    "merged": 1,
    "escalated": 1,
}
OPEN_AGE_MEAN_DAYS = 120  # tickets still open were mostly reported recently
ESCALATION_SHARE = 0.04  # of tickets dispatched or further: escalated and accepted by the district
ASSIST_SHARE = 0.25  # dispatches with an assisting unit
RATED_RESOLVED_SHARE = 0.2  # resolved tickets rated but not closed yet (a closed ticket is always rated)
RATING_BY_REPORTER = 0.6  # the rest recorded by staff from a phone call
HOUR_WEIGHTS = (1, 0.5, 0.3, 0.3, 0.3, 0.6, 1.5, 3, 5, 6, 6, 5, 4, 4.5, 5, 5, 4.5, 4, 4, 4, 3.5, 3, 2, 1.5)
SOURCES = {"resident": 55, "hotline": 17, "patrol": 15, "visit": 8, "service": 3, "deliberation": 2}
RESIDENTS = 150_000  # distinct reporters

PHRASES = (
    "已经持续好几天了",
    "多次反映未解决",
    "影响居民正常生活",
    "晚上尤其严重",
    "老人小孩出行不便",
    "请尽快派人处理",
    "附近居民意见很大",
    "存在安全隐患",
    "上周也出现过",
    "希望社区协调解决",
)
RESOLUTIONS = (
    "已到现场处置完毕，经回访居民认可。",
    "已协调物业公司整改到位。",
    "已联系责任单位维修完成。",
    "经调解双方达成一致意见。",
    "已清理完毕并安排专人定期巡查。",
    "已责令当事人整改，后续加强巡查。",
)
COMMENTS = ("处理及时，谢谢", "态度很好", "速度有点慢", "问题解决了", "希望以后多巡查", "还可以")
REJECT_REASONS = ("不属于本辖区受理范围", "信息不全，无法核实", "重复咨询，已电话答复", "属于司法程序事项")
RETURN_REASONS = ("不属于本单位职责", "请派至属地街道")
SURNAMES = "刘李王张陈周彭谭罗胡唐黄杨曾邓易毛龙贺肖"
GIVEN = ("建国", "秀英", "志刚", "丽娟", "伟", "芳", "强", "敏", "桂兰", "子轩")

COMPLETED = ("resolved", "closed")
OTHER_CPU_WARNING = 15.0  # % of one core used by unrelated processes that makes a run suspect
AWAITING_ACK = ("submitted", "accepted", "escalated", "dispatched")  # as the sweeper defines it


# ----------------------------------------------------------------------------- the district


@dataclass(frozen=True)
class Cat:
    code: str
    display_name: str
    group: str
    kind: str
    priority: str
    matter_class: str
    center: str  # unit kind of the street's center it routes to, or ""
    department: str  # or the district department's unit code
    keywords: tuple[str, ...]

    @property
    def dispute(self) -> bool:
        return self.kind == "dispute"

    @property
    def sla(self) -> tuple[float, float]:
        return SLA.get(self.priority, DEFAULT_SLA)


def _enum_name(enum: Any, value: int) -> str:
    return enum.Name(value).removeprefix(enum.Name(0).removesuffix("UNSPECIFIED")).lower() if value else ""


def categories() -> list[Cat]:
    cats = [
        Cat(
            c.code,
            c.display_name,
            c.group,
            _enum_name(pb.TicketKind, c.kind),
            _enum_name(pb.Priority, c.priority),
            _enum_name(pb.MatterClass, c.matter_class),
            _enum_name(pb.UnitKind, c.default_center),
            c.default_unit,
            c.keywords,
        )
        for c in demo.CATEGORIES
    ]
    cats += [Cat(*extra, keywords=()) for extra in EXTRA_CATEGORIES]
    assert len(cats) == 30 and {c.code for c in cats} == set(CATEGORY_WEIGHTS)
    return cats


@dataclass(frozen=True)
class Block:
    path: str
    street: int  # 0-based
    lat: float
    lng: float
    address: str


def street_path(s: int) -> str:
    return f"{DISTRICT}/s{s + 1:02d}"


def blocks() -> list[Block]:
    out = []
    for s in range(len(STREET_NAMES)):
        for b in range(1, COMMUNITIES_PER_STREET * BLOCKS_PER_COMMUNITY + 1):
            c = (b - 1) // BLOCKS_PER_COMMUNITY + 1
            row, col = divmod(s * 70 + b - 1, 27)
            out.append(
                Block(
                    f"{street_path(s)}/c{c}/b{b:02d}",
                    s,
                    27.82 + row * 0.003 + 0.0015,
                    112.85 + col * 0.003 + 0.0015,
                    f"雨湖区{STREET_NAMES[s]}街道第{c}社区第{b}区块",
                )
            )
    return out


def unit_rows() -> list[dict[str, Any]]:
    created = START - dt.timedelta(days=30)
    rows = [
        {
            "code": f"s{s + 1:02d}-{suffix}",
            "display_name": f"{STREET_NAMES[s]}街道{name}",
            "kind": kind,
            "node": street_path(s),
            "create_time": created,
        }
        for s in range(len(STREET_NAMES))
        for suffix, kind, name in STREET_UNITS
    ]
    rows += [
        {
            "code": d.code,
            "display_name": d.display_name,
            "kind": "department",
            "node": DISTRICT,
            "create_time": created,
        }
        for d in DEPARTMENTS
    ]
    return rows


def category_rows(cats: list[Cat]) -> list[dict[str, Any]]:
    created = START - dt.timedelta(days=30)
    return [
        {
            "code": c.code,
            "display_name": c.display_name,
            "group_name": c.group,
            "description": "",
            "keywords": json.dumps(list(c.keywords), ensure_ascii=False),
            "default_unit": c.department,
            "default_center": c.center,
            "priority": c.priority,
            "matter_class": c.matter_class,
            "kind": c.kind,
            "attributes": "[]",
            "acknowledge_seconds": int(c.sla[0]),
            "resolve_seconds": int(c.sla[1]),
            "sla_clock": "calendar",
            # Off, so that an unacknowledged ticket past its deadline is not escalated by the sweeper
            # when the service starts: the generated states are the ones measured.
            "escalate_on_acknowledge_breach": False,
            "active": True,
            "create_time": created,
            "update_time": created,
        }
        for c in cats
    ]


class _FactsRow:
    """The attributes facts.refresh reads and writes: it runs on this instead of an ORM object."""

    __slots__ = (
        "acknowledge_bucket",
        "acknowledge_time",
        "create_time",
        "on_time",
        "resolve_bucket",
        "resolve_deadline",
        "resolve_time",
        "same_day",
    )


def _utc(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


class Generator:
    """Tickets in report order, with their unit rows; deterministic for a seed."""

    # Every column a generated ticket has a value for (the table may have fewer).
    COLUMNS = frozenset(c.name for c in Ticket.__table__.columns) | {"community"}

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.cats = categories()
        self.cat_cum = list(_cumulative(CATEGORY_WEIGHTS[c.code] for c in self.cats))
        self.blocks = blocks()
        # Busy and quiet blocks: weights from a log-normal spread.
        self.block_cum = list(_cumulative(self.rng.lognormvariate(0, 0.5) for _ in self.blocks))
        self.sources = list(SOURCES)
        self.source_cum = list(_cumulative(SOURCES.values()))
        self.residents = [f"users/{self._uuid()}" for _ in range(RESIDENTS)]
        self.staff = [f"users/{self._uuid()}" for _ in self.blocks]  # one governor per block
        self.dispatchers = [f"users/{self._uuid()}" for _ in STREET_NAMES]
        self.last_in_street: dict[int, str] = {}
        self.states: Counter[str] = Counter()  # what was written, after the cut at END
        self.ticket_units = 0

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def create_times(self) -> list[tuple[float, str]]:
        """(report time, intended state) of every ticket, in report order."""
        rng = self.rng
        states = rng.choices(list(STATE_MIX), weights=list(STATE_MIX.values()), k=self.n)
        # Days: a summer peak, quieter weekends, and use growing by 15% over the two years.
        day_weights = []
        for d in range(SPAN_DAYS):
            day = (START + dt.timedelta(days=d)).date()
            season = 1 + 0.25 * math.sin(2 * math.pi * (day.timetuple().tm_yday - 100) / 365)
            weekend = 0.8 if day.weekday() >= 5 else 1.0
            day_weights.append(season * weekend * (1 + 0.15 * d / SPAN_DAYS))
        day_cum = list(_cumulative(day_weights))
        hour_cum = list(_cumulative(HOUR_WEIGHTS))
        out = []
        for state in states:
            if state in OPEN_STATES:
                age = rng.expovariate(1 / OPEN_AGE_MEAN_DAYS)
                while age >= SPAN_DAYS:
                    age = rng.expovariate(1 / OPEN_AGE_MEAN_DAYS)
                day = SPAN_DAYS - 1 - int(age)
            else:
                day = bisect.bisect(day_cum, rng.random() * day_cum[-1])
            hour = bisect.bisect(hour_cum, rng.random() * hour_cum[-1])
            out.append((START_TS + day * DAY + hour * HOUR + rng.random() * HOUR, state))
        out.sort()
        return out

    def batches(self, size: int) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        times = self.create_times()
        for first in range(0, len(times), size):
            tickets: list[dict[str, Any]] = []
            units: list[dict[str, Any]] = []
            for created, state in times[first : first + size]:
                ticket, assigned = self.ticket(created, state)
                tickets.append(ticket)
                units += assigned
            self.ticket_units += len(units)
            yield tickets, units

    def _lognormal(self, median: float, sigma: float, low: float, high: float) -> float:
        mu = math.log(median)
        for _ in range(20):
            x = self.rng.lognormvariate(mu, sigma)
            if low <= x <= high:
                return x
        return min(max(x, low), high)

    def ticket(self, created: float, intended: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        rng = self.rng
        cat = self.cats[bisect.bisect(self.cat_cum, rng.random() * self.cat_cum[-1])]
        street_level = rng.random() < STREET_LEVEL_SHARE
        b = bisect.bisect(self.block_cum, rng.random() * self.block_cum[-1])
        block = self.blocks[b]
        s = block.street
        street = street_path(s)
        node = street if street_level else block.path
        ticket_id = self._uuid()
        ack_sla, resolve_sla = cat.sla
        speed = 1.1 - 0.2 * (created - START_TS) / (SPAN_DAYS * DAY)  # the district gets faster

        # The whole intended life, as times; cut at END below.
        ack_delay = self._lognormal(ACK_MEDIAN[cat.priority] * speed, 0.9, *ACK_RANGE)
        screened = created + ack_delay * rng.uniform(0.15, 0.45)  # accepted, rejected, merged, escalated
        escalation = intended not in ("submitted", "rejected", "merged", "escalated") and (
            rng.random() < ESCALATION_SHARE
        )
        if intended == "accepted" and rng.random() < 0.2:
            escalation = True
        owned_from = created  # the clocks restart when the district accepts an escalation
        escalation_accepted = None
        if escalation:
            escalation_accepted = screened + self._lognormal(2 * HOUR, 0.8, 10 * MINUTE, 2 * DAY)
            owned_from = escalation_accepted
        dispatched = (
            created + ack_delay * rng.uniform(0.5, 0.9)
            if not escalation
            else owned_from + ack_delay * rng.uniform(0.2, 0.5)
        )
        acknowledged = (
            created + ack_delay if not escalation else dispatched + ack_delay * rng.uniform(0.1, 0.5)
        )
        work = self._lognormal(
            (DISPUTE_WORK_MEDIAN if cat.dispute else WORK_MEDIAN[cat.priority]) * speed,
            1.0,
            5 * MINUTE,
            25 * DAY,
        )
        resolved = acknowledged + work
        if resolved - created < RESOLVE_RANGE[0]:
            resolved = created + RESOLVE_RANGE[0] + rng.random() * 20 * MINUTE
        if resolved - created > RESOLVE_RANGE[1]:
            resolved = created + RESOLVE_RANGE[1] - rng.random() * DAY
        resolved = max(resolved, acknowledged + 5 * MINUTE)
        started = acknowledged + (resolved - acknowledged) * rng.uniform(0.02, 0.2)
        rated = resolved + self._lognormal(20 * HOUR, 1.0, 10 * MINUTE, 7 * DAY)
        closed = rated + self._lognormal(3 * HOUR, 1.0, 5 * MINUTE, 5 * DAY)
        lead_acknowledges = intended != "dispatched" or rng.random() < 0.4
        resolved_rated = intended == "closed" or rng.random() < RATED_RESOLVED_SHARE

        # The chain of states the intended one needs; the ticket is in the last one reached by END.
        chain: list[tuple[float, str]] = []
        if intended in ("rejected", "merged", "escalated"):
            chain.append((screened, intended))
        elif intended != "submitted":
            chain.append((screened, "escalated" if escalation else "accepted"))
            if escalation_accepted is not None:
                chain.append((escalation_accepted, "accepted"))
            if intended != "accepted":
                chain.append((dispatched, "dispatched"))
            if intended in ("in_progress", "resolved", "closed"):
                chain += [(started, "in_progress"), (resolved, "resolved")][: 1 + (intended != "in_progress")]
            if intended == "closed":
                chain.append((closed, "closed"))
        state = "submitted"
        updated = created
        for when, reached in chain:
            if when >= END_TS:
                break
            state, updated = reached, when
        if state == "merged" and s not in self.last_in_street:
            state = "rejected"  # nothing earlier in the street to merge into

        dispatched_ok = state in ("dispatched", "in_progress", "resolved", "closed")
        ack_time = acknowledged if dispatched_ok and lead_acknowledges and acknowledged < END_TS else None
        if state in ("in_progress", "resolved", "closed"):
            ack_time = acknowledged
        resolve_time = resolved if state in COMPLETED else None
        rating_time = rated if state in COMPLETED and resolved_rated and rated < END_TS else None
        if state == "resolved" and rating_time is not None:
            updated = max(updated, rating_time)
        close_time = closed if state == "closed" else None
        if ack_time is not None and state == "dispatched":
            updated = max(updated, ack_time)
        escalated = escalation_accepted is not None and escalation_accepted < END_TS and state != "escalated"
        if not escalated:
            owned_from = created

        # Deadlines from the (restarted) clock; flags as the sweeper sets them: a deadline passed
        # while the ticket was still waiting for it (all deadlines of open tickets have passed).
        ack_deadline = owned_from + ack_sla
        resolve_deadline = owned_from + resolve_sla
        if ack_time is not None:
            ack_waited_until = ack_time
        elif state in ("rejected", "merged"):
            ack_waited_until = screened
        elif state in AWAITING_ACK:
            ack_waited_until = math.inf
        else:
            raise AssertionError(state)
        if resolve_time is not None:
            open_until = resolve_time
        elif state in ("rejected", "merged"):
            open_until = screened
        else:
            open_until = math.inf
        ack_overdue = ack_waited_until > ack_deadline
        resolve_overdue = open_until > resolve_deadline

        # Units: the lead (the category's routing, sometimes another of the street's units, a
        # district department after an escalation) and now and then one assisting unit.
        suggested = cat.department or f"s{s + 1:02d}-{CENTER_OF_KIND[cat.center]}"
        lead = ""
        units: list[dict[str, Any]] = []
        if dispatched_ok:
            lead = suggested
            if escalated and not cat.department and rng.random() < 0.6:
                lead = rng.choice(DEPARTMENTS).code
            elif rng.random() < 0.12:
                lead = f"s{s + 1:02d}-{rng.choice(STREET_UNITS)[0]}"
            units.append(
                {
                    "ticket_id": ticket_id,
                    "unit": lead,
                    "role": "lead",
                    "status": "acknowledged" if ack_time is not None else "dispatched",
                    "reason": "",
                    "update_time": _utc(ack_time if ack_time is not None else dispatched),
                }
            )
            if rng.random() < ASSIST_SHARE:
                if cat.dispute and rng.random() < 0.6:
                    helper = f"s{s + 1:02d}-judicial"
                elif rng.random() < 0.5:
                    helper = f"s{s + 1:02d}-{rng.choice(STREET_UNITS)[0]}"
                else:
                    helper = rng.choice(DEPARTMENTS).code
                if helper != lead:
                    answer = rng.random()
                    status = "acknowledged" if answer < 0.85 else "returned" if answer < 0.9 else "dispatched"
                    answered = min(dispatched + ack_delay * rng.uniform(0.2, 1.5), END_TS - 1)
                    units.append(
                        {
                            "ticket_id": ticket_id,
                            "unit": helper,
                            "role": "assisting",
                            "status": status,
                            "reason": rng.choice(RETURN_REASONS) if status == "returned" else "",
                            "update_time": _utc(dispatched if status == "dispatched" else answered),
                        }
                    )

        # Who reported it, from where, and what was said.
        source = self.sources[bisect.bisect(self.source_cum, rng.random() * self.source_cum[-1])]
        if source == "resident":
            reporter = rng.choice(self.residents)
        elif source == "hotline":
            reporter = "serviceAccounts/hotline-12345"
        elif source == "service":
            reporter = "serviceAccounts/city-platform"
        else:
            reporter = self.staff[b] if not street_level else self.dispatchers[s]
        where = rng.random()
        lat = lng = household = None
        if where < 0.65 and not street_level:
            lat = round(block.lat + rng.uniform(-0.0012, 0.0012), 6)
            lng = round(block.lng + rng.uniform(-0.0012, 0.0012), 6)
        elif where < 0.77 and not street_level:
            household = self._uuid()
        address = (
            f"{block.address}{rng.randint(1, 9)}栋" if not street_level else f"雨湖区{STREET_NAMES[s]}街道"
        )
        caller = source == "hotline" or rng.random() < 0.08
        rating = None
        if rating_time is not None:
            late = resolve_time is not None and resolve_time > resolve_deadline
            weights = (15, 10, 15, 25, 35) if late else (6, 5, 9, 25, 55)
            rating = rng.choices((1, 2, 3, 4, 5), weights=weights)[0]
        outcome = ""
        if cat.dispute and state in COMPLETED:
            outcome = "settled" if rng.random() < 0.72 else "not_settled"
        duplicates: list[str] = []
        merged_into = ""
        if state == "merged":
            merged_into = self.last_in_street[s]
            duplicates = [merged_into]
        elif s in self.last_in_street and rng.random() < 0.03:
            duplicates = [self.last_in_street[s]]
        self.last_in_street[s] = ticket_id
        self.states[state] += 1

        row: dict[str, Any] = {
            "id": ticket_id,
            "category": cat.code,
            "kind": cat.kind,
            "state": state,
            "source": source,
            "title": cat.display_name
            if rng.random() < 0.7
            else f"{cat.display_name}（{rng.choice(PHRASES)}）",
            "description": f"{address}附近{cat.display_name}，{rng.choice(PHRASES)}，{rng.choice(PHRASES)}。",
            "media": _media(rng, 0.45),
            "latitude": lat,
            "longitude": lng,
            "household_id": household,
            "address": address,
            "node": node,
            "street": street,
            "district": DISTRICT,
            "community": "/".join(node.split("/")[:3]) if node.count("/") >= 2 else "",
            "reporter": reporter,
            "contact_name": rng.choice(SURNAMES) + rng.choice(GIVEN) if caller else "",
            "contact_phone": f"+86139{rng.randrange(10**8):08d}" if caller else "",
            "attributes": "{}"
            if rng.random() < 0.5
            else json.dumps({"building": [f"{rng.randint(1, 9)}栋"]}),
            "priority": cat.priority,
            "matter_class": cat.matter_class,
            "suggested_unit": suggested,
            "lead_unit": lead,
            "escalated": escalated,
            "acknowledge_deadline": _utc(ack_deadline),
            "resolve_deadline": _utc(resolve_deadline),
            "acknowledge_overdue": ack_overdue,
            "resolve_overdue": resolve_overdue,
            "acknowledge_time": _utc(ack_time),
            "resolve_time": _utc(resolve_time),
            "close_time": _utc(close_time),
            "resolution": rng.choice(RESOLUTIONS) if resolve_time is not None else "",
            "resolution_media": _media(rng, 0.5) if resolve_time is not None else "[]",
            "mediation_outcome": outcome,
            "rating": rating,
            "rating_comment": rng.choice(COMMENTS) if rating is not None and rng.random() < 0.3 else "",
            "rating_by": ""
            if rating is None
            else reporter
            if rng.random() < RATING_BY_REPORTER
            else self.dispatchers[s],
            "rating_time": _utc(rating_time),
            "merged_into": merged_into,
            "reject_reason": rng.choice(REJECT_REASONS) if state == "rejected" else "",
            "possible_duplicates": json.dumps(duplicates),
            "create_time": _utc(created),
            "update_time": _utc(max(updated, close_time or 0.0)),
        }
        # The cockpit columns, by the service's own function.
        f = _FactsRow()
        f.create_time = row["create_time"]
        f.acknowledge_time = row["acknowledge_time"]
        f.resolve_time = row["resolve_time"]
        f.resolve_deadline = row["resolve_deadline"]
        facts.refresh(f)  # type: ignore[arg-type]
        row["acknowledge_bucket"] = f.acknowledge_bucket
        row["resolve_bucket"] = f.resolve_bucket
        row["on_time"] = f.on_time
        row["same_day"] = f.same_day
        return row, units


def _cumulative(weights: Any) -> Iterator[float]:
    total = 0.0
    for w in weights:
        total += w
        yield total


def _media(rng: random.Random, share: float) -> str:
    if rng.random() >= share:
        return "[]"
    return json.dumps(
        [f"https://media.gov-yuhu.example/t/{rng.getrandbits(64):016x}.jpg" for _ in range(rng.randint(1, 3))]
    )


# ----------------------------------------------------------------------------- databases


UNIT_COLUMNS = [c.name for c in TicketUnit.__table__.columns]


def _table_columns(conn: Any, table: str) -> list[str]:
    return [c["name"] for c in sqlalchemy.inspect(conn).get_columns(table)]


async def load(db: FreshDatabase, args: argparse.Namespace) -> dict[str, Any]:
    """Write units, categories and the generated tickets; returns timings, counts and sizes."""
    gen = Generator(args.tickets, args.seed)
    engine = make_engine(db.url)
    method = "copy" if db.backend == "postgres" and args.pg_load == "copy" else "insert"
    copy_conn = await pg_connect(db.pg_name) if method == "copy" else None
    gen_seconds = db_seconds = 0.0
    started = time.perf_counter()
    try:
        async with engine.begin() as conn:
            # The columns of the migrated table (the model in the working tree may be ahead of it).
            columns = await conn.run_sync(_table_columns, "tickets")
            missing = set(columns) - set(Generator.COLUMNS)
            if missing:
                raise DatabaseUnavailable(
                    f"the generator writes no value for tickets.{', '.join(sorted(missing))}"
                )
            await conn.execute(insert(Unit.__table__), unit_rows())
            await conn.execute(insert(Category.__table__), category_rows(gen.cats))
        t = time.perf_counter()
        batches = gen.batches(args.batch)
        done = 0
        next_report = 0.0
        while True:
            try:
                tickets, units = next(batches)
            except StopIteration:
                break
            t_db = time.perf_counter()
            gen_seconds += t_db - t
            if copy_conn is not None:
                async with copy_conn.transaction():
                    await copy_conn.copy_records_to_table(
                        "tickets",
                        records=[tuple(r[c] for c in columns) for r in tickets],
                        columns=columns,
                    )
                    await copy_conn.copy_records_to_table(
                        "ticket_units",
                        records=[tuple(u[c] for c in UNIT_COLUMNS) for u in units],
                        columns=UNIT_COLUMNS,
                    )
            else:
                if len(columns) != len(tickets[0]):
                    tickets = [{c: r[c] for c in columns} for r in tickets]
                async with engine.begin() as conn:
                    await conn.execute(insert(Ticket.__table__), tickets)
                    if units:
                        await conn.execute(insert(TicketUnit.__table__), units)
            t = time.perf_counter()
            db_seconds += t - t_db
            done += len(tickets)
            if t - started >= next_report:
                print(
                    f"  loaded {done:>9,} tickets  {t - started:7.1f} s  "
                    f"(generating {gen_seconds:.1f} s, database {db_seconds:.1f} s)",
                    flush=True,
                )
                next_report = t - started + 15
        load_seconds = time.perf_counter() - started
        result: dict[str, Any] = {
            "method": "COPY (asyncpg copy_records_to_table)"
            if method == "copy"
            else "SQLAlchemy Core executemany",
            "batch": args.batch,
            "tickets": done,
            "ticket_units": gen.ticket_units,
            "states": dict(gen.states),
            "seconds": load_seconds,
            "generate_seconds": gen_seconds,
            "database_seconds": db_seconds,
            "rows_per_second": done / load_seconds,
            "database_rows_per_second": done / db_seconds if db_seconds else 0.0,
        }
        # The districts' month sums, as after any bulk load (`python -m services.tickets
        # rebuild-statistics`): the district figures are read from them.
        print("  rebuilding the month sums (statistics.rebuild) ...", flush=True)
        t = time.perf_counter()
        stats_db = Database(db.url)
        try:
            await statistics.rebuild(stats_db)
            async with stats_db.sessions() as session:
                for model in (MonthStats, MonthBuckets):
                    result[f"{model.__tablename__}_rows"] = int(
                        await session.scalar(select(func.count()).select_from(model)) or 0
                    )
        finally:
            await stats_db.close()
        result["rebuild_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        if db.backend == "postgres":
            assert copy_conn is not None or db.pg_name
            conn = copy_conn or await pg_connect(db.pg_name)  # type: ignore[arg-type]
            try:
                await conn.execute("VACUUM (ANALYZE) tickets, ticket_units, month_stats, month_buckets")
                result["analyze_seconds"] = time.perf_counter() - t
                result["database_bytes"] = await conn.fetchval("SELECT pg_database_size(current_database())")
                for table in ("tickets", "ticket_units"):
                    result[f"{table}_bytes"] = await conn.fetchval(f"SELECT pg_table_size('{table}')")
                    result[f"{table}_index_bytes"] = await conn.fetchval(f"SELECT pg_indexes_size('{table}')")
            finally:
                if conn is not copy_conn:
                    await conn.close()
        else:
            await engine.dispose()
            assert db.sqlite_path is not None
            with contextlib.closing(sqlite3.connect(db.sqlite_path)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            result["analyze_seconds"] = 0.0
            result["database_bytes"] = db.sqlite_path.stat().st_size
        return result
    finally:
        if copy_conn is not None:
            await copy_conn.close()
        await engine.dispose()


# ----------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Query:
    number: int
    label: str
    node: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    category: str = ""
    unit: str = ""

    def request(self) -> pb.GetTicketStatisticsRequest:
        r = pb.GetTicketStatisticsRequest(node=self.node)
        if self.category:
            r.category = f"categories/{self.category}"
        if self.unit:
            r.unit = f"units/{self.unit}"
        for name, value in (("start_time", self.start), ("end_time", self.end)):
            if value is not None:
                ts = Timestamp()
                ts.FromDatetime(value.astimezone(dt.UTC))
                getattr(r, name).CopyFrom(ts)
        return r


ROLLING_END = dt.datetime(2026, 11, 15, 10, 0, tzinfo=CST)
CHECKED_QUERIES = (3, 7)  # recomputed from the raw rows


def queries(args: argparse.Namespace) -> list[Query]:
    year = (dt.datetime(2025, 1, 1, tzinfo=CST), dt.datetime(2026, 1, 1, tzinfo=CST))
    month = (dt.datetime(2026, 10, 1, tzinfo=CST), dt.datetime(2026, 11, 1, tzinfo=CST))
    return [
        Query(1, "district, all time", DISTRICT),
        Query(2, "district, 2025", DISTRICT, *year),
        Query(3, f"street {args.street}, Oct 2026", args.street, *month),
        Query(4, f"block {args.block}, all time", args.block),
        Query(5, f"district + {args.category}, 2025", DISTRICT, *year, category=args.category),
        Query(6, f"district + {args.unit}, 2025", DISTRICT, *year, unit=args.unit),
        # Not on month boundaries: the month sums plus two partial months read from the tickets.
        Query(
            7,
            "district, 365 days to 2026-11-15 10:00",
            DISTRICT,
            ROLLING_END - dt.timedelta(days=365),
            ROLLING_END,
        ),
    ]


def figures(s: pb.TicketStatistics) -> dict[str, Any]:
    def seconds(field_name: str) -> float | None:
        return getattr(s, field_name).ToTimedelta().total_seconds() if s.HasField(field_name) else None

    return {
        "total": s.total,
        "by_state": {_enum_name(pb.TicketState, c.state): c.count for c in s.by_state},
        "completed": s.completed,
        "completion_rate": s.completion_rate,
        "completed_on_time": s.completed_on_time,
        "on_time_rate": s.on_time_rate,
        "completed_same_day": s.completed_same_day,
        "same_day_rate": s.same_day_rate,
        "rated": s.rated,
        "satisfied": s.satisfied,
        "satisfaction_rate": s.satisfaction_rate,
        "disputes_mediated": s.disputes_mediated,
        "disputes_settled": s.disputes_settled,
        "mediation_success_rate": s.mediation_success_rate,
        "overdue": s.overdue,
        "median_time_to_acknowledge_s": seconds("median_time_to_acknowledge"),
        "p90_time_to_acknowledge_s": seconds("p90_time_to_acknowledge"),
        "median_time_to_resolve_s": seconds("median_time_to_resolve"),
        "p90_time_to_resolve_s": seconds("p90_time_to_resolve"),
    }


def run_queries(
    stub: tickets_pb2_grpc.TicketsServiceStub, token: str, qs: list[Query], repeat: int
) -> list[dict[str, Any]]:
    metadata = (("authorization", f"Bearer {token}"),)
    results = []
    for q in qs:
        request = q.request()
        reply = stub.GetTicketStatistics(request, metadata=metadata, timeout=600)  # warm-up
        latencies = []
        for _ in range(repeat):
            t = time.perf_counter()
            reply = stub.GetTicketStatistics(request, metadata=metadata, timeout=600)
            latencies.append((time.perf_counter() - t) * 1000)
        results.append(
            {
                "query": q.number,
                "label": q.label,
                "latency_ms": {
                    "p50": _nearest_rank(sorted(latencies), 0.5),
                    "min": min(latencies),
                    "max": max(latencies),
                    "all": [round(x, 1) for x in latencies],
                },
                "figures": figures(reply),
            }
        )
        lat = results[-1]["latency_ms"]
        print(
            f"  query {q.number} {q.label:<40} p50 {lat['p50']:8.1f} ms  min {lat['min']:8.1f}  "
            f"max {lat['max']:8.1f}  total {reply.total:,}",
            flush=True,
        )
    return results


def _nearest_rank(ordered: list[float], q: float) -> float:
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


# ----------------------------------------------------------------------------- checks


async def recompute(url: str, q: Query) -> dict[str, Any]:
    """Query q's figures from the raw rows: tickets chosen by the district/street column (not the
    month sums, not the node prefix), durations from the timestamps, on-time and same-day from
    the times, quantiles by sorting."""
    t = Ticket
    level = {0: t.district, 1: t.street}[q.node.count("/")]
    filters = [level == q.node]
    if q.start is not None:
        filters.append(t.create_time >= q.start)
    if q.end is not None:
        filters.append(t.create_time < q.end)
    if q.category:
        filters.append(t.category == q.category)
    if q.unit:
        filters.append(t.lead_unit == q.unit)
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        t.state,
                        t.kind,
                        t.create_time,
                        t.acknowledge_time,
                        t.resolve_time,
                        t.resolve_deadline,
                        t.rating,
                        t.mediation_outcome,
                        t.acknowledge_overdue,
                        t.resolve_overdue,
                    ).where(*filters)
                )
            ).all()
    finally:
        await engine.dispose()
    states = Counter(r.state for r in rows)
    done = [r for r in rows if r.state in COMPLETED]
    actionable = len(rows) - states["rejected"] - states["merged"]
    on_time = sum(1 for r in done if r.resolve_time <= r.resolve_deadline)
    same_day = sum(
        1 for r in done if r.resolve_time.astimezone(CST).date() == r.create_time.astimezone(CST).date()
    )
    rated = [r.rating for r in rows if r.rating is not None]
    mediated = [r for r in done if r.kind == "dispute" and r.mediation_outcome]
    ack = sorted((r.acknowledge_time - r.create_time).total_seconds() for r in rows if r.acknowledge_time)
    res = sorted((r.resolve_time - r.create_time).total_seconds() for r in done)
    return {
        "total": len(rows),
        "by_state": {s: states.get(s, 0) for s in STATE_MIX},
        "completed": len(done),
        "completion_rate": len(done) / actionable if actionable else 0.0,
        "completed_on_time": on_time,
        "on_time_rate": on_time / len(done) if done else 0.0,
        "completed_same_day": same_day,
        "same_day_rate": same_day / len(done) if done else 0.0,
        "rated": len(rated),
        "satisfied": sum(1 for x in rated if x >= 4),
        "satisfaction_rate": sum(1 for x in rated if x >= 4) / len(rated) if rated else 0.0,
        "disputes_mediated": len(mediated),
        "disputes_settled": sum(1 for r in mediated if r.mediation_outcome == "settled"),
        "mediation_success_rate": (
            sum(1 for r in mediated if r.mediation_outcome == "settled") / len(mediated) if mediated else 0.0
        ),
        "overdue": sum(1 for r in rows if r.acknowledge_overdue or r.resolve_overdue),
        "median_time_to_acknowledge_s": _nearest_rank(ack, 0.5) if ack else None,
        "p90_time_to_acknowledge_s": _nearest_rank(ack, 0.9) if ack else None,
        "median_time_to_resolve_s": _nearest_rank(res, 0.5) if res else None,
        "p90_time_to_resolve_s": _nearest_rank(res, 0.9) if res else None,
    }


def compare(
    number: int, service: dict[str, Any], exact: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    rows, failures = [], []
    for key, want in exact.items():
        got = service[key]
        if key == "by_state":
            ok = all(got.get(s, 0) == n for s, n in want.items())
            rows.append({"figure": key, "service": got, "exact": want, "ok": ok})
        elif key.endswith("_s"):
            diff = (got - want) / want if got is not None and want else None
            # 5% buckets (2.5% either side of the bucket's middle) and the reply's whole seconds.
            ok = diff is not None and abs(diff) <= 0.025 + 1 / want
            rows.append({"figure": key, "service": got, "exact": want, "relative_difference": diff, "ok": ok})
        else:
            ok = (
                got == want
                if isinstance(want, int)
                else math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-15)
            )
            rows.append({"figure": key, "service": got, "exact": want, "ok": ok})
        if not rows[-1]["ok"]:
            failures.append(f"query {number} {key}: service {got}, exact {want}")
    return rows, failures


async def count_breaches(url: str) -> tuple[int, int]:
    """Breaches the service's sweeper recorded at start-up, and what one more sweep in this process
    records now: both 0 when the generator flagged every passed deadline as the sweeper would."""
    db = Database(url)
    try:
        swept = await Sweeper(db).sweep_once()
        async with db.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Breach)) or 0) - swept, swept
    finally:
        await db.close()


# ----------------------------------------------------------------------------- explain


ADMIN_VIEWER = Viewer(Principal("users/bench-admin", (Binding(Role.ADMIN, "*"),)), {})


def statement_name(sql: str) -> str:
    if "month_stats" in sql:
        return "month sums"
    if "month_buckets" in sql:
        return "month histograms"
    if "GROUP BY tickets.acknowledge_bucket" in sql:
        return "tickets: acknowledge histogram"
    if "GROUP BY tickets.resolve_bucket" in sql:
        return "tickets: resolve histogram"
    return "tickets: counts"


async def capture_statements(url: str, q: Query) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements services.tickets.statistics sends for q, with their parameters."""
    db = Database(url)
    captured: list[tuple[str, tuple[Any, ...]]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        captured.append((statement, tuple(parameters or ())))

    for engine in {id(e): e for e in (db.engine, db.read_engine)}.values():
        event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        await StatisticsFlows(db).statistics(ADMIN_VIEWER, q.request())
    finally:
        await db.close()
    return [(s, p) for s, p in captured if s.lstrip().upper().startswith("SELECT")]


def _literal(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return f"'{value.isoformat()}'"
    return "$lit$" + str(value) + "$lit$"


async def explain(db: FreshDatabase, q: Query, runs: int) -> list[dict[str, Any]]:
    """Each statement the service sends for q: its time on its own (best of `runs`) and its plan.
    On PostgreSQL with a custom plan (the values known when planning, as in the service's first five
    executions of a prepared statement) and with the generic plan the plan cache may switch to
    after that (its plan printed when it is more than 1.5 times slower)."""
    out = []
    statements = await capture_statements(db.url, q)
    if db.backend == "postgres":
        conn = await pg_connect(db.pg_name)  # type: ignore[arg-type]
        try:
            for i, (sql, params) in enumerate(statements):
                name = statement_name(sql)
                await conn.execute("SET plan_cache_mode = force_custom_plan")
                custom = await _best(runs, lambda sql=sql, params=params: conn.fetch(sql, *params))
                plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *params)
                await conn.execute("SET plan_cache_mode = force_generic_plan")
                await conn.execute(f"PREPARE bench_{i} AS {sql}")
                execute = f"EXECUTE bench_{i}({', '.join(_literal(p) for p in params)})"
                generic = await _best(runs, lambda execute=execute: conn.fetch(execute))
                generic_plan = await conn.fetch("EXPLAIN (ANALYZE) " + execute)
                await conn.execute(f"DEALLOCATE bench_{i}")
                out.append(
                    {
                        "statement": name,
                        "ms": custom,
                        "generic_ms": generic,
                        "sql": sql,
                        "params": [str(p) for p in params],
                        "plan": [r[0] for r in plan],
                        "generic_plan": [r[0] for r in generic_plan] if generic > 1.5 * custom else [],
                    }
                )
        finally:
            await conn.close()
    else:
        assert db.sqlite_path is not None
        lite = sqlite3.connect(db.sqlite_path)
        try:
            for sql, params in statements:
                name = statement_name(sql)

                async def run_once(sql: str = sql, params: tuple[Any, ...] = params) -> None:
                    lite.execute(sql, params).fetchall()

                ms = await _best(runs, run_once)
                plan = lite.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
                out.append(
                    {
                        "statement": name,
                        "ms": ms,
                        "sql": sql,
                        "params": [str(p) for p in params],
                        "plan": [f"{'  ' * _depth(plan, r)}{r[3]}" for r in plan],
                    }
                )
        finally:
            lite.close()
    return out


async def _best(runs: int, call: Any) -> float:
    best = math.inf
    for _ in range(runs):
        t = time.perf_counter()
        await call()
        best = min(best, time.perf_counter() - t)
    return best * 1000


def _depth(plan: list[tuple[Any, ...]], row: tuple[Any, ...]) -> int:
    parents = {r[0]: r[1] for r in plan}
    depth, parent = 0, row[1]
    while parent in parents:
        depth, parent = depth + 1, parents[parent]
    return depth


def _sum_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def one_scan_statement(q: Query) -> Any:
    """The same figures in one statement (a proposal; the service sends three): one GROUP BY over
    (acknowledge bucket, resolve bucket of completed tickets) carrying every count, summed in Python.
    Filters as services/tickets/statistics.py builds them for the tickets path (equality on the
    node's level: district, street, community, or the node itself for a block)."""
    t = Ticket
    level = {0: t.district, 1: t.street, 2: t.community}.get(q.node.count("/"), t.node)
    filters = [level == q.node]
    if q.unit:
        filters.append(t.lead_unit == q.unit)
    if q.category:
        filters.append(t.category == q.category)
    if q.start is not None:
        filters.append(t.create_time >= q.start)
    if q.end is not None:
        filters.append(t.create_time < q.end)
    completed = t.state.in_(COMPLETED)
    resolve_bucket = case((completed, t.resolve_bucket), else_=None).label("completed_resolve_bucket")
    return (
        select(
            t.acknowledge_bucket,
            resolve_bucket,
            func.count(),
            *(_sum_if(t.state == s) for s in SERVICE_STATES),
            _sum_if(completed & t.on_time.is_(True)),
            _sum_if(completed & t.same_day.is_(True)),
            _sum_if(t.rating.is_not(None)),
            _sum_if(t.rating >= 4),
            _sum_if((t.kind == "dispute") & completed & (t.mediation_outcome != "")),
            _sum_if((t.kind == "dispute") & completed & (t.mediation_outcome == "settled")),
            _sum_if(or_(t.acknowledge_overdue.is_(True), t.resolve_overdue.is_(True))),
        )
        .where(*filters)
        .group_by(t.acknowledge_bucket, resolve_bucket)
    )


def one_scan_figures(rows: list[Any]) -> dict[str, Any]:
    n = len(SERVICE_STATES)
    sums = [sum(int(r[i]) for r in rows) for i in range(2, 3 + n + 7)]
    ack: Counter[int] = Counter()
    res: Counter[int] = Counter()
    for r in rows:
        if r[0] is not None:
            ack[int(r[0])] += int(r[2])
        if r[1] is not None:
            res[int(r[1])] += int(r[2])
    total, by_state = sums[0], dict(zip(SERVICE_STATES, sums[1 : 1 + n], strict=True))
    on_time, same_day, rated, satisfied, mediated, settled, overdue = sums[1 + n :]
    done = by_state["resolved"] + by_state["closed"]
    actionable = total - by_state["rejected"] - by_state["merged"]

    def q(counts: Counter[int], p: float) -> float | None:
        value = facts.quantile(counts.items(), p)
        return None if value is None else float(round(value))  # the reply carries whole seconds

    return {
        "total": total,
        "by_state": by_state,
        "completed": done,
        "completion_rate": done / actionable if actionable else 0.0,
        "completed_on_time": on_time,
        "on_time_rate": on_time / done if done else 0.0,
        "completed_same_day": same_day,
        "same_day_rate": same_day / done if done else 0.0,
        "rated": rated,
        "satisfied": satisfied,
        "satisfaction_rate": satisfied / rated if rated else 0.0,
        "disputes_mediated": mediated,
        "disputes_settled": settled,
        "mediation_success_rate": settled / mediated if mediated else 0.0,
        "overdue": overdue,
        "median_time_to_acknowledge_s": q(ack, 0.5),
        "p90_time_to_acknowledge_s": q(ack, 0.9),
        "median_time_to_resolve_s": q(res, 0.5),
        "p90_time_to_resolve_s": q(res, 0.9),
    }


async def one_scan(url: str, q: Query, runs: int, service: dict[str, Any]) -> dict[str, Any]:
    """Time the one-statement alternative (best of `runs`) and check it gives the service's figures."""
    engine = make_engine(url, immediate=False)
    statement = one_scan_statement(q)
    rows: list[Any] = []
    try:
        async with engine.connect() as conn:

            async def run_once() -> None:
                nonlocal rows
                rows = list((await conn.execute(statement)).all())

            ms = await _best(runs, run_once)
    finally:
        await engine.dispose()
    figures = one_scan_figures(rows)
    return {"ms": ms, "groups": len(rows), "same_figures": figures == service}


# ----------------------------------------------------------------------------- CPU


class CpuWatch:
    """CPU used during a phase: the machine, the stack's processes and this one, PostgreSQL's
    server processes (counted as ours with --backend postgres), and everything else ("other")."""

    def __init__(self, pids: dict[str, int], postgres_is_ours: bool) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.postgres_is_ours = postgres_is_ours
        self.start: dict[str, float] = {}
        self.t0 = 0.0

    def _sample(self) -> dict[str, float]:
        total = psutil.cpu_times()
        out = {"machine": sum(getattr(total, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))}
        for name, proc in self.procs.items():
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                out[name] = t.user + t.system + t.children_user + t.children_system
        for proc in psutil.process_iter(["name", "cpu_times"]):
            times = proc.info.get("cpu_times")
            if proc.info.get("name") in ("postgres", "postmaster") and times is not None:
                out[f"pg:{proc.pid}"] = times.user + times.system
        return out

    def begin(self) -> None:
        self.start = self._sample()
        self.t0 = time.monotonic()

    def end(self) -> dict[str, float]:
        now = self._sample()
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        cpu = {
            name: 100 * (now[name] - self.start[name]) / elapsed
            for name in now
            if name in self.start and not name.startswith("pg:")
        }
        cpu["postgres"] = (
            100 * sum(v - self.start.get(k, 0.0) for k, v in now.items() if k.startswith("pg:")) / elapsed
        )
        ours = sum(v for k, v in cpu.items() if k not in ("machine", "postgres"))
        ours += cpu["postgres"] if self.postgres_is_ours else 0.0
        cpu["other"] = max(0.0, cpu["machine"] - ours)
        cpu["seconds"] = elapsed
        return {k: round(v, 1) for k, v in cpu.items()}


# ----------------------------------------------------------------------------- the stack


class StackUnavailable(Exception):
    pass


def start_stack(stack: Stack, folder: Path, url: str, password: str) -> None:
    stack.start_nats()
    identity = {
        "GOV_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/identity.db",
        "GOV_SIGNING_KEY_PASSPHRASE": secrets.token_urlsafe(24),
        "GOV_ARGON2_TIME_COST": "1",
        "GOV_ARGON2_MEMORY_KIB": "1024",
        "GOV_ACCESS_TOKEN_TTL_SECONDS": "3600",
    }
    stack.run_command("identity", "migrate", identity)
    stack.run_command(
        "identity", "create-admin", {**identity, "ADMIN_LOGIN": ADMIN_LOGIN, "ADMIN_PASSWORD": password}
    )
    stack.start_service("identity", identity)
    # One sweep at start-up (it must find nothing), then none while the queries run.
    stack.start_service("tickets", {"GOV_DATABASE_URL": url, "GOV_SWEEP_INTERVAL_SECONDS": "3600"})


def login(addr: str, password: str) -> str:
    with grpc.insecure_channel(addr) as channel:
        reply = identity_pb2_grpc.IdentityServiceStub(channel).Login(
            identity_pb2.LoginRequest(login=ADMIN_LOGIN, password=password), timeout=30
        )
    return reply.access_token


# ----------------------------------------------------------------------------- report


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < HOUR:
        return f"{seconds / MINUTE:.0f} min"
    if seconds < 2 * DAY:
        return f"{seconds / HOUR:.1f} h"
    return f"{seconds / DAY:.1f} d"


def print_report(report: dict[str, Any]) -> None:
    ld = report["load"]
    print_heading("tickets_stats", report, f"seed {report['seed']}")
    print()
    print(f"load ({ld['method']}, {ld['batch']:,} tickets a batch)")
    print(
        f"  {ld['tickets']:,} tickets + {ld['ticket_units']:,} ticket_units in {ld['seconds']:.1f} s: "
        f"{ld['rows_per_second']:,.0f} tickets/s overall"
    )
    print(
        f"  generating rows {ld['generate_seconds']:.1f} s, in the database {ld['database_seconds']:.1f} s "
        f"({ld['database_rows_per_second']:,.0f} tickets/s)"
        + (f", VACUUM (ANALYZE) {ld['analyze_seconds']:.1f} s" if report["backend"] == "postgres" else "")
    )
    print(
        f"  month sums rebuilt from the tickets in {ld['rebuild_seconds']:.1f} s: "
        f"{ld['month_stats_rows']:,} month_stats rows, {ld['month_buckets_rows']:,} month_buckets rows"
    )
    size = f"  database size {mib(ld['database_bytes'])}"
    if "tickets_bytes" in ld:
        size += (
            f" (tickets {mib(ld['tickets_bytes'])} + indexes {mib(ld['tickets_index_bytes'])}, "
            f"ticket_units {mib(ld['ticket_units_bytes'])} + indexes {mib(ld['ticket_units_index_bytes'])})"
        )
    print(size)
    print(
        "  states written: "
        + ", ".join(f"{s} {n:,}" for s, n in sorted(ld["states"].items(), key=lambda x: -x[1]))
    )
    if "queries" not in report:
        return
    print()
    header = (
        f"{'query':<44} {'p50 ms':>8} {'min ms':>8} {'max ms':>8} {'total':>10} {'compl.':>7} {'on time':>7} "
        f"{'med ack':>8} {'med res':>8} {'p90 res':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in report["queries"]:
        f, lat = r["figures"], r["latency_ms"]
        print(
            f"{r['query']} {r['label']:<42} {lat['p50']:>8.1f} {lat['min']:>8.1f} {lat['max']:>8.1f} "
            f"{f['total']:>10,} {f['completion_rate']:>7.1%} {f['on_time_rate']:>7.1%} "
            f"{duration(f['median_time_to_acknowledge_s']):>8} {duration(f['median_time_to_resolve_s']):>8} "
            f"{duration(f['p90_time_to_resolve_s']):>8}"
        )
    print("  latency: one GetTicketStatistics over gRPC (token checked); compl. = completed / (total -")
    print("  rejected - merged); on time = completed by the resolve deadline / completed; med/p90 from the")
    print("  service's 5% buckets")
    cpu = report["cpu_percent_during_queries"]
    print(
        "  CPU % during the queries (100 = one core): "
        + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items() if k != "seconds")
    )
    if cpu["other"] > OTHER_CPU_WARNING:
        print(
            f"  WARNING: other processes used {cpu['other']:.0f}% CPU: the machine was shared, "
            "latencies are disturbed"
        )
    print()
    for check in report["checks"]:
        _print_check(check)
    print(f"check: states of query 1 equal the generator's: {'ok' if report['states_match'] else 'MISMATCH'}")
    b = report["breaches"]
    print(
        f"  deadlines left unflagged (the sweeper's own queries): {b['service_at_start_up']} at the "
        f"service's start-up sweep, {b['sweep_after_queries']} in one more sweep after the queries"
    )
    for e in report["explain"]:
        print()
        print(f"explain: query {e['query']} ({e['label']}), p50 {e['p50_ms']:.0f} ms over gRPC")
        for s in e["statements"]:
            generic = f", {s['generic_ms']:.0f} ms with the generic plan" if "generic_ms" in s else ""
            print(f"  {s['statement']}: {s['ms']:.0f} ms on its own{generic}")
            for line in _plan_lines(s["plan"]):
                print(f"    {line}")
            if s.get("generic_plan"):
                print("    the generic plan:")
                for line in _plan_lines(s["generic_plan"]):
                    print(f"    {line}")
        if "one_scan" in e:
            one = e["one_scan"]
            same = "the same figures" if one["same_figures"] else "OTHER FIGURES"
            print(
                "  the three in one GROUP BY (acknowledge bucket, resolve bucket if completed): "
                f"{one['ms']:.0f} ms, {one['groups']:,} groups, {same}"
            )
    if report.get("trials"):
        print()
        print("trials (cumulative; in the bench database only):")
        for trial in report["trials"]:
            print(f"  {trial['trial']}")
            print(f"    setup {trial['setup_seconds']:.1f} s, database {trial['bytes'] / 2**20:+,.0f} MiB")
            for r in trial["queries"]:
                print(
                    f"    query {r['query']} {r['label']:<40} p50 {r['latency_ms']['p50']:8.1f} ms  "
                    f"(was {r['before_p50_ms']:.1f}), max {r['latency_ms']['max']:.1f}"
                )
    if report["failures"]:
        print()
        for failure in report["failures"]:
            print(f"FAILED: {failure}")


def _print_check(check: dict[str, Any]) -> None:
    total = check["exact"]["total"]
    print(
        f"check: query {check['query']} ({check['label']}) recomputed from {total:,} raw rows "
        "(level column, exact durations)"
    )
    for row in check["rows"]:
        if row["figure"] == "by_state":
            verdict = "ok" if row["ok"] else f"MISMATCH {row['service']} vs {row['exact']}"
            print(f"  {'by_state':<30} {verdict}")
            continue
        diff = row.get("relative_difference")
        extra = f"  {diff:+.2%}" if diff is not None else ""
        verdict = "ok" if row["ok"] else "MISMATCH"
        print(
            f"  {row['figure']:<30} service {_fmt(row['service']):>14}  "
            f"exact {_fmt(row['exact']):>14}{extra}  {verdict}"
        )
    print()


def _plan_lines(plan: list[str]) -> list[str]:
    """A plan without the per-worker lines and the planner's own buffer counts."""
    out, planning = [], False
    for line in plan:
        text = line.strip()
        skip = text.startswith("Worker ") or text == "Planning:" or (planning and text.startswith("Buffers:"))
        planning = text == "Planning:"
        if not skip:
            out.append(line)
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6f}" if value < 1 else f"{value:,.0f}"
    return f"{value:,}"


# ----------------------------------------------------------------------------- trials


@dataclass(frozen=True)
class Trial:
    """A change made in the bench database only (services/ is untouched), then the queries it is
    meant for measured again over gRPC. Trials are cumulative: each keeps the ones before it."""

    label: str
    setup: tuple[str, ...]  # SQL; {db} is the database's name
    teardown: tuple[str, ...]
    queries: tuple[int, ...]
    restart: bool = False  # restart tickets, so that new connections take a database setting


TRIALS: dict[str, tuple[Trial, ...]] = {
    "postgres": (
        Trial(
            "custom plans: ALTER DATABASE SET plan_cache_mode = force_custom_plan, tickets restarted",
            ('ALTER DATABASE "{db}" SET plan_cache_mode = force_custom_plan',),
            ('ALTER DATABASE "{db}" RESET plan_cache_mode',),
            (1, 2, 3, 4, 5, 6, 7),
            restart=True,
        ),
    ),
    "sqlite": (
        Trial(
            "ANALYZE (sqlite_stat1 for the planner), tickets restarted",
            ("ANALYZE",),
            ("DROP TABLE IF EXISTS sqlite_stat1",),
            (1, 2, 3, 4, 5, 6, 7),
            restart=True,
        ),
    ),
}


async def run_sql(db: FreshDatabase, statements: tuple[str, ...]) -> float:
    """Run statements in the bench database; returns the seconds they took."""
    started = time.perf_counter()
    if db.backend == "postgres":
        conn = await pg_connect(db.pg_name)  # type: ignore[arg-type]
        try:
            for sql in statements:
                await conn.execute(sql.format(db=db.pg_name))
        finally:
            await conn.close()
    else:
        assert db.sqlite_path is not None
        with contextlib.closing(sqlite3.connect(db.sqlite_path, timeout=60)) as lite:
            for sql in statements:
                lite.execute(sql)
                lite.commit()
            lite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - started


async def database_bytes(db: FreshDatabase) -> int:
    if db.backend == "postgres":
        conn = await pg_connect(db.pg_name)  # type: ignore[arg-type]
        try:
            return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        finally:
            await conn.close()
    assert db.sqlite_path is not None
    return db.sqlite_path.stat().st_size


def restart_tickets(stack: Stack) -> None:
    """Stop tickets and start it again on the same port (the client's channel reconnects)."""
    proc = next(p for p in stack.procs if p.name == "tickets")
    port = int(stack.addrs["tickets"].rsplit(":", 1)[1])
    stack.stop_proc(proc)
    stack.start_service("tickets", stack.service_envs["tickets"], port=port)


def run_trials(
    db: FreshDatabase,
    stack: Stack,
    stub: tickets_pb2_grpc.TicketsServiceStub,
    token: str,
    qs: list[Query],
    repeat: int,
    before: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    out = []
    done: list[Trial] = []
    try:
        for trial in TRIALS[db.backend]:
            print(f"  trial: {trial.label} ...", flush=True)
            size = asyncio.run(database_bytes(db))
            seconds = asyncio.run(run_sql(db, trial.setup))
            done.append(trial)
            grown = asyncio.run(database_bytes(db)) - size
            if trial.restart:
                restart_tickets(stack)
            again = run_queries(stub, token, [q for q in qs if q.number in trial.queries], repeat)
            for r in again:
                r["before_p50_ms"] = before[r["query"] - 1]["latency_ms"]["p50"]
            out.append({"trial": trial.label, "setup_seconds": seconds, "bytes": grown, "queries": again})
    finally:
        for trial in reversed(done):
            asyncio.run(run_sql(db, trial.teardown))
        if any(t.restart for t in done):
            restart_tickets(stack)
    return out


# ----------------------------------------------------------------------------- main


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    report: dict[str, Any] = {
        "benchmark": "tickets_stats",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "backend": args.backend,
        **software_and_machine(),
        "seed": args.seed,
        "repeat": args.repeat,
        "failures": [],
    }
    with FreshDatabase(args.backend, folder, "tickets", "stats", keep=args.keep) as db:
        report["backend_version"] = db.version
        db.migrate(MIGRATIONS)
        print(f"loading {args.tickets:,} tickets (seed {args.seed}) ...", flush=True)
        report["load"] = asyncio.run(load(db, args))
        ld = report["load"]
        print(
            f"  loaded in {ld['seconds']:.1f} s, month sums rebuilt in {ld['rebuild_seconds']:.1f} s",
            flush=True,
        )
        if not args.load_only:
            measure(args, db, folder, report)
    report["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return report


def measure(args: argparse.Namespace, db: FreshDatabase, folder: Path, report: dict[str, Any]) -> None:
    """Start the stack on the loaded database, time the queries, check, explain, try the fixes."""
    print("starting NATS, identity and tickets ...", flush=True)
    loaded, failures = report["load"], report["failures"]
    password = "Bench-" + secrets.token_urlsafe(16)
    stack = Stack(folder / "stack", base_env={"GOV_LOG_LEVEL": "WARNING", "OTEL_SDK_DISABLED": "true"})
    try:
        try:
            start_stack(stack, folder, db.url, password)
        except Exception as exc:
            for proc in stack.procs:
                print(f"--- {proc.name} log ---\n{proc.tail()}", file=sys.stderr)
            raise StackUnavailable(str(exc)) from exc
        token = login(stack.addrs["identity"], password)
        qs = queries(args)
        with grpc.insecure_channel(stack.addrs["tickets"]) as channel:
            stub = tickets_pb2_grpc.TicketsServiceStub(channel)
            pids = {proc.name: proc.popen.pid for proc in stack.procs} | {"bench": os.getpid()}
            watch = CpuWatch(pids, postgres_is_ours=args.backend == "postgres")
            watch.begin()
            results = run_queries(stub, token, qs, args.repeat)
            report["queries"] = results
            report["cpu_percent_during_queries"] = watch.end()

            report["checks"] = []
            for number in CHECKED_QUERIES:
                q = qs[number - 1]
                exact = asyncio.run(recompute(db.url, q))
                rows, mismatches = compare(number, results[number - 1]["figures"], exact)
                failures += mismatches
                report["checks"].append({"query": number, "label": q.label, "exact": exact, "rows": rows})
            states = results[0]["figures"]["by_state"]
            report["states_match"] = (
                states == {s: loaded["states"].get(s, 0) for s in states}
                and results[0]["figures"]["total"] == loaded["tickets"]
            )
            if not report["states_match"]:
                failures.append("query 1: the states do not add up to what the generator wrote")
            at_start, swept = asyncio.run(count_breaches(db.url))
            report["breaches"] = {"service_at_start_up": at_start, "sweep_after_queries": swept}
            if at_start or swept:
                failures.append(
                    f"the sweeper found deadlines the generator left unflagged: {report['breaches']}"
                )

            report["explain"] = []
            for q, r in zip(qs, results, strict=True):
                if r["latency_ms"]["p50"] <= args.slow_ms:
                    continue
                print(f"  explaining query {q.number} ...", flush=True)
                entry = {
                    "query": q.number,
                    "label": q.label,
                    "p50_ms": r["latency_ms"]["p50"],
                    "statements": asyncio.run(explain(db, q, args.explain_runs)),
                }
                if q.node != DISTRICT:  # below a district the service reads only tickets
                    entry["one_scan"] = asyncio.run(one_scan(db.url, q, args.explain_runs, r["figures"]))
                if "one_scan" in entry and not entry["one_scan"]["same_figures"]:
                    failures.append(f"query {q.number}: the one-statement alternative gave other figures")
                report["explain"].append(entry)
            report["trials"] = (
                run_trials(db, stack, stub, token, qs, args.repeat, results) if args.try_fixes else []
            )
    finally:
        dead = [p.name for p in stack.procs if p.popen.poll() is not None]
        if dead:
            for proc in stack.procs:
                print(f"--- {proc.name} log ---\n{proc.tail()}", file=sys.stderr)
        stack.stop()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_backend(parser)
    parser.add_argument("--tickets", type=int, default=1_000_000, help="tickets to load")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the generated data")
    parser.add_argument("--batch", type=int, default=10_000, help="tickets per insert batch / COPY")
    parser.add_argument(
        "--pg-load",
        choices=["insert", "copy"],
        default="insert",
        help="PostgreSQL: SQLAlchemy Core executemany, or COPY through asyncpg (about 12%% faster here)",
    )
    parser.add_argument("--repeat", type=int, default=10, help="timed calls per query (after one warm-up)")
    parser.add_argument("--street", default="yuhu/s03", help="the street of query 3")
    parser.add_argument("--block", default="yuhu/s03/c2/b17", help="the block of query 4")
    parser.add_argument("--category", default="noise-nuisance", help="the category of query 5")
    parser.add_argument("--unit", default="yuhu-urban", help="the unit of query 6")
    parser.add_argument("--slow-ms", type=float, default=500.0, help="explain queries slower than this (p50)")
    parser.add_argument(
        "--explain-runs", type=int, default=3, help="runs of each explained statement (best is kept)"
    )
    parser.add_argument(
        "--try-fixes",
        action="store_true",
        help="also measure the candidate fixes (plan setting / ANALYZE, indexes) in the bench database",
    )
    parser.add_argument("--load-only", action="store_true", help="stop after the load (no stack, no queries)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory / PostgreSQL database"
    )
    add_json(parser)
    args = parser.parse_args(argv)
    if not 1_000 <= args.tickets <= 5_000_000:
        parser.error("--tickets must be between 1,000 and 5,000,000")
    if not 1 <= args.repeat <= 100:
        parser.error("--repeat must be between 1 and 100")
    if not 100 <= args.batch <= 100_000:
        parser.error("--batch must be between 100 and 100,000")
    if args.street.count("/") != 1:
        parser.error("--street must be a street path like yuhu/s03")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if dt.datetime.now(dt.UTC) < END + dt.timedelta(days=3, hours=1):
        print(
            f"warning: the clock is before {END + dt.timedelta(days=3)}: the sweeper will find "
            "deadlines that the data assumes already passed",
            file=sys.stderr,
        )
    with temp_folder("gov-bench-stats-", keep=args.keep) as folder:
        try:
            report = run(args, folder)
        except DatabaseUnavailable as exc:
            print(f"error: could not prepare the database: {exc}", file=sys.stderr)
            return 2
        except StackUnavailable as exc:
            print(f"error: the stack did not start: {exc}", file=sys.stderr)
            return 2
        print_report(report)
        write_json(args.json, report, default=str)
        return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
