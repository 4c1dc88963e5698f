"""Each contact's share of Gemini: how many model calls its messages made in the current clock hour
(contacts.llm_calls, contacts.llm_calls_hour), so one flooding contact cannot run up the bill.

Revision ID: 0009_llm_budget
Revises: 0008_contact_language
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_llm_budget"
down_revision: str | None = "0008_contact_language"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("llm_calls", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("contacts", sa.Column("llm_calls_hour", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("contacts", "llm_calls_hour")
    op.drop_column("contacts", "llm_calls")
