"""The conversation's language per contact: contacts.language, "ru" or "kk" (NULL until the client writes
clearly in one).

Revision ID: 0008_contact_language
Revises: 0007_console_sign_in
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_contact_language"
down_revision: str | None = "0007_console_sign_in"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("language", sa.String(2)))
    op.create_check_constraint("ck_contacts_language", "contacts", "language IN ('ru', 'kk')")


def downgrade() -> None:
    op.drop_constraint("ck_contacts_language", "contacts", type_="check")
    op.drop_column("contacts", "language")
