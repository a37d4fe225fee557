"""The printable card: credit-card sized images of its front and back.

CR80 proportions (85.6 x 54 mm); ``print`` renders at 300 dpi (1011 x 638 px), ``screen`` at
10 px/mm (856 x 540 px). Everything is laid out in millimetres and scaled, so both sizes look
the same.

The QR goes on the back. A compact card's code (versions 9-11) has whole-pixel modules of
0.68-0.76 mm inside a 2.5 mm margin. A larger code takes the back's whole height, the card's
own light paper being its 4-module quiet zone: a portrait card's version-16 code (81 modules
+ 2 x 4 quiet zone = 89) gets 54 mm / 89 = 0.61 mm a module (7.2 px at 300 dpi, each module 7
or 8 whole pixels). On the front it would squeeze the portrait and four scripts of names into
30 mm. ``python -m bench --only capture`` measures what a camera reads of it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from PIL import Image, ImageDraw, ImageOps

from cardissuer.errors import IssuerError
from cardissuer.models import CardRecord, PersonRecord
from cardissuer.render.fonts import MissingGlyphError, describe_characters, draw_text, fit_size
from cardissuer.render.names import NAME_BOX, NameDoesNotFitError, layout_names, name_specs
from cardissuer.render.qr import qr_matrix
from schemas.card import BirthDate
from schemas.code import format_for_reading
from schemas.names import viz_capitals

Side = Literal["front", "back"]
Size = Literal["print", "screen"]

CARD_MM = (85.6, 54.0)
PIXELS: dict[str, tuple[int, int]] = {"print": (1011, 638), "screen": (856, 540)}
"""Image size per ``size``: 300 dpi for print, 10 px/mm on screen."""
DPI = 300
BACK_MARGIN_MM = 2.5
"""Paper around a card back's QR when whole-pixel modules of the minimum size fit inside it."""
MIN_BACK_MODULE_MM = 0.6
"""Smallest QR module on the printed back: the largest card the issuer signs (a portrait card
at QR version 16) has 54 mm / 89 modules = 0.607 mm. Below about 0.6 mm zbar stops reading
the card from a photo in which it is a quarter of its 300-dpi size (0.58 mm at version 17:
1-2 cards in 12; ``python -m bench --only capture``). At 0.61 mm it is at its limit (24 %:
none), so this is a floor, not a margin."""

INK = (20, 24, 33)
MUTED = (92, 98, 110)
PAPER = (250, 248, 243)
BAND = (150, 22, 32)
WHITE = (255, 255, 255)


@dataclass(frozen=True, slots=True)
class CardView:
    """What the printed card shows, independent of the database."""

    latin_name: str
    native_name: str | None
    chinese_name: str | None
    nationality: str
    birth_date: str
    foreigner_code: str
    serial: str
    valid_from: str
    valid_until: str
    qr_text: str
    issuer_en: str
    issuer_zh: str
    entitlements: tuple[str, ...] = ()
    portrait: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_records(
        cls,
        card: CardRecord,
        person: PersonRecord,
        issuer_en: str,
        issuer_zh: str,
        entitlements: Sequence[str] = (),
        *,
        qr_text: str,
        portrait: bytes | None,
    ) -> CardView:
        """The view of ``card`` held by ``person``, issued by the named office; the card's
        text and the person's portrait are read apart from their rows
        (:mod:`cardissuer.services.blobs`)."""
        nationality = person.nationality
        latin = viz_capitals(f"{person.family_name} {person.given_names}".strip(), nationality)
        return cls(
            latin_name=latin,
            native_name=person.native_name,
            chinese_name=person.chinese_name,
            nationality=person.nationality,
            birth_date=str(BirthDate.from_wire(person.birth_date)),
            foreigner_code=person.code,
            serial=card.serial,
            valid_from=card.valid_from.date().isoformat(),
            valid_until=card.expires_at.date().isoformat(),
            qr_text=qr_text,
            issuer_en=issuer_en,
            issuer_zh=issuer_zh,
            entitlements=tuple(s.upper() for s in entitlements),
            portrait=portrait,
        )


class CardNotPrintableError(IssuerError):
    """A card's names cannot be drawn (no font has a character, or they do not fit).

    Registration refuses such names, so this means a record older than that rule or a server
    without the card fonts; the message names the card and the characters or fields."""

    code = "card-not-printable"
    http_status = 409

    def __init__(self, serial: str, reason: str) -> None:
        self.serial = serial
        super().__init__(f"card {serial} cannot be printed: {reason}")


