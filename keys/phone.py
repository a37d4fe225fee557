"""Phone cards: signing one bound to a device key, presenting it live, checking the proof.

The issuer signs a **phone card** (version 2, ``docs/FORMAT.md`` section 11) for a device
public key the holder's phone registered: the card's ``cnf`` names that key, and the holder's
nationality, birth date, portrait and entitlements become salted disclosures
(:mod:`schemas.disclosure`). The phone keeps the card and its disclosures and, for each
counter, builds a **live presentation**: the disclosures the service needs and a device proof
over the card, those disclosures, the service and the current time slot
(:mod:`schemas.presentation`).

:func:`present` is what the phone page does in JavaScript (tests and the vectors use it, and
the page must produce the same bytes); :func:`proof_verifies` is the counter's check.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from keys.errors import UnsupportedKeyError
from keys.jwk import ES256, public_key_from_jwk
from keys.jws import sign_parts
from keys.signer import Signer
from schemas import qrtext, strictjson
from schemas.card import PHONE_VERSION, Card
from schemas.compression import DEFAULT_ZIP, deflate
from schemas.disclosure import (
    Disclosure,
    make_disclosures,
    pack_disclosures,
    unpack_disclosures,
)
from schemas.errors import EncodingError
from schemas.presentation import PROOF_LENGTH, Proof, card_digest, proof_input, slot_of

_ES256 = ECAlgorithm(ECAlgorithm.SHA256)

SERVICE_PROFILES: dict[str, frozenset[str]] = {
    "tr": frozenset({"pt", "en.tr"}),
    "hc": frozenset({"pt", "na", "bd", "en.hc"}),
    "ed": frozenset({"pt", "na", "bd", "en.ed"}),
    "ho": frozenset({"pt", "na", "bd", "en.ho"}),
}
"""What the phone discloses to a counter of each service (``docs/FORMAT.md`` 11.3): a bus
sees the portrait and the transport entitlement; a hospital, school or housing office also
nationality and birth date. Services not listed (banks, business licensing, any other)
get everything."""


@dataclass(frozen=True, slots=True)
class PhoneCard:
    """A signed phone card as the phone keeps it: the JWS parts and all its disclosures."""

    header: bytes
    payload: bytes
    signature: bytes
    disclosures: tuple[Disclosure, ...]

    @property
    def digest(self) -> bytes:
        """SHA-256 of the card's compact JWS, which every device proof signs."""
        return card_digest(self.header, self.payload, self.signature)

    def profile(self, service: str) -> tuple[Disclosure, ...]:
        """The disclosures the phone shows a counter of ``service``."""
        wanted = SERVICE_PROFILES.get(service)
        return tuple(d for d in self.disclosures if wanted is None or d.label in wanted)

    def to_text(self) -> str:
        """The card with every disclosure and no proof, as an ``FM2:`` text: how the issuer
        stores a phone card. Shown as it is, every counter refuses it (PROOF_MISSING)."""
        parts = qrtext.QRParts(
            self.header,
            self.payload,
            self.signature,
            (pack_disclosures(self.disclosures),),
            PHONE_VERSION,
        )
        return qrtext.pack(parts)

    @classmethod
    def from_text(cls, text: str) -> PhoneCard:
        """Read back :meth:`to_text` (the issuer's own, trusted storage)."""
        parts = qrtext.unpack(text)
        if parts.version != PHONE_VERSION or not parts.attachments:
            raise EncodingError("not a stored phone card")
        disclosures = unpack_disclosures(parts.attachments[0])
        return cls(parts.header, parts.payload, parts.signature, disclosures)

    def to_json(self) -> dict[str, Any]:
        """The document the holder's phone stores (base64url parts, disclosures by label)."""
        return {
            "header": _b64(self.header),
            "payload": _b64(self.payload),
            "signature": _b64(self.signature),
            "disclosures": [{"label": d.label, "bytes": _b64(d.encoded)} for d in self.disclosures],
            "profiles": {service: sorted(labels) for service, labels in SERVICE_PROFILES.items()},
        }


def device_public_key(jwk: Mapping[str, Any]) -> ec.EllipticCurvePublicKey:
    """Return the P-256 public key of a device JWK; :class:`UnsupportedKeyError` otherwise.

    Cached on the JWK's members: a counter builds (and checks the point of) a card's device
    key once per scan for the card and again for the proof; a hostile JWK is never cached."""
    if not all(isinstance(v, str) for v in jwk.values()):
        raise UnsupportedKeyError("a device key's members must be strings")
    return _device_key(tuple(sorted(jwk.items())))


