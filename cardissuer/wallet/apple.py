"""Apple Wallet: the card as a signed ``.pkpass``.

A pass is a zip of ``pass.json``, images, ``manifest.json`` (the SHA-1 of every other file,
as Apple's format requires) and ``signature``, a detached PKCS#7 signature over the manifest
by the Pass Type ID certificate, with Apple's WWDR intermediate included so that the device
can build the chain. The barcode carries the card's compact form (:mod:`cardissuer.wallet.barcode`):
the same signed card as the printed one without its portrait, which a counter verifies the
same way.

Labels are English in ``pass.json`` and translated by a ``<language>.lproj/pass.strings``
file per shipped language (from the ``fmcard`` catalog): Wallet shows each holder the labels
in the phone's language, English where it has none.

A revoked or superseded card gives a ``voided`` pass. If an update web service is configured,
``webServiceURL`` and a per-pass ``authenticationToken`` are included in the shape Apple
documents, so that a device holding the pass can be told it was voided.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from PIL import Image, ImageDraw

from cardissuer.core.config import Settings
from cardissuer.i18n import LANGUAGES, N_, translations
from cardissuer.models import CardRecord, CardState, PersonRecord
from cardissuer.wallet.credentials import AppleCredentials
from schemas.code import format_for_reading
from schemas.names import viz_capitals

MEDIA_TYPE = "application/vnd.apple.pkpass"
ORGANIZATION = "义乌市公安局 Yiwu Public Security Bureau"
VOIDED_STATES = frozenset({CardState.REVOKED, CardState.SUPERSEDED})
TITLE = N_("Foreign Merchant Card")
ABOUT = N_("Issued by the Yiwu Public Security Bureau; counters verify it by scanning the code.")
PASS_TEXT = (
    TITLE,
    ABOUT,
    N_("Name"),
    N_("Names"),
    N_("Name in own script"),
    N_("Chinese name"),
    N_("Code"),
    N_("Nationality"),
    N_("Expires"),
    N_("Serial"),
    N_("About"),
)
"""Every English text of ``pass.json`` that ``pass.strings`` translates."""
APPLE_LANGUAGE = {"zh": "zh-Hans"}
"""Apple's language directory (``zh-Hans.lproj``) where it differs from the code."""
BACKGROUND = (18, 52, 86)
FOREGROUND = (255, 255, 255)


@dataclass(frozen=True)
class PassInput:
    """What a pass shows: the card and its holder."""

    card: CardRecord
    person: PersonRecord
    qr_text: str
    """The text the pass's barcode carries: the card's compact form
    (:func:`cardissuer.wallet.barcode.wallet_text`)."""


def holder_name(person: PersonRecord) -> str:
    """The Latin name in the passport's capitals, as the printed card shows it."""
    latin = " ".join(part for part in (person.family_name, person.given_names) if part)
    return viz_capitals(latin, person.nationality)


def other_names(person: PersonRecord) -> list[tuple[str, str, str]]:
    """The holder's names in other scripts as (key, English label, value): native, then
    Chinese."""
    names = [
        ("native_name", "Name in own script", person.native_name),
        ("chinese_name", "Chinese name", person.chinese_name),
    ]
    return [(key, label, value) for key, label, value in names if value]


def authentication_token(settings: Settings, serial: str) -> str:
    """A per-pass secret for the update web service, derived so that none has to be stored."""
    secret = settings.session_secret.get_secret_value().encode()
    return hmac.new(secret, b"pkpass:" + serial.encode(), hashlib.sha256).hexdigest()