class _Canvas:
    """A card-sized image drawn on in millimetres."""

    def __init__(self, size: Size) -> None:
        self.width, self.height = PIXELS[size]
        self.scale = self.width / CARD_MM[0]
        self.image = Image.new("RGB", (self.width, self.height), PAPER)
        self.draw = ImageDraw.Draw(self.image)

    def px(self, mm: float) -> int:
        return round(mm * self.scale)

    def box(self, x: float, y: float, w: float, h: float, fill: tuple[int, int, int]) -> None:
        self.draw.rectangle(
            (self.px(x), self.px(y), self.px(x + w) - 1, self.px(y + h) - 1), fill=fill
        )

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size_mm: float,
        *,
        max_mm: float | None = None,
        fill: tuple[int, int, int] = INK,
        bold: bool = False,
        right: bool = False,
    ) -> None:
        size = self.px(size_mm)
        if max_mm is not None:
            size = fit_size(text, size, self.px(max_mm), bold=bold)
        draw_text(
            self.draw,
            (self.px(x), self.px(y)),
            text,
            size,
            fill=fill,
            bold=bold,
            anchor_right=right,
        )

    def field(self, x: float, y: float, label: str, value: str, *, max_mm: float) -> None:
        self.text(x, y, label, 1.6, fill=MUTED, max_mm=max_mm)
        self.text(x, y + 2.1, value, 2.7, bold=True, max_mm=max_mm)


def _header(canvas: _Canvas, view: CardView) -> None:
    canvas.box(0, 0, CARD_MM[0], 9.5, BAND)
    canvas.text(4, 1.2, view.issuer_zh, 3.2, fill=WHITE, bold=True, max_mm=48)
    canvas.text(4, 5.4, view.issuer_en, 2.0, fill=WHITE, max_mm=48)
    canvas.text(81.6, 1.2, "外商卡", 3.2, fill=WHITE, bold=True, right=True)
    canvas.text(81.6, 5.4, "FOREIGN MERCHANT CARD", 2.0, fill=WHITE, right=True)


def _portrait(canvas: _Canvas, data: bytes | None, x: float, y: float, w: float, h: float) -> None:
    box = (canvas.px(w), canvas.px(h))
    if data is None:
        canvas.box(x, y, w, h, (226, 224, 218))
        canvas.text(x + 2, y + h / 2 - 1.5, "照片 PHOTO", 2.2, fill=MUTED, max_mm=w - 4)
        return
    with Image.open(io.BytesIO(data)) as photo:
        fitted = ImageOps.fit(photo.convert("RGB"), box, Image.Resampling.BICUBIC)
    canvas.image.paste(fitted, (canvas.px(x), canvas.px(y)))


def _front(canvas: _Canvas, view: CardView) -> None:
    _header(canvas, view)
    _portrait(canvas, view.portrait, 4, 12.5, 22, 28)
    canvas.text(4, 42.5, "No.", 1.6, fill=MUTED)
    canvas.text(4, 44.6, view.serial, 2.7, bold=True, max_mm=22)
    x, width = NAME_BOX.x, NAME_BOX.width
    y = _names(canvas, view)
    y = max(y + 0.6, 24.0)
    canvas.field(x, y, "国籍 Nationality", view.nationality, max_mm=22)
    canvas.field(x + 25, y, "出生日期 Date of birth", view.birth_date, max_mm=26)
    y += 6.6
    canvas.field(
        x, y, "外国人代码 Foreigner code", format_for_reading(view.foreigner_code), max_mm=width
    )
    y += 6.6
    canvas.field(x, y, "有效期 Valid", f"{view.valid_from} \u2013 {view.valid_until}", max_mm=width)
    if view.entitlements and y + 6.6 + 4.8 <= CARD_MM[1] - 1.5:
        y += 6.6
        canvas.field(x, y, "服务 Services", " · ".join(view.entitlements), max_mm=width)


def _names(canvas: _Canvas, view: CardView) -> float:
    """Draw the names (see :mod:`cardissuer.render.names`); return where they end (mm)."""
    lines = layout_names(name_specs(view.latin_name, view.native_name, view.chinese_name))
    for line in lines:
        draw_text(
            canvas.draw,
            (line.x * canvas.scale, line.baseline * canvas.scale),
            line.text,
            line.size_mm * canvas.scale,
            fill=INK,
            bold=line.bold,
            baseline=True,
        )
    return lines[-1].bottom if lines else NAME_BOX.y


