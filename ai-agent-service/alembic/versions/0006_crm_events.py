"""The CRM hand-off: crm_events keeps each event for each CRM (the signed webhook, Bitrix24) until it is
taken, and contacts.crm_lead_id the contact's Bitrix24 lead.

Revision ID: 0006_crm_events
Revises: 0005_managers
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "0006_crm_events"
down_revision: str | None = "0005_managers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
PENDING = "delivered_at IS NULL AND parked_at IS NULL"


def upgrade() -> None:
    op.add_column("contacts", sa.Column("crm_lead_id", sa.BigInteger))
    op.create_table(
        "crm_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("target", sa.String(20), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id", ondelete="SET NULL")),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("occurred_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("claimed_until", TZ),
        sa.Column("delivered_at", TZ),
        sa.Column("parked_at", TZ),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("event_id", "target", name="uq_crm_events_event_target"),
    )
    op.create_index(
        "idx_crm_events_due", "crm_events", ["next_attempt_at"], postgresql_where=sa.text(PENDING)
    )
    op.create_index(
        "idx_crm_events_contact_pending",
        "crm_events",
        ["contact_id", "target", "id"],
        postgresql_where=sa.text(PENDING),
    )
    op.create_index(
        "idx_crm_events_parked",
        "crm_events",
        ["parked_at"],
        postgresql_where=sa.text("parked_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("crm_events")
    op.drop_column("contacts", "crm_lead_id")
