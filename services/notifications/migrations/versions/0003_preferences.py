"""channel preferences and quiet hours per person

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import govkit.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_preferences",
        sa.Column("person", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("person", "kind", "channel", name=op.f("pk_channel_preferences")),
    )
    op.create_table(
        "quiet_hours",
        sa.Column("person", sa.String(length=320), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("start", sa.String(length=8), nullable=False),
        sa.Column("end", sa.String(length=8), nullable=False),
        sa.Column("time_zone", sa.String(length=60), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person", name=op.f("pk_quiet_hours")),
    )


def downgrade() -> None:
    op.drop_table("quiet_hours")
    op.drop_table("channel_preferences")
