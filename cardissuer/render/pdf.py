"""The card as a printable PDF: one card with crop marks, or an A4 sheet of cards.

Each page is one 300-dpi image, and the page's size is the image's at that resolution, so
the card prints at exactly 85.6 x 54 mm. The card is pasted onto a slightly larger white page
(the bleed) with crop marks outside its edge, which a print shop needs and nothing else gives
for free.

The pages are written here, losslessly (the image's pixels, DEFLATE-compressed), rather than
with Pillow's PDF writer, which stores RGB images only as JPEG: JPEG blurs the QR code's
module edges and rings around the small type, the two things a printed card must keep
sharp. A PDF of images needs five kinds of object, which :func:`_save` writes directly.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from PIL import Image, ImageDraw

from cardissuer.render.card import DPI, CardView, render_card

MM = DPI / 25.4
CARD_PX = (1011, 638)
MARGIN_MM = 6.0
"""White around the card on a single-card page; the crop marks sit in it."""
MARK_MM = (1.0, 4.0)
"""Crop marks start 1 mm outside the card edge and are 4 mm long."""
A4_PX = (round(210 * MM), round(297 * MM))
GAP_MM = 6.0
"""Space between cards on a sheet, so the marks of neighbours do not touch the cards."""


def _px(mm: float) -> int:
    return round(mm * MM)


def _marks(draw: ImageDraw.ImageDraw, left: int, top: int) -> None:
    """Crop marks at the four corners of the card whose top left corner is at (left, top)."""
    gap, length = _px(MARK_MM[0]), _px(MARK_MM[1])
    right, bottom = left + CARD_PX[0], top + CARD_PX[1]
    width = max(1, _px(0.1))
    for x in (left, right):
        for y, sign in ((top, -1), (bottom, 1)):
            draw.line((x, y + sign * gap, x, y + sign * (gap + length)), fill=0, width=width)
    for y in (top, bottom):
        for x, sign in ((left, -1), (right, 1)):
            draw.line((x + sign * gap, y, x + sign * (gap + length), y), fill=0, width=width)


def _save(pages: Sequence[Image.Image]) -> bytes:
    """A PDF with one page per image, each page the image's size at :data:`DPI`.

    Objects: 1 catalogue, 2 page tree, then per page its page, content stream and image
    (RGB, 8 bits, FlateDecode). The cross-reference table gives each object's byte offset.
    """
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    add(b"<< /Type /Catalog /Pages 2 0 R >>")
    add(b"")  # the page tree, written once the pages are known
    kids = []
    for page in pages:
        rgb = page.convert("RGB")
        width_pt, height_pt = (f"{n * 72 / DPI:.4f}".encode() for n in rgb.size)
        pixels = zlib.compress(rgb.tobytes(), 6)
        image = add(
            b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
            b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n%b\nendstream"
            % (rgb.width, rgb.height, len(pixels), pixels)
        )
        drawing = b"q %b 0 0 %b 0 0 cm /Im0 Do Q" % (width_pt, height_pt)
        content = add(b"<< /Length %d >>\nstream\n%b\nendstream" % (len(drawing), drawing))
        kids.append(
            add(
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %b %b] "
                b"/Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>"
                % (width_pt, height_pt, image, content)
            )
        )
    objects[1] = b"<< /Type /Pages /Kids [%b] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids),
        len(kids),
    )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")  # binary marker: a binary file
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%b\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def card_pdf(view: CardView) -> bytes:
    """Front and back of one card, each on a page the card plus ``MARGIN_MM`` all round."""
    margin = _px(MARGIN_MM)
    pages = []
    for side in ("front", "back"):
        page = Image.new("RGB", (CARD_PX[0] + 2 * margin, CARD_PX[1] + 2 * margin), "white")
        page.paste(render_card(view, side=side, size="print"), (margin, margin))
        _marks(ImageDraw.Draw(page), margin, margin)
        pages.append(page)
    return _save(pages)


def sheet_layout() -> list[tuple[int, int]]:
    """Top left corners (px) of the cards on an A4 sheet: as many as fit, centred."""
    gap = _px(GAP_MM)
    columns = (A4_PX[0] - 2 * gap + gap) // (CARD_PX[0] + gap)
    rows = (A4_PX[1] - 2 * gap + gap) // (CARD_PX[1] + gap)
    width = columns * CARD_PX[0] + (columns - 1) * gap
    height = rows * CARD_PX[1] + (rows - 1) * gap
    left, top = (A4_PX[0] - width) // 2, (A4_PX[1] - height) // 2
    return [
        (left + c * (CARD_PX[0] + gap), top + r * (CARD_PX[1] + gap))
        for r in range(rows)
        for c in range(columns)
    ]


def sheet_pdf(views: Sequence[CardView]) -> bytes:
    """A4 pages of fronts, each followed by its backs mirrored left to right for duplex."""
    if not views:
        raise ValueError("no cards for the sheet")
    slots = sheet_layout()
    pages: list[Image.Image] = []
    for start in range(0, len(views), len(slots)):
        batch = views[start : start + len(slots)]
        for side in ("front", "back"):
            page = Image.new("RGB", A4_PX, "white")
            draw = ImageDraw.Draw(page)
            for index, view in enumerate(batch):
                left, top = slots[index]
                if side == "back":  # long-edge duplex: the back of a card is mirrored
                    left = A4_PX[0] - left - CARD_PX[0]
                page.paste(render_card(view, side=side, size="print"), (left, top))
                _marks(draw, left, top)
            pages.append(page)
    return _save(pages)
