"""Holder links: an officer hands the holder a one-time link that opens the card on a phone.

The first visit registers the device: it gets a long-lived secret cookie whose hash is stored
with the link, and from then on only that device sees the card (a forwarded link shows a
stranger nothing). An unregistered link expires after ``holder_link_hours``; a registered one
keeps showing the holder's card to its device for as long as the holder has a current card:

* a re-issue (a re-print at the desk, a new entitlement or portrait) supersedes the card with
  the person's next card of the same kind, and the link follows it, so the phone fetches its
  re-issued phone card without a new link (docs/FORMAT.md 11.6);
* when the printed card is revoked or expires but the phone card bound to the link's device
  key is current (a lost printed card), the link shows the phone card;
* when neither is current (the person's cards revoked, expired), the link says so.

Tokens and device secrets are stored only as SHA-256 hashes.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from cardissuer.errors import ConflictError
from cardissuer.models import CardRecord, CardState, PersonRecord
from cardissuer.services import audit
from cardissuer.services.access import Actor, require
from cardissuer.services.cards import PHONE, PRINTED, get_card
from cardissuer.wallet.models import HolderLinkRecord

VALID_STATES = frozenset({CardState.ACTIVE, CardState.SUSPENDED})
MAX_SUCCESSORS = 64
"""Re-issues a link follows in one visit (each visit moves the link to the card it found)."""


class Refusal(enum.StrEnum):
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    OTHER_DEVICE = "other_device"
    NO_LONGER_VALID = "no_longer_valid"


@dataclass(frozen=True)
class CreatedLink:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class Opened:
    """A link opened by its device: the card, its holder, and a new device secret if this
    visit registered the device."""

    link: HolderLinkRecord
    card: CardRecord
    person: PersonRecord
    new_device_secret: str | None


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def create(session: Session, actor: Actor, serial: str, *, at: datetime, hours: int) -> CreatedLink:
    """A new link for a current card; issuing officers only, audited."""
    card = get_card(session, actor, serial)
    require(actor, "card.issue", office_id=card.office_id)
    if card.state not in VALID_STATES or card.expires_at.astimezone(UTC) <= at:
        raise ConflictError(f"a {card.state.value} card cannot be given to its holder")
    token = secrets.token_urlsafe(32)
    record = HolderLinkRecord(
        card_id=card.id or 0,
        token_hash=token_hash(token),
        created_at=at,
        created_by=actor.officer_id,
        expires_at=at + timedelta(hours=hours),
    )
    session.add(record)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="holder_link.create",
        record_type="holder_link",
        record_id=str(record.id),
        after=audit.record_values(record),
        detail=f"card {card.serial}",
        at=at,
    )
    return CreatedLink(token=token, expires_at=record.expires_at)


def open_link(
    session: Session, token: str, device_secret: str | None, *, at: datetime
) -> Opened | Refusal:
    """The card behind ``token`` for this device, registering the device on first use."""
    link = session.exec(
        select(HolderLinkRecord).where(HolderLinkRecord.token_hash == token_hash(token))
    ).first()
    if link is None:
        return Refusal.UNKNOWN
    given = session.get(CardRecord, link.card_id)
    person = session.get(PersonRecord, given.person_id) if given else None
    if given is None or person is None:
        return Refusal.UNKNOWN
    card = _shown_card(session, link, given, at=at)
    if card is None:
        return Refusal.NO_LONGER_VALID
    if card.kind == PRINTED and card.id != link.card_id:
        link.card_id = card.id or 0  # kept when the caller commits: the next visit is direct
        session.add(link)
    if link.device_hash is not None:
        if device_secret and hmac.compare_digest(link.device_hash, token_hash(device_secret)):
            return Opened(link, card, person, None)
        return Refusal.OTHER_DEVICE
    if link.expires_at.astimezone(UTC) <= at:
        return Refusal.EXPIRED
    secret = secrets.token_urlsafe(32)
    # Only one device can win the registration, even if two open the link at once.
    claimed = session.execute(
        update(HolderLinkRecord)
        .where(col(HolderLinkRecord.id) == link.id, col(HolderLinkRecord.device_hash).is_(None))
        .values(device_hash=token_hash(secret), registered_at=at)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return Refusal.OTHER_DEVICE
    session.refresh(link)
    return Opened(link, card, person, secret)


def _current(card: CardRecord, at: datetime) -> bool:
    return card.state in VALID_STATES and card.expires_at.astimezone(UTC) > at


def _shown_card(
    session: Session, link: HolderLinkRecord, card: CardRecord, *, at: datetime
) -> CardRecord | None:
    """The card the link shows now (see the module docstring): the link's card or its latest
    successor of the same kind and person; else the current phone card of the link's device
    key; else none."""
    for _ in range(MAX_SUCCESSORS):
        if card.state is not CardState.SUPERSEDED or card.superseded_by is None:
            break
        successor = session.get(CardRecord, card.superseded_by)
        if successor is None or (successor.person_id, successor.kind) != (
            card.person_id,
            card.kind,
        ):
            break
        card = successor
    if _current(card, at):
        return card
    if link.device_jwk is None:
        return None
    phone = phone_card_of(session, card.person_id, link.device_jwk)
    return phone if phone is not None and _current(phone, at) else None


def phone_card_of(session: Session, person_id: int, device_jwk: str) -> CardRecord | None:
    """The person's newest active or suspended phone card bound to ``device_jwk`` (re-issues
    keep the key)."""
    return session.exec(
        select(CardRecord)
        .where(
            col(CardRecord.person_id) == person_id,
            col(CardRecord.kind) == PHONE,
            col(CardRecord.device_jwk) == device_jwk,
            col(CardRecord.state).in_(VALID_STATES),
        )
        .order_by(col(CardRecord.id).desc())
    ).first()
