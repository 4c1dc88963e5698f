"""Managers and what they are told: scheduled_calls gets its manager and reminder times (a slot is full when
every manager has a call then), notifications keeps what goes to the managers' own WhatsApp.

Revision ID: 0005_managers
Revises: 0004_chat_control
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_managers"
down_revision: str | None = "0004_chat_control"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("scheduled_calls", sa.Column("manager_name", sa.String(100)))
    op.add_column("scheduled_calls", sa.Column("manager_phone", sa.String(20)))
    op.add_column("scheduled_calls", sa.Column("reminder_due_at", TZ))
    op.add_column("scheduled_calls", sa.Column("client_reminded_at", TZ))
    op.add_column("scheduled_calls", sa.Column("manager_reminded_at", TZ))
    op.drop_index("uq_scheduled_calls_slot", table_name="scheduled_calls")
    op.create_index(
        "uq_scheduled_calls_manager_slot",
        "scheduled_calls",
        ["scheduled_at", sa.text("coalesce(manager_phone, '')")],
        unique=True,
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.create_index(
        "idx_scheduled_calls_reminder",
        "scheduled_calls",
        ["reminder_due_at"],
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("manager_name", sa.String(100), nullable=False),
        sa.Column("manager_phone", sa.String(20), nullable=False),
        sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id", ondelete="SET NULL")),
        sa.Column("call_id", sa.Integer, sa.ForeignKey("scheduled_calls.id", ondelete="SET NULL")),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("outgoing_id", sa.String(255), nullable=False, unique=True),
        sa.Column("summary_pending", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", TZ),
    )
    op.create_index(
        "idx_notifications_unpublished",
        "notifications",
        ["created_at"],
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_index("idx_scheduled_calls_reminder", table_name="scheduled_calls")
    op.drop_index("uq_scheduled_calls_manager_slot", table_name="scheduled_calls")
    op.create_index(
        "uq_scheduled_calls_slot",
        "scheduled_calls",
        ["scheduled_at"],
        unique=True,
        postgresql_where=sa.text("status = 'scheduled'"),
    )
    for column in (
        "manager_reminded_at",
        "client_reminded_at",
        "reminder_due_at",
        "manager_phone",
        "manager_name",
    ):
        op.drop_column("scheduled_calls", column)
