"""The holder's names on the card front: wrapped onto two lines before they shrink.

A long name is first broken onto a second line (at a space, after a hyphen, between two
Chinese characters) at its full size; only if it still does not fit the column does it
shrink, alone; if the names then overflow the box's height they shrink together. Never
below 6 pt, the smallest type a counter clerk reads off a card at arm's length; every line
stays inside the box. The layout is decided once in millimetres at print resolution, so the
screen image and the print show the same lines, and registration runs the very same layout
(:mod:`cardissuer.services.names`) to refuse, with the field named, a name that cannot fit,
instead of a card that fails at the printer.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from cardissuer.errors import IssuerError
from cardissuer.render.fonts import ink_extent, text_width

MIN_PT = 6.0
MIN_MM = MIN_PT * 25.4 / 72
"""The smallest name size: 6 pt, 2.12 mm to the em."""
PRINT_PX_PER_MM = 1011 / 85.6
"""The layout is measured at the print image's resolution (300 dpi)."""
LINE_ABOVE, LINE_BELOW = 1.0, 0.32
"""A line reaches at least this far above and below its baseline (in ems), so Latin lines
are evenly spaced; scripts whose marks reach further (Myanmar, Thai) get their ink's extent."""
NAME_GAP = 0.05
"""Extra space between two names (in ems of the following name)."""
MAX_LINES = 2
SHRINK_STEP = 0.96


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle on the card, in millimetres from its top left corner."""

    x: float
    y: float
    width: float
    height: float

    @property
    def bottom(self) -> float:
        return self.y + self.height


NAME_BOX = Box(30.0, 11.4, 51.6, 17.0)
"""Where the names go on the front: right of the portrait, above the other fields."""


@dataclass(frozen=True, slots=True)
class NameSpec:
    """One name to place: which field it shows, its text and its full size (em, in mm)."""

    field: str
    text: str
    size_mm: float
    bold: bool = False


@dataclass(frozen=True, slots=True)
class Line:
    """One placed line: its text, size and baseline, and the box its ink may take (mm)."""

    field: str
    text: str
    size_mm: float
    bold: bool
    x: float
    baseline: float
    width: float
    top: float
    bottom: float


class NameDoesNotFitError(IssuerError):
    """The names cannot be set in the name box at 6 pt or more on two lines each."""

    code = "name-too-long"
    http_status = 422

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = tuple(fields)
        super().__init__(
            f"{', '.join(self.fields)}: too long to print on the card "
            f"(two lines of at least {MIN_PT:g} pt)"
        )


def _mm(text: str, size_mm: float, bold: bool) -> float:
    return text_width(text, round(size_mm * PRINT_PX_PER_MM, 2), bold=bold) / PRINT_PX_PER_MM


def _extent(text: str, size_mm: float, bold: bool) -> tuple[float, float]:
    top, bottom = ink_extent(text, round(size_mm * PRINT_PX_PER_MM, 2), bold=bold)
    return (
        min(top / PRINT_PX_PER_MM, -LINE_ABOVE * size_mm),
        max(bottom / PRINT_PX_PER_MM, LINE_BELOW * size_mm),
    )


def _splits(text: str) -> Iterator[tuple[str, str]]:
    """Where a line may end: at a space (dropped), after a hyphen, or between two Chinese,
    Japanese or Korean characters, which break anywhere."""
    for at in range(1, len(text)):
        before, after = text[at - 1], text[at]
        if after == " " and at < len(text) - 1:
            yield text[:at], text[at + 1 :]
        elif before == "-" or (_wide(before) and _wide(after)):
            yield text[:at], text[at:]


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in {"W", "F"} and unicodedata.category(char)[0] == "L"


def wrap(text: str, size_mm: float, width: float, *, bold: bool = False) -> tuple[str, ...] | None:
    """``text`` as one line if it fits ``width``, else the most even two lines that fit, else
    None. A word of an alphabetic script is never broken."""
    if _mm(text, size_mm, bold) <= width:
        return (text,)
    best: tuple[float, tuple[str, str]] | None = None
    for first, second in _splits(text):
        widest = max(_mm(first, size_mm, bold), _mm(second, size_mm, bold))
        if widest <= width and (best is None or widest < best[0]):
            best = (widest, (first, second))
    return best[1] if best else None


def _place(specs: Sequence[NameSpec], box: Box, scale: float) -> tuple[Line, ...] | None:
    lines: list[Line] = []
    y = box.y
    for number, spec in enumerate(specs):
        size = max(spec.size_mm * scale, MIN_MM)
        wrapped = wrap(spec.text, size, box.width, bold=spec.bold)
        if wrapped is None:
            return None
        if number:
            y += NAME_GAP * size
        for text in wrapped:
            above, below = _extent(text, size, spec.bold)
            baseline = y - above
            width = _mm(text, size, spec.bold)
            lines.append(
                Line(spec.field, text, size, spec.bold, box.x, baseline, width, y, baseline + below)
            )
            y = baseline + below
    return tuple(lines) if y <= box.bottom else None


def _own_scale(spec: NameSpec, box: Box) -> float | None:
    """The largest scale (1, 0.96, 0.92...) at which ``spec`` alone fits the box's width on
    at most two lines, or None if it does not even at 6 pt."""
    scale = 1.0
    while True:
        if wrap(spec.text, max(spec.size_mm * scale, MIN_MM), box.width, bold=spec.bold):
            return scale
        if spec.size_mm * scale <= MIN_MM:
            return None
        scale *= SHRINK_STEP


@lru_cache(maxsize=256)
def _layout(specs: tuple[NameSpec, ...], box: Box) -> tuple[Line, ...]:
    """Each name first at the size at which it fits the width (wrapped if need be), so one
    long name does not shrink the others, except that none is larger than the first (the
    passport name); then all together until they fit the height."""
    own = [_own_scale(spec, box) for spec in specs]
    if None in own:
        raise NameDoesNotFitError(
            [s.field for s, scale in zip(specs, own, strict=True) if not scale]
        )
    sizes = [s.size_mm * (scale or 1.0) for s, scale in zip(specs, own, strict=True)]
    # The passport name comes first and is never smaller than the names below it.
    sizes = sizes[:1] + [min(size, sizes[0]) for size in sizes[1:]]
    fitted = tuple(
        NameSpec(s.field, s.text, size, s.bold) for s, size in zip(specs, sizes, strict=True)
    )
    scale = 1.0
    while True:
        placed = _place(fitted, box, scale)
        if placed is not None:
            return placed
        if all(spec.size_mm * scale <= MIN_MM for spec in fitted):
            raise NameDoesNotFitError(_culprits(specs, box))
        scale *= SHRINK_STEP


def _culprits(specs: Sequence[NameSpec], box: Box) -> list[str]:
    """The fields to name: those that alone do not fit two lines, else every wrapped one."""
    alone = [s.field for s in specs if wrap(s.text, MIN_MM, box.width, bold=s.bold) is None]
    if alone:
        return alone
    wrapped = [s.field for s in specs if _mm(s.text, MIN_MM, s.bold) > box.width]
    return wrapped or [s.field for s in specs]


def layout_names(specs: Sequence[NameSpec], box: Box = NAME_BOX) -> tuple[Line, ...]:
    """Lines for ``specs`` (empty names left out) in ``box``, top to bottom.

    Raises :class:`NameDoesNotFitError` naming the fields that cannot fit, and
    :class:`~cardissuer.render.fonts.MissingGlyphError` if a character has no font.
    """
    return _layout(tuple(spec for spec in specs if spec.text), box)


LATIN_MM, OTHER_MM = 4.0, 3.6
"""Full sizes: the Latin (passport) name, then the native and Chinese names."""


def name_specs(latin: str, native: str | None, chinese: str | None) -> list[NameSpec]:
    """The card front's names, in order, with the fields they come from."""
    return [
        NameSpec("latin_name", latin, LATIN_MM, bold=True),
        NameSpec("native_name", native or "", OTHER_MM),
        NameSpec("chinese_name", chinese or "", OTHER_MM),
    ]
