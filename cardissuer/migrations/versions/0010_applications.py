"""holder portal: applications, their files, one-time codes and expiry reminders

Revision ID: 0010_applications
Revises: 0009_small_rows
Create Date: 2026-12-06 00:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010_applications"
down_revision = "0009_small_rows"
branch_labels = None
depends_on = None

_text = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", _text(length=24), nullable=False),
        sa.Column("secret_hash", _text(length=64), nullable=False),
        sa.Column("kind", _text(length=16), nullable=False),
        sa.Column("state", _text(length=16), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("language", _text(length=8), nullable=False),
        sa.Column("email", _text(length=128), nullable=True),
        sa.Column("phone", _text(length=32), nullable=True),
        sa.Column("form", _text(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("card_id", sa.Integer(), nullable=True),
        sa.Column("question", _text(length=1000), nullable=True),
        sa.Column("answer", _text(length=1000), nullable=True),
        sa.Column("reject_reason", _text(length=32), nullable=True),
        sa.Column("courier", _text(length=64), nullable=True),
        sa.Column("tracking_number", _text(length=64), nullable=True),
        sa.Column("dispatched_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("submitted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["office_id"], ["office.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["card_id"], ["card.id"]),
        sa.ForeignKeyConstraint(["decided_by"], ["officer.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    op.create_index("ix_application_queue", "application", ["office_id", "state", "submitted_at"])
    op.create_index("ix_application_state", "application", ["state"])
    op.create_index("ix_application_person_id", "application", ["person_id"])
    op.create_index("ix_application_updated_at", "application", ["updated_at"])
    op.create_table(
        "application_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("kind", _text(length=16), nullable=False),
        sa.Column("media_type", _text(length=32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["application.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_application_file_application_id", "application_file", ["application_id"])
    op.create_table(
        "one_time_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_hash", _text(length=64), nullable=False),
        sa.Column("client_hash", _text(length=64), nullable=False),
        sa.Column("code_hash", _text(length=64), nullable=False),
        sa.Column("purpose", _text(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_one_time_code_address_hash", "one_time_code", ["address_hash"])
    op.create_index("ix_one_time_code_client_hash", "one_time_code", ["client_hash"])
    op.create_index("ix_one_time_code_created_at", "one_time_code", ["created_at"])
    op.create_table(
        "reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("days_before", sa.Integer(), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["card_id"], ["card.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_reminder_card_offset", "reminder", ["card_id", "days_before"], unique=True)


def downgrade() -> None:
    op.drop_table("reminder")
    op.drop_table("one_time_code")
    op.drop_table("application_file")
    op.drop_table("application")
