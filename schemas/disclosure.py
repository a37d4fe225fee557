"""Selective disclosure for phone cards (``docs/FORMAT.md`` section 11.3).

A phone card signs only salted digests (``_sd``) of the holder's nationality, birth date,
portrait and each entitlement; the values travel beside the card as **disclosures**, and the
phone shows a counter only those its service needs. The design is SD-JWT's (RFC 9901) made
binary for a QR::

    disclosures = "" / deflate(1*part(disclosure), D1)
    disclosure  = salt(16 bytes) part(name) value        ; name: na, bd, en or pt
    digest      = base64url(SHA-256(disclosure)[:16])     ; one of the card's "_sd"

The reader (:func:`open_disclosures`) is the one door for untrusted disclosures: every
digest must be signed, every value must pass the claim's own rules, nothing may repeat.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from schemas import claims as c
from schemas import payload, strictjson
from schemas.card import Card, Entitlement, read_birth_date, read_entitlements
from schemas.compression import DEFAULT_ZIP, MAX_INFLATED, deflate, inflate
from schemas.errors import EncodingError, InvalidClaimError
from schemas.qrtext import read_parts, write_part

SALT_LENGTH = 16
DIGEST_LENGTH = 16
"""Bytes of SHA-256 kept in a digest: 128 bits against second preimages (the issuer draws
the salts, so nobody else can aim for a collision), and half the QR area of a full digest:
a phone card signs up to 20 of them."""
NAMES = (c.NATIONALITY, c.BIRTH_DATE, c.ENTITLEMENTS, c.PORTRAIT)
MAX_DISCLOSURES = 20


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One disclosure: a salt, a name and the value's bytes (JSON, or the portrait image)."""

    salt: bytes
    name: str
    value: bytes

    def __post_init__(self) -> None:
        if len(self.salt) != SALT_LENGTH:
            raise EncodingError(f"a disclosure's salt has {SALT_LENGTH} bytes")
        if self.name not in NAMES:
            raise EncodingError(f"unknown disclosure name {self.name[:8]!r}")

    @property
    def encoded(self) -> bytes:
        """The disclosure's bytes, which its digest covers."""
        return self.salt + write_part(self.name.encode("ascii")) + self.value

    @property
    def digest(self) -> str:
        """base64url (no padding) of the first :data:`DIGEST_LENGTH` bytes of SHA-256 of
        :attr:`encoded`, as listed in ``_sd``."""
        raw = hashlib.sha256(self.encoded).digest()[:DIGEST_LENGTH]
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @property
    def label(self) -> str:
        """What the disclosure opens: ``na``, ``bd``, ``pt`` or ``en.<service>``."""
        if self.name != c.ENTITLEMENTS:
            return self.name
        return f"{c.ENTITLEMENTS}.{read_entitlements(strictjson.loads(self.value))[0].service}"

    @classmethod
    def decode(cls, data: bytes) -> Disclosure:
        if len(data) < SALT_LENGTH + 2:
            raise EncodingError("a disclosure is too short")
        name, offset = read_parts(data, SALT_LENGTH, count=1)
        try:
            text = name[0].decode("ascii")
        except UnicodeDecodeError:
            raise EncodingError("a disclosure's name is not ASCII") from None
        return cls(data[:SALT_LENGTH], text, data[offset:])


def make_disclosures(
    card: Card, portrait: bytes | None, *, salt: Callable[[int], bytes] = os.urandom
) -> tuple[Disclosure, ...]:
    """Return the disclosures of ``card``'s nationality, birth date, entitlements and
    ``portrait`` (the issuer's side; ``salt`` is replaceable for reproducible vectors)."""
    out: list[Disclosure] = []
    if card.nationality is not None:
        out.append(Disclosure(salt(SALT_LENGTH), c.NATIONALITY, strictjson.dumps(card.nationality)))
    if card.birth_date is not None:
        value = strictjson.dumps(card.birth_date.to_wire())
        out.append(Disclosure(salt(SALT_LENGTH), c.BIRTH_DATE, value))
    for entitlement in card.entitlements:
        value = strictjson.dumps({entitlement.service: entitlement.to_wire()})
        out.append(Disclosure(salt(SALT_LENGTH), c.ENTITLEMENTS, value))
    if portrait is not None:
        payload.portrait_media_type(portrait)
        out.append(Disclosure(salt(SALT_LENGTH), c.PORTRAIT, portrait))
    return tuple(out)


def pack_disclosures(disclosures: Iterable[Disclosure], zip_name: str = DEFAULT_ZIP) -> bytes:
    """Return the disclosures part of a presentation (empty when nothing is disclosed)."""
    raw = b"".join(write_part(d.encoded) for d in disclosures)
    return deflate(raw, zip_name) if raw else b""


def unpack_disclosures(part: bytes) -> tuple[Disclosure, ...]:
    """Read a disclosures part: inflate (capped), split, decode; :class:`EncodingError`."""
    if not part:
        return ()
    raw = inflate(part, DEFAULT_ZIP, limit=MAX_INFLATED)
    chunks, offset = read_parts(raw, 0, count=None, limit=MAX_DISCLOSURES)
    if offset != len(raw) or not chunks:
        raise EncodingError("disclosures have trailing bytes or none at all")
    return tuple(Disclosure.decode(chunk) for chunk in chunks)


@dataclass(frozen=True, slots=True)
class Opened:
    """A phone card with what a presentation disclosed merged in."""

    card: Card
    portrait: bytes | None
    disclosed: frozenset[str]
    closed: int
    """How many of the card's digests stayed closed."""


def open_disclosures(card: Card, disclosures: Sequence[Disclosure]) -> Opened:
    """Check ``disclosures`` against ``card``'s signed digests and merge them in.

    Raises :class:`EncodingError` or :class:`InvalidClaimError` for a digest the card does
    not sign, anything repeated, or a value that breaks its claim's rules.
    """
    signed = set(card.disclosure_digests)
    seen: set[str] = set()
    nationality: str | None = None
    birth_date = None
    entitlements: list[Entitlement] = []
    portrait: bytes | None = None
    labels: set[str] = set()
    for disclosure in disclosures:
        digest = disclosure.digest
        if digest not in signed:
            raise EncodingError("a disclosure's digest is not signed by the card")
        if digest in seen:
            raise EncodingError("a disclosure is repeated")
        seen.add(digest)
        label = disclosure.name
        if label in labels:
            raise EncodingError(f"{label} is disclosed twice")
        if disclosure.name == c.NATIONALITY:
            value = strictjson.loads_value(disclosure.value)
            if type(value) is not str:
                raise InvalidClaimError(c.NATIONALITY, "must be a string")
            nationality = value
        elif disclosure.name == c.BIRTH_DATE:
            birth_date = read_birth_date(strictjson.loads_value(disclosure.value))
        elif disclosure.name == c.ENTITLEMENTS:
            found = read_entitlements(strictjson.loads_value(disclosure.value))
            if len(found) != 1:
                raise InvalidClaimError(c.ENTITLEMENTS, "one entitlement per disclosure")
            label = f"{c.ENTITLEMENTS}.{found[0].service}"
            if label in labels:
                raise EncodingError(f"{label} is disclosed twice")
            entitlements.append(found[0])
        else:
            payload.portrait_media_type(disclosure.value)
            if len(disclosure.value) > payload.MAX_PORTRAIT:
                raise EncodingError("portrait is too large")
            portrait = disclosure.value
        labels.add(label)
    merged = card.replace(
        nationality=nationality, birth_date=birth_date, entitlements=tuple(entitlements)
    )
    return Opened(merged, portrait, frozenset(labels), len(signed) - len(seen))
