"""status lists: PostgreSQL stores a list's statuses and signed token uncompressed, out of line

Revision ID: 0014_list_storage
Revises: 0013_review
Create Date: 2026-12-06 04:20:00

A list of 2**20 cards holds 256 KB of statuses, rewritten each time the list is signed. With
the default storage PostgreSQL compresses such a value (pglz) on every write: 79 ms of an
83 ms signing-and-serving at a million persons. ``EXTERNAL`` keeps it out of line without
compressing it (2.5 ms); the token is base64 of zlib output, which does not compress either.
Only the storage of values written from now on changes (each list's next signing rewrites
its own); nothing is copied. SQLite has no such setting: nothing to do there.
"""

from __future__ import annotations

from alembic import op

revision = "0014_list_storage"
down_revision = "0013_review"
branch_labels = None
depends_on = None

COLUMNS = ("statuses", "signed_token")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in COLUMNS:
        op.execute(f"ALTER TABLE status_list ALTER COLUMN {name} SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in COLUMNS:
        op.execute(f"ALTER TABLE status_list ALTER COLUMN {name} SET STORAGE EXTENDED")
