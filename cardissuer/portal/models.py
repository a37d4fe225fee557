"""Tables of the holder portal: applications, their uploaded files and one-time codes.

An application is the holder's request (a first card, a new passport, a renewal, a further
service, a lost phone) and the officer's decision on it. The form the holder filled in is kept
as JSON (``form``) until the decision: it is what the officer reviews, and what the retention
timer deletes for rejected and abandoned applications. Uploaded images live in their own
table so that the review queue, which lists many applications, never reads them.

The holder reaches an application only through its reference (random, shown once) and a
secret whose hash is kept here, never through a counter or a guessable number.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field as DbField
from sqlmodel import SQLModel

from cardissuer.models import utcnow


class ApplicationKind(enum.StrEnum):
    """What the holder asks for."""

    FIRST_CARD = "first_card"
    PASSPORT_CHANGE = "passport_change"
    RENEWAL = "renewal"
    SERVICE = "service"
    LOST_PHONE = "lost_phone"


class ApplicationState(enum.StrEnum):
    """Where an application stands; the holder sees each of these in their language."""

    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    INFO_NEEDED = "info_needed"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


OPEN_STATES = (
    ApplicationState.SUBMITTED,
    ApplicationState.UNDER_REVIEW,
    ApplicationState.INFO_NEEDED,
)
"""States in which the officer or the holder still has something to do."""


class ApplicationRecord(SQLModel, table=True):
    """One application and its decision."""

    __tablename__ = "application"
    # The review queue: an office's open applications, oldest first.
    __table_args__ = (Index("ix_application_queue", "office_id", "state", "submitted_at"),)

    id: int | None = DbField(default=None, primary_key=True)
    reference: str = DbField(unique=True, max_length=24)
    secret_hash: str = DbField(max_length=64)
    kind: str = DbField(max_length=16)
    state: str = DbField(max_length=16, index=True)
    office_id: int = DbField(foreign_key="office.id")
    language: str = DbField(max_length=8)
    email: str | None = DbField(default=None, max_length=128)
    phone: str | None = DbField(default=None, max_length=32)
    form: str | None = DbField(default=None)  # JSON; None once the retention timer ran
    person_id: int | None = DbField(default=None, foreign_key="person.id", index=True)
    card_id: int | None = DbField(default=None, foreign_key="card.id")
    question: str | None = DbField(default=None, max_length=1000)
    answer: str | None = DbField(default=None, max_length=1000)
    reject_reason: str | None = DbField(default=None, max_length=32)
    courier: str | None = DbField(default=None, max_length=64)
    tracking_number: str | None = DbField(default=None, max_length=64)
    dispatched_at: datetime | None = None
    created_at: datetime = DbField(default_factory=utcnow)
    submitted_at: datetime = DbField(default_factory=utcnow)
    updated_at: datetime = DbField(default_factory=utcnow, index=True)
    decided_at: datetime | None = None
    decided_by: int | None = DbField(default=None, foreign_key="officer.id")
    # The decision's e-mail to the holder, sent after the decision is committed: when it was
    # handed to the mail server, or when that last failed (the console then offers a resend).
    mailed_at: datetime | None = None
    mail_failed_at: datetime | None = None


class ApplicationFileKind(enum.StrEnum):
    PORTRAIT = "portrait"
    PASSPORT_PAGE = "passport_page"
    DOCUMENT = "document"


class ApplicationFileRecord(SQLModel, table=True):
    """An uploaded image, re-encoded by the service (never the bytes as uploaded)."""

    __tablename__ = "application_file"

    id: int | None = DbField(default=None, primary_key=True)
    application_id: int = DbField(foreign_key="application.id", index=True)
    kind: str = DbField(max_length=16)
    media_type: str = DbField(max_length=32)
    data: bytes = DbField(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = DbField(default_factory=utcnow)


class OneTimeCodeRecord(SQLModel, table=True):
    """A code sent to an address to prove the applicant reads it.

    Only keyed hashes are kept (of the address and of the code), so the table lists no
    addresses; ``attempts`` counts wrong guesses and ends the code after a few."""

    __tablename__ = "one_time_code"

    id: int | None = DbField(default=None, primary_key=True)
    address_hash: str = DbField(max_length=64, index=True)
    client_hash: str = DbField(max_length=64, index=True)
    code_hash: str = DbField(max_length=64)
    purpose: str = DbField(max_length=16)
    created_at: datetime = DbField(default_factory=utcnow, index=True)
    expires_at: datetime
    attempts: int = DbField(default=0)
    used_at: datetime | None = None


class ReminderRecord(SQLModel, table=True):
    """An expiry reminder sent for a card at an offset (days before expiry): sent once each."""

    __tablename__ = "reminder"
    __table_args__ = (Index("ux_reminder_card_offset", "card_id", "days_before", unique=True),)

    id: int | None = DbField(default=None, primary_key=True)
    card_id: int = DbField(foreign_key="card.id")
    days_before: int
    sent_at: datetime = DbField(default_factory=utcnow)
