"""The operator console's lock-out: wrong passwords per client address, shared by every replica.

Revision ID: 0007_console_sign_in
Revises: 0006_crm_events
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_console_sign_in"
down_revision: str | None = "0006_crm_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_sign_in_failures",
        sa.Column("client_address", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failed_at", TZ, nullable=False),
        sa.Column("locked_until", TZ),
    )


def downgrade() -> None:
    op.drop_table("console_sign_in_failures")
