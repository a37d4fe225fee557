"""Images a holder uploads: checked, measured and re-encoded before anything keeps them.

Order of checks, cheapest first, each refusal naming what is wrong in words the holder can act
on (:class:`UploadProblem`, translated by the portal):

1. size in bytes (``max_photo_bytes``), before decoding anything;
2. the format by its magic bytes: JPEG, PNG or WebP, nothing else, whatever the file is named
   or the browser claims;
3. the pixel count from the header, before the pixels are decoded (a 20000x20000 PNG of a few
   kilobytes is a decompression bomb: refused here, and Pillow's own bomb check is an error
   too, not a warning);
4. the decoded image: readable to its end, the format Pillow finds agrees with the magic bytes;
5. quality rules of the kind of upload: big enough, not too dark, and for the portrait a
   face-sized crop (portrait aspect ratio) from which the card's portrait can be made.

What is kept is a new JPEG drawn from the decoded pixels (upright per EXIF, at most
:data:`MAX_SIDE` pixels a side, no EXIF, ICC or XMP), never the bytes as uploaded: whatever a
file carried besides its pixels (a script after the image data, a second format's header,
GPS coordinates) does not survive.
"""

from __future__ import annotations

import enum
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, ImageStat, UnidentifiedImageError

from cardissuer.errors import PortraitError
from cardissuer.portrait import make_portrait

MAX_PIXELS = 25_000_000
"""More than any phone camera's photo of a page (a 24-megapixel camera); a bomb has far more."""
MAX_SIDE = 2000
"""The longest side kept: a passport page stays readable, a portrait sharp."""
JPEG_QUALITY = 85
DARK_BELOW = 50
"""Mean brightness (0-255) under which a photo is too dark to read or compare."""


class UploadKind(enum.StrEnum):
    PORTRAIT = "portrait"
    PASSPORT_PAGE = "passport_page"
    DOCUMENT = "document"


MIN_SIZE: dict[UploadKind, tuple[int, int]] = {
    UploadKind.PORTRAIT: (300, 375),
    UploadKind.PASSPORT_PAGE: (600, 400),
    UploadKind.DOCUMENT: (600, 400),
}
"""Fewest pixels (width, height; the page and document either way round)."""
PORTRAIT_RATIOS = (0.6, 0.9)
"""Width over height of a face-sized crop: a passport photo is 35x45 mm (0.78)."""


class UploadProblem(enum.StrEnum):
    MISSING = "missing"
    TOO_LARGE = "too-large"
    WRONG_FORMAT = "wrong-format"
    TOO_MANY_PIXELS = "too-many-pixels"
    UNREADABLE = "unreadable"
    TOO_SMALL = "too-small"
    TOO_DARK = "too-dark"
    NOT_A_FACE_CROP = "not-a-face-crop"


class UploadError(ValueError):
    def __init__(self, problem: UploadProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class CheckedImage:
    """An upload re-encoded by the service."""

    data: bytes
    media_type: str
    width: int
    height: int


_MAGIC_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


def sniff(data: bytes) -> str | None:
    """The media type by magic bytes, among those accepted (not the file's name or label)."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_image(data: bytes, kind: UploadKind, *, max_bytes: int) -> CheckedImage:
    """The re-encoded image, or :class:`UploadError` saying what is wrong with it."""
    if not data:
        raise UploadError(UploadProblem.MISSING)
    if len(data) > max_bytes:
        raise UploadError(UploadProblem.TOO_LARGE)
    media_type = sniff(data)
    if media_type is None:
        raise UploadError(UploadProblem.WRONG_FORMAT)
    image = _decode(data, _MAGIC_FORMATS[media_type])
    image = ImageOps.exif_transpose(image)
    _check_quality(image, kind, data)
    return _reencode(image)


def _decode(data: bytes, expected_format: str) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[expected_format])
            if image.width * image.height > MAX_PIXELS:
                raise UploadError(UploadProblem.TOO_MANY_PIXELS)
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadError(UploadProblem.TOO_MANY_PIXELS) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
            raise UploadError(UploadProblem.UNREADABLE) from None
    if image.format != expected_format:
        raise UploadError(UploadProblem.WRONG_FORMAT)
    return image


def _check_quality(image: Image.Image, kind: UploadKind, data: bytes) -> None:
    width, height = image.size
    min_width, min_height = MIN_SIZE[kind]
    if kind is UploadKind.PORTRAIT:
        big_enough = width >= min_width and height >= min_height
    else:
        big_enough = max(width, height) >= min_width and min(width, height) >= min_height
    if not big_enough:
        raise UploadError(UploadProblem.TOO_SMALL)
    grey = image.convert("L")
    grey.thumbnail((256, 256))
    if ImageStat.Stat(grey).mean[0] < DARK_BELOW:
        raise UploadError(UploadProblem.TOO_DARK)
    if kind is UploadKind.PORTRAIT:
        low, high = PORTRAIT_RATIOS
        if not low <= width / height <= high:
            raise UploadError(UploadProblem.NOT_A_FACE_CROP)
        try:
            make_portrait(data)  # the card's own portrait must come out of it
        except PortraitError:
            raise UploadError(UploadProblem.UNREADABLE) from None


def _reencode(image: Image.Image) -> CheckedImage:
    image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    image.info.clear()
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True, exif=b"", icc_profile=b"")
    return CheckedImage(buffer.getvalue(), "image/jpeg", image.width, image.height)
