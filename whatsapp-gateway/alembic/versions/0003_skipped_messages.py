"""message_logs.skip_reason: messages the poller skipped are rows too (direction 'skipped'), counted by /stats

Revision ID: 0003_skipped_messages
Revises: 0002_normalized_whitelist
Create Date: 2026-12-14
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_skipped_messages"
down_revision: str | None = "0002_normalized_whitelist"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("message_logs", sa.Column("skip_reason", sa.String(30)))


def downgrade() -> None:
    op.execute("DELETE FROM message_logs WHERE direction = 'skipped'")
    op.drop_column("message_logs", "skip_reason")
