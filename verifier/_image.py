"""QR text from a photo or screenshot of a card (the optional ``[scan]`` extra).

Decoding uses zxing-cpp on grey pixels. Pixels come from pypng (PNG) or simplejpeg (JPEG,
libjpeg-turbo), with numpy (which simplejpeg needs anyway) for the colour conversion, so the
verifier never needs the issuer's imaging stack (Pillow).
Image dimensions are checked from the header before any pixel is decoded.
"""

from __future__ import annotations

from typing import Any

from verifier.errors import VerifierError

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
_SCAN_HINT = "reading images needs the scan extra: pip install 'fmcard[scan]'"


def qr_texts_from_image(data: bytes) -> list[str]:
    """Return the text of every QR code found in a PNG or JPEG image."""
    if len(data) > MAX_IMAGE_BYTES:
        raise VerifierError(f"image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    try:
        import zxingcpp
    except ImportError:
        raise VerifierError(_SCAN_HINT) from None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        pixels = _png_grey(data)
    elif data.startswith(b"\xff\xd8\xff"):
        pixels = _jpeg_grey(data)
    else:
        raise VerifierError("image must be PNG or JPEG")
    barcodes = zxingcpp.read_barcodes(
        pixels, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    return [barcode.text for barcode in barcodes]


def _png_grey(data: bytes) -> Any:
    try:
        import numpy
        import png
    except ImportError:
        raise VerifierError(_SCAN_HINT) from None
    try:
        width, height, rows, info = png.Reader(bytes=data).asDirect()
        _check_size(width, height)
        pixels = numpy.vstack([numpy.asarray(row, numpy.uint32) for row in rows])
    except png.Error as exc:
        raise VerifierError(f"PNG image is damaged: {exc}") from None
    planes = info["planes"]
    pixels = pixels.reshape(height, width, planes) * 255 // (2 ** info["bitdepth"] - 1)
    if info["greyscale"]:
        luma = pixels[..., 0]
    else:  # ITU-R BT.601 luma
        luma = (299 * pixels[..., 0] + 587 * pixels[..., 1] + 114 * pixels[..., 2]) // 1000
    if info["alpha"]:  # transparent pixels count as white
        alpha = pixels[..., planes - 1]
        luma = (luma * alpha + 255 * (255 - alpha)) // 255
    return luma.astype(numpy.uint8)


def _jpeg_grey(data: bytes) -> Any:
    try:
        import simplejpeg
    except ImportError:
        raise VerifierError(_SCAN_HINT) from None
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
        _check_size(width, height)
        pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY")
    except ValueError as exc:
        raise VerifierError(f"JPEG image is damaged: {exc}") from None
    return pixels.reshape(pixels.shape[0], pixels.shape[1])


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise VerifierError(f"image has more than {MAX_PIXELS} pixels")
