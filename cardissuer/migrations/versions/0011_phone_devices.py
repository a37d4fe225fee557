"""phone devices: the device key a holder link registered, and its attempt count

A holder link opened on its device may register one device key (the phone's WebCrypto P-256
public key, as compact JSON, the same text as ``card.device_jwk``); the issuer then signs the
phone card bound to it. ``device_key_tries`` counts the link's registration requests, so
that a link cannot be used to make the issuer sign without bound.

Revision ID: 0011_phone_devices
Revises: 0010_applications
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_phone_devices"
down_revision = "0010_applications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("holder_link", sa.Column("device_jwk", sa.String(length=256), nullable=True))
    op.add_column(
        "holder_link",
        sa.Column("device_key_tries", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    # DROP COLUMN is in place on SQLite 3.35 and later, as in 0009.
    op.drop_column("holder_link", "device_key_tries")
    op.drop_column("holder_link", "device_jwk")
