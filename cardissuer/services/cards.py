"""Entitlements and the card life cycle: issue, re-issue, renew, suspend, reinstate, revoke.

Issuing signs the card with the active key and gives it a random status index, all inside one
transaction: if anything fails, no card exists and the index was never used (the index's
uniqueness is a database constraint, so racing issuances retry instead of sharing one). A
person has at most one current card; a new card supersedes the old one, which the status list
then shows as superseded. Issuance is idempotent: the same ``Idempotency-Key`` returns the same
card. Changing entitlements re-issues the card automatically, since the card shows them; a
suspended card is replaced by a suspended card (a change of data never lifts a suspension,
and neither does a re-issue, which a suspended card refuses).

Locks are always taken in one order, so that PostgreSQL transactions never wait for each other
in a circle: the person's row, then new status lists and cards (whose unique keys make racing
inserts wait), then the person's existing cards, then the audit chain's head, which is held to
the commit. So an operation that re-issues a card writes its own audit entry after the
re-issue, never before.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cardissuer.errors import (
    CardInputError,
    ConflictError,
    IssuerError,
    NotFoundError,
    PhoneCardNotPrintableError,
)
from cardissuer.models import (
    CardRecord,
    CardState,
    GrantCreate,
    GrantRecord,
    PersonRecord,
    StatusListRecord,
)
from cardissuer.portrait import MAX_LIVE_TEXT, fit_portrait
from cardissuer.services import (
    audit,
    blobs,
    statuses,  # noqa: F401 - writes the status journal
)
from cardissuer.services.access import Actor, RecordHiddenError, allowed, require
from cardissuer.services.registry import get_person, person_values
from keys.cards import encode_card
from keys.errors import UnsupportedKeyError
from keys.phone import PhoneCard, device_public_key, largest_presentation, sign_phone_card
from keys.signer import Signer
from schemas import strictjson
from schemas.card import BirthDate, Card, Entitlement, StatusRef

SERIAL_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CURRENT_STATES = (CardState.ACTIVE, CardState.SUSPENDED)
PRINTED = "printed"
PHONE = "phone"
"""Card kinds (``CardRecord.kind``): a person has at most one current card of each, and a
new card supersedes only the current card of its own kind (docs/FORMAT.md 11.6)."""
_OFFICER_TRANSITIONS = (CardState.REVOKED, CardState.SUSPENDED, CardState.ACTIVE)
"""Transitions whose detail is an officer's free text (kept in the card, not the audit log)."""
_SERIAL = re.compile(r"[0-9A-Z]{4,16}")


class UnknownServiceError(IssuerError):
    """The service is not in the issuer's catalogue."""

    code = "unknown-service"
    http_status = 422


class AlreadyGrantedError(ConflictError):
    code = "already-granted"


class NoEntitlementError(ConflictError):
    """A card needs at least one entitlement."""

    code = "no-entitlement"


class InvalidTransitionError(ConflictError):
    """The card's state does not allow this change (e.g. reinstating a revoked card)."""

    code = "invalid-transition"


class CardSuspendedError(ConflictError):
    """The current card is suspended: reinstate or revoke it before issuing another."""

    code = "card-suspended"


class DuplicateInBatchError(ConflictError):
    """A batch names a person twice: the second card would supersede the first at once."""

    code = "duplicate-in-batch"


class StatusListFullError(ConflictError):
    """The open status list has no room for the batch's random indexes."""

    code = "status-list-full"


class ReasonRequiredError(IssuerError):
    """Revoking is for good: the officer must say why (kept with the card, not in the log)."""

    code = "reason-required"
    http_status = 422


class DeviceKeyError(CardInputError):
    """The device key a phone registered is not a public P-256 JWK."""

    code = "invalid-device-key"
    http_status = 422


class IdempotencyKeyReusedError(ConflictError):
    """The ``Idempotency-Key`` was used for another person or by another officer."""

    code = "idempotency-key-reused"


