"""Why a card was accepted or refused: stable codes, and words a clerk understands.

The codes are part of the interface (logs, the counter page, ``--json`` output) and never
change meaning; new codes may be added. Each message is written here in English and translated
in the counter's gettext catalogs (:mod:`verifier.i18n`), under the reason's code as context:
the clerk reads Chinese or English, the holder standing at the counter often reads Russian,
Arabic, Persian, Urdu, Korean, Turkish, French, Spanish or Hindi better than either.

Adding a reason: add the member, its English line below, then ``./dev i18n`` (extracts it into
every catalog) and a translation in each ``verifier/locale/*/LC_MESSAGES/fmcard-verifier.po``;
``tests/verifier/test_i18n.py`` fails until every shipped language has one.
"""

from __future__ import annotations

import enum

from verifier.i18n import LANGUAGES, N_, RTL_LANGUAGES, pgettext

__all__ = ["LANGUAGES", "RTL_LANGUAGES", "Level", "Reason"]


class Reason(enum.StrEnum):
    """The outcome of verifying one card, checks in the order ``docs/SECURITY.md`` gives."""

    VALID = "VALID"
    TOO_LARGE = "TOO_LARGE"
    MALFORMED = "MALFORMED"
    UNSUPPORTED_ALGORITHM = "UNSUPPORTED_ALGORITHM"
    TRUST_LIST_EXPIRED = "TRUST_LIST_EXPIRED"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    KEY_COMPROMISED = "KEY_COMPROMISED"
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    STATUS_UNKNOWN = "STATUS_UNKNOWN"
    REVOKED = "REVOKED"
    SUSPENDED = "SUSPENDED"
    SUPERSEDED = "SUPERSEDED"
    DISCLOSURE_INVALID = "DISCLOSURE_INVALID"
    PROOF_MISSING = "PROOF_MISSING"
    PROOF_INVALID = "PROOF_INVALID"
    PROOF_STALE = "PROOF_STALE"
    PROOF_REPLAYED = "PROOF_REPLAYED"
    LIVE_REQUIRED = "LIVE_REQUIRED"
    NOT_ENTITLED = "NOT_ENTITLED"
    PORTRAIT_MISSING = "PORTRAIT_MISSING"

    def message(self, language: str = "en") -> str:
        """Return the message in ``language``, a tag such as ``"zh"``, ``"zh-CN"`` or ``"ko"``
        (counted by its primary language); a language without a catalog gives English."""
        return pgettext(language, self.value, _MESSAGES[self])

    @property
    def source_message(self) -> str:
        """The English message, as written in the code (the catalogs' message id)."""
        return _MESSAGES[self]


class Level(enum.StrEnum):
    """How a card was shown (``docs/FORMAT.md`` 11.5): a live phone card, a copy of a phone
    card (screenshot, replay, a proof that does not fit), or a printed card."""

    LIVE = "live"
    COPY = "copy"
    PRINTED = "printed"


_MESSAGES: dict[Reason, str] = {
    Reason.VALID: N_("VALID", "Card is valid for this service."),
    Reason.TOO_LARGE: N_("TOO_LARGE", "This is not a merchant card: the code is far too large."),
    Reason.MALFORMED: N_(
        "MALFORMED",
        "This is not a readable merchant card. Scan again or ask for the card.",
    ),
    Reason.UNSUPPORTED_ALGORITHM: N_(
        "UNSUPPORTED_ALGORITHM",
        "Card uses a signature method that is not accepted.",
    ),
    Reason.TRUST_LIST_EXPIRED: N_(
        "TRUST_LIST_EXPIRED",
        "This counter's trust data is out of date. Update the station.",
    ),
    Reason.UNKNOWN_KEY: N_("UNKNOWN_KEY", "Card was not signed by a recognised issuer."),
    Reason.BAD_SIGNATURE: N_(
        "BAD_SIGNATURE",
        "Card is forged or altered: its signature does not match.",
    ),
    Reason.KEY_COMPROMISED: N_(
        "KEY_COMPROMISED",
        "Card was signed with a key that is no longer trusted.",
    ),
    Reason.NOT_YET_VALID: N_("NOT_YET_VALID", "Card is not valid yet."),
    Reason.EXPIRED: N_("EXPIRED", "Card has expired."),
    Reason.STATUS_UNKNOWN: N_(
        "STATUS_UNKNOWN",
        "Card status cannot be confirmed: "
        "the revocation data is missing or too old. Update the station.",
    ),
    Reason.REVOKED: N_("REVOKED", "Card has been revoked."),
    Reason.SUSPENDED: N_("SUSPENDED", "Card is suspended."),
    Reason.SUPERSEDED: N_("SUPERSEDED", "Card was replaced by a newer card. Ask for the new card."),
    Reason.DISCLOSURE_INVALID: N_(
        "DISCLOSURE_INVALID",
        "The phone card's data was altered: a disclosed item does not match the card.",
    ),
    Reason.PROOF_MISSING: N_(
        "PROOF_MISSING",
        "This is a copy of a phone card, not the live card. Ask for the holder's phone.",
    ),
    Reason.PROOF_INVALID: N_(
        "PROOF_INVALID",
        "This phone card was not shown from its holder's phone for this service.",
    ),
    Reason.PROOF_STALE: N_(
        "PROOF_STALE",
        "This phone card code is not current (a screenshot, or the phone's clock is wrong). "
        "Ask the holder to show the live code.",
    ),
    Reason.PROOF_REPLAYED: N_(
        "PROOF_REPLAYED",
        "This phone card code was already scanned. Ask the holder to show the next code.",
    ),
    Reason.LIVE_REQUIRED: N_(
        "LIVE_REQUIRED",
        "This service needs the live card on the holder's phone; a printed card is not accepted.",
    ),
    Reason.NOT_ENTITLED: N_("NOT_ENTITLED", "Holder is not entitled to this service."),
    Reason.PORTRAIT_MISSING: N_("PORTRAIT_MISSING", "This service needs a card with a photo."),
}
"""The English message of each reason; the reason's code is its catalog context."""
