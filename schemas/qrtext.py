"""The QR text of a card: ``FM1:`` followed by the Base45 of a small binary container.

The container carries the three parts of a compact JWS in binary (the protected header's JSON
bytes, the compressed payload bytes and the raw signature) and, optionally, attachments
(reserved for selective disclosures whose digests a future card signs; the portrait is inside
the signed payload). Binary parts in Base45 cost a third less QR
area than base64url text; a verifier rebuilds the exact compact JWS
``b64url(header).b64url(payload).b64url(signature)`` and checks it as usual.

Layout (all lengths are unsigned LEB128 varints, at most 3 bytes each)::

    container = part(header) part(payload) part(signature) *part(attachment)
    part(x)   = varint(len(x)) x
    header    = header-json                       ; starts with "{"
              / %x01 alg-code zip-code kid        ; compact form of the usual header

The compact form stands for the exact bytes ``{"alg":A,"kid":K,"zip":Z}`` (compact JSON, in
that order), which the reader rebuilds before the signature is checked: it saves 32 bytes, a
twelfth of a card without portrait. Codes: alg 1 = ES256, 2 = EdDSA; zip 1 = DEF, 2 = D1.

Nothing may follow the last part; every limit below is checked before anything is copied, so
an attacker's QR costs at most ``MAX_QR_TEXT`` characters of work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas import base45
from schemas.errors import EncodingError

PREFIX = "FM1:"
"""Scheme and container version. Upper case and ``:`` keep the whole text in alphanumeric mode."""
PHONE_PREFIX = "FM2:"
"""A live presentation of a phone card (version 2): the card, its disclosures and, when live,
the device proof (``docs/FORMAT.md`` section 11). Version-1 readers refuse the prefix, so a
phone card can never pass as a printed one at a counter that cannot check its binding."""
PREFIXES = {PREFIX: 1, PHONE_PREFIX: 2}

MAX_QR_TEXT = 4296
"""Characters: the alphanumeric capacity of the largest QR code (version 40-L)."""

SCANNER_WHITESPACE = " \t\r\n"
"""What a reader strips from both ends of scanned text (a scanner's Enter, a pasted tab):
space, HT, CR and LF only. Any other character around the text is not Base45 and makes the
card unreadable. A valid text never ends in a space (no Base45 group ends in one), so
stripping cannot change a card."""

MAX_SCANNED_TEXT = MAX_QR_TEXT + 4
"""Characters a reader accepts before stripping: a few for a line ending, and no more, so that
megabytes of padding are refused before any work."""

MAX_HEADER = 256
MAX_PAYLOAD = 2048
MAX_SIGNATURE = 132  # ES512 raw r||s is the largest signature of any JWS algorithm we could meet
MAX_ATTACHMENT = 2048
MAX_ATTACHMENTS = 2


@dataclass(frozen=True, slots=True)
class QRParts:
    """The binary parts of a card's QR text."""

    header: bytes
    payload: bytes
    signature: bytes
    attachments: tuple[bytes, ...] = ()
    version: int = 1
    """1 for ``FM1:``; 2 for ``FM2:``, whose attachments are the disclosures and the proof."""


ALG_CODES = {"ES256": 1, "EdDSA": 2}
ZIP_CODES = {"DEF": 1, "D1": 2}
_COMPACT_HEADER = 0x01
_KID = re.compile(rb"[A-Za-z0-9_-]{1,64}")
_CANONICAL_HEADER = re.compile(
    rb'\{"alg":"([A-Za-z0-9]+)","kid":"([A-Za-z0-9_-]{1,64})","zip":"([A-Z0-9]+)"\}'
)


def pack(parts: QRParts) -> str:
    """Return the QR text for ``parts`` (the header in compact form when it has one)."""
    chunks = [_compact_header(parts.header), parts.payload, parts.signature, *parts.attachments]
    container = b"".join(write_part(chunk) for chunk in chunks)
    prefix = next(prefix for prefix, version in PREFIXES.items() if version == parts.version)
    return prefix + base45.encode(container)


def unpack(text: str) -> QRParts:
    """Return the parts of QR ``text``; raise :class:`EncodingError` saying what is wrong."""
    if len(text) > MAX_QR_TEXT:
        raise EncodingError(f"QR text is longer than {MAX_QR_TEXT} characters")
    version = PREFIXES.get(text[: len(PREFIX)])
    if version is None:
        raise EncodingError(f"QR text does not start with {PREFIX!r} or {PHONE_PREFIX!r}")
    data = base45.decode(text[len(PREFIX) :])
    limits = (MAX_HEADER, MAX_PAYLOAD, MAX_SIGNATURE)
    chunks: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(chunks) >= len(limits) + MAX_ATTACHMENTS:
            raise EncodingError("QR container has too many parts")
        limit = limits[len(chunks)] if len(chunks) < len(limits) else MAX_ATTACHMENT
        length, offset = _read_varint(data, offset)
        if length > limit or offset + length > len(data):
            raise EncodingError("QR container part is too long or truncated")
        chunks.append(data[offset : offset + length])
        offset += length
    if len(chunks) < len(limits) or not all(chunks[: len(limits)]):
        raise EncodingError("QR container lacks a header, payload or signature")
    if version == 2 and len(chunks) == len(limits):
        raise EncodingError("a phone card's QR container lacks its disclosures part")
    header = _full_header(chunks[0])
    return QRParts(header, chunks[1], chunks[2], tuple(chunks[3:]), version)


def write_part(data: bytes) -> bytes:
    """Return ``part(data)``: the length as a minimal varint, then the bytes."""
    return _varint(len(data)) + data


def read_parts(
    data: bytes, offset: int, *, count: int | None, limit: int = MAX_ATTACHMENTS
) -> tuple[list[bytes], int]:
    """Read ``count`` parts (or all up to the end, at most ``limit``) from ``offset``; return
    them and the offset after the last. Lengths are checked before anything is copied."""
    chunks: list[bytes] = []
    while (len(chunks) < count) if count is not None else (offset < len(data)):
        if count is None and len(chunks) >= limit:
            raise EncodingError("too many parts")
        length, offset = _read_varint(data, offset)
        if offset + length > len(data):
            raise EncodingError("a part is truncated")
        chunks.append(data[offset : offset + length])
        offset += length
    return chunks, offset


def _compact_header(header: bytes) -> bytes:
    match = _CANONICAL_HEADER.fullmatch(header)
    if match is None:
        return header
    alg, kid, zip_name = (group.decode("ascii") for group in match.groups())
    if alg not in ALG_CODES or zip_name not in ZIP_CODES:
        return header
    return bytes((_COMPACT_HEADER, ALG_CODES[alg], ZIP_CODES[zip_name])) + kid.encode("ascii")


def _full_header(part: bytes) -> bytes:
    if part[0] != _COMPACT_HEADER:
        return part
    if len(part) < 4 or not _KID.fullmatch(part[3:]):
        raise EncodingError("QR container has a malformed compact header")
    alg = next((name for name, code in ALG_CODES.items() if code == part[1]), None)
    zip_name = next((name for name, code in ZIP_CODES.items() if code == part[2]), None)
    if alg is None or zip_name is None:
        raise EncodingError("QR container's compact header has an unknown algorithm or zip code")
    return b'{"alg":"%s","kid":"%s","zip":"%s"}' % (alg.encode(), part[3:], zip_name.encode())


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, offset: int) -> tuple[int, int]:
    """Return the varint at ``offset`` and the offset after it; minimal encodings only."""
    value = 0
    for shift in (0, 7, 14):
        if offset >= len(data):
            raise EncodingError("QR container is truncated")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and shift:
                raise EncodingError("QR container has a non-minimal length")
            return value, offset
    raise EncodingError("QR container has a length field that is too long")