@dataclass(frozen=True, slots=True)
class IssuingContext:
    """What issuance needs besides the database: who signs, as which issuer, with what list."""

    signer: Signer
    issuer_id: str
    status_list_size: int
    validity: timedelta


# --- entitlements ---------------------------------------------------------------------------


def require_printable(record: CardRecord) -> CardRecord:
    """Return ``record`` if it is a printed card; a phone card has no printable, wallet or
    plain-QR form (without its device's proof every counter refuses it)."""
    if record.kind == PHONE:
        raise PhoneCardNotPrintableError(
            f"card {record.serial} is a phone card: it is shown live from the holder's phone "
            "and has no printed, wallet or QR image form"
        )
    return record


def active_grants(session: Session, person: PersonRecord) -> list[GrantRecord]:
    return active_grants_of(session, [person.id or 0])[person.id or 0]


def active_grants_of(session: Session, person_ids: Sequence[int]) -> dict[int, list[GrantRecord]]:
    """The entitlements not withdrawn of each of ``person_ids``, in grant order, one query."""
    return _rows_of_persons(
        session, GrantRecord, person_ids, col(GrantRecord.withdrawn_at).is_(None)
    )


def current_cards_of(
    session: Session, person_ids: Sequence[int], kind: str | None = PRINTED
) -> dict[int, list[CardRecord]]:
    """The current (active or suspended) cards of ``kind`` (printed unless told; ``None``:
    both kinds) of each of ``person_ids``, one query."""
    condition: ColumnElement[bool] = col(CardRecord.state).in_(CURRENT_STATES)
    if kind is not None:
        condition = condition & (col(CardRecord.kind) == kind)
    return _rows_of_persons(session, CardRecord, person_ids, condition)


_Owned = TypeVar("_Owned", GrantRecord, CardRecord)


