"""Entitlements and the card life cycle: issue, re-issue, renew, suspend, reinstate, revoke.

Issuing signs the card with the active key and gives it a random status index, all inside one
transaction: if anything fails, no card exists and the index was never used (the index's
uniqueness is a database constraint, so racing issuances retry instead of sharing one). A
person has at most one current card; a new card supersedes the old one, which the status list
then shows as superseded. Issuance is idempotent: the same ``Idempotency-Key`` returns the same
card. Changing entitlements re-issues the card automatically, since the card shows them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cardissuer.errors import ConflictError, NotFoundError
from cardissuer.models import (
    CardRecord,
    CardState,
    GrantCreate,
    GrantRecord,
    PersonRecord,
    StatusListRecord,
)
from cardissuer.services import audit
from cardissuer.services.access import Actor, require
from cardissuer.services.registry import get_person
from keys.cards import encode_card
from keys.signer import Signer
from keys.status_list import CardStatus
from schemas import strictjson
from schemas.card import BirthDate, Card, Entitlement, StatusRef

SERIAL_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
STATE_STATUS = {
    CardState.ACTIVE: CardStatus.VALID,
    CardState.EXPIRED: CardStatus.VALID,  # expiry is in the card itself
    CardState.SUSPENDED: CardStatus.SUSPENDED,
    CardState.REVOKED: CardStatus.REVOKED,
    CardState.SUPERSEDED: CardStatus.SUPERSEDED,
}
CURRENT_STATES = (CardState.ACTIVE, CardState.SUSPENDED)


@dataclass(frozen=True, slots=True)
class IssuingContext:
    """What issuance needs besides the database: who signs, as which issuer, with what list."""

    signer: Signer
    issuer_id: str
    status_list_size: int
    validity: timedelta


# --- entitlements ---------------------------------------------------------------------------


def active_grants(session: Session, person: PersonRecord) -> list[GrantRecord]:
    return list(
        session.exec(
            select(GrantRecord)
            .where(GrantRecord.person_id == person.id, col(GrantRecord.withdrawn_at).is_(None))
            .order_by(col(GrantRecord.id))
        ).all()
    )


def grant(
    session: Session,
    actor: Actor,
    code: str,
    data: GrantCreate,
    *,
    at: datetime,
    catalogue: Sequence[str],
    context: IssuingContext | None,
) -> GrantRecord:
    """Grant a service; re-issues the current card (if any) so that it shows the change."""
    person = get_person(session, actor, code, permission="grant.change", for_update=True)
    if data.service not in catalogue:
        raise ConflictError(f"service {data.service!r} is not in the catalogue {list(catalogue)}")
    if data.valid_from and data.valid_until and data.valid_from >= data.valid_until:
        raise ConflictError("valid_until must be after valid_from")
    if any(g.service == data.service for g in active_grants(session, person)):
        raise ConflictError(f"the person already holds {data.service}; withdraw it first")
    record = GrantRecord(
        person_id=person.id or 0,
        service=data.service,
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        granted_at=at,
        granted_by=actor.officer_id,
    )
    session.add(record)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="grant.create",
        record_type="grant",
        record_id=str(record.id),
        after=audit.record_values(record),
        at=at,
    )
    _reissue_if_current(session, actor, person, at=at, context=context)
    return record


def withdraw(
    session: Session,
    actor: Actor,
    code: str,
    grant_id: int,
    *,
    at: datetime,
    context: IssuingContext | None,
) -> GrantRecord:
    person = get_person(session, actor, code, permission="grant.change", for_update=True)
    record = session.get(GrantRecord, grant_id)
    if record is None or record.person_id != person.id or record.withdrawn_at is not None:
        raise NotFoundError("no such active entitlement for this person")
    before = audit.record_values(record)
    record.withdrawn_at, record.withdrawn_by = at, actor.officer_id
    session.add(record)
    audit.append(
        session,
        actor=actor,
        action="grant.withdraw",
        record_type="grant",
        record_id=str(record.id),
        before=before,
        after=audit.record_values(record),
        at=at,
    )
    _reissue_if_current(session, actor, person, at=at, context=context)
    return record


# --- cards ----------------------------------------------------------------------------------


def issue(
    session: Session,
    actor: Actor,
    code: str,
    *,
    at: datetime,
    context: IssuingContext,
    idempotency_key: str | None = None,
    valid_days: int | None = None,
) -> CardRecord:
    """Issue (or re-issue, or renew) the person's card; supersede the current one."""
    if idempotency_key is not None:
        earlier = session.exec(
            select(CardRecord).where(CardRecord.idempotency_key == idempotency_key)
        ).first()
        if earlier is not None:
            person = session.get(PersonRecord, earlier.person_id)
            if person is None or person.code != code or earlier.issued_by != actor.officer_id:
                raise ConflictError("this Idempotency-Key was used for another request")
            return earlier
    person = get_person(session, actor, code, permission="card.issue", for_update=True)
    return _issue(
        session,
        actor,
        person,
        at=at,
        context=context,
        idempotency_key=idempotency_key,
        valid_days=valid_days,
    )


