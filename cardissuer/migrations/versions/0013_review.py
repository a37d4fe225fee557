"""review queue: when the decision's e-mail to the holder was sent, or last failed

Revision ID: 0013_review
Revises: 0010_applications
Create Date: 2026-12-06 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0013_review"
down_revision = "0010_applications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("application") as batch:
        batch.add_column(sa.Column("mailed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column("mail_failed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("application") as batch:
        batch.drop_column("mail_failed_at")
        batch.drop_column("mailed_at")
