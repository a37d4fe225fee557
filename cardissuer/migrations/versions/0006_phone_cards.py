"""phone cards: a card's kind and the device key a phone card is bound to

Revision ID: 0006_phone_cards
Revises: 0005_search_indexes
Create Date: 2026-12-05 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006_phone_cards"
down_revision = "0005_search_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sqlmodel.sql.sqltypes.AutoString(length=8),
                nullable=False,
                server_default="printed",
            )
        )
        batch_op.add_column(
            sa.Column("device_jwk", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("card", schema=None) as batch_op:
        batch_op.drop_column("device_jwk")
        batch_op.drop_column("kind")
