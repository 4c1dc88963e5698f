"""Prompts edited in the console: every saved version of the three prompts, the newest one live (else the
file in PROMPTS_PATH), the older ones kept to be restored.

Revision ID: 0010_prompt_versions
Revises: 0009_llm_budget
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_prompt_versions"
down_revision: str | None = "0009_llm_budget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prompt_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("prompt", sa.String(20), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("note", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "prompt IN ('sales_agent', 'moderator', 'follow_up')", name="ck_prompt_versions_prompt"
        ),
    )
    op.create_index("idx_prompt_versions_prompt", "prompt_versions", ["prompt", "id"])


def downgrade() -> None:
    op.drop_index("idx_prompt_versions_prompt", table_name="prompt_versions")
    op.drop_table("prompt_versions")
