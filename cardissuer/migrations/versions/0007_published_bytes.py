"""published bytes

Each status list keeps its packed statuses (``status_list.statuses``), and card status
changes go to the ``status_change`` journal: serving a list no longer reads the cards.
Existing lists get their statuses computed from their cards here (``fmcard db
rebuild-status`` does the same later). Each held list's digest is cleared (``last_iat`` is
kept): every list is signed once more, from the stored statuses and with a later ``iat``, at
its next request.

Revision ID: 0007_published_bytes
Revises: 0006_phone_cards
Create Date: 2026-12-05 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from keys.status_list import CardStatus, StatusList

revision = "0007_published_bytes"
down_revision = "0006_phone_cards"
branch_labels = None
depends_on = None

# The card states as stored then (the enum's names), and their status
# (cardissuer.services.statuses); the others are valid.
_STATUS = {
    "REVOKED": CardStatus.REVOKED,
    "SUSPENDED": CardStatus.SUSPENDED,
    "SUPERSEDED": CardStatus.SUPERSEDED,
}


def upgrade() -> None:
    with op.batch_alter_table("status_list", schema=None) as batch_op:
        batch_op.add_column(sa.Column("statuses", sa.LargeBinary(), nullable=True))
    op.create_table(
        "status_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status_index", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_status_change_list", "status_change", ["list_id", "id"], unique=False)
    _fill_statuses()


def _fill_statuses() -> None:
    """Every list's statuses, from its cards' states (one pass over the non-valid cards)."""
    bind = op.get_bind()
    lists = {
        list_id: StatusList(size, bits)
        for list_id, size, bits in bind.execute(
            sa.text("SELECT list_id, size, bits FROM status_list")
        ).all()
    }
    query = sa.text(
        "SELECT list_id, status_index, state FROM card WHERE state IN :states"
    ).bindparams(sa.bindparam("states", expanding=True))
    for list_id, index, state in bind.execute(query, {"states": sorted(_STATUS)}):
        statuses = lists.get(list_id)
        if statuses is not None:
            statuses[index] = _STATUS[str(state)]
    table = sa.table(
        "status_list",
        sa.column("list_id", sa.String),
        sa.column("statuses", sa.LargeBinary),
        sa.column("signed_digest", sa.String),
    )
    for list_id, statuses in lists.items():
        bind.execute(
            table.update()
            .where(table.c.list_id == list_id)
            .values(statuses=statuses.to_bytes(), signed_digest=None)
        )


def downgrade() -> None:
    op.drop_index("ix_status_change_list", table_name="status_change")
    op.drop_table("status_change")
    with op.batch_alter_table("status_list", schema=None) as batch_op:
        batch_op.drop_column("statuses")
