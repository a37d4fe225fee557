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

_MAGIC = (
    (b"\x00\x00\x00", b"ftypavif", "image/avif"),
    (b"RIFF", b"WEBP", "image/webp"),
    (b"\xff\xd8\xff", b"", "image/jpeg"),
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
    for prefix, marker, media_type in _MAGIC:
        if portrait.startswith(prefix) and (
            not marker or marker in (portrait[4:12], portrait[8:12])
        ):
            return media_type
    raise EncodingError("portrait is not an AVIF, WebP or JPEG image")
