"""contacts.paused_until / pause_reason (the bot steps back in a chat) and opted_out_at (never chased).

Revision ID: 0004_chat_control
Revises: 0003_follow_up_claims
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_chat_control"
down_revision: str | None = "0003_follow_up_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("paused_until", sa.DateTime(timezone=True)))
    op.add_column("contacts", sa.Column("pause_reason", sa.String(30)))
    op.add_column("contacts", sa.Column("opted_out_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("contacts", "opted_out_at")
    op.drop_column("contacts", "pause_reason")
    op.drop_column("contacts", "paused_until")
