"""The spec's tables (contacts, messages, follow_ups, scheduled_calls) plus llm_usage.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("phone_number", sa.String(20), nullable=False, unique=True),
        sa.Column("name", sa.String(255)),
        sa.Column("full_name", sa.String(255)),
        sa.Column("business_name", sa.String(255)),
        sa.Column("is_client", sa.Boolean, nullable=True),
        sa.Column("classification_confidence", sa.Float),
        sa.Column("classification_reasoning", sa.Text),
        sa.Column("last_message_at", TZ),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("idx_contacts_is_client", "contacts", ["is_client"])
    op.create_index("idx_contacts_phone", "contacts", ["phone_number"])

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("phone_number", sa.String(20), nullable=False),
        sa.Column("message_id", sa.String(255), unique=True),
        sa.Column("message_text", sa.Text),
        sa.Column("is_from_bot", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("is_voice", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("voice_transcription", sa.Text),
        sa.Column("timestamp", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("message_type", sa.String(20), nullable=False, server_default="text"),
        sa.Column("sent_by", sa.String(20)),
        sa.Column("outgoing_id", sa.String(255), unique=True),
        sa.Column("reply_to_message_id", sa.String(255)),
        sa.Column("answered_at", TZ),
        sa.Column("published_at", TZ),
        sa.Column("stance", sa.String(20)),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("idx_messages_contact_id", "messages", ["contact_id"])
    op.create_index("idx_messages_timestamp", "messages", [sa.text("timestamp DESC")])
    op.create_index(
        "idx_messages_unpublished",
        "messages",
        ["created_at"],
        postgresql_where=sa.text("is_from_bot AND published_at IS NULL"),
    )

    op.create_table(
        "follow_ups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("touch_number", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("next_touch_at", TZ),
        sa.Column("last_touch_at", TZ),
        sa.Column("is_completed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("stop_reason", sa.String(100)),
        sa.Column("reason", sa.String(100)),
        sa.Column("silent_since", TZ),
        sa.Column("stopped_at", TZ),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("touch_number BETWEEN 1 AND 5", name="follow_ups_touch_number_check"),
    )
    op.create_index(
        "idx_follow_ups_next_touch",
        "follow_ups",
        ["next_touch_at"],
        postgresql_where=sa.text("is_completed = FALSE"),
    )

    op.create_table(
        "scheduled_calls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("scheduled_at", TZ, nullable=False),
        sa.Column("timezone", sa.String(50), nullable=False, server_default="Asia/Almaty"),
        sa.Column("status", sa.String(50), nullable=False, server_default="scheduled"),
        sa.Column("notes", sa.Text),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("idx_scheduled_calls_time", "scheduled_calls", ["scheduled_at"])
    op.create_index(
        "uq_scheduled_calls_slot",
        "scheduled_calls",
        ["scheduled_at"],
        unique=True,
        postgresql_where=sa.text("status = 'scheduled'"),
    )

    op.create_table(
        "llm_usage",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("purpose", sa.String(50), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("output_tokens", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("idx_llm_usage_created_at", "llm_usage", ["created_at"])


def downgrade() -> None:
    op.drop_table("llm_usage")
    op.drop_table("scheduled_calls")
    op.drop_table("follow_ups")
    op.drop_table("messages")
    op.drop_table("contacts")
