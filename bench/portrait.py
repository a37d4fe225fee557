"""Card portraits for the QR size section: the library's converter if present, else our own.

The local conversion is what the format asks for: grey, 96x120 (cropped to that aspect
ratio), WebP at quality 10 and AVIF at quality 20, no metadata and no ICC profile (the pixels
are copied into a fresh image, so nothing of the source photo's ``info`` can be written).
"""

from __future__ import annotations

import importlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

SAMPLE_PHOTO = Path(__file__).resolve().parent.parent / "cardissuer" / "demo" / "sample-photo.jpg"
SIZE = (96, 120)
METADATA_KEYS = ("icc_profile", "exif", "xmp", "XML:com.adobe.xmp")


@dataclass(frozen=True, slots=True)
class Encoded:
    """One encoded portrait and where it came from."""

    source: str
    media_type: str
    data: bytes

    @property
    def metadata(self) -> list[str]:
        """Metadata blocks a decoder finds in the file (should be none)."""
        return metadata_of(self.data)


def local_variants(photo: bytes) -> list[Encoded]:
    """WebP at quality 10 and AVIF at quality 20 of ``photo`` made grey and 96x120."""
    with Image.open(io.BytesIO(photo)) as image:
        grey = ImageOps.exif_transpose(image).convert("L")
    fitted = ImageOps.fit(grey, SIZE, Image.Resampling.LANCZOS)
    clean = Image.frombytes("L", fitted.size, fitted.tobytes())  # an empty .info: no ICC/EXIF
    return [
        Encoded("bench (local)", "image/webp", _save(clean, "WEBP", quality=10, method=6)),
        Encoded("bench (local)", "image/avif", _save(clean, "AVIF", quality=20)),
    ]


def library_portrait(photo: bytes) -> Encoded | None:
    """The portrait ``cardissuer.portrait.make_portrait`` makes, if that module exists."""
    try:
        module = importlib.import_module("cardissuer.portrait")
    except ImportError:
        return None
    make: Any = getattr(module, "make_portrait", None)
    if not callable(make):
        return None
    result = make(photo)
    data = result if isinstance(result, bytes) else getattr(result, "data", None)
    if not isinstance(data, bytes):
        return None
    media_type = getattr(result, "media_type", None)
    return Encoded(
        "cardissuer.portrait.make_portrait",
        media_type if isinstance(media_type, str) else _sniff(data),
        data,
    )


def tagged_photo(photo: bytes) -> bytes | None:
    """``photo`` re-saved with an sRGB ICC profile and EXIF, to test that both are stripped."""
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without littlecms
        return None
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "fmcard bench camera"  # Make
    exif[0x0131] = "x" * 200  # Software: some bulk, as cameras write
    with Image.open(io.BytesIO(photo)) as image:
        return _save(image.convert("RGB"), "JPEG", quality=95, icc_profile=profile, exif=exif)


def metadata_of(data: bytes) -> list[str]:
    with Image.open(io.BytesIO(data)) as image:
        return [key for key in METADATA_KEYS if image.info.get(key)]


def _save(image: Image.Image, image_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def _sniff(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif"
    return "application/octet-stream"


def choose(photo: bytes) -> Encoded:
    """The portrait cards carry: the library's if it has a converter, else the smaller local one."""
    library = library_portrait(photo)
    if library is not None:
        return library
    return min(local_variants(photo), key=lambda encoded: len(encoded.data))