def _issue(
    session: Session,
    actor: Actor,
    person: PersonRecord,
    *,
    at: datetime,
    context: IssuingContext,
    idempotency_key: str | None,
    valid_days: int | None,
) -> CardRecord:
    grants = active_grants(session, person)
    if not grants:
        raise ConflictError("the person has no entitlement; grant at least one service first")
    validity = timedelta(days=valid_days) if valid_days else context.validity
    at = at.astimezone(UTC).replace(microsecond=0)
    current = _current_cards(session, person)
    for attempt in range(20):
        list_id = _open_list(session, context.status_list_size)
        index = secrets.randbelow(context.status_list_size)
        serial = "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(10))
        card = Card(
            issuer=context.issuer_id,
            code=person.code,
            serial=serial,
            issued_at=at,
            valid_from=at,
            expires_at=at + validity,
            family_name=person.family_name,
            given_names=person.given_names,
            native_name=person.native_name,
            chinese_name=person.chinese_name,
            nationality=person.nationality,
            birth_date=BirthDate.from_wire(person.birth_date),
            entitlements=tuple(Entitlement(g.service, g.valid_from, g.valid_until) for g in grants),
            status=StatusRef(list_id, index),
        )
        qr_text = encode_card(card, context.signer, portrait=person.portrait)
        record = CardRecord(
            serial=serial,
            person_id=person.id or 0,
            office_id=person.office_id,
            list_id=list_id,
            status_index=index,
            issued_at=at,
            valid_from=card.valid_from,
            expires_at=card.expires_at,
            kid=context.signer.kid,
            qr_text=qr_text,
            claims_digest=hashlib.sha256(strictjson.dumps(card.to_claims())).hexdigest(),
            issued_by=actor.officer_id,
            idempotency_key=idempotency_key,
            state_changed_at=at,
        )
        try:
            with session.begin_nested():  # a savepoint: an index collision retries only this
                session.add(record)
                session.flush()
            break
        except IntegrityError:
            if attempt == 19:
                raise
            continue
    for old in current:
        _set_state(
            session,
            actor,
            old,
            CardState.SUPERSEDED,
            at=at,
            detail="re-issued",
            superseded_by=record.id,
        )
    audit.append(
        session,
        actor=actor,
        action="card.issue",
        record_type="card",
        record_id=str(record.id),
        after=audit.record_values(record),
        at=at,
    )
    return record


