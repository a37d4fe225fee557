"""Signing a card into its QR text (the verifier does the reverse in ``verifier._qr``).

Steps: claims JSON (short names, no spaces) -> raw DEFLATE with the ``D1`` preset dictionary
-> JWS over the compressed bytes with header ``{"alg","kid","zip"}`` (no ``typ``: cards are
told apart from trust and status lists by the absence of ``typ`` and by their ``zip``) ->
binary container with the portrait as an attachment -> ``FM1:`` + Base45.
"""

from __future__ import annotations

from keys.jws import sign_parts
from keys.signer import Signer
from schemas import qrtext, strictjson
from schemas.card import Card, portrait_digest
from schemas.compression import DEFAULT_ZIP, deflate
from schemas.errors import InvalidClaimError


def encode_card(
    card: Card, signer: Signer, *, portrait: bytes | None = None, zip_name: str = DEFAULT_ZIP
) -> str:
    """Sign ``card`` with ``signer`` and return its QR text.

    ``portrait`` must be the exact bytes whose digest is the card's ``ph`` claim; pass the
    portrait and a card without ``ph`` to have the digest filled in.
    """
    if portrait is not None:
        digest = portrait_digest(portrait)
        if card.portrait_digest is None:
            card = card.replace(portrait_digest=digest)
        elif card.portrait_digest != digest:
            raise InvalidClaimError("ph", "portrait bytes do not match the card's digest")
        if len(portrait) > qrtext.MAX_ATTACHMENT:
            raise InvalidClaimError("ph", f"portrait is larger than {qrtext.MAX_ATTACHMENT} bytes")
    elif card.portrait_digest is not None:
        raise InvalidClaimError("ph", "the card names a portrait but none was given")
    payload = deflate(strictjson.dumps(card.to_claims()), zip_name)
    header, signature = sign_parts(payload, signer, zip=zip_name)
    attachments = (portrait,) if portrait is not None else ()
    return qrtext.pack(qrtext.QRParts(header, payload, signature, attachments))
