"""What a card's JWS payload holds once inflated: the claims, and optionally the portrait.

::

    inflated = claims-json [ LF portrait ]

The claims are compact JSON, which never contains a raw line feed (0x0A), so the first line
feed ends them; everything after it is the portrait image (AVIF, WebP or JPEG). The portrait
is thus covered by the card's signature directly, and it shares the DEFLATE stream (and the
``D1`` dictionary, which knows the AVIF header boxes) with the claims.
"""

from __future__ import annotations

from schemas.errors import EncodingError

SEPARATOR = b"\n"
MAX_CLAIMS = 4096
MAX_PORTRAIT = 4096

_MAGIC: tuple[tuple[tuple[tuple[int, bytes], ...], str], ...] = (
    # (offset, bytes) pairs that must all match: an ISO BMFF "ftyp" box with major brand
    # "avif" and a size below 2**24, a RIFF container of type "WEBP", a JPEG SOI and marker.
    (((0, b"\x00\x00\x00"), (4, b"ftypavif")), "image/avif"),
    (((0, b"RIFF"), (8, b"WEBP")), "image/webp"),
    (((0, b"\xff\xd8\xff"),), "image/jpeg"),
)


def join(claims_json: bytes, portrait: bytes | None) -> bytes:
    """Return the payload bytes to compress and sign."""
    if SEPARATOR in claims_json:
        raise EncodingError("claims JSON must not contain a raw line feed")
    if portrait is None:
        return claims_json
    portrait_media_type(portrait)
    if len(portrait) > MAX_PORTRAIT:
        raise EncodingError(f"portrait is larger than {MAX_PORTRAIT} bytes")
    return claims_json + SEPARATOR + portrait


def split(payload: bytes) -> tuple[bytes, bytes | None]:
    """Return the claims JSON and the portrait (or ``None``) of an inflated payload."""
    claims_json, separator, portrait = payload.partition(SEPARATOR)
    if len(claims_json) > MAX_CLAIMS:
        raise EncodingError(f"claims are larger than {MAX_CLAIMS} bytes")
    if not separator:
        return claims_json, None
    if len(portrait) > MAX_PORTRAIT:
        raise EncodingError(f"portrait is larger than {MAX_PORTRAIT} bytes")
    portrait_media_type(portrait)
    return claims_json, portrait


def portrait_media_type(portrait: bytes) -> str:
    """Return the portrait's media type from its magic bytes; refuse other formats."""
    for patterns, media_type in _MAGIC:
        if all(portrait[at : at + len(magic)] == magic for at, magic in patterns):
            return media_type
    raise EncodingError("portrait is not an AVIF, WebP or JPEG image")
