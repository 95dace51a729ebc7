"""Blocks' tables. Paths are stored beside ids so "everything under a node" is one prefix query."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from govkit import treemoves
from govkit.db import UtcDateTime, new_metadata
from govkit.tables import PlatformTables


class Base(DeclarativeBase):
    metadata = new_metadata()


platform = PlatformTables(Base.metadata)
# Every node move, numbered 1, 2, 3 ... without gaps: the order consumers apply them in.
MOVES = treemoves.MoveLog(treemoves.moves_table(Base.metadata))


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    path: Mapped[str] = mapped_column(String(300), unique=True)
    code: Mapped[str] = mapped_column(String(32))
    parent_path: Mapped[str] = mapped_column(String(300), index=True)  # "" for districts
    kind: Mapped[str] = mapped_column(String(10))
    display_name: Mapped[str] = mapped_column(String(64))
    boundary: Mapped[str | None] = mapped_column(Text)  # GeoJSON geometry
    state: Mapped[str] = mapped_column(String(10))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class StaffAssignment(Base):
    __tablename__ = "staff_assignments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    block_path: Mapped[str] = mapped_column(String(300), index=True)
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    role: Mapped[str] = mapped_column(String(20))
    assistant_kind: Mapped[str | None] = mapped_column(String(30))
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    __table_args__ = (UniqueConstraint("block_path", "user_id", "role", name="uq_staff_block_user_role"),)


class NeighbourHousehold(Base):
    """Households a neighbour head keeps contact with."""

    __tablename__ = "neighbour_households"

    assignment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("staff_assignments.id", ondelete="CASCADE"), primary_key=True
    )
    household_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class Building(Base):
    __tablename__ = "buildings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    block_path: Mapped[str] = mapped_column(String(300))
    code: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("block_path", "code", name="uq_buildings_block_code"),)


class Household(Base):
    __tablename__ = "households"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    block_path: Mapped[str] = mapped_column(String(300), index=True)
    building_code: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str] = mapped_column(String(200))
    tags: Mapped[str] = mapped_column(String(200))  # comma-separated vulnerability tags, sorted
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    update_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_households_block_create", "block_path", "create_time", "id"),)


class Resident(Base):
    __tablename__ = "residents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    household_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    display_name: Mapped[str] = mapped_column(String(64))
    relation: Mapped[str] = mapped_column(String(20))
    phone: Mapped[str | None] = mapped_column(String(20))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    id_suffix: Mapped[str | None] = mapped_column(String(4))
    user_id: Mapped[str | None] = mapped_column(String(36), index=True)

    __table_args__ = (UniqueConstraint("household_id", "display_name", name="uq_residents_household_name"),)


class Visit(Base):
    __tablename__ = "visits"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    household_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    block_path: Mapped[str] = mapped_column(String(300))
    visitor: Mapped[str] = mapped_column(String(60))
    visit_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    notes: Mapped[str] = mapped_column(Text)
    issues: Mapped[str] = mapped_column(Text)  # JSON list of short phrases
    # JSON list of the problems the visit resolved (0004); visits before it resolved none.
    issues_resolved: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    create_time: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_visits_block_time", "block_path", "visit_time"),)
