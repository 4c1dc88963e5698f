"""whitelist numbers in one form (normalize_phone), and the database refuses any other

Revision ID: 0002_normalized_whitelist
Revises: 0001_initial
Create Date: 2026-12-14
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.whitelist import NORMALIZED_FORM
from utils.whatsapp_ids import normalize_phone

revision: str = "0002_normalized_whitelist"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, phone_number FROM whitelist ORDER BY id")).all()
    by_key: dict[str, list[tuple[int, str]]] = {}
    for row_id, phone in rows:
        key = normalize_phone(phone)
        if not key:
            # Dropping it would quietly let that number through: a person has to fix it.
            raise RuntimeError(f"whitelist row {row_id} ({phone!r}) is not a phone number; fix or delete it")
        by_key.setdefault(key, []).append((row_id, phone))
    for key, entries in by_key.items():
        # One entry per number: the one already in the normal form if there is one, else the oldest.
        keep = next((e for e in entries if e[1] == key), entries[0])
        for row_id, _ in entries:
            if row_id != keep[0]:
                connection.execute(sa.text("DELETE FROM whitelist WHERE id = :id"), {"id": row_id})
        if keep[1] != key:
            connection.execute(
                sa.text("UPDATE whitelist SET phone_number = :key WHERE id = :id"),
                {"key": key, "id": keep[0]},
            )
    op.create_check_constraint("ck_whitelist_normalized_phone", "whitelist", NORMALIZED_FORM)


def downgrade() -> None:
    op.drop_constraint("ck_whitelist_normalized_phone", "whitelist", type_="check")
