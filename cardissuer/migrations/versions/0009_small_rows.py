"""small rows: portraits and QR texts in tables of their own

The portrait (``person.portrait``, about 500 bytes) moves to ``person_portrait`` and the
signed QR text (``card.qr_text``, up to about 1,300 characters) to ``card_text``: every search,
list, duplicate check, state change and expiry sweep reads the ``person`` and ``card`` rows,
which no longer carry them. The duplicate check gets an index holding every column it reads
(``ix_person_duplicates``), so it never visits the table.

The columns are dropped with a plain ``ALTER TABLE ... DROP COLUMN`` (SQLite 3.35 and later
do it in place): a rebuild of ``person`` would drop its search triggers and indexes. If a
rebuild happens anyway (an older SQLite), the search objects are re-created afterwards.

Revision ID: 0009_small_rows
Revises: 0008_search_tiers
Create Date: 2026-12-05 23:00:00
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0009_small_rows"
down_revision = "0008_search_tiers"
branch_labels = None
depends_on = None

_DUPLICATE_COLUMNS = ["nationality", "birth_date", "name_key", "id", "office_id"]


def upgrade() -> None:
    op.create_table(
        "person_portrait",
        sa.Column("person_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_table(
        "card_text",
        sa.Column("card_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("qr_text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["card.id"]),
        sa.PrimaryKeyConstraint("card_id"),
    )
    op.execute(
        "INSERT INTO person_portrait (person_id, data) "
        "SELECT id, portrait FROM person WHERE portrait IS NOT NULL"
    )
    op.execute("INSERT INTO card_text (card_id, qr_text) SELECT id, qr_text FROM card")
    _drop_column("person", "portrait")
    _drop_column("card", "qr_text")
    op.create_index("ix_person_duplicates", "person", _DUPLICATE_COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_person_duplicates", table_name="person")
    # ADD COLUMN is in place on every supported SQLite (a NOT NULL column needs a default,
    # which stays: removing it would rebuild ``card``, which other tables reference).
    op.add_column("person", sa.Column("portrait", sa.LargeBinary(), nullable=True))
    op.add_column("card", sa.Column("qr_text", sa.String(), nullable=False, server_default=""))
    op.execute(
        "UPDATE person SET portrait = "
        "(SELECT data FROM person_portrait WHERE person_portrait.person_id = person.id)"
    )
    op.execute(
        "UPDATE card SET qr_text = "
        "(SELECT qr_text FROM card_text WHERE card_text.card_id = card.id)"
    )
    op.drop_table("card_text")
    op.drop_table("person_portrait")


def _in_place() -> bool:
    """Whether ``ALTER TABLE`` adds and drops columns in place (not SQLite before 3.35)."""
    bind = op.get_bind()
    return bind.dialect.name != "sqlite" or sqlite3.sqlite_version_info >= (3, 35, 0)


def _drop_column(table: str, column: str) -> None:
    if _in_place():
        op.drop_column(table, column)
        return
    with op.batch_alter_table(table, schema=None) as batch_op:  # pragma: no cover - old SQLite
        batch_op.drop_column(column)
    _rebuild_search()  # pragma: no cover


def _rebuild_search() -> None:  # pragma: no cover - old SQLite
    from cardissuer.core import search_index

    search_index.rebuild(op.get_bind())
