"""targeted notices (broadcasts)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import govkit.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("node", sa.String(length=300), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("household_tag", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=False),
        sa.Column("households_done", sa.Integer(), nullable=False),
        sa.Column("recipients_written", sa.Integer(), nullable=False),
        sa.Column("recipients_total", sa.Integer(), nullable=False),
        sa.Column("create_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("complete_time", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index("ix_notices_node", ["node", "create_time"], unique=False)
        batch_op.create_index("ix_notices_state", ["state"], unique=False)
    # Read receipts list a notice's items by read state.
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbox_items_event_read", ["event_id", "read_time", "recipient"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_items_event_read")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_state")
        batch_op.drop_index("ix_notices_node")
    op.drop_table("notices")