def pass_json(data: PassInput, settings: Settings, *, development: bool) -> dict[str, Any]:
    card, person = data.card, data.person
    expires = card.expires_at.astimezone(UTC).isoformat()
    barcode = {
        "format": "PKBarcodeFormatQR",
        "message": data.qr_text,
        "messageEncoding": "iso-8859-1",
        "altText": card.serial,
    }
    names = other_names(person)
    back_fields: list[dict[str, Any]] = [
        {"key": "serial", "label": "Serial", "value": card.serial},
        # The front truncates long names; the back shows every name in full.
        {
            "key": "names",
            "label": "Names",
            "value": "\n".join([holder_name(person)] + [value for _, _, value in names]),
        },
        {
            "key": "about",
            "label": "About",
            "value": ABOUT,
        },
    ]
    if development:
        back_fields.insert(
            0,
            {
                "key": "development",
                "label": "开发 Development",
                "value": "development: true - signed with a development certificate, not Apple's",
            },
        )
    document: dict[str, Any] = {
        "formatVersion": 1,
        "passTypeIdentifier": settings.apple_pass_type_identifier,
        "teamIdentifier": settings.apple_team_identifier,
        "serialNumber": card.serial,
        "organizationName": ORGANIZATION,
        "description": TITLE,
        "logoText": TITLE,
        "backgroundColor": "rgb({}, {}, {})".format(*BACKGROUND),
        "foregroundColor": "rgb(255, 255, 255)",
        "labelColor": "rgb(200, 220, 240)",
        "expirationDate": expires,
        "voided": card.state in VOIDED_STATES,
        "barcodes": [barcode],
        "barcode": barcode,  # iOS 8 and older read only this key
        "generic": {
            "primaryFields": [{"key": "name", "label": "Name", "value": holder_name(person)}],
            "secondaryFields": [
                {"key": key, "label": label, "value": value} for key, label, value in names
            ],
            "auxiliaryFields": [
                {"key": "code", "label": "Code", "value": format_for_reading(person.code)},
                {
                    "key": "nationality",
                    "label": "Nationality",
                    "value": person.nationality,
                },
                {
                    "key": "expires",
                    "label": "Expires",
                    "value": expires,
                    "dateStyle": "PKDateStyleMedium",
                    "timeStyle": "PKDateStyleNone",
                },
            ],
            "backFields": back_fields,
        },
    }
    if settings.apple_web_service_url:
        document["webServiceURL"] = settings.apple_web_service_url
        document["authenticationToken"] = authentication_token(settings, card.serial)
    return document


def _image(width: int, height: int, text: str) -> bytes:
    """A plain badge: Wallet needs an icon and shows a logo; the bureau's artwork is not ours."""
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    border = max(1, width // 16)
    draw.rectangle((border, border, width - border - 1, height - border - 1), outline=FOREGROUND)
    draw.text((width / 2, height / 2), text, fill=FOREGROUND, anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def images() -> dict[str, bytes]:
    return {
        "icon.png": _image(29, 29, "FM"),
        "icon@2x.png": _image(58, 58, "FM"),
        "logo.png": _image(160, 50, "FMCARD"),
        "logo@2x.png": _image(320, 100, "FMCARD"),
    }


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def pass_strings(language: str) -> bytes:
    """``pass.strings`` for ``language``: each English text of the pass and its translation,
    in UTF-16 as Apple's localisation files are."""
    catalog = translations(language)
    lines = [f"{_quoted(text)} = {_quoted(catalog.gettext(text))};" for text in PASS_TEXT]
    return ("\n".join(lines) + "\n").encode("utf-16")


def localisations() -> dict[str, bytes]:
    return {
        f"{APPLE_LANGUAGE.get(language, language)}.lproj/pass.strings": pass_strings(language)
        for language in LANGUAGES
    }


def manifest(files: dict[str, bytes]) -> bytes:
    """SHA-1 of every file, as Apple's pass format prescribes (it is not our choice)."""
    digests = {
        name: hashlib.sha1(content, usedforsecurity=False).hexdigest()
        for name, content in sorted(files.items())
    }
    return json.dumps(digests, indent=2, sort_keys=True).encode()


def sign_manifest(content: bytes, credentials: AppleCredentials) -> bytes:
    """Detached DER PKCS#7 over the manifest, by the pass certificate, with the WWDR included."""
    key = credentials.key
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TypeError("the pass signing key must be RSA or EC")
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(credentials.certificate, key, hashes.SHA256())
        .add_certificate(credentials.wwdr)
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.DetachedSignature],
        )
    )


def build_pkpass(data: PassInput, settings: Settings, credentials: AppleCredentials) -> bytes:
    """The ``.pkpass`` archive for ``data``'s card."""
    document = pass_json(data, settings, development=credentials.development)
    files = {
        "pass.json": json.dumps(document, ensure_ascii=False, indent=2).encode(),
        **images(),
        **localisations(),
    }
    manifest_bytes = manifest(files)
    files["manifest.json"] = manifest_bytes
    files["signature"] = sign_manifest(manifest_bytes, credentials)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()
