"""Signing a card into its QR text (the verifier does the reverse in ``verifier._qr``).

Steps: claims JSON (short names, no spaces), then a line feed and the portrait if there is
one (:mod:`schemas.payload`) -> raw DEFLATE with the ``D1`` preset dictionary -> JWS over the
compressed bytes with header ``{"alg","kid","zip"}`` (no ``typ``: cards are told apart from
trust and status lists by the absence of ``typ`` and by their ``zip``) -> binary container ->
``FM1:`` + Base45.
"""

from __future__ import annotations

from keys.jws import sign_parts
from keys.signer import Signer
from schemas import payload, qrtext, strictjson
from schemas.card import Card
from schemas.compression import DEFAULT_ZIP, deflate
from schemas.errors import EncodingError


def encode_card(
    card: Card, signer: Signer, *, portrait: bytes | None = None, zip_name: str = DEFAULT_ZIP
) -> str:
    """Sign ``card`` (and its ``portrait``, AVIF/WebP/JPEG bytes) and return its QR text."""
    data = deflate(payload.join(strictjson.dumps(card.to_claims()), portrait), zip_name)
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
