"""send_rate: the token bucket of MAX_SENDS_PER_MINUTE shared by every sender; message_logs.turn_at: when a
claimed send's turn comes

Revision ID: 0005_send_rate
Revises: 0004_outgoing_claims
Create Date: 2026-12-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_send_rate"
down_revision: str | None = "0004_outgoing_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "send_rate",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute("INSERT INTO send_rate (name, tokens, refilled_at) VALUES ('whatsapp_number', 1, now())")
    op.add_column("message_logs", sa.Column("turn_at", sa.DateTime(timezone=True)))
    # /stats counts the sends waiting for their turn: only rows being sent are in this index.
    op.create_index(
        "idx_message_logs_sending",
        "message_logs",
        ["turn_at"],
        postgresql_where=sa.text("queue_status = 'sending'"),
    )


def downgrade() -> None:
    op.drop_index("idx_message_logs_sending", table_name="message_logs")
    op.drop_column("message_logs", "turn_at")
    op.drop_table("send_rate")
