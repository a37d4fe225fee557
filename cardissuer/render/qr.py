"""The card's QR code as an image.

The QR text is upper case, digits and Base45 symbols only, so it is encoded in alphanumeric
mode (5.5 bits a character). Error correction is M while the code stays at version 12 or
below (cards without a portrait), otherwise L: at the same size on the card, a smaller
version's larger modules are worth more than M's extra correction (a version-16 text at M
needs version 19, and zbar then reads 4 of 10 codes at a quarter of 300 dpi instead of 10).

The code is built with segno rather than qrcode: for a version-22 code segno takes about a
quarter of qrcode's time (``python -m bench --only render``). Most of what is left is the
standard's data-mask evaluation, which scores all eight masks in pure Python (about 50 ms at
version 22). Up to version 12 it stays (it costs some 15 ms there); above, the mask is fixed
to pattern 0. The penalty score only guards against long runs and finder-like patterns, which
a signed, compressed and Base45-encoded payload does not produce anyway; every code the tests
render is decoded with zxing-cpp to hold that claim.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any

import segno
from PIL import Image

SMALL_CODE_VERSION = 12
"""Largest version for which error correction M is used."""
FIXED_MASK = 0
"""Data mask used above ``SMALL_CODE_VERSION``, where evaluating all eight costs 50 ms."""
QUIET_ZONE = 4
"""Light modules around the code, as the standard requires."""


@lru_cache(maxsize=64)
def build_qr(text: str) -> Any:
    """Return the fitted ``segno.QRCode`` for ``text`` with the error correction chosen above.

    Cached: the console, the PNG and the PDF of one card ask for the same code in a row.
    """
    try:  # a probe that fails fast, before building any matrix, above version 12
        segno.make_qr(
            text, error="M", version=SMALL_CODE_VERSION, boost_error=False,
            mode="alphanumeric", mask=FIXED_MASK,
        )  # fmt: skip
    except segno.DataOverflowError:
        pass
    else:
        return segno.make_qr(text, error="M", boost_error=False, mode="alphanumeric")
    return segno.make_qr(text, error="L", boost_error=False, mode="alphanumeric", mask=FIXED_MASK)


def qr_matrix(text: str) -> tuple[tuple[bool, ...], ...]:
    """Return the modules of the code for ``text`` (True = dark) with its quiet zone."""
    code = build_qr(text)
    return tuple(
        tuple(bool(v) for v in row) for row in code.matrix_iter(scale=1, border=QUIET_ZONE)
    )


def qr_image(text: str, *, module_pixels: int = 8) -> Image.Image:
    """Return the QR for ``text`` as a black-on-white image, ``module_pixels`` per module."""
    matrix = qr_matrix(text)
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
    return int(code.version), str(code.error)
