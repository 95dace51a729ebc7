"""visits.issues_resolved: the problems a household visit resolved (a visit that resolved one can earn
the household points)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Visits recorded before resolved nothing: an empty JSON list.
    op.add_column("visits", sa.Column("issues_resolved", sa.Text(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("visits") as batch_op:
        batch_op.drop_column("issues_resolved")
