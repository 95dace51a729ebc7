"""idempotency_keys: each request's fingerprint and response (one idempotency semantics everywhere)

Revision ID: 0003
Revises: 0002
"""

from govkit.migration_ops import add_idempotency_results_v2, drop_idempotency_results_v2

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_idempotency_results_v2()


def downgrade() -> None:
    drop_idempotency_results_v2()
