"""The review queue: an office's applications, oldest first, a page at a time.

Pages follow a keyset on (submitted_at, id), the order of ``ix_application_queue``
(office, state, submitted_at): a page deep in the queue costs what the first one does, and an
application decided meanwhile never shifts the next page. The cursor is the last row's
submission time (in microseconds) and id; a malformed one starts from the first page.

The nationality filter reads the form's ``person.nationality`` (first cards) or the card
holder's (every other kind): the queue of one office is a few hundred open applications,
which the index narrows before the JSON is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import JSON, ColumnElement, String, and_, cast, func, or_
from sqlmodel import Session, col, select

from cardissuer.models import PersonRecord
from cardissuer.portal.decisions import sees_every_office
from cardissuer.portal.models import (
    OPEN_STATES,
    ApplicationKind,
    ApplicationRecord,
    ApplicationState,
)
from cardissuer.services.access import Actor, require

PAGE_SIZE = 20
_CURSOR = re.compile(r"(\d{1,18})-(\d{1,12})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What the officer narrowed the queue to (``None``: any; ``state`` ``None``: open)."""

    kind: ApplicationKind | None = None
    state: ApplicationState | None = None
    nationality: str | None = None

    @classmethod
    def parse(cls, kind: str, state: str, nationality: str) -> QueueFilter:
        """From a query string: values that are not a kind, a state or three letters are
        ignored (an edited link shows the whole queue rather than an error)."""
        nationality = nationality.strip().upper()
        return cls(
            kind=ApplicationKind(kind) if kind in set(ApplicationKind) else None,
            state=ApplicationState(state) if state in set(ApplicationState) else None,
            nationality=nationality if re.fullmatch(r"[A-Z]{3}", nationality) else None,
        )


@dataclass(frozen=True, slots=True)
class QueueRow:
    application: ApplicationRecord
    nationality: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None


def _nationality(session: Session) -> ColumnElement[str]:
    """The applicant's nationality: the first card's form, else the card holder's."""
    form = col(ApplicationRecord.form)
    if session.get_bind().dialect.name == "postgresql":
        typed = func.json_extract_path_text(cast(form, JSON), "person", "nationality")
    else:
        typed = func.json_extract(form, "$.person.nationality")
    return func.coalesce(cast(typed, String), col(PersonRecord.nationality))


def _name(session: Session) -> ColumnElement[str]:
    form = col(ApplicationRecord.form)
    if session.get_bind().dialect.name == "postgresql":
        family = func.json_extract_path_text(cast(form, JSON), "person", "family_name")
        given = func.json_extract_path_text(cast(form, JSON), "person", "given_names")
    else:
        family = func.json_extract(form, "$.person.family_name")
        given = func.json_extract(form, "$.person.given_names")
    typed = func.coalesce(cast(family, String), "") + " " + func.coalesce(cast(given, String), "")
    held = col(PersonRecord.family_name) + " " + col(PersonRecord.given_names)
    return func.coalesce(held, typed)


def queue(
    session: Session,
    actor: Actor,
    choice: QueueFilter,
    *,
    after: str | None = None,
    limit: int = PAGE_SIZE,
) -> QueuePage:
    """A page of the officer's office's applications (every office's for auditors), oldest
    first: the open ones unless ``choice.state`` names another state."""
    require(actor, "application.read")
    nationality = _nationality(session)
    query = (
        select(ApplicationRecord, nationality, _name(session))
        .outerjoin(PersonRecord, col(PersonRecord.id) == col(ApplicationRecord.person_id))
        .order_by(col(ApplicationRecord.submitted_at), col(ApplicationRecord.id))
        .limit(limit + 1)
    )
    if not sees_every_office(actor):
        query = query.where(ApplicationRecord.office_id == actor.office_id)
    states = (choice.state,) if choice.state else OPEN_STATES
    query = query.where(col(ApplicationRecord.state).in_([s.value for s in states]))
    if choice.kind is not None:
        query = query.where(ApplicationRecord.kind == choice.kind.value)
    if choice.nationality is not None:
        query = query.where(nationality == choice.nationality)
    position = _decode(after)
    if position is not None:
        moment, last_id = position
        query = query.where(
            or_(
                col(ApplicationRecord.submitted_at) > moment,
                and_(
                    col(ApplicationRecord.submitted_at) == moment,
                    col(ApplicationRecord.id) > last_id,
                ),
            )
        )
    found = session.exec(query).all()
    rows = [QueueRow(record, nat, (name or "").strip() or None) for record, nat, name in found]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1].application
        next_cursor = _encode(last)
    return QueuePage(rows, next_cursor)


def _encode(record: ApplicationRecord) -> str:
    moment = record.submitted_at
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return f"{(moment - _EPOCH) // timedelta(microseconds=1)}-{record.id}"


def _decode(cursor: str | None) -> tuple[datetime, int] | None:
    match = _CURSOR.fullmatch(cursor or "")
    if match is None:
        return None
    return _EPOCH + timedelta(microseconds=int(match.group(1))), int(match.group(2))


def age_days(submitted_at: datetime, *, at: datetime) -> int:
    """Whole days the application has waited (0 on the day it came)."""
    if submitted_at.tzinfo is None:
        submitted_at = submitted_at.replace(tzinfo=UTC)
    return max(0, (at - submitted_at).days)
