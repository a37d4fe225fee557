"""The inflated payload: claims, a line feed, and a portrait recognised by its magic bytes."""

from __future__ import annotations

import pytest

from schemas import payload
from schemas.errors import EncodingError

CLAIMS = b'{"v":1}'


@pytest.mark.parametrize(
    ("portrait", "media_type"),
    [
        pytest.param(b"\x00\x00\x00\x1cftypavif" + bytes(20), "image/avif", id="avif"),
        pytest.param(b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(20), "image/webp", id="webp"),
        pytest.param(b"\xff\xd8\xff", "image/jpeg", id="jpeg-shortest"),
    ],
)
def test_portrait_magic_bytes(portrait: bytes, media_type: str) -> None:
    assert payload.split(CLAIMS + b"\n" + portrait) == (CLAIMS, portrait)
    assert payload.portrait_media_type(portrait) == media_type


@pytest.mark.parametrize(
    "portrait",
    [
        pytest.param(b"", id="empty-after-line-feed"),
        pytest.param(b"RIFFWEBP", id="webp-marker-at-offset-4"),
        pytest.param(b"RIFF\x24\x00\x00\x00WEB", id="webp-truncated"),
        pytest.param(b"\x00\x00\x00\x1cftypavis" + bytes(20), id="avif-sequence-brand"),
        pytest.param(b"\x00\x00\x01\x1cftypavif" + bytes(20), id="avif-box-of-64-kb"),
        pytest.param(b"\x00\x00\x00\x1cftypmif1" + bytes(20), id="heif-brand"),
        pytest.param(b"\xff\xd8", id="jpeg-two-bytes"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(20), id="png"),
    ],
)
def test_portrait_without_exact_magic_is_refused(portrait: bytes) -> None:
    """Only the exact patterns of docs/FORMAT.md section 4 count; an independent verifier
    must agree with this one on every payload."""
    with pytest.raises(EncodingError, match="not an AVIF, WebP or JPEG"):
        payload.split(CLAIMS + b"\n" + portrait)
