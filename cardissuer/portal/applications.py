"""The holder's applications: submit, list, answer a question, withdraw, report a lost phone.

Every function acts for the address the holder proved (``owner``: its keyed hash, see
:func:`owner_hash`) and finds applications only through it: an application of another
address is answered exactly as one that does not exist (:class:`ApplicationNotFoundError`), by the
same single query. References are random (:func:`new_reference`), never counters.

Every change is in the audit chain with the application's reference as the record id and no
personal data (``actor`` is None: the holder is not an officer). The functions work in the
caller's transaction and take the time as an argument.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, col, func, select

from cardissuer.core.db import lock_key
from cardissuer.errors import ConflictError, NotFoundError
from cardissuer.models import CardRecord, CardState, OfficeRecord, PersonRecord
from cardissuer.portal.codes import keyed_hash
from cardissuer.portal.models import (
    OPEN_STATES,
    ApplicationFileRecord,
    ApplicationKind,
    ApplicationRecord,
    ApplicationState,
)
from cardissuer.portal.uploads import CheckedImage
from cardissuer.services import audit, cards

_REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
"""No 0/O, 1/I: a reference is read aloud over the phone and typed from a screen."""
REFERENCE_LENGTH = 12
"""60 bits: not guessable, and short enough to read out (``FM-XXXX-XXXX-XXXX``)."""


class ApplicationNotFoundError(NotFoundError):
    """No application with this reference for this address (or none at all: the same)."""


class ApplicationClosedError(ConflictError):
    """The application is no longer open for this change."""

    code = "application-closed"


class TooManyOpenError(Exception):
    """The owner already has as many open applications as one address may have (or an open
    first-card application, for another first card). Only the portal raises it, and answers
    with a page: it is no API problem."""

    def __init__(self, message: str, *, first_card: bool) -> None:
        super().__init__(message)
        self.first_card = first_card


def owner_hash(key: bytes, address: str) -> str:
    """Who an application belongs to: a keyed hash of the proved address (kept after the
    retention timer clears the address itself)."""
    return keyed_hash(key, "owner", address.strip().lower())


def new_reference() -> str:
    chars = "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
    return f"FM-{chars[0:4]}-{chars[4:8]}-{chars[8:12]}"


def normalise_reference(reference: str) -> str:
    return reference.strip().upper()


def portal_office(session: Session, code: str) -> OfficeRecord:
    """The office that reviews online applications: ``portal_office``, else the first."""
    query = select(OfficeRecord).order_by(col(OfficeRecord.id))
    if code:
        query = query.where(OfficeRecord.code == code)
    office = session.exec(query).first()
    if office is None:
        raise NotFoundError("no office reviews online applications (FMCARD_PORTAL_OFFICE)")
    return office


@dataclass(frozen=True, slots=True)
class Upload:
    kind: str
    image: CheckedImage


def submit(
    session: Session,
    *,
    owner: str,
    kind: ApplicationKind,
    form: BaseModel | None,
    email: str,
    phone: str | None,
    language: str,
    office_id: int,
    person_id: int | None = None,
    uploads: Sequence[Upload] = (),
    max_open: int | None = None,
    at: datetime,
) -> ApplicationRecord:
    """Store a new application (SUBMITTED) with its re-encoded files, audited.

    With ``max_open``, refuse (:class:`TooManyOpenError`, nothing stored) when the owner
    already has that many open applications, or an open first-card application and asks for
    another: one proved address cannot fill the review queue. A lost phone is never refused
    (its cards are suspended with it). The count is taken under a lock on the owner
    (:func:`lock_key`), in the transaction that inserts, so parallel submits queue behind one
    another and cannot pass the limit together."""
    if max_open is not None and kind is not ApplicationKind.LOST_PHONE:
        _check_open(session, owner, kind, max_open)
    record = ApplicationRecord(
        reference=new_reference(),
        secret_hash=owner,
        kind=kind.value,
        state=ApplicationState.SUBMITTED.value,
        office_id=office_id,
        language=language,
        email=email,
        phone=phone,
        form=form.model_dump_json() if form is not None else None,
        person_id=person_id,
        created_at=at,
        submitted_at=at,
        updated_at=at,
    )
    session.add(record)
    session.flush()
    for upload in uploads:
        session.add(
            ApplicationFileRecord(
                application_id=record.id or 0,
                kind=upload.kind,
                media_type=upload.image.media_type,
                data=upload.image.data,
                created_at=at,
            )
        )
    audit.append(
        session,
        actor=None,
        action=f"application.submit.{kind.value}",
        record_type="application",
        record_id=record.reference,
        after=audit.record_values(record),
        at=at,
    )
    return record


def _check_open(session: Session, owner: str, kind: ApplicationKind, max_open: int) -> None:
    lock_key(session, "application-owner", owner)
    kinds = session.exec(
        select(ApplicationRecord.kind).where(
            ApplicationRecord.secret_hash == owner,
            col(ApplicationRecord.state).in_([state.value for state in OPEN_STATES]),
        )
    ).all()
    if kind is ApplicationKind.FIRST_CARD and ApplicationKind.FIRST_CARD.value in kinds:
        raise TooManyOpenError("an open first-card application already exists", first_card=True)
    if len(kinds) >= max_open:
        raise TooManyOpenError(f"at most {max_open} open applications", first_card=False)


def applications_of(session: Session, owner: str) -> list[ApplicationRecord]:
    return list(
        session.exec(
            select(ApplicationRecord)
            .where(ApplicationRecord.secret_hash == owner)
            .order_by(col(ApplicationRecord.submitted_at).desc(), col(ApplicationRecord.id).desc())
        ).all()
    )


def get_application(
    session: Session, owner: str, reference: str, *, for_update: bool = False
) -> ApplicationRecord:
    """The owner's application ``reference``; one query whether it is another's or none."""
    query = select(ApplicationRecord).where(
        ApplicationRecord.reference == normalise_reference(reference),
        ApplicationRecord.secret_hash == owner,
    )
    if for_update:
        query = query.with_for_update()
    record = session.exec(query).first()
    if record is None:
        raise ApplicationNotFoundError("no such application")
    return record


def _change(
    session: Session, record: ApplicationRecord, action: str, *, at: datetime
) -> ApplicationRecord:
    before = audit.record_values(record)
    record.updated_at = at
    session.add(record)
    audit.append(
        session,
        actor=None,
        action=action,
        record_type="application",
        record_id=record.reference,
        before=before,
        after=audit.record_values(record),
        at=at,
    )
    return record


def answer(
    session: Session, owner: str, reference: str, text: str, *, at: datetime
) -> ApplicationRecord:
    """The holder answers the officer's question: back to the queue (SUBMITTED)."""
    record = get_application(session, owner, reference, for_update=True)
    if record.state != ApplicationState.INFO_NEEDED.value:
        raise ApplicationClosedError("this application asks no question")
    record.answer = text
    record.state = ApplicationState.SUBMITTED.value
    return _change(session, record, "application.answer", at=at)