def _rows_of_persons(
    session: Session,
    model: type[_Owned],
    person_ids: Sequence[int],
    condition: ColumnElement[bool],
) -> dict[int, list[_Owned]]:
    """``model``'s rows meeting ``condition`` of each of ``person_ids``, in id order."""
    rows: dict[int, list[_Owned]] = {person_id: [] for person_id in person_ids}
    if person_ids:
        for record in session.exec(
            select(model)
            .where(col(model.person_id).in_(person_ids), condition)
            .order_by(col(model.id))
        ).all():
            rows[record.person_id].append(record)
    return rows


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
        raise UnknownServiceError(
            f"service {data.service!r} is not in the catalogue {list(catalogue)}"
        )
    # The card's own rules for a window (time zone, 2000-2100, order): a grant that could
    # never be put on a card is refused now, not at the next issuance.
    window = Entitlement(data.service, data.valid_from, data.valid_until)
    if any(g.service == data.service for g in active_grants(session, person)):
        raise AlreadyGrantedError(f"the person already holds {data.service}; withdraw it first")
    record = GrantRecord(
        person_id=person.id or 0,
        service=data.service,
        valid_from=window.valid_from,
        valid_until=window.valid_until,
        granted_at=at,
        granted_by=actor.officer_id,
    )
    session.add(record)
    session.flush()
    # Re-issue first, audit after: see "Locks" in the module's docstring.
    reissue_if_current(session, actor, person, at=at, context=context)
    audit.append(
        session,
        actor=actor,
        action="grant.create",
        record_type="grant",
        record_id=str(record.id),
        after=audit.record_values(record),
        at=at,
    )
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
    """Withdraw a service; re-issues the current card without it.

    The last service cannot be withdrawn while the person holds a current card (the card
    would show no service, yet stay valid): a supervisor revokes the card first."""
    person = get_person(session, actor, code, permission="grant.change", for_update=True)
    record = session.get(GrantRecord, grant_id) if 0 < grant_id < 2**31 else None
    if record is None or record.person_id != person.id or record.withdrawn_at is not None:
        raise NotFoundError("no such active entitlement for this person")
    remaining = [g for g in active_grants(session, person) if g.id != record.id]
    if not remaining and _current_cards(session, person):
        raise NoEntitlementError(
            "this is the last service on the person's current card: revoke the card first"
        )
    before = audit.record_values(record)
    record.withdrawn_at, record.withdrawn_by = at, actor.officer_id
    session.add(record)
    reissue_if_current(session, actor, person, at=at, context=context)
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
    """Issue (or re-issue, or renew) the person's card; supersede the current one.

    The person's row is locked first and the ``idempotency_key`` looked up after: a retry
    that raced the original waits for it and then returns its card."""
    person = get_person(session, actor, code, permission="card.issue", for_update=True)
    earlier = _retried(
        session, actor, person, idempotency_key, context, valid_days=valid_days, device_jwk=None
    )
    if earlier is not None:
        return earlier
    current = _current_cards(session, person)
    if any(card.state is CardState.SUSPENDED for card in current):
        raise CardSuspendedError(
            "the person's current card is suspended: reinstate or revoke it first"
        )
    return _issue(
        session,
        actor,
        person,
        at=at,
        context=context,
        idempotency_key=idempotency_key,
        valid_days=valid_days,
        current=current,
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
    state: CardState = CardState.ACTIVE,
    current: list[CardRecord] | None = None,
    device_jwk: str | None = None,
    valid_until: datetime | None = None,
) -> CardRecord:
    """Sign and store a new card, superseding ``current`` (the current cards of its kind): a
    printed card, or with ``device_jwk`` (compact JSON) a phone card bound to that key.
    ``valid_until`` sets the expiry itself (instead of a validity from ``at``)."""
    kind = PRINTED if device_jwk is None else PHONE
    grants = active_grants(session, person)
    if not grants:
        raise NoEntitlementError("the person has no entitlement; grant at least one service first")
    validity = timedelta(days=valid_days) if valid_days else context.validity
    at = at.astimezone(UTC).replace(microsecond=0)
    if valid_until is not None:
        validity = valid_until.astimezone(UTC).replace(microsecond=0) - at
    if current is None:
        current = _current_cards(session, person, kind)
    portrait = blobs.portrait_of(session, person.id)
    for attempt in range(20):
        list_id, list_size = open_list(session, context.status_list_size)
        index = secrets.randbelow(list_size)  # the list's own size: the setting may change
        card, qr_text = sign_card(
            person,
            grants,
            context,
            at=at,
            validity=validity,
            status=StatusRef(list_id, index),
            device_jwk=device_jwk,
            portrait=portrait,
        )
        record = CardRecord(
            **card_row(
                person,
                card,
                context=context,
                issued_by=actor.officer_id,
                idempotency_key=idempotency_key,
                state=state,
            ),
            kind=kind,
            device_jwk=device_jwk,
        )
        try:
            with session.begin_nested():  # a savepoint: an index collision retries only this
                session.add(record)
                session.flush()
                assert record.id is not None  # noqa: S101 - flushed
                blobs.store_qr_texts(session, [(record.id, qr_text)])
            break
        except IntegrityError:
            if idempotency_key is not None and _card_with_key(session, idempotency_key):
                # The same key, at the same moment, for another person (their lock is not
                # ours): the other request won.
                raise IdempotencyKeyReusedError(
                    "this Idempotency-Key was used for another request"
                ) from None
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
        after=card_values(record, qr_text),
        detail=" ".join(
            part
            for part in (
                "" if state is CardState.ACTIVE else f"issued {state.value}",
                "phone card" if kind == PHONE else "",
            )
            if part
        ),
        at=at,
    )
    return record