def _back(canvas: _Canvas, view: CardView) -> None:
    code, left = _code_image(view.qr_text, canvas)
    canvas.image.paste(code.convert("RGB"), (left, (canvas.height - code.height) // 2))
    x = (left + code.width) / canvas.scale + 1.5
    width = CARD_MM[0] - x - 3
    canvas.text(x, 5, "扫码核验", 3.4, bold=True, max_mm=width)
    canvas.text(x, 9.5, "Scan to verify", 2.6, max_mm=width)
    canvas.text(x, 17, "No.", 1.6, fill=MUTED)
    canvas.text(x, 19.1, view.serial, 2.7, bold=True, max_mm=width)
    canvas.text(x, 25, "外国人代码 Foreigner code", 1.6, fill=MUTED, max_mm=width)
    canvas.text(x, 27.1, format_for_reading(view.foreigner_code), 2.7, bold=True, max_mm=width)
    canvas.text(x, 40, view.issuer_zh, 2.2, max_mm=width)
    canvas.text(x, 43.2, view.issuer_en, 1.7, fill=MUTED, max_mm=width)
    canvas.box(x, 48, width, 0.8, BAND)


def _code_image(text: str, canvas: _Canvas) -> tuple[Image.Image, int]:
    """The QR with its quiet zone as a black-on-white square, and its distance from the left.

    Whole-pixel modules inside a 2.5 mm margin while they stay at least
    :data:`MIN_BACK_MODULE_MM` (cards without a portrait: 0.68-0.76 mm). A larger code takes
    the card's whole height instead, the card's own paper edge outside its quiet zone, and
    modules of a fractional mean width: nearest-neighbour scaling makes each module
    ``floor`` or ``ceil`` of it, sharp-edged, never a grey pixel a printer or camera could
    blur into its neighbour. Both regimes are measured (``python -m bench --only capture``):
    compact cards drawn at the whole height were read by zbar under a 20-degree tilt 2 times
    in 12 instead of 8, and a portrait card's code in the margin had 0.51 mm modules that
    neither decoder read at a quarter of 300 dpi."""
    matrix = qr_matrix(text)
    modules = len(matrix)
    code = Image.new("1", (modules, modules), 1)
    code.putdata([0 if dark else 1 for row in matrix for dark in row])
    margin = canvas.px(BACK_MARGIN_MM)
    whole = (canvas.height - 2 * margin) // modules
    if whole >= MIN_BACK_MODULE_MM * canvas.scale:
        return code.resize((whole * modules,) * 2, Image.Resampling.NEAREST), margin
    return code.resize((canvas.height,) * 2, Image.Resampling.NEAREST), 0


def back_module_mm(text: str, size: Size = "print") -> float:
    """Mean width of one module of ``text``'s QR on the card's back, in millimetres."""
    canvas = _Canvas(size)
    code, _ = _code_image(text, canvas)
    return code.width / len(qr_matrix(text)) / canvas.scale


def render_card(view: CardView, *, side: Side = "front", size: Size = "print") -> Image.Image:
    """The card's ``side`` as an RGB image of ``size`` (see ``PIXELS``)."""
    if side not in ("front", "back") or size not in PIXELS:
        raise ValueError(f"unknown side {side!r} or size {size!r}")
    canvas = _Canvas(size)
    try:
        if side == "front":
            _front(canvas, view)
        else:
            _back(canvas, view)
    except MissingGlyphError as exc:
        reason = f"no card font can draw {describe_characters(exc.characters)}"
        raise CardNotPrintableError(view.serial, reason) from None
    except NameDoesNotFitError as exc:
        raise CardNotPrintableError(view.serial, str(exc)) from None
    return canvas.image


def card_png(view: CardView, *, side: Side = "front", size: Size = "print") -> bytes:
    """The card's ``side`` as PNG; compression level 1, as zlib's effort beyond buys little."""
    buffer = io.BytesIO()
    dpi = DPI if size == "print" else 254
    render_card(view, side=side, size=size).save(buffer, "PNG", compress_level=1, dpi=(dpi, dpi))
    return buffer.getvalue()
