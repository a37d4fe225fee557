"""search tiers: (name, id) and (office_id, name, id) indexes for ranked pages in index order

Revision ID: 0008_search_tiers
Revises: 0007_published_bytes
Create Date: 2026-12-05 22:30:00

A name search shows equal names first, then names starting with the text, then the rest,
newest first within each. With an index on ``(name, id)`` (and ``(office_id, name, id)`` for
an officer's search) the equal names are read already newest first, so a page reads what it
shows instead of ranking every match. The full name ``FAMILY GIVEN`` gets such indexes too.
These replace the single-column name indexes of ``0005_search_indexes``.

The statements are a frozen copy of ``cardissuer.core.search_index`` (which ``fmcard db
rebuild-search`` uses); a test checks that the two build the same schema.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0008_search_tiers"
down_revision = "0007_published_bytes"
branch_labels = None
depends_on = None

_FULL = "family_name || ' ' || given_names"
_KEYS = {
    "postgresql": (
        ("family", '(upper(family_name)) COLLATE "C"'),
        ("full", f'(upper({_FULL})) COLLATE "C"'),
        ("chinese", 'chinese_name COLLATE "C"'),
        ("native", 'native_name COLLATE "C"'),
    ),
    "sqlite": (
        ("family", "family_name COLLATE NOCASE"),
        ("full", f"({_FULL}) COLLATE NOCASE"),
        ("chinese", "chinese_name"),
        ("native", "native_name"),
    ),
}
_OLD = {
    "postgresql": (
        ("family", '(upper(family_name)) COLLATE "C"'),
        ("chinese", 'chinese_name COLLATE "C"'),
        ("native", 'native_name COLLATE "C"'),
    ),
    "sqlite": (
        ("family", "family_name COLLATE NOCASE"),
        ("chinese", "chinese_name"),
        ("native", "native_name"),
    ),
}


def _dialect() -> str:
    return "postgresql" if op.get_bind().dialect.name == "postgresql" else "sqlite"


def upgrade() -> None:
    connection = op.get_bind()
    for name, _ in _OLD[_dialect()]:
        connection.execute(text(f"DROP INDEX IF EXISTS ix_person_search_{name}"))
    for name, key in _KEYS[_dialect()]:
        for scoped, lead in (("", ""), ("_office", "office_id, ")):
            connection.execute(
                text(f"CREATE INDEX ix_person_search_{name}{scoped} ON person ({lead}{key}, id)")
            )


def downgrade() -> None:
    connection = op.get_bind()
    for name, _ in _KEYS[_dialect()]:
        for scoped in ("", "_office"):
            connection.execute(text(f"DROP INDEX IF EXISTS ix_person_search_{name}{scoped}"))
    for name, key in _OLD[_dialect()]:
        connection.execute(text(f"CREATE INDEX ix_person_search_{name} ON person ({key})"))