def issue_phone_card(
    session: Session,
    actor: Actor,
    code: str,
    *,
    device_jwk: object,
    at: datetime,
    context: IssuingContext,
    idempotency_key: str | None = None,
    valid_days: int | None = None,
    valid_until: datetime | None = None,
) -> CardRecord:
    """Issue the person's phone card, bound to the public P-256 key ``device_jwk`` that the
    holder's phone made (WebCrypto, non-extractable) and registered; supersede the previous
    phone card (a new phone), never the printed card (docs/FORMAT.md 11.6).

    ``valid_until`` (instead of ``valid_days``) ends the card when another card does: the
    holder page binds a phone to the printed card it was given for, and no longer.

    The person is looked up (permission, office) before the key is read, so an officer who
    may not see the person gets the same 403/404 whatever key was sent."""
    person = get_person(session, actor, code, permission="card.issue", for_update=True)
    if not isinstance(device_jwk, dict):
        raise DeviceKeyError("the device key must be a JWK object")
    try:
        device_public_key(device_jwk)
    except UnsupportedKeyError:
        raise DeviceKeyError(
            "the device key is not a public P-256 key (kty EC, crv P-256, on the curve)"
        ) from None
    jwk = strictjson.dumps({name: device_jwk[name] for name in ("crv", "kty", "x", "y")})
    earlier = _retried(
        session,
        actor,
        person,
        idempotency_key,
        context,
        valid_days=valid_days,
        device_jwk=jwk.decode(),
    )
    if earlier is not None:
        return earlier
    every_kind = _current_cards(session, person, None)
    if any(card.state is CardState.SUSPENDED for card in every_kind):
        raise CardSuspendedError("a current card of the person is suspended: reinstate it first")
    return _issue(
        session,
        actor,
        person,
        at=at,
        context=context,
        idempotency_key=idempotency_key,
        valid_days=valid_days,
        current=[card for card in every_kind if card.kind == PHONE],
        device_jwk=jwk.decode(),
        valid_until=valid_until,
    )


def sign_card(
    person: PersonRecord,
    grants: Sequence[GrantRecord],
    context: IssuingContext,
    *,
    at: datetime,
    validity: timedelta,
    status: StatusRef,
    portrait: bytes | None,
    device_jwk: str | None = None,
) -> tuple[Card, str]:
    """A new card of ``person`` (a fresh serial, valid from ``at`` for ``validity``) and its
    signed QR text: the one definition of what a card shows, for one card or a batch. With
    ``device_jwk`` it is a phone card (:func:`keys.phone.sign_phone_card`) and the text is its
    stored form (every disclosure, no proof). ``portrait`` is the person's
    (:func:`cardissuer.services.blobs.portrait_of`): the caller reads it, once per batch."""
    card = Card(
        issuer=context.issuer_id,
        code=person.code,
        serial=new_serial(),
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
        status=status,
    )
    if device_jwk is not None:
        jwk = strictjson.loads(device_jwk)

        def sign_phone(portrait: bytes | None) -> PhoneCard:
            return sign_phone_card(card, context.signer, device_jwk=jwk, portrait=portrait)

        if portrait is None:
            return card, sign_phone(None).to_text()
        # Its largest presentation (the bank's, with the proof) within QR version 22 at L.
        _, phone = fit_portrait(
            portrait,
            sign_phone,
            chars=lambda phone: len(largest_presentation(phone)),
            limit=MAX_LIVE_TEXT,
        )
        return card, phone.to_text()
    if portrait is None:
        return card, encode_card(card, context.signer)
    _, text = fit_portrait(
        portrait, lambda portrait: encode_card(card, context.signer, portrait=portrait)
    )
    return card, text


def card_row(
    person: PersonRecord,
    card: Card,
    *,
    context: IssuingContext,
    issued_by: int,
    idempotency_key: str | None,
    state: CardState,
) -> dict[str, Any]:
    """The stored row of ``card``, as the values of its columns (its signed text goes to
    ``card_text``: :func:`cardissuer.services.blobs.store_qr_texts`)."""
    return {
        "serial": card.serial,
        "person_id": person.id or 0,
        "office_id": person.office_id,
        "state": state,
        "list_id": card.status.list_id,
        "status_index": card.status.index,
        "issued_at": card.issued_at,
        "valid_from": card.valid_from,
        "expires_at": card.expires_at,
        "kid": context.signer.kid,
        "claims_digest": hashlib.sha256(strictjson.dumps(card.to_claims())).hexdigest(),
        "issued_by": issued_by,
        "idempotency_key": idempotency_key,
        "superseded_by": None,
        "revoked_reason": None,
        "state_changed_at": card.issued_at,
    }


