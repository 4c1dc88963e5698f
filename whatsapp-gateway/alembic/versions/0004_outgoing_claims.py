"""message_logs.claimed_at: a sender claims an outgoing row before it calls Wappi, in a transaction of its own

Revision ID: 0004_outgoing_claims
Revises: 0003_skipped_messages
Create Date: 2026-12-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_outgoing_claims"
down_revision: str | None = "0003_skipped_messages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("message_logs", sa.Column("claimed_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("message_logs", "claimed_at")
