"""From QR text to the parts of a compact JWS, refusing anything unusual early and cheaply."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from schemas import qrtext, strictjson
from schemas.compression import DICTIONARIES
from schemas.errors import EncodingError
from verifier.reason import Reason

HEADER_MEMBERS = frozenset({"alg", "kid", "zip"})


class Rejection(Exception):  # noqa: N818 - internal control flow, never escapes the verifier
    """A card-level refusal raised inside the pipeline and turned into a result at the top."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ScannedCard:
    """The still-unverified parts of a scanned card."""

    algorithm: str
    kid: str
    zip_name: str
    header_bytes: bytes
    payload: bytes
    signature: bytes
    attachments: tuple[bytes, ...]
    version: int = 1
    """1 for ``FM1:`` (a card), 2 for ``FM2:`` (a phone card's presentation)."""


def scan(text: str, *, allowed_algorithms: frozenset[str]) -> ScannedCard:
    """Split QR ``text`` into its parts and check the header; raise :class:`Rejection`."""
    # Size first, before any other work (stripping 10 MB of padding is work too); a few
    # characters of slack let a scanner's line ending through.
    if len(text) > qrtext.MAX_SCANNED_TEXT:
        raise Rejection(Reason.TOO_LARGE, f"QR text has {len(text)} characters")
    text = text.strip(qrtext.SCANNER_WHITESPACE)
    if len(text) > qrtext.MAX_QR_TEXT:
        raise Rejection(Reason.TOO_LARGE, f"QR text has {len(text)} characters")
    try:
        parts = qrtext.unpack(text)
    except EncodingError as exc:
        raise Rejection(Reason.MALFORMED, str(exc)) from None
    algorithm, kid, zip_name = _header(parts.header, allowed_algorithms)
    return ScannedCard(
        algorithm,
        kid,
        zip_name,
        parts.header,
        parts.payload,
        parts.signature,
        parts.attachments,
        parts.version,
    )


@lru_cache(maxsize=256)
def _header(header: bytes, allowed_algorithms: frozenset[str]) -> tuple[str, str, str]:
    """Parse and check a protected header. Cached: every card of one key has the same header
    bytes, and a cache keyed on the exact bytes cannot be confused (refusals are not cached)."""
    try:
        members = strictjson.loads(header, max_depth=None)
    except EncodingError as exc:
        raise Rejection(Reason.MALFORMED, f"JWS header: {exc}") from None
    extra = sorted(set(members) - HEADER_MEMBERS)
    if extra:
        raise Rejection(Reason.MALFORMED, f"JWS header member {extra[0][:16]!r} is not allowed")
    if set(members) != HEADER_MEMBERS or not all(type(v) is str for v in members.values()):
        raise Rejection(Reason.MALFORMED, "JWS header needs string alg, kid and zip")
    if members["alg"] not in allowed_algorithms:
        raise Rejection(Reason.UNSUPPORTED_ALGORITHM, f"algorithm {members['alg'][:16]!r}")
    if members["zip"] not in DICTIONARIES:
        raise Rejection(Reason.MALFORMED, f"unknown compression {members['zip'][:16]!r}")
    if not 1 <= len(members["kid"]) <= 64:
        raise Rejection(Reason.MALFORMED, "JWS header kid has a bad length")
    return members["alg"], members["kid"], members["zip"]
