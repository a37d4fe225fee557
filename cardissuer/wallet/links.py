"""Holder links: an officer hands the holder a one-time link that opens the card on a phone.

The first visit registers the device: it gets a long-lived secret cookie whose hash is stored
with the link, and from then on only that device sees the card (a forwarded link shows a
stranger nothing). An unregistered link expires after ``holder_link_hours``; a registered one
keeps showing the card to its device until the card is revoked, superseded or expires.
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
from cardissuer.services.cards import get_card
from cardissuer.wallet.models import HolderLinkRecord

VALID_STATES = frozenset({CardState.ACTIVE, CardState.SUSPENDED})


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
    card = session.get(CardRecord, link.card_id)
    person = session.get(PersonRecord, card.person_id) if card else None
    if card is None or person is None:
        return Refusal.UNKNOWN
    if card.state not in VALID_STATES or card.expires_at.astimezone(UTC) <= at:
        return Refusal.NO_LONGER_VALID
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
