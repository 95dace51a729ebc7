"""login attempts counted per login and client address

Revision ID: 0002
Revises: 0001

The old table counted failures per login alone, so anyone could lock a known login out. Its rows
are short-lived counters, not records: it is replaced rather than converted.
"""

import sqlalchemy as sa
from alembic import op

import govkit.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("login_attempts")
    op.create_table(
        "login_attempts",
        sa.Column("login_key", sa.String(length=100), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_attempt", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("login_key", "client", name=op.f("pk_login_attempts")),
    )


def downgrade() -> None:
    op.drop_table("login_attempts")
    op.create_table(
        "login_attempts",
        sa.Column("login_key", sa.String(length=100), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", govkit.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("login_key", name=op.f("pk_login_attempts")),
    )
