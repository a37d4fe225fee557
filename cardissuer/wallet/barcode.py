"""What a wallet pass's barcode carries: the card's compact form, signed without its portrait.

The wallet app draws the barcode, at a size it chooses (about half the phone's width), from
the text we give it. A card with a portrait is a QR of version 15-16 (up to about 800
characters); in a wallet's barcode area its modules are three quarters the size of a
compact card's, and a camera that sees the phone from a distance (``scale 25%`` in ``python
-m bench --only capture``) reads it with zbar for 5-8 of 12 cards, against 12 of 12 without
the portrait. A smaller portrait does not close the gap (48x60 at quality 26 or 15 reads no
better), and the pass formats let the issuer choose neither the error correction nor the
module size. So the pass's barcode carries the same card without the portrait: the claims as
signed at issuance, byte for byte (same serial, same status index, same dates and
entitlements), signed again by the issuer's current key (:func:`keys.cards.compact_form`).

A counter that scans the pass sees a valid card without a photo and compares the face with
the passport (the station and ``fmcard-verify`` say so); the printed card and the holder
page keep the signed portrait. A counter whose policy requires a portrait refuses the pass
(PORTRAIT_MISSING) and asks for the printed card or the phone card.
"""

from __future__ import annotations

import hashlib

from cardissuer.models import CardRecord
from keys.cards import claims_of, compact_form
from keys.signer import Signer


class StoredTextMismatchError(LookupError):
    """A card's stored text does not carry the claims its row records."""


def wallet_text(card: CardRecord, qr_text: str, signer: Signer) -> str:
    """The text of ``card``'s wallet barcode, from its stored signed ``qr_text``.

    The claims are re-signed only if they are the ones the card's row records
    (``claims_digest``): the issuer never signs anything but a card it issued."""
    if hashlib.sha256(claims_of(qr_text)).hexdigest() != card.claims_digest:
        raise StoredTextMismatchError(f"card {card.serial}'s stored text has other claims")
    return compact_form(qr_text, signer)
