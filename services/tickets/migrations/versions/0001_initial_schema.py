"""initial schema

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import govkit.db
from govkit.db import SEQ
from govkit.migration_ops import create_platform_tables_v1, drop_platform_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables_v1()
    op.create_table(
        "breaches",
        sa.Column("ticket_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("deadline", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ticket_id", "kind", "deadline", name=op.f("pk_breaches")),
    )
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_days")),
    )
    with op.batch_alter_table("calendar_days", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_days_year"), ["year"], unique=False)

    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_years")),
    )
    op.create_table(
        "categories",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("group_name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("keywords", sa.Text(), nullable=False),
        sa.Column("default_unit", sa.String(length=40), nullable=False),
        sa.Column("default_center", sa.String(length=30), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("matter_class", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("acknowledge_seconds", sa.Integer(), nullable=False),
        sa.Column("resolve_seconds", sa.Integer(), nullable=False),
        sa.Column("sla_clock", sa.String(length=15), nullable=False),
        sa.Column("escalate_on_acknowledge_breach", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_categories")),
    )
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_categories_group_name"), ["group_name"], unique=False)

    op.create_table(
        "district_month_buckets",
        sa.Column("district", sa.String(length=40), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "district", "month", "kind", "bucket", name=op.f("pk_district_month_buckets")
        ),
    )
    op.create_table(
        "month_buckets",
        sa.Column("district", sa.String(length=40), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("lead_unit", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "district", "month", "category", "lead_unit", "kind", "bucket", name=op.f("pk_month_buckets")
        ),
    )
    op.create_table(
        "month_stats",
        sa.Column("district", sa.String(length=40), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("lead_unit", sa.String(length=40), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("submitted", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("merged", sa.Integer(), nullable=False),
        sa.Column("escalated", sa.Integer(), nullable=False),
        sa.Column("dispatched", sa.Integer(), nullable=False),
        sa.Column("in_progress", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        sa.Column("same_day", sa.Integer(), nullable=False),
        sa.Column("rated", sa.Integer(), nullable=False),
        sa.Column("satisfied", sa.Integer(), nullable=False),
        sa.Column("mediated", sa.Integer(), nullable=False),
        sa.Column("settled", sa.Integer(), nullable=False),
        sa.Column("overdue", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("district", "month", "category", "lead_unit", name=op.f("pk_month_stats")),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=14), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("media", sa.Text(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("household_id", sa.String(length=36), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("street", sa.String(length=100), nullable=False),
        sa.Column("district", sa.String(length=40), nullable=False),
        sa.Column("community", sa.String(length=200), nullable=False),
        sa.Column("reporter", sa.String(length=60), nullable=False),
        sa.Column("contact_name", sa.String(length=64), nullable=False),
        sa.Column("contact_phone", sa.String(length=20), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("matter_class", sa.String(length=20), nullable=False),
        sa.Column("suggested_unit", sa.String(length=40), nullable=False),
        sa.Column("lead_unit", sa.String(length=40), nullable=False),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("acknowledge_deadline", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("resolve_deadline", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("acknowledge_overdue", sa.Boolean(), nullable=False),
        sa.Column("resolve_overdue", sa.Boolean(), nullable=False),
        sa.Column("acknowledge_time", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("resolve_time", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("close_time", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.Column("resolution_media", sa.Text(), nullable=False),
        sa.Column("mediation_outcome", sa.String(length=12), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("rating_comment", sa.Text(), nullable=False),
        sa.Column("rating_by", sa.String(length=60), nullable=False),
        sa.Column("rating_time", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("merged_into", sa.String(length=36), nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=False),
        sa.Column("possible_duplicates", sa.Text(), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("acknowledge_bucket", sa.SmallInteger(), nullable=True),
        sa.Column("resolve_bucket", sa.SmallInteger(), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("same_day", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
    )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index("ix_tickets_category_create", ["category", "create_time"], unique=False)
        batch_op.create_index("ix_tickets_community_create", ["community", "create_time"], unique=False)
        batch_op.create_index("ix_tickets_create", ["create_time", "id"], unique=False)
        batch_op.create_index("ix_tickets_district_create", ["district", "create_time"], unique=False)
        batch_op.create_index("ix_tickets_lead_unit_create", ["lead_unit", "create_time"], unique=False)
        batch_op.create_index("ix_tickets_node_create", ["node", "create_time"], unique=False)
        batch_op.create_index("ix_tickets_reporter_create", ["reporter", "create_time"], unique=False)
        batch_op.create_index(
            "ix_tickets_state_ack_deadline", ["state", "acknowledge_deadline"], unique=False
        )
        batch_op.create_index(
            "ix_tickets_state_resolve_deadline", ["state", "resolve_deadline"], unique=False
        )
        batch_op.create_index("ix_tickets_street_create", ["street", "create_time"], unique=False)

    op.create_table(
        "units",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_units")),
    )
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_units_node"), ["node"], unique=False)

    op.create_table(
        "ticket_units",
        sa.Column("ticket_id", sa.String(length=36), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=14), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_units_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ticket_id", "unit", name=op.f("pk_ticket_units")),
    )
    with op.batch_alter_table("ticket_units", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_units_unit"), ["unit"], unique=False)

    op.create_table(
        "timeline_entries",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.Column("time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("from_state", sa.String(length=12), nullable=False),
        sa.Column("to_state", sa.String(length=12), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_timeline_entries_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_timeline_entries")),
    )
    with op.batch_alter_table("timeline_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_timeline_entries_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "unit_members",
        sa.Column("unit_code", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name=op.f("fk_unit_members_unit_code_units"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("unit_code", "user_id", name=op.f("pk_unit_members")),
    )
    with op.batch_alter_table("unit_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unit_members_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("unit_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unit_members_user_id"))

    op.drop_table("unit_members")
    with op.batch_alter_table("timeline_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_timeline_entries_ticket_id"))

    op.drop_table("timeline_entries")
    with op.batch_alter_table("ticket_units", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_units_unit"))

    op.drop_table("ticket_units")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_units_node"))

    op.drop_table("units")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_street_create")
        batch_op.drop_index("ix_tickets_state_resolve_deadline")
        batch_op.drop_index("ix_tickets_state_ack_deadline")
        batch_op.drop_index("ix_tickets_reporter_create")
        batch_op.drop_index("ix_tickets_node_create")
        batch_op.drop_index("ix_tickets_lead_unit_create")
        batch_op.drop_index("ix_tickets_district_create")
        batch_op.drop_index("ix_tickets_create")
        batch_op.drop_index("ix_tickets_community_create")
        batch_op.drop_index("ix_tickets_category_create")

    op.drop_table("tickets")
    op.drop_table("month_stats")
    op.drop_table("month_buckets")
    op.drop_table("district_month_buckets")
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_categories_group_name"))

    op.drop_table("categories")
    op.drop_table("calendar_years")
    with op.batch_alter_table("calendar_days", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendar_days_year"))

    op.drop_table("calendar_days")
    op.drop_table("breaches")
    drop_platform_tables_v1()
