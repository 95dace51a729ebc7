"""digests: a person's digest choice per kind and channel, held deliveries' digest

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
    with op.batch_alter_table("channel_preferences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest", sa.String(length=10), server_default="", nullable=False))
        batch_op.add_column(sa.Column("digest_time", sa.String(length=8), server_default="", nullable=False))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("digest_id")
    with op.batch_alter_table("channel_preferences", schema=None) as batch_op:
        batch_op.drop_column("digest_time")
        batch_op.drop_column("digest")
