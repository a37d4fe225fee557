"""Signing a card into its QR text (the verifier does the reverse in ``verifier._qr``).

Steps: claims JSON (short names, no spaces), then a line feed and the portrait if there is
one (:mod:`schemas.payload`) -> raw DEFLATE with the ``D1`` preset dictionary -> JWS over the
compressed bytes with header ``{"alg","kid","zip"}`` (no ``typ``: cards are told apart from
trust and status lists by the absence of ``typ`` and by their ``zip``) -> binary container ->
``FM1:`` + Base45.

:func:`compact_form` signs a card's claims again without its portrait: the same card (serial,
status index, every claim byte for byte) in the smaller QR a wallet pass shows.
"""

from __future__ import annotations

import json

from keys.jws import sign_parts
from keys.signer import Signer
from schemas import payload, qrtext, strictjson
from schemas.card import Card
from schemas.compression import DEFAULT_ZIP, deflate, inflate
from schemas.errors import EncodingError


def encode_card(
    card: Card, signer: Signer, *, portrait: bytes | None = None, zip_name: str = DEFAULT_ZIP
) -> str:
    """Sign ``card`` (and its ``portrait``, AVIF/WebP/JPEG bytes) and return its QR text."""
    return _sign(payload.join(strictjson.dumps(card.to_claims()), portrait), signer, zip_name)


def compact_form(text: str, signer: Signer) -> str:
    """The card of ``text`` (an ``FM1:`` text this issuer signed) without its portrait.

    The claims JSON is taken as signed, byte for byte, and signed again by ``signer`` with
    the same compression: only the portrait and the signature (and the ``kid``, after a key
    rotation) differ. A card without a portrait is returned unchanged. The signature of
    ``text`` is not checked: the caller passes a text it stored itself and compares the
    claims with its record (:func:`claims_of`)."""
    claims_json, portrait, zip_name = _contents(text)
    if portrait is None:
        return text
    return _sign(payload.join(claims_json, None), signer, zip_name)


def claims_of(text: str) -> bytes:
    """The claims JSON of an ``FM1:`` text, as signed (unverified: see :func:`compact_form`)."""
    return _contents(text)[0]


def _contents(text: str) -> tuple[bytes, bytes | None, str]:
    """The claims JSON, the portrait and the compression of an ``FM1:`` text."""
    parts = qrtext.unpack(text)
    zip_name = json.loads(parts.header).get("zip") if parts.version == 1 else None
    if not isinstance(zip_name, str):
        raise EncodingError(
            "only a printed card (FM1:) with a compressed payload has a compact form"
        )
    claims_json, portrait = payload.split(inflate(parts.payload, zip_name))
    return claims_json, portrait, zip_name


def _sign(inflated: bytes, signer: Signer, zip_name: str) -> str:
    data = deflate(inflated, zip_name)
    if len(data) > qrtext.MAX_PAYLOAD:
        raise EncodingError(
            f"the card compresses to {len(data)} bytes, more than a QR card holds "
            f"({qrtext.MAX_PAYLOAD}); use a smaller portrait"
        )
    header, signature = sign_parts(data, signer, zip=zip_name)
    text = qrtext.pack(qrtext.QRParts(header, data, signature))
    if len(text) > qrtext.MAX_QR_TEXT:
        raise EncodingError(f"the card's QR text would have {len(text)} characters")
    return text
