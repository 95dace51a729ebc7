"""initial schema

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import govkit.db
from govkit.migration_ops import (
    add_idempotency_results_v2,
    create_platform_tables_v1,
    drop_idempotency_results_v2,
    drop_platform_tables_v1,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables_v1()
    add_idempotency_results_v2()
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("next_attempt_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("sent_time", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("event_id", "recipient", "channel", name="uq_deliveries_dedupe"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_due", ["state", "next_attempt_time"], unique=False)
        batch_op.create_index("ix_deliveries_node", ["node", "create_time"], unique=False)
        batch_op.create_index("ix_deliveries_recipient", ["recipient", "create_time"], unique=False)

    op.create_table(
        "endpoints",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
        sa.UniqueConstraint("owner", "channel", "address", name="uq_endpoints_owner_channel_address"),
    )
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.create_index("ix_endpoints_owner", ["owner", "channel"], unique=False)

    op.create_table(
        "inbox_items",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=False),
        sa.Column("resource", sa.String(length=200), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("read_time", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_inbox_items")),
        sa.UniqueConstraint("event_id", "recipient", name="uq_inbox_items_event_recipient"),
        sa.UniqueConstraint("id", name=op.f("uq_inbox_items_id")),
    )
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_items_recipient_seq", ["recipient", "seq"], unique=False)
        batch_op.create_index(
            "ix_inbox_items_recipient_unread", ["recipient", "read_time", "seq"], unique=False
        )

    op.create_table(
        "templates",
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("locale", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=80), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "channel", "locale", name=op.f("pk_templates")),
    )


def downgrade() -> None:
    op.drop_table("templates")
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_items_recipient_unread")
        batch_op.drop_index("ix_inbox_items_recipient_seq")

    op.drop_table("inbox_items")
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.drop_index("ix_endpoints_owner")

    op.drop_table("endpoints")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_recipient")
        batch_op.drop_index("ix_deliveries_node")
        batch_op.drop_index("ix_deliveries_due")

    op.drop_table("deliveries")
    drop_idempotency_results_v2()
    drop_platform_tables_v1()
