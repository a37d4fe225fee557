"""The card's QR code as an image.

The QR text is upper case, digits and Base45 symbols only, so it is encoded in alphanumeric
mode (5.5 bits a character). Error correction is M while the code stays at version 12 or
below (cards without a portrait), otherwise L, which keeps cards with a portrait at version 22
or below, the largest that phones scan reliably.
"""

from __future__ import annotations

import io

import qrcode
from PIL import Image
from qrcode.constants import ERROR_CORRECT_L, ERROR_CORRECT_M
from qrcode.util import MODE_ALPHA_NUM, QRData

SMALL_CODE_VERSION = 12
"""Largest version for which error correction M is used."""


def build_qr(text: str) -> qrcode.QRCode:
    """Return a fitted QR code for ``text`` with the error correction chosen as above."""
    for level in (ERROR_CORRECT_M, ERROR_CORRECT_L):
        code = qrcode.QRCode(error_correction=level, box_size=1, border=4)
        code.add_data(QRData(text, mode=MODE_ALPHA_NUM))
        code.make(fit=True)
        if code.version <= SMALL_CODE_VERSION or level == ERROR_CORRECT_L:
            return code
    raise AssertionError("unreachable")  # pragma: no cover


def qr_image(text: str, *, module_pixels: int = 8) -> Image.Image:
    """Return the QR for ``text`` as a black-on-white image, ``module_pixels`` per module."""
    code = build_qr(text)
    matrix = code.get_matrix()
    size = len(matrix)
    image = Image.new("1", (size, size), 1)
    image.putdata([0 if dark else 1 for row in matrix for dark in row])
    return image.resize((size * module_pixels, size * module_pixels), Image.Resampling.NEAREST)


def qr_png(text: str, *, module_pixels: int = 8) -> bytes:
    """Return the QR for ``text`` as PNG bytes."""
    buffer = io.BytesIO()
    qr_image(text, module_pixels=module_pixels).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def qr_version(text: str) -> tuple[int, str]:
    """Return the QR version and error correction level ("M" or "L") used for ``text``."""
    code = build_qr(text)
    return code.version, "M" if code.error_correction == ERROR_CORRECT_M else "L"
