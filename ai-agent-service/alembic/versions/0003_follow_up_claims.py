"""follow_ups.claimed_until: a chain whose touch a worker is writing is passed over by the others until then,
so no row lock is held while Gemini writes the touch.

Revision ID: 0003_follow_up_claims
Revises: 0002_decisions
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_follow_up_claims"
down_revision: str | None = "0002_decisions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("follow_ups", sa.Column("claimed_until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("follow_ups", "claimed_until")
