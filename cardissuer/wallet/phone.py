"""The holder's phone: a device key registered through the holder link, and its phone card.

The holder page (:mod:`cardissuer.web.holder`) makes a P-256 key with WebCrypto
(``extractable: false``) on the device the link was opened on and sends its public JWK here.
The issuer then signs the phone card bound to that key at once (``docs/FORMAT.md`` section
11): the officer who handed over the link already decided that this person gets a card on
this device, so no second decision is asked for. The phone card carries the person's current
entitlements and ends when the printed card of the link does.

Rules for one link:

* **One key per link.** The first key registered is kept with the link; sending the same key
  again returns the same phone card (a page that lost the answer retries safely); another
  key is refused (409 ``device-key-registered``). A holder whose browser lost its key (site
  data cleared, a new phone) asks the officer for a new link, whose key then supersedes the
  previous phone card.
* **Bounded.** Every registration request counts against the link
  (:data:`MAX_DEVICE_KEY_TRIES`), whatever its outcome, in a transaction of its own; beyond
  that the link answers 429 ``rate-limited``. A link signs at most one phone card.
* **In the officer's name.** The card is issued as by the officer who created the link (they
  had ``card.issue`` for this person), so the card's ``issued_by`` and the audit entries name
  them; the audit entry ``holder_link.device_key`` records the link's id and the card's
  serial, never a name, a code or the key.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import update
from sqlmodel import Session, col

from cardissuer.errors import ConflictError, IssuerError, NotFoundError, RateLimitedError
from cardissuer.models import CardRecord, OfficerRecord
from cardissuer.services import audit, blobs
from cardissuer.services.access import Actor
from cardissuer.services.cards import (
    DeviceKeyError,
    IssuingContext,
    issue_phone_card,
)
from cardissuer.wallet.links import Opened, phone_card_of
from cardissuer.wallet.models import HolderLinkRecord
from keys.errors import UnsupportedKeyError
from keys.phone import PhoneCard, device_public_key
from schemas import strictjson
from schemas.disclosure import pack_disclosures

MAX_DEVICE_KEY_TRIES = 10
"""Registration requests one link may make: a page retries a lost answer a few times; more
is a script, not a holder. (A link signs at most one phone card whatever the count.)"""

JWK_MEMBERS = ("crv", "kty", "x", "y")


class DeviceKeyRegisteredError(ConflictError):
    """The link already registered another device key: one key per link."""

    code = "device-key-registered"


class LinkOfficerInactiveError(IssuerError):
    """The officer who made the link has been disabled since it was made: the link issues no
    phone card (the holder asks the desk for a new link, as for an expired one)."""

    code = "holder-link-refused"
    http_status = 410
    problem_extra: ClassVar[dict[str, str]] = {"reason": "officer_inactive"}


def count_try(session: Session, link: HolderLinkRecord) -> None:
    """Count one registration request of ``link``; :class:`RateLimitedError` past the limit.

    The caller commits this before doing anything else, so a refused request still counts."""
    counted = session.execute(
        update(HolderLinkRecord)
        .where(
            col(HolderLinkRecord.id) == link.id,
            col(HolderLinkRecord.device_key_tries) < MAX_DEVICE_KEY_TRIES,
        )
        .values(device_key_tries=HolderLinkRecord.device_key_tries + 1)
    )
    if getattr(counted, "rowcount", 0) != 1:
        raise RateLimitedError(
            "this link has made too many device-key requests; ask the issuing officer for a new "
            "link",
            retry_after=24 * 3600,
        )


def compact_jwk(device_jwk: object) -> str:
    """The public P-256 JWK as the compact JSON stored with the link and the card;
    :class:`DeviceKeyError` for anything else (a private ``d``, another curve, not a point)."""
    if not isinstance(device_jwk, dict) or "d" in device_jwk:
        raise DeviceKeyError("the device key must be a public JWK object")
    try:
        device_public_key(device_jwk)
    except (UnsupportedKeyError, KeyError, ValueError, TypeError):
        raise DeviceKeyError(
            "the device key is not a public P-256 key (kty EC, crv P-256, on the curve)"
        ) from None
    return strictjson.dumps({name: device_jwk[name] for name in JWK_MEMBERS}).decode()


def register_device_key(
    session: Session,
    opened: Opened,
    device_jwk: object,
    *,
    at: datetime,
    context: IssuingContext,
) -> tuple[CardRecord, bool]:
    """Bind ``device_jwk`` to the link and issue its phone card; return the card and whether
    this request issued it (``False``: the same key again, the card issued before)."""
    jwk = compact_jwk(device_jwk)
    members = {name: str(device_jwk[name]) for name in JWK_MEMBERS}  # type: ignore[index]
    link = opened.link
    if link.device_jwk is not None:
        if link.device_jwk != jwk:
            raise DeviceKeyRegisteredError(
                "this link has already registered another device key; ask the issuing officer "
                "for a new link"
            )
        return current_phone_card(session, opened), False
    # The phone card is issued on the authority of the officer who made the link; a link
    # whose officer has since been disabled (or removed) issues nothing, as an expired one.
    officer = session.get(OfficerRecord, link.created_by)
    if officer is None or officer.id is None or not officer.active:
        raise LinkOfficerInactiveError(
            "the officer who made this link can no longer issue cards; ask the desk for a new link"
        )
    # Two racing requests of one page: only one binds the link.
    claimed = session.execute(
        update(HolderLinkRecord)
        .where(col(HolderLinkRecord.id) == link.id, col(HolderLinkRecord.device_jwk).is_(None))
        .values(device_jwk=jwk)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise DeviceKeyRegisteredError("this link has just registered a device key")
    actor = Actor(officer.id, officer.office_id, officer.role, officer.username)
    record = issue_phone_card(
        session,
        actor,
        opened.person.code,
        device_jwk=members,
        at=at,
        context=context,
        valid_until=opened.card.expires_at,
    )
    audit.append(
        session,
        actor=None,
        action="holder_link.device_key",
        record_type="holder_link",
        record_id=str(link.id),
        detail=f"phone card {record.serial}",
        at=at,
    )
    return record, True


def current_phone_card(session: Session, opened: Opened) -> CardRecord:
    """The person's current phone card bound to the link's key (re-issues keep the key)."""
    if opened.link.device_jwk is None:
        raise NotFoundError("this link has registered no device key yet")
    record = phone_card_of(session, opened.person.id or 0, opened.link.device_jwk)
    if record is None:
        raise NotFoundError("the phone card of this device is no longer current")
    return record


def phone_card_document(
    session: Session, record: CardRecord, *, services: tuple[str, ...], at: datetime
) -> dict[str, Any]:
    """The JSON the holder's phone stores: the card (JWS parts), for each counter type the
    disclosures part it shows there, what those disclose, the card's dates and the server's
    time (for the phone's clock check).

    The issuer packs each profile's disclosures (raw DEFLATE with the D1 dictionary,
    ``docs/FORMAT.md`` 11.3) because browsers cannot deflate with a preset dictionary; the
    parts never change for a card, and the phone signs over them as carried."""
    card = PhoneCard.from_text(blobs.qr_text_of(session, record.id))
    document = card.to_json()
    held = [d.label.removeprefix("en.") for d in card.disclosures if d.label.startswith("en.")]
    counters = [service for service in services if service in held]
    counters += [service for service in held if service not in counters]
    document["counters"] = [
        {
            "service": service,
            "disclosures": _b64(pack_disclosures(card.profile(service))),
            "labels": sorted(d.label for d in card.profile(service)),
        }
        for service in counters
    ]
    document["serial"] = record.serial
    document["state"] = record.state.value
    document["expires_at"] = int(_utc(record.expires_at).timestamp())
    document["fetched_at"] = int(at.timestamp())
    return document


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
