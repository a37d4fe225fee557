"""Google Wallet: a generic pass with the card's QR, and an "Add to Google Wallet" link.

The save link carries the pass class and object in a JWT signed (RS256) by the service
account's key; Google checks it against the account's published keys, so the issuer needs
no call to Google's API to hand out a pass. The barcode value is the card's compact form
(:mod:`cardissuer.wallet.barcode`), so a counter verifies the pass like the printed card.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt

from cardissuer.core.config import Settings
from cardissuer.i18n import LANGUAGES, N_, translations
from cardissuer.wallet.apple import VOIDED_STATES, PassInput, holder_name, other_names
from cardissuer.wallet.credentials import GoogleCredentials
from schemas.code import format_for_reading

SAVE_URL = "https://pay.google.com/gp/v/save/"
BACKGROUND = "#123456"
CARD_TITLE = N_("Foreign Merchant Card · Yiwu police")


GOOGLE_LANGUAGE = {"zh": "zh-CN", "en": "en-US"}
"""The BCP 47 tag Google Wallet gets for a language, where it differs from the code."""


def _text(english: str) -> dict[str, Any]:
    """A localised string: Chinese by default, every other shipped language translated
    (Wallet shows the one of the phone's language)."""
    values = [
        {
            "language": GOOGLE_LANGUAGE.get(language, language),
            "value": translations(language).gettext(english),
        }
        for language in LANGUAGES
    ]
    return {"defaultValue": values[0], "translatedValues": values[1:]}


def _module(key: str, label: str, body: str) -> dict[str, Any]:
    return {"id": key, "header": label, "localizedHeader": _text(label), "body": body}


def class_id(settings: Settings) -> str:
    return f"{settings.google_issuer_id}.{settings.google_class_suffix}"


def generic_class(settings: Settings) -> dict[str, Any]:
    return {"id": class_id(settings)}


def generic_object(data: PassInput, settings: Settings, *, at: datetime) -> dict[str, Any]:
    card, person = data.card, data.person
    if card.state in VOIDED_STATES:
        state = "INACTIVE"
    elif card.expires_at.astimezone(UTC) <= at:
        state = "EXPIRED"
    else:
        state = "ACTIVE"
    return {
        "id": f"{settings.google_issuer_id}.{card.serial}",
        "classId": class_id(settings),
        "state": state,
        "cardTitle": _text(CARD_TITLE),
        "header": {"defaultValue": {"language": "en-US", "value": holder_name(person)}},
        # Google shows the subheader directly above the header: it is the name's label.
        "subheader": _text("Name"),
        "hexBackgroundColor": BACKGROUND,
        "barcode": {"type": "QR_CODE", "value": data.qr_text, "alternateText": card.serial},
        "validTimeInterval": {
            "start": {"date": card.valid_from.astimezone(UTC).isoformat()},
            "end": {"date": card.expires_at.astimezone(UTC).isoformat()},
        },
        "textModulesData": [
            *(_module(key, label, value) for key, label, value in other_names(person)),
            _module("code", "Code", format_for_reading(person.code)),
            _module("serial", "Serial", card.serial),
            _module("expires", "Expires", card.expires_at.astimezone(UTC).date().isoformat()),
        ],
    }


def save_jwt(
    data: PassInput, settings: Settings, credentials: GoogleCredentials, *, at: datetime
) -> str:
    claims: dict[str, Any] = {
        "iss": credentials.client_email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(at.timestamp()),
        "origins": settings.google_origin_list,
        "payload": {
            "genericClasses": [generic_class(settings)],
            "genericObjects": [generic_object(data, settings, at=at)],
        },
    }
    return jwt.encode(claims, credentials.private_key_pem, algorithm="RS256")


def save_url(
    data: PassInput, settings: Settings, credentials: GoogleCredentials, *, at: datetime
) -> str:
    """The "Add to Google Wallet" link for ``data``'s card."""
    return SAVE_URL + save_jwt(data, settings, credentials, at=at)