def change_state(
    session: Session,
    actor: Actor,
    serial: str,
    target: CardState,
    *,
    at: datetime,
    reason: str = "",
) -> CardRecord:
    """Suspend, reinstate or revoke a card."""
    record = get_card(session, actor, serial, for_update=True)
    permission = {
        CardState.SUSPENDED: "card.suspend",
        CardState.ACTIVE: "card.reinstate",
        CardState.REVOKED: "card.revoke",
    }.get(target)
    if permission is None:
        raise ConflictError(f"a card cannot be set to {target.value} directly")
    require(actor, permission, office_id=record.office_id)
    allowed = {
        CardState.SUSPENDED: (CardState.ACTIVE,),
        CardState.ACTIVE: (CardState.SUSPENDED,),
        CardState.REVOKED: (CardState.ACTIVE, CardState.SUSPENDED),
    }[target]
    if record.state not in allowed:
        raise ConflictError(f"a {record.state.value} card cannot become {target.value}")
    _set_state(session, actor, record, target, at=at, detail=reason)
    return record


def get_card(
    session: Session, actor: Actor, serial: str, *, for_update: bool = False
) -> CardRecord:
    query = select(CardRecord).where(CardRecord.serial == serial.upper())
    if for_update:
        query = query.with_for_update()
    record = session.exec(query).first()
    if record is None:
        raise NotFoundError("no card with that serial")
    require(actor, "person.read", office_id=record.office_id)
    return record


def cards_of(session: Session, person: PersonRecord) -> list[CardRecord]:
    return list(
        session.exec(
            select(CardRecord).where(CardRecord.person_id == person.id).order_by(col(CardRecord.id))
        ).all()
    )


def expire_cards(session: Session, *, at: datetime) -> int:
    """Mark cards past their expiry as expired (a maintenance task; the card says it too)."""
    records = session.exec(
        select(CardRecord).where(
            col(CardRecord.state).in_(CURRENT_STATES), CardRecord.expires_at <= at
        )
    ).all()
    for record in records:
        _set_state(session, None, record, CardState.EXPIRED, at=at, detail="expired")
    return len(records)


def _current_cards(session: Session, person: PersonRecord) -> list[CardRecord]:
    return list(
        session.exec(
            select(CardRecord).where(
                CardRecord.person_id == person.id, col(CardRecord.state).in_(CURRENT_STATES)
            )
        ).all()
    )


def _reissue_if_current(
    session: Session,
    actor: Actor,
    person: PersonRecord,
    *,
    at: datetime,
    context: IssuingContext | None,
) -> None:
    current = [c for c in _current_cards(session, person) if c.state is CardState.ACTIVE]
    if current and context is not None and active_grants(session, person):
        _issue(
            session, actor, person, at=at, context=context, idempotency_key=None, valid_days=None
        )


def _set_state(
    session: Session,
    actor: Actor | None,
    record: CardRecord,
    state: CardState,
    *,
    at: datetime,
    detail: str,
    superseded_by: int | None = None,
) -> None:
    before = audit.record_values(record)
    record.state, record.state_changed_at = state, at
    if state is CardState.REVOKED:
        record.revoked_reason = detail[:256] or None
    if superseded_by is not None:
        record.superseded_by = superseded_by
    session.add(record)
    status_list = session.get(StatusListRecord, record.list_id)
    if status_list is not None:
        status_list.changed_at = at
        session.add(status_list)
    audit.append(
        session,
        actor=actor,
        action=f"card.{state.value}",
        record_type="card",
        record_id=str(record.id),
        before=before,
        after=audit.record_values(record),
        detail=detail,
        at=at,
    )


def _open_list(session: Session, size: int) -> str:
    """The newest status list with room (at most half full, so random picks rarely collide)."""
    newest = session.exec(
        select(StatusListRecord).order_by(col(StatusListRecord.created_at).desc())
    ).first()
    if newest is not None:
        used = session.exec(
            select(func.count()).select_from(CardRecord).where(CardRecord.list_id == newest.list_id)
        ).one()
        if used < newest.size // 2:
            return newest.list_id
    count = session.exec(select(func.count()).select_from(StatusListRecord)).one()
    list_id = str(count + 1)
    try:
        with session.begin_nested():
            session.add(StatusListRecord(list_id=list_id, size=size))
            session.flush()
    except IntegrityError:
        pass  # another transaction opened it first
    return list_id
