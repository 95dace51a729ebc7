"""idempotency_keys: each request's fingerprint and response (one idempotency semantics everywhere)

Revision ID: 0002
Revises: 0001
"""

from govkit.migration_ops import add_idempotency_results_v2, drop_idempotency_results_v2

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_idempotency_results_v2()


def downgrade() -> None:
    drop_idempotency_results_v2()
