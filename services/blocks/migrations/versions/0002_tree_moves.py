"""tree_moves: every node move, numbered without gaps, so consumers apply them in order

Revision ID: 0002
Revises: 0001
"""

from govkit.migration_ops import create_tree_moves_v1, drop_tree_moves_v1

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tree_moves_v1()


def downgrade() -> None:
    drop_tree_moves_v1()
