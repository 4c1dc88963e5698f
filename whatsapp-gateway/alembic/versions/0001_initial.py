"""message_logs, whitelist (seeded with the spec's personal numbers), poll_state, chat_cursors

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "message_logs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.String(255)),
        sa.Column("outgoing_id", sa.String(255)),
        sa.Column("chat_id", sa.String(255)),
        sa.Column("phone_number", sa.String(20)),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("message_type", sa.String(20)),
        sa.Column("message_text", sa.Text()),
        sa.Column("is_voice", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("wappi_status", sa.String(50)),
        sa.Column("wappi_message_id", sa.String(255)),
        sa.Column("reply_to_message_id", sa.String(255)),
        sa.Column("sent_by", sa.String(20)),
        sa.Column("queue_status", sa.String(50)),
        sa.Column("target_queue", sa.String(20)),
        sa.Column("payload", postgresql.JSONB()),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("message_time", TZ),
        sa.Column("transcribed_at", TZ),
        sa.Column("created_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.Column("processed_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_message_logs"),
        sa.UniqueConstraint("message_id", name="uq_message_logs_message_id"),
        sa.UniqueConstraint("outgoing_id", name="uq_message_logs_outgoing_id"),
    )
    op.create_index("idx_message_logs_phone", "message_logs", ["phone_number"])
    op.create_index("idx_message_logs_created", "message_logs", ["created_at"])
    op.create_index("idx_message_logs_wappi_message_id", "message_logs", ["wappi_message_id"])
    op.create_index(
        "idx_message_logs_outbox",
        "message_logs",
        ["created_at"],
        postgresql_where=sa.text("queue_status = 'pending'"),
    )

    whitelist = op.create_table(
        "whitelist",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("phone_number", sa.String(20), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("added_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_whitelist"),
        sa.UniqueConstraint("phone_number", name="uq_whitelist_phone_number"),
    )
    op.bulk_insert(
        whitelist,
        [
            {"phone_number": "77752837306", "note": "Личный номер 1"},
            {"phone_number": "77018855588", "note": "Личный номер 2"},
            {"phone_number": "77088098009", "note": "Личный номер 3"},
        ],
    )

    op.create_table(
        "poll_state",
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("value", TZ, nullable=False),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_poll_state"),
    )
    op.create_table(
        "chat_cursors",
        sa.Column("chat_id", sa.String(255), nullable=False),
        sa.Column("last_message_time", TZ, nullable=False),
        sa.Column("last_message_id", sa.String(255)),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name="pk_chat_cursors"),
    )


def downgrade() -> None:
    op.drop_table("chat_cursors")
    op.drop_table("poll_state")
    op.drop_table("whitelist")
    op.drop_table("message_logs")
