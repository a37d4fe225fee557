"""status list iat

The last signed ``iat`` of each status list, with the digest of the statuses and the token
it signed: the next list of the same list id is signed with a later ``iat`` by whichever
process or instance signs it, and every instance serves the same signed document.

Revision ID: 0004_status_list_iat
Revises: 0003
Create Date: 2026-12-05 21:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004_status_list_iat"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("status_list", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_iat", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("signed_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(sa.Column("signed_token", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("status_list", schema=None) as batch_op:
        batch_op.drop_column("signed_token")
        batch_op.drop_column("signed_digest")
        batch_op.drop_column("last_iat")
