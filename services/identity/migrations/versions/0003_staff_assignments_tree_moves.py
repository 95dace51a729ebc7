"""staff_assignments (order-safe staffing sync) and tree_moves (node moves applied, in order)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import govkit.db
from govkit.migration_ops import create_tree_moves_v1, drop_tree_moves_v1

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_tree_moves_v1()
    op.create_table(
        "staff_assignments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("principal", sa.String(length=60), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=300), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("update_time", govkit.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_assignments")),
    )
    with op.batch_alter_table("staff_assignments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_staff_assignments_principal_role_scope", ["principal", "role", "scope"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_staff_assignments_scope"), ["scope"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_assignments_scope"))
        batch_op.drop_index("ix_staff_assignments_principal_role_scope")
    op.drop_table("staff_assignments")
    drop_tree_moves_v1()
