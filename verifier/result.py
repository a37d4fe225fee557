"""The answer to one scan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.card import Card, Entitlement
from verifier.i18n import N_, pgettext
from verifier.reason import LANGUAGES, Level, Reason

STATUS_AFTER_CLOCK = "the status list is dated after this counter's time: check its clock"
"""The detail of a STATUS_UNKNOWN whose status list is dated ahead of the counter's clock."""

CARD_AFTER_CLOCK = "the card's issue time is after this counter's time: check its clock"
"""The detail of a NOT_YET_VALID whose card was issued after the counter's time (plus the
leeway): a card just issued, shown at a counter whose clock is behind."""

_CLOCK_MESSAGE = N_(
    "STATUS_UNKNOWN",
    "Card status cannot be confirmed: the revocation data is dated after this counter's "
    "clock. Set the station's date and time.",
)
"""STATUS_UNKNOWN's message when the counter's clock is the cause: the reason's own words
("Update the station") sent the clerk to sync, which changes nothing while the clock is
behind. The reason code stays STATUS_UNKNOWN (codes are part of the wire format)."""

_CARD_CLOCK_MESSAGE = N_(
    "NOT_YET_VALID",
    "Card is not valid yet: it was issued after this counter's clock. Set the station's date "
    "and time.",
)
"""NOT_YET_VALID's message when the card's issue time is after the counter's clock: "not
valid yet" alone, for a card issued minutes ago, leaves the clerk and the holder puzzled."""

_CLOCK_MESSAGES = {
    (Reason.STATUS_UNKNOWN, STATUS_AFTER_CLOCK): _CLOCK_MESSAGE,
    (Reason.NOT_YET_VALID, CARD_AFTER_CLOCK): _CARD_CLOCK_MESSAGE,
}


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """What the verifier decided about one QR text, and what the clerk needs to see.

    ``card`` and ``portrait`` are present only once the signature has been verified, so they
    can be shown next to a refusal (whose card was revoked?) but never come from a forgery.
    ``detail`` is a technical English sentence for logs; it never contains personal data.

    ``level`` says how the card was shown (live phone card, copy, printed), from the
    disclosures check on. ``disclosed`` is ``None`` for a printed card (everything signed is
    shown); for a phone card it names what the presentation opened (``na``, ``bd``, ``pt``,
    ``en.<service>``), ``card`` holds only that, and ``closed`` counts what stayed closed.
    """

    reason: Reason
    checked_at: datetime
    service: str
    detail: str = ""
    card: Card | None = None
    portrait: bytes | None = None
    issuer_id: str | None = None
    kid: str | None = None
    entitlement: Entitlement | None = None
    status_issued_at: datetime | None = None
    level: Level | None = None
    disclosed: frozenset[str] | None = None
    closed: int = 0

    @property
    def ok(self) -> bool:
        return self.reason is Reason.VALID

    def __bool__(self) -> bool:
        return self.ok

    def message(self, language: str = "en") -> str:
        """What the clerk and the holder read: the reason's message, or, when the counter's
        clock is what stops the check, a sentence that says so."""
        clock_message = _CLOCK_MESSAGES.get((self.reason, self.detail or ""))
        if clock_message is not None:
            return pgettext(language, self.reason.value, clock_message)
        return self.reason.message(language)

    @property
    def status_age_seconds(self) -> int | None:
        if self.status_issued_at is None:
            return None
        return int((self.checked_at - self.status_issued_at).total_seconds())

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary for ``--json`` output and the counter page."""
        out: dict[str, Any] = {
            "ok": self.ok,
            "reason": self.reason.value,
            "message": {language: self.message(language) for language in LANGUAGES},
            "detail": self.detail,
            "service": self.service,
            "checked_at": self.checked_at.isoformat(),
            "status_age_seconds": self.status_age_seconds,
            "level": None if self.level is None else self.level.value,
            "disclosed": None if self.disclosed is None else sorted(self.disclosed),
            "closed": self.closed,
        }
        if self.card is not None:
            card = self.card
            out["card"] = {
                "issuer": card.issuer,
                "code": card.code,
                "serial": card.serial,
                "family_name": card.family_name,
                "given_names": card.given_names,
                "native_name": card.native_name,
                "chinese_name": card.chinese_name,
                "nationality": card.nationality,
                "birth_date": None if card.birth_date is None else str(card.birth_date),
                "valid_from": card.valid_from.isoformat(),
                "expires_at": card.expires_at.isoformat(),
                "has_portrait": self.portrait is not None,
            }
        if self.entitlement is not None:
            e = self.entitlement
            out["entitlement"] = {
                "service": e.service,
                "valid_from": e.valid_from.isoformat() if e.valid_from else None,
                "valid_until": e.valid_until.isoformat() if e.valid_until else None,
            }
        return out