def card_values(record: CardRecord, qr_text: str) -> dict[str, Any]:
    """The audited values of a new card, with its text as when it was a column."""
    return {**audit.record_values(record), "qr_text": qr_text}


def new_serial() -> str:
    """Ten characters of the 32-symbol alphabet: 50 random bits, drawn at once (one system
    call instead of ten; under load each one lets another thread take the GIL)."""
    bits = secrets.randbits(50)
    return "".join(SERIAL_ALPHABET[(bits >> shift) & 31] for shift in range(45, -5, -5))


def is_retry_of(card: CardRecord, person_id: int, officer_id: int, validity: timedelta) -> bool:
    """Whether a request with ``card``'s idempotency key asks for that very card: the same
    person, by the same officer, with the same validity (a key sent again with other options
    is a mistake to report, not a retry to answer with the old card)."""
    return (
        card.person_id == person_id
        and card.issued_by == officer_id
        and card.expires_at - card.valid_from == validity
    )


def _retried(
    session: Session,
    actor: Actor,
    person: PersonRecord,
    idempotency_key: str | None,
    context: IssuingContext,
    *,
    valid_days: int | None,
    device_jwk: str | None,
) -> CardRecord | None:
    """The card an earlier request with ``idempotency_key`` made, if this is its retry (same
    person, officer, validity and kind: a printed card, or a phone card for the same device
    key); a key used for another request is refused."""
    if idempotency_key is None:
        return None
    earlier = _card_with_key(session, idempotency_key)
    if earlier is None:
        return None
    validity = timedelta(days=valid_days) if valid_days else context.validity
    if earlier.device_jwk != device_jwk or not is_retry_of(
        earlier, person.id or 0, actor.officer_id, validity
    ):
        raise IdempotencyKeyReusedError("this Idempotency-Key was used for another request")
    return earlier


def _card_with_key(session: Session, idempotency_key: str) -> CardRecord | None:
    return session.exec(
        select(CardRecord).where(CardRecord.idempotency_key == idempotency_key)
    ).first()


