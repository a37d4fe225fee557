"""The device proof of a live presentation (``docs/FORMAT.md`` section 11.4).

The phone signs, with its non-extractable P-256 key, the digest of the phone card's compact
JWS, the digest of the disclosures it shows, the current 10-second time slot and the
counter's service code. The bytes are fixed here so that the phone page's WebCrypto
(``ECDSA``/``SHA-256``, which returns ``r || s``) and the verifier agree exactly::

    proof       = slot(4 bytes, big-endian) signature(64 bytes r||s)
    proof-input = "FM2-proof" 0x00 card-digest disclosures-digest slot service

Standard library only: the signature itself is made and checked in :mod:`keys.proof`.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from datetime import datetime

from schemas.errors import EncodingError
from schemas.services import SERVICE_CODE_PATTERN

SLOT_SECONDS = 10
"""Length of a time slot: the phone shows a new QR every slot."""
SIGNATURE_LENGTH = 64
PROOF_LENGTH = 4 + SIGNATURE_LENGTH
DOMAIN = b"FM2-proof\x00"
"""Separates proof inputs from anything else the device key could be asked to sign."""
MAX_SLOT = 2**32 - 1


@dataclass(frozen=True, slots=True)
class Proof:
    """A device proof as carried in the presentation's fifth part."""

    slot: int
    signature: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.slot <= MAX_SLOT or len(self.signature) != SIGNATURE_LENGTH:
            raise EncodingError(f"a device proof is a slot and {SIGNATURE_LENGTH} bytes")

    def to_bytes(self) -> bytes:
        return self.slot.to_bytes(4, "big") + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> Proof:
        if len(data) != PROOF_LENGTH:
            raise EncodingError(f"a device proof has exactly {PROOF_LENGTH} bytes")
        return cls(int.from_bytes(data[:4], "big"), data[4:])

    @property
    def starts(self) -> int:
        """Unix seconds at which the proof's slot starts."""
        return self.slot * SLOT_SECONDS


def slot_of(at: datetime) -> int:
    """The time slot that contains ``at`` (timezone-aware)."""
    return math.floor(at.timestamp()) // SLOT_SECONDS


def card_digest(header: bytes, payload: bytes, signature: bytes) -> bytes:
    """SHA-256 of the card's compact JWS (``header`` is the full protected header)."""
    jws = b".".join(_b64url(part) for part in (header, payload, signature))
    return hashlib.sha256(jws).digest()


def proof_input(card: bytes, disclosures: bytes, slot: int, service: str) -> bytes:
    """The bytes the device signs: see the module docstring. ``card`` is :func:`card_digest`,
    ``disclosures`` the disclosures part exactly as carried."""
    if len(card) != 32 or not SERVICE_CODE_PATTERN.fullmatch(service):
        raise EncodingError("a proof input needs a 32-byte card digest and a service code")
    if not 0 <= slot <= MAX_SLOT:
        raise EncodingError("time slot out of range")
    return (
        DOMAIN
        + card
        + hashlib.sha256(disclosures).digest()
        + slot.to_bytes(4, "big")
        + service.encode("ascii")
    )


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")