def withdraw(session: Session, owner: str, reference: str, *, at: datetime) -> ApplicationRecord:
    record = get_application(session, owner, reference, for_update=True)
    if record.state not in {state.value for state in OPEN_STATES}:
        raise ApplicationClosedError("only an open application can be withdrawn")
    record.state = ApplicationState.WITHDRAWN.value
    record.decided_at = at
    return _change(session, record, "application.withdraw", at=at)


def person_of_address(session: Session, address: str) -> PersonRecord | None:
    """The card holder registered with ``address`` (the oldest, if several share it).

    Called only for a signed-in holder, who proved the address: it tells them nothing about
    anyone else."""
    return session.exec(
        select(PersonRecord)
        .where(func.lower(PersonRecord.email) == address.strip().lower())
        .order_by(col(PersonRecord.id))
    ).first()


def open_application_of(
    session: Session, owner: str, person_id: int, kind: ApplicationKind
) -> ApplicationRecord | None:
    return session.exec(
        select(ApplicationRecord).where(
            ApplicationRecord.secret_hash == owner,
            ApplicationRecord.person_id == person_id,
            ApplicationRecord.kind == kind.value,
            col(ApplicationRecord.state).in_([state.value for state in OPEN_STATES]),
        )
    ).first()


def suspend_phone_cards(session: Session, person: PersonRecord, *, at: datetime) -> int:
    """Suspend the person's active phone cards at once (the holder reported the phone lost);
    return how many. Through the card lifecycle, so counters see it on the next status list."""
    found = session.exec(
        select(CardRecord.id).where(
            CardRecord.person_id == person.id,
            CardRecord.kind == cards.PHONE,
            CardRecord.state == CardState.ACTIVE,
        )
    ).all()
    return cards.suspend_for_holder(session, [card_id for card_id in found if card_id], at=at)