def change_state(
    session: Session,
    actor: Actor,
    serial: str,
    target: CardState,
    *,
    at: datetime,
    reason: str = "",
) -> CardRecord:
    """Suspend, reinstate or revoke a card, with a reason."""
    record = get_card(session, actor, serial)
    # Lock order: the person, then the card (a re-issue for the person holds the person's
    # lock while it supersedes this card), then the card again with its newest state.
    session.exec(
        select(PersonRecord.id).where(PersonRecord.id == record.person_id).with_for_update()
    ).one()
    record = session.exec(
        select(CardRecord)
        .where(CardRecord.id == record.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    permission = {
        CardState.SUSPENDED: "card.suspend",
        CardState.ACTIVE: "card.reinstate",
        CardState.REVOKED: "card.revoke",
    }.get(target)
    if permission is None:
        raise ConflictError(f"a card cannot be set to {target.value} directly")
    require(actor, permission, office_id=record.office_id)
    sources = {
        CardState.SUSPENDED: (CardState.ACTIVE,),
        CardState.ACTIVE: (CardState.SUSPENDED,),
        CardState.REVOKED: (CardState.ACTIVE, CardState.SUSPENDED),
    }[target]
    if record.state not in sources:
        raise InvalidTransitionError(f"a {record.state.value} card cannot become {target.value}")
    if target is CardState.REVOKED and not reason.strip():
        raise ReasonRequiredError("a reason is required to revoke a card")
    _set_state(session, actor, record, target, at=at, detail=reason)
    return record


def suspend_for_holder(session: Session, card_ids: Sequence[int], *, at: datetime) -> int:
    """Suspend the given active cards because their holder asked (a lost phone reported in
    the holder portal, signed in with the address of the person record); return how many.

    No officer acts, so no role is checked: the caller has bound the cards to the holder.
    Locks follow the module's order (the holders, then the cards, read again), and a card no
    longer active meanwhile is left alone."""
    if not card_ids:
        return 0
    person_ids = session.exec(
        select(CardRecord.person_id).where(col(CardRecord.id).in_(card_ids))
    ).all()
    session.exec(
        select(PersonRecord.id)
        .where(col(PersonRecord.id).in_(sorted(set(person_ids))))
        .order_by(col(PersonRecord.id))
        .with_for_update()
    ).all()
    records = session.exec(
        select(CardRecord)
        .where(col(CardRecord.id).in_(card_ids), CardRecord.state == CardState.ACTIVE)
        .order_by(col(CardRecord.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for record in records:
        _set_state(session, None, record, CardState.SUSPENDED, at=at, detail="holder report")
    return len(records)


def get_card(
    session: Session, actor: Actor, serial: str, *, for_update: bool = False
) -> CardRecord:
    """The card with ``serial``; another office's card is "not found" unless readable."""
    serial = serial.strip().upper()
    if not _SERIAL.fullmatch(serial):
        raise NotFoundError("no card with that serial")
    query = select(CardRecord).where(CardRecord.serial == serial)
    if for_update:
        query = query.with_for_update()
    record = session.exec(query).first()
    if record is None:
        raise NotFoundError("no card with that serial")
    if not allowed(actor, "person.read", office_id=record.office_id):
        raise RecordHiddenError("no card with that serial")
    return record


def cards_of(session: Session, person: PersonRecord) -> list[CardRecord]:
    return list(
        session.exec(
            select(CardRecord).where(CardRecord.person_id == person.id).order_by(col(CardRecord.id))
        ).all()
    )


def expire_cards(session: Session, *, at: datetime, limit: int | None = None) -> int:
    """Mark cards past their expiry as expired (at most ``limit``); return how many.

    The card says its own expiry; this keeps the registry's states in step with it. Locks
    follow the module's order: the holders' rows first (in id order), then the cards, read
    again under those locks, so that a card changed meanwhile (re-issued, revoked, or expired
    by another instance doing the same) is left alone and each card is expired, and audited,
    once."""
    due = (
        select(CardRecord.id, CardRecord.person_id)
        .where(col(CardRecord.state).in_(CURRENT_STATES), CardRecord.expires_at <= at)
        .order_by(col(CardRecord.id))
    )
    if limit is not None:
        due = due.limit(limit)
    found = session.exec(due).all()
    if not found:
        return 0
    session.exec(
        select(PersonRecord.id)
        .where(col(PersonRecord.id).in_(sorted({person_id for _, person_id in found})))
        .order_by(col(PersonRecord.id))
        .with_for_update()
    ).all()
    records = session.exec(
        select(CardRecord)
        .where(
            col(CardRecord.id).in_([card_id for card_id, _ in found]),
            col(CardRecord.state).in_(CURRENT_STATES),
            CardRecord.expires_at <= at,
        )
        .order_by(col(CardRecord.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for record in records:
        _set_state(session, None, record, CardState.EXPIRED, at=at, detail="expired")
    return len(records)


def _current_cards(
    session: Session, person: PersonRecord, kind: str | None = PRINTED
) -> list[CardRecord]:
    return current_cards_of(session, [person.id or 0], kind)[person.id or 0]


def reissue_if_current(
    session: Session,
    actor: Actor,
    person: PersonRecord,
    *,
    at: datetime,
    context: IssuingContext | None,
) -> None:
    """Re-issue the current cards (printed and phone, each for itself) so that they show
    changed data (entitlements, portrait); a suspended card is replaced by a suspended one."""
    if context is None or not active_grants(session, person):
        return
    for kind in (PRINTED, PHONE):
        current = _current_cards(session, person, kind)
        if not current:
            continue
        suspended = any(card.state is CardState.SUSPENDED for card in current)
        _issue(
            session,
            actor,
            person,
            at=at,
            context=context,
            idempotency_key=None,
            valid_days=None,
            state=CardState.SUSPENDED if suspended else CardState.ACTIVE,
            current=current,
            device_jwk=current[-1].device_jwk if kind == PHONE else None,
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
    audit.append(
        session,
        actor=actor,
        action=f"card.{state.value}",
        record_type="card",
        record_id=str(record.id),
        before=before,
        after=audit.record_values(record),
        # The officer's free-text reason stays in the card record (covered by the digests):
        # it may name people, and the audit log carries no personal data.
        detail="reason given" if detail and state in _OFFICER_TRANSITIONS else detail,
        at=at,
    )


_FILL_RECOUNT_EVERY = 500
_fill_counts: dict[tuple[int, str], list[int]] = {}
_fill_lock = threading.Lock()


def _list_fill(session: Session, list_id: str) -> int:
    """How many indexes of ``list_id`` are (at most) taken.

    Counting a list's cards costs more as it fills (26 ms at 500,000 cards on SQLite, 190 ms
    on PostgreSQL), so the count is taken once per 500 issuances per process and each
    issuance in between adds one. Failed issuances count too: the estimate only ever runs
    high, and a list is closed at half its size, far from the point where random indexes
    would collide often.
    """
    key = (id(session.get_bind()), list_id)
    with _fill_lock:
        entry = _fill_counts.get(key)
        if entry is not None and entry[1] < _FILL_RECOUNT_EVERY:
            entry[1] += 1
            return entry[0] + entry[1]
    used = session.exec(
        select(func.count()).select_from(CardRecord).where(CardRecord.list_id == list_id)
    ).one()
    with _fill_lock:
        _fill_counts[key] = [used, 1]
    return used + 1


def open_list(session: Session, size: int) -> tuple[str, int]:
    """The id and size of the newest status list with room (at most half full, so random
    picks rarely collide); a new list of ``size`` when it has none."""
    # Only the two columns: the row also holds the last signed list (up to a few hundred KB).
    newest = session.exec(
        select(StatusListRecord.list_id, StatusListRecord.size).order_by(
            col(StatusListRecord.created_at).desc()
        )
    ).first()
    if newest is not None and _list_fill(session, newest[0]) < newest[1] // 2:
        return newest[0], newest[1]
    count = session.exec(select(func.count()).select_from(StatusListRecord)).one()
    list_id = str(count + 1)
    try:
        with session.begin_nested():
            session.add(StatusListRecord(list_id=list_id, size=size))
            session.flush()
    except IntegrityError:  # another transaction opened it first
        opened = session.get(StatusListRecord, list_id)
        if opened is None:
            raise
        return list_id, opened.size
    return list_id, size


def note_fill(session: Session, list_id: str, extra: int) -> None:
    """Count ``extra`` more issuances into :func:`_list_fill`'s estimate (it counted one), so
    that a batch keeps the estimate high, as it must be."""
    if extra <= 0:
        return
    with _fill_lock:
        entry = _fill_counts.get((id(session.get_bind()), list_id))
        if entry is not None:
            entry[1] += extra


def set_portrait(
    session: Session,
    actor: Actor,
    code: str,
    portrait: bytes,
    *,
    at: datetime,
    context: IssuingContext | None,
) -> PersonRecord:
    """Give the person a new (already encoded) portrait and re-issue the current card, which
    shows it. The re-issue comes before the audit entry, which holds the chain's lock until
    the commit (see the lock order above)."""
    person = get_person(session, actor, code, permission="person.update", for_update=True)
    assert person.id is not None  # noqa: S101 - stored
    before = person_values(person, blobs.portrait_of(session, person.id))
    blobs.store_portrait(session, person.id, portrait)
    person.updated_at = at
    session.add(person)
    reissue_if_current(session, actor, person, at=at, context=context)
    audit.append(
        session,
        actor=actor,
        action="person.portrait",
        record_type="person",
        record_id=str(person.id),
        before=before,
        after=person_values(person, portrait),
        at=at,
    )
    return person