@lru_cache(maxsize=256)
def _device_key(members: tuple[tuple[str, str], ...]) -> ec.EllipticCurvePublicKey:
    key = public_key_from_jwk(dict(members))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise UnsupportedKeyError("a device key must be a P-256 (EC) key")
    return key


def sign_phone_card(
    card: Card,
    signer: Signer,
    *,
    device_jwk: Mapping[str, Any],
    portrait: bytes | None = None,
    salt: Callable[[int], bytes] = os.urandom,
    zip_name: str = DEFAULT_ZIP,
) -> PhoneCard:
    """Sign ``card``'s data as a phone card bound to ``device_jwk`` (a public P-256 JWK).

    ``card`` holds everything in clear (as for a printed card); nationality, birth date,
    entitlements and the portrait go into salted disclosures, the rest is signed in clear.
    """
    device_public_key(device_jwk)
    jwk = {name: device_jwk[name] for name in ("crv", "kty", "x", "y")}
    full = card.replace(version=PHONE_VERSION, holder_key={"jwk": jwk}, disclosure_digests=())
    disclosures = make_disclosures(full, portrait, salt=salt)
    signed = full.replace(
        nationality=None,
        birth_date=None,
        entitlements=(),
        disclosure_digests=tuple(d.digest for d in disclosures),
    )
    data = deflate(strictjson.dumps(signed.to_claims()), zip_name)
    if len(data) > qrtext.MAX_PAYLOAD:
        raise EncodingError(f"the phone card compresses to {len(data)} bytes")
    header, signature = sign_parts(data, signer, zip=zip_name)
    phone = PhoneCard(header, data, signature, disclosures)
    _check_fits(phone.to_text(), with_proof=True)  # the bank profile shows everything
    return phone


def _check_fits(text: str, *, with_proof: bool) -> None:
    """Refuse a presentation that no QR code (or no counter) can take."""
    extra = (PROOF_LENGTH + 1) * 3 // 2 + 1 if with_proof else 0  # Base45 of part(proof)
    try:
        qrtext.unpack(text)  # every part within its limit
        fits = len(text) + extra <= qrtext.MAX_QR_TEXT
    except EncodingError:
        fits = False
    if not fits:
        raise EncodingError(
            "the phone card's presentation would not fit a QR code; use a smaller portrait"
        )


def present(
    phone_card: PhoneCard,
    device: Signer | None,
    *,
    service: str,
    at: datetime,
    disclose: Collection[str] | None = None,
    slot: int | None = None,
) -> str:
    """Return the ``FM2:`` text the phone shows a counter of ``service`` at ``at``.

    ``disclose`` lists labels (``na``, ``bd``, ``pt``, ``en.<service>``); by default the
    service's profile. ``device`` ``None`` leaves the proof out (a bound card without proof,
    which no counter accepts); ``slot`` overrides the slot of ``at`` (tests of stale proofs).
    """
    chosen = (
        phone_card.profile(service)
        if disclose is None
        else tuple(d for d in phone_card.disclosures if d.label in disclose)
    )
    part = pack_disclosures(chosen)
    attachments: tuple[bytes, ...] = (part,)
    if device is not None:
        if device.algorithm != ES256:
            raise UnsupportedKeyError("a device key signs with ES256")
        number = slot_of(at) if slot is None else slot
        signature = device.sign(proof_input(phone_card.digest, part, number, service))
        attachments += (Proof(number, signature).to_bytes(),)
    parts = qrtext.QRParts(
        phone_card.header, phone_card.payload, phone_card.signature, attachments, PHONE_VERSION
    )
    text = qrtext.pack(parts)
    _check_fits(text, with_proof=False)
    return text


def largest_presentation(phone_card: PhoneCard) -> str:
    """The longest ``FM2:`` text ``phone_card`` can be shown as: every disclosure (the bank's
    profile) and a proof. Only its length means anything: the proof's bytes are zeros."""
    parts = qrtext.QRParts(
        phone_card.header,
        phone_card.payload,
        phone_card.signature,
        (pack_disclosures(phone_card.disclosures), bytes(PROOF_LENGTH)),
        PHONE_VERSION,
    )
    return qrtext.pack(parts)


def proof_verifies(
    jwk: Mapping[str, Any], proof: Proof, *, card: bytes, disclosures: bytes, service: str
) -> bool:
    """Whether ``proof`` is the device key ``jwk``'s signature over this card (its digest),
    these disclosures (the part as carried) and ``service``, for the proof's own slot."""
    try:
        key = device_public_key(jwk)
    except UnsupportedKeyError:
        return False
    message = proof_input(card, disclosures, proof.slot, service)
    return bool(_ES256.verify(message, key, proof.signature))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
