"""webhook_pushes: Wappi's pushes, stored before they are answered and deleted once their messages are stored

Revision ID: 0006_webhook_pushes
Revises: 0005_send_rate
Create Date: 2027-01-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006_webhook_pushes"
down_revision: str | None = "0005_send_rate"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_pushes",
        sa.Column("id", sa.Integer()),
        sa.Column("messages", JSONB(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_pushes"),
    )


def downgrade() -> None:
    op.drop_table("webhook_pushes")
