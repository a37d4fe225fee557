"""review queue: when the decision's e-mail to the holder was sent, or last failed

Revision ID: 0013_review
Revises: 0012_search_fold
Create Date: 2026-12-06 00:30:00

Plain ``ALTER TABLE`` (SQLite adds and drops columns in place since 3.35): a batch copy of
``application`` would reflect the tables it refers to, whose expression indexes SQLAlchemy
cannot reflect.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0013_review"
down_revision = "0012_search_fold"
branch_labels = None
depends_on = None

COLUMNS = ("mailed_at", "mail_failed_at")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column(
            "application", sa.Column(name, sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35, 0):
        with op.batch_alter_table("application") as batch:  # pragma: no cover - old SQLite
            for name in reversed(COLUMNS):
                batch.drop_column(name)
        return
    for name in reversed(COLUMNS):
        op.drop_column("application", name)
