"""Fonts for the printed card, and per-character fallback between them.

Names come in Latin, Cyrillic, Arabic and Chinese. No single open font covers all four
well, so the card ships two from the ``weblate-fonts`` package (SIL Open Font License):
Kurinto Sans for Latin, Cyrillic and Arabic and Kurinto Sans SC for Chinese. Each run of
text is drawn with the first font whose character map holds every one of its characters
(read with fontTools, which is exact, where Pillow would only hint through glyph boxes), so
no name is ever printed with missing-glyph boxes. Text is laid out by Pillow's RAQM backend
(HarfBuzz and FriBiDi), which shapes and joins Arabic and orders it right to left.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

from fontTools.ttLib import TTFont
from PIL import ImageDraw, ImageFont

FONT_FILES: dict[str, tuple[str, str]] = {
    # name: (regular, bold) file names inside weblate_fonts
    "KurintoSans": ("KurintoSans-Rg.ttf", "KurintoSans-Bd.ttf"),
    "KurintoSansSC": ("KurintoSansSC-Rg.ttf", "KurintoSansSC-Bd.ttf"),
}
FALLBACK_ORDER = ("KurintoSans", "KurintoSansSC")
"""Fonts tried in order for each run of text: Latin/Cyrillic/Arabic first, then Chinese."""


class MissingGlyphError(ValueError):
    """No shipped font has a glyph for some character of the text."""


@cache
def font_dir() -> Path:
    """The directory of the Kurinto fonts inside the installed ``weblate-fonts`` package."""
    root = resources.files("weblate_fonts") / "static" / "weblate_fonts" / "kurinto" / "ttf"
    return Path(str(root))


def font_path(name: str, *, bold: bool = False) -> Path:
    return font_dir() / FONT_FILES[name][1 if bold else 0]


@cache
def coverage(name: str) -> frozenset[int]:
    """Code points with a glyph in font ``name`` (regular and bold share their coverage)."""
    font = TTFont(font_path(name), lazy=True)
    try:
        return frozenset(font.getBestCmap())
    finally:
        font.close()


@lru_cache(maxsize=64)
def pil_font(name: str, size: int, *, bold: bool = False) -> ImageFont.FreeTypeFont:
    """The font at ``size`` pixels, laid out with RAQM so that Arabic is shaped and joined."""
    return ImageFont.truetype(
        str(font_path(name, bold=bold)), size, layout_engine=ImageFont.Layout.RAQM
    )


def _needs_glyph(char: str) -> bool:
    """Spaces and control or format characters (ZWJ, bidi marks) need no glyph of their own."""
    return not (char.isspace() or unicodedata.category(char) in {"Cc", "Cf"})


def font_for(char: str) -> str | None:
    """The first font in ``FALLBACK_ORDER`` with a glyph for ``char``."""
    for name in FALLBACK_ORDER:
        if ord(char) in coverage(name):
            return name
    return None


@dataclass(frozen=True, slots=True)
class Run:
    """A stretch of text drawn with one font."""

    text: str
    font: str

    @property
    def rtl(self) -> bool:
        """Whether the run's first strong character is right-to-left (its base direction)."""
        for char in self.text:
            kind = unicodedata.bidirectional(char)
            if kind in {"R", "AL"}:
                return True
            if kind == "L":
                return False
        return False


@lru_cache(maxsize=1024)
def split_runs(text: str) -> tuple[Run, ...]:
    """Split ``text`` into runs, each in the first font that covers all its characters.

    Spaces and marks stay with the run before them, so a whole Arabic or Chinese name is one
    run (and one shaping call) unless it truly mixes scripts; Latin inside a Chinese name goes
    back to the first font, so every script keeps its own design.
    """
    runs: list[Run] = []
    for char in text:
        current = runs[-1].font if runs else None
        if not _needs_glyph(char):
            name = current or FALLBACK_ORDER[0]
        else:
            found = font_for(char)
            if found is None:
                raise MissingGlyphError(f"no shipped font has a glyph for U+{ord(char):04X}")
            name = found
        if runs and runs[-1].font == name:
            runs[-1] = Run(runs[-1].text + char, name)
        else:
            runs.append(Run(char, name))
    return tuple(runs)


def _kwargs(run: Run) -> dict[str, object]:
    return {"direction": "rtl", "language": "ar"} if run.rtl else {"direction": "ltr"}


@lru_cache(maxsize=4096)
def text_width(text: str, size: int, *, bold: bool = False) -> float:
    """The advance width of ``text`` in pixels, runs laid out as ``draw_text`` does."""
    total = 0.0
    for run in split_runs(text):
        font = pil_font(run.font, size, bold=bold)
        total += font.getlength(run.text, **_kwargs(run))  # type: ignore[arg-type]
    return total


def fit_size(
    text: str, size: int, max_width: float, *, bold: bool = False, minimum: int = 8
) -> int:
    """The largest size up to ``size`` at which ``text`` fits ``max_width`` (long names shrink)."""
    while size > minimum and text_width(text, size, bold=bold) > max_width:
        size -= 1
    return size


def draw_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: int,
    *,
    fill: tuple[int, int, int] = (0, 0, 0),
    bold: bool = False,
    anchor_right: bool = False,
) -> float:
    """Draw ``text`` with font fallback at ``xy`` (top left, or top right); return its width.

    Runs are placed left to right; a text that is a single right-to-left run (an Arabic name)
    is shaped as a whole, which is all a card needs (names do not mix Arabic and Chinese).
    """
    runs = split_runs(text)
    width = text_width(text, size, bold=bold)
    x, y = xy
    if anchor_right:
        x -= width
    for run in runs:
        font = pil_font(run.font, size, bold=bold)
        draw.text((x, y), run.text, font=font, fill=fill, anchor="la", **_kwargs(run))  # type: ignore[arg-type]
        x += font.getlength(run.text, **_kwargs(run))  # type: ignore[arg-type]
    return width
