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
        "accounts",
        sa.Column("id", sa.String(length=70), nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("outstanding", sa.BigInteger(), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "credits_pending >= 0 AND debits_pending >= 0 AND outstanding >= 0",
            name=op.f("ck_accounts_non_negative"),
        ),
        sa.CheckConstraint(
            "credits_posted - debits_posted - debits_pending >= 0", name=op.f("ck_accounts_no_overdraft")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("owner", name=op.f("uq_accounts_owner")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_node"), ["node"], unique=False)

    op.create_table(
        "activities",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("block", sa.String(length=300), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("start_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("end_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("checked_in", sa.Integer(), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_activities_block"), ["block"], unique=False)

    op.create_table(
        "allocations",
        sa.Column("entry_id", sa.String(length=80), nullable=False),
        sa.Column("lot_id", sa.String(length=80), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", "lot_id", name=op.f("pk_allocations")),
    )
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_allocations_lot_id"), ["lot_id"], unique=False)

    op.create_table(
        "attendances",
        sa.Column("activity_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("check_in_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("check_out_time", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("checked_in_by", sa.String(length=80), nullable=False),
        sa.Column("award_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("activity_id", "user_id", name=op.f("pk_attendances")),
    )
    op.create_table(
        "awards",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=70), nullable=False),
        sa.Column("recipient", sa.String(length=80), nullable=False),
        sa.Column("indicator_id", sa.String(length=36), nullable=False),
        sa.Column("indicator_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("recorded_by", sa.String(length=80), nullable=False),
        sa.Column("decided_by", sa.String(length=80), nullable=False),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.Column("outstanding", sa.Integer(), nullable=False),
        sa.Column("approval_deadline", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("decide_time", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("appeal_state", sa.String(length=10), nullable=False),
        sa.Column("appeal_reason", sa.Text(), nullable=False),
        sa.Column("appeal_answer", sa.Text(), nullable=False),
        sa.Column("source_event", sa.String(length=120), nullable=False),
        sa.Column("household_award", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_awards")),
    )
    with op.batch_alter_table("awards", schema=None) as batch_op:
        batch_op.create_index("ix_awards_cap", ["account_id", "indicator_id", "create_time"], unique=False)
        batch_op.create_index(batch_op.f("ix_awards_node"), ["node"], unique=False)
        batch_op.create_index(batch_op.f("ix_awards_recipient"), ["recipient"], unique=False)
        batch_op.create_index(batch_op.f("ix_awards_state"), ["state"], unique=False)

    op.create_table(
        "credit_consents",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("bank", sa.String(length=64), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("grant_time", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("revoke_time", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("user_id", "bank", name=op.f("pk_credit_consents")),
    )
    op.create_table(
        "credit_policies",
        sa.Column("district", sa.String(length=40), nullable=False),
        sa.Column("window_months", sa.Integer(), nullable=False),
        sa.Column("tiers", sa.Text(), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("district", name=op.f("pk_credit_policies")),
    )
    op.create_table(
        "credit_queries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("caller", sa.String(length=80), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("refusal", sa.String(length=200), nullable=False),
        sa.Column("tier", sa.String(length=64), nullable=False),
        sa.Column("time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_queries")),
    )
    with op.batch_alter_table("credit_queries", schema=None) as batch_op:
        batch_op.create_index("ix_credit_queries_user_time", ["user_id", "time"], unique=False)

    op.create_table(
        "debts",
        sa.Column("entry_id", sa.String(length=80), nullable=False),
        sa.Column("account_id", sa.String(length=70), nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("remaining >= 0 AND remaining <= amount", name=op.f("ck_debts_within_amount")),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_debts")),
    )
    with op.batch_alter_table("debts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_debts_account_id"), ["account_id"], unique=False)

    op.create_table(
        "earning_rules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("indicator_id", sa.String(length=36), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_earning_rules")),
    )
    with op.batch_alter_table("earning_rules", schema=None) as batch_op:
        batch_op.create_index("ix_earning_rules_trigger_node", ["trigger", "node"], unique=False)

    op.create_table(
        "entries",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=False),
        sa.Column("debit_account", sa.String(length=70), nullable=False),
        sa.Column("credit_account", sa.String(length=70), nullable=False),
        sa.Column("account_id", sa.String(length=70), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("pending_id", sa.String(length=80), nullable=True),
        sa.Column("reverses", sa.String(length=80), nullable=True),
        sa.Column("settles", sa.String(length=80), nullable=True),
        sa.Column("outstanding_delta", sa.BigInteger(), nullable=False),
        sa.Column("award_id", sa.String(length=64), nullable=True),
        sa.Column("redemption_id", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("expire_time", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("timeout_time", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_entries_amount_not_negative")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_entries")),
        sa.UniqueConstraint("id", name=op.f("uq_entries_id")),
        sa.UniqueConstraint("pending_id", name=op.f("uq_entries_pending_id")),
        sa.UniqueConstraint("reverses", name=op.f("uq_entries_reverses")),
    )
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index("ix_entries_account_seq", ["account_id", "seq"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_award_id"), ["award_id"], unique=False)
        batch_op.create_index("ix_entries_pending_timeout", ["phase", "timeout_time"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_redemption_id"), ["redemption_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_entries_settles"), ["settles"], unique=False)

    op.create_table(
        "exchange_points",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("staff", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_points")),
    )
    with op.batch_alter_table("exchange_points", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exchange_points_node"), ["node"], unique=False)

    op.create_table(
        "indicator_switches",
        sa.Column("indicator_id", sa.String(length=36), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("indicator_id", "node", name=op.f("pk_indicator_switches")),
    )
    op.create_table(
        "indicator_versions",
        sa.Column("indicator_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("indicator_id", "version", name=op.f("pk_indicator_versions")),
    )
    op.create_table(
        "indicators",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("evidence_required", sa.Boolean(), nullable=False),
        sa.Column("approval_required", sa.Boolean(), nullable=False),
        sa.Column("cap_count", sa.Integer(), nullable=False),
        sa.Column("cap_period", sa.String(length=10), nullable=False),
        sa.Column("validity_months", sa.Integer(), nullable=False),
        sa.Column("credit_household", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indicators")),
        sa.UniqueConstraint("node", "code", name="uq_indicators_node_code"),
    )
    with op.batch_alter_table("indicators", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_indicators_node"), ["node"], unique=False)

    op.create_table(
        "items",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("exchange_point_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("limit_per_person", sa.Integer(), nullable=False),
        sa.Column("limit_period", sa.String(length=10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("stock >= 0", name=op.f("ck_items_stock_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_items")),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_items_exchange_point_id"), ["exchange_point_id"], unique=False)

    op.create_table(
        "lots",
        sa.Column("entry_id", sa.String(length=80), nullable=False),
        sa.Column("account_id", sa.String(length=70), nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("earned_at", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("expired", sa.BigInteger(), nullable=False),
        sa.Column("warned", sa.Boolean(), nullable=False),
        sa.CheckConstraint("remaining >= 0 AND remaining <= amount", name=op.f("ck_lots_within_amount")),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_lots")),
    )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lots_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_lots_expiring", ["expires_at", "remaining"], unique=False)

    op.create_table(
        "party_members",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("community", sa.String(length=300), nullable=False),
        sa.Column("work_unit", sa.String(length=64), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_party_members")),
    )
    with op.batch_alter_table("party_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_party_members_community"), ["community"], unique=False)

    op.create_table(
        "rankings",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("published_by", sa.String(length=80), nullable=False),
        sa.Column("publish_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rankings")),
    )
    with op.batch_alter_table("rankings", schema=None) as batch_op:
        batch_op.create_index("ix_rankings_node_time", ["node", "publish_time"], unique=False)

    op.create_table(
        "redemptions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("exchange_point_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=70), nullable=False),
        sa.Column("resident", sa.String(length=80), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("expire_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("fulfilled_by", sa.String(length=80), nullable=False),
        sa.Column("cancelled_by", sa.String(length=80), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
    )
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.create_index("ix_redemptions_limit", ["account_id", "item_id", "create_time"], unique=False)
        batch_op.create_index("ix_redemptions_point_state", ["exchange_point_id", "state"], unique=False)
        batch_op.create_index("ix_redemptions_timeout", ["state", "expire_time"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_redemptions_timeout")
        batch_op.drop_index("ix_redemptions_point_state")
        batch_op.drop_index("ix_redemptions_limit")

    op.drop_table("redemptions")
    with op.batch_alter_table("rankings", schema=None) as batch_op:
        batch_op.drop_index("ix_rankings_node_time")

    op.drop_table("rankings")
    with op.batch_alter_table("party_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_party_members_community"))

    op.drop_table("party_members")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_index("ix_lots_expiring")
        batch_op.drop_index(batch_op.f("ix_lots_account_id"))

    op.drop_table("lots")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_items_exchange_point_id"))

    op.drop_table("items")
    with op.batch_alter_table("indicators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_indicators_node"))

    op.drop_table("indicators")
    op.drop_table("indicator_versions")
    op.drop_table("indicator_switches")
    with op.batch_alter_table("exchange_points", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_points_node"))

    op.drop_table("exchange_points")
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_entries_settles"))
        batch_op.drop_index(batch_op.f("ix_entries_redemption_id"))
        batch_op.drop_index("ix_entries_pending_timeout")
        batch_op.drop_index(batch_op.f("ix_entries_award_id"))
        batch_op.drop_index("ix_entries_account_seq")

    op.drop_table("entries")
    with op.batch_alter_table("earning_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_earning_rules_trigger_node")

    op.drop_table("earning_rules")
    with op.batch_alter_table("debts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_debts_account_id"))

    op.drop_table("debts")
    with op.batch_alter_table("credit_queries", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_queries_user_time")

    op.drop_table("credit_queries")
    op.drop_table("credit_policies")
    op.drop_table("credit_consents")
    with op.batch_alter_table("awards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_awards_state"))
        batch_op.drop_index(batch_op.f("ix_awards_recipient"))
        batch_op.drop_index(batch_op.f("ix_awards_node"))
        batch_op.drop_index("ix_awards_cap")

    op.drop_table("awards")
    op.drop_table("attendances")
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_allocations_lot_id"))

    op.drop_table("allocations")
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_block"))

    op.drop_table("activities")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_node"))

    op.drop_table("accounts")
    drop_platform_tables_v1()
