"""From a normal photo to the small signed portrait that travels in the QR.

The portrait's bytes decide the QR's version, and the version decides the module size on
the card's 54 mm back, which decides whether a phone reads the card from a distance
(``python -m bench --only capture``). A 64x80 grey AVIF at quality 20 (~520 bytes) keeps a
face a clerk can compare with the person at the desk (eyes, mouth and outline stay) and puts
a card with photo at QR version 15-16, 0.61 mm a module. Fewer pixels at a higher quality
beat more pixels at a lower one: 96x120 at quality 10 is larger (~590 bytes) and blotchier,
and below 64x80 (or below quality 15) the eyes and mouth are lost (bench/README.md section
8 has the figures). The card's compression dictionary knows the AVIF header boxes, so AVIF
costs ~250 bytes less in the QR than WebP. No metadata or ICC profile is written (a profile
alone costs 3 KB).

:func:`portrait_candidates` yields the same portrait at falling quality so that the issuer
can keep the best one that still fits the QR budget (long names leave less room);
:func:`fit_portrait` does the same from a stored portrait when a card is signed, for a printed
card within :data:`MAX_QR_TEXT` and for a phone card within :data:`MAX_LIVE_TEXT`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from PIL import Image, ImageOps, UnidentifiedImageError

from cardissuer.errors import PortraitError

PORTRAIT_SIZE = (64, 80)
MIN_PHOTO_SIZE = (96, 120)
"""The smallest photo accepted (width, height, upright): less detail than this is a blur no
clerk can compare with a face (a 1x1 image would pass as a photo), even though the signed
portrait is then reduced to ``PORTRAIT_SIZE``."""
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTO_PIXELS = 40_000_000
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "AVIF"})


@dataclass(frozen=True, slots=True)
class Portrait:
    """An encoded portrait ready to be signed."""

    data: bytes
    media_type: str


QUALITIES = (26, 20, 15, 10)
"""AVIF qualities tried by :func:`portrait_candidates`, best first: 26 is about 560 bytes,
20 about 520, 15 about 470, 10 about 450 (the AV1 stream shrinks, the ~260-byte header does
not). Above 26 the bytes grow faster than the face improves."""


def make_portrait(photo: bytes, *, quality: int = 20) -> Portrait:
    """Crop ``photo`` to the portrait's aspect ratio, scale it, make it grey, encode as AVIF."""
    return Portrait(_encode(_prepare(photo), "AVIF", quality=quality), "image/avif")


def portrait_candidates(photo: bytes) -> Iterator[Portrait]:
    """Yield the portrait at each of :data:`QUALITIES`, best (largest) first."""
    image = _prepare(photo)
    for quality in QUALITIES:
        yield Portrait(_encode(image, "AVIF", quality=quality), "image/avif")


def _prepare(photo: bytes) -> Image.Image:
    image = _open(photo)
    image = ImageOps.exif_transpose(image)
    _check_size(image)
    image = image.convert("L")
    image = ImageOps.fit(image, PORTRAIT_SIZE, Image.Resampling.LANCZOS, centering=(0.5, 0.4))
    image = ImageOps.autocontrast(image, cutoff=1)
    image.info.clear()  # the photo's ICC profile, EXIF and XMP must not reach the portrait
    return image


def _check_size(image: Image.Image) -> None:
    """Refuse photos with fewer pixels than the portrait in either direction (after the EXIF
    orientation is applied, as the portrait is cut from the upright photo)."""
    min_width, min_height = MIN_PHOTO_SIZE
    if image.width < min_width or image.height < min_height:
        raise PortraitError(
            f"photo is {image.width}x{image.height} pixels; at least "
            f"{min_width}x{min_height} (width x height) are needed"
        )


def media_type_of(data: bytes) -> str | None:
    """Return the media type of an encoded portrait from its magic bytes, if known."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return None


def _open(photo: bytes) -> Image.Image:
    if len(photo) > MAX_PHOTO_BYTES:
        raise PortraitError(f"photo is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    try:
        image = Image.open(io.BytesIO(photo))
        if image.format not in ACCEPTED_FORMATS:
            raise PortraitError(f"photo format {image.format} is not JPEG, PNG, WebP or AVIF")
        if image.width * image.height > MAX_PHOTO_PIXELS:
            raise PortraitError("photo has too many pixels")
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError):
        raise PortraitError("photo is not a readable image") from None
    return image


def _encode(image: Image.Image, image_format: str, **options: int) -> bytes:
    buffer = io.BytesIO()
    # An empty profile, EXIF and XMP: Pillow would otherwise copy the source's (3 KB for a
    # typical phone photo's profile).
    image.save(buffer, image_format, icc_profile=b"", exif=b"", xmp=b"", **options)
    return buffer.getvalue()


MAX_QR_VERSION = 16
MAX_QR_TEXT = 854
"""Characters of a version-16 QR at error correction L in alphanumeric mode: the largest
code a card with portrait may have. On the card's 54 mm back it has 0.61 mm modules, which
zxing-cpp and zbar still read from a photo at a quarter of 300 dpi (zbar at its limit: at
24 % it no longer does); from version 17 (0.58 mm) zbar fails at 25 % too
(``python -m bench --only capture``)."""


MAX_LIVE_TEXT = 1460
"""Characters of a version-22 QR at error correction L in alphanumeric mode: the largest
live presentation of a phone card with portrait (the bank's, everything disclosed, with the
device proof; ``docs/FORMAT.md`` 11). A phone screen shows it at 9-10 pixels a module; the
target keeps the reading margin of the names issue (``python -m bench --only live``)."""

Signed = TypeVar("Signed")


def fit_portrait(
    portrait: bytes,
    encode: Callable[[bytes], Signed],
    *,
    chars: Callable[[Signed], int] = len,  # type: ignore[assignment]
    limit: int = MAX_QR_TEXT,
) -> tuple[bytes, Signed]:
    """The portrait and what ``encode`` signs with it, whose ``chars`` (the QR text's length;
    for a phone card its largest presentation's) are within ``limit`` if any re-encoding of
    ``portrait`` gets there.

    Tried in turn: ``portrait`` as stored, then the same face scaled to
    :data:`PORTRAIT_SIZE` (portraits stored before it was 64x80 were 96x120) and encoded at
    each of :data:`QUALITIES`. Long names leave less room; if nothing fits, the smallest try
    is returned, a larger code than the budget but still a card."""
    signed = encode(portrait)
    best = (portrait, signed, chars(signed))
    if best[2] <= limit:
        return portrait, signed
    with Image.open(io.BytesIO(portrait)) as stored:
        image = stored.convert("L")
    if image.size != PORTRAIT_SIZE:
        image = ImageOps.fit(image, PORTRAIT_SIZE, Image.Resampling.LANCZOS)
    for quality in QUALITIES:
        data = _encode(image, "AVIF", quality=quality)
        signed = encode(data)
        size = chars(signed)
        if size <= limit:
            return data, signed
        if size < best[2]:
            best = (data, signed, size)
    return best[0], best[1]
