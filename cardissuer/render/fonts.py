"""Fonts for the printed card, and per-character fallback between them.

Holders come from everywhere a trading city trades with, so names arrive in Latin with any
diacritic, Cyrillic, Greek, Arabic, Persian and Urdu, Hebrew, the Indic scripts, Thai, Lao,
Khmer, Myanmar, Georgian, Armenian, Ethiopic, Hangul, kana and Chinese, including the
Extension B characters of Hong Kong and Taiwan names. The card draws them with Google's Noto
fonts, one design per script, and with BabelStone Han and HanaMin B for Extension B
characters that Noto Sans CJK lacks; all are under the SIL Open Font License and installed
from Debian's packages (``fonts-noto-core``, ``fonts-noto-cjk``, ``fonts-babelstone-han``,
``fonts-hanazono``) by ``./dev``, where Debian keeps them maintained and reproducible. If a
server lacks them, the Kurinto fonts of the ``weblate-fonts`` PyPI package still cover Latin,
Cyrillic, Arabic and Chinese, :func:`missing_faces` names what is missing, and a name needing
an absent font is refused at registration and reported, never drawn with empty boxes.

Each run of text is drawn with the first font whose character map holds its letters (read
with fontTools, which is exact). Marks, digits, punctuation and spaces stay with the run
before them when its font has them, so a Thai or Arabic name is one run and one shaping
call. Pillow lays runs out with RAQM (HarfBuzz and FriBiDi), which stacks Thai and Indic
marks, forms conjuncts, joins Arabic and orders it right to left.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

from fontTools.ttLib import TTFont
from PIL import ImageDraw, ImageFont

from cardissuer.errors import IssuerError

log = logging.getLogger("fmcard.render")

SYSTEM_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
"""Where the Debian font packages put their files; searched by file name."""


@dataclass(frozen=True, slots=True)
class Face:
    """One font family of the fallback chain: its files (regular, bold) and collection index."""

    name: str
    regular: str
    bold: str
    index: int = 0
    """The face inside a ``.ttc`` collection (Noto Sans CJK: 2 is Simplified Chinese)."""
    package: str = "fonts-noto-core"
    """The Debian package, or ``weblate-fonts`` on PyPI, that installs the files."""


def _noto(script: str) -> Face:
    return Face(f"NotoSans{script}", f"NotoSans{script}-Regular.ttf", f"NotoSans{script}-Bold.ttf")


FACES: tuple[Face, ...] = (
    Face("NotoSans", "NotoSans-Regular.ttf", "NotoSans-Bold.ttf"),  # Latin, Cyrillic, Greek
    *(
        _noto(script)
        for script in (
            "Arabic",  # Arabic, Persian and Urdu letters (Naskh style)
            "Hebrew",
            "Devanagari",
            "Bengali",
            "Tamil",
            "Thai",
            "Lao",
            "Khmer",
            "Myanmar",
            "Georgian",
            "Armenian",
            "Ethiopic",
        )
    ),
    Face("NotoSansCJK", "NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc", 2, "fonts-noto-cjk"),
    Face("BabelStoneHan", "BabelStoneHan.ttf", "BabelStoneHan.ttf", 0, "fonts-babelstone-han"),
    Face("HanaMinB", "HanaMinB.ttf", "HanaMinB.ttf", 0, "fonts-hanazono"),
    Face("KurintoSans", "KurintoSans-Rg.ttf", "KurintoSans-Bd.ttf", 0, "weblate-fonts"),
    Face("KurintoSansSC", "KurintoSansSC-Rg.ttf", "KurintoSansSC-Bd.ttf", 0, "weblate-fonts"),
)
"""Fonts tried in order for each letter: Latin first, then each script, Chinese last."""
FACE_BY_NAME = {face.name: face for face in FACES}


class MissingGlyphError(IssuerError):
    """No installed font has a glyph for some characters of the text (listed, in order)."""

    code = "name-not-printable"
    http_status = 422

    def __init__(self, characters: str) -> None:
        self.characters = characters
        super().__init__(f"no card font can draw {describe_characters(characters)}")


def describe_characters(characters: str) -> str:
    """``'김' (U+AE40), '𠮷' (U+20BB7)``: the characters and their code points, for a reader."""
    return ", ".join(f"'{char}' (U+{ord(char):04X})" for char in characters)


@cache
def _kurinto_dir() -> Path:
    root = resources.files("weblate_fonts") / "static" / "weblate_fonts" / "kurinto" / "ttf"
    return Path(str(root))


@cache
def _system_files() -> dict[str, Path]:
    """Font file name -> path, for every font file under :data:`SYSTEM_FONT_DIRS`."""
    found: dict[str, Path] = {}
    for directory in SYSTEM_FONT_DIRS:
        if directory.is_dir():
            for path in sorted(directory.rglob("*")):
                if path.suffix.lower() in {".ttf", ".ttc", ".otf"}:
                    found.setdefault(path.name, path)
    return found


def face_path(face: Face, *, bold: bool = False) -> Path | None:
    """The installed file of ``face`` (bold or regular), or None if it is not installed."""
    name = face.bold if bold else face.regular
    if face.package == "weblate-fonts":
        path = _kurinto_dir() / name
        return path if path.is_file() else None
    return _system_files().get(name)


@cache
def installed_faces() -> tuple[Face, ...]:
    """The faces of :data:`FACES` whose files are installed, in fallback order."""
    faces = tuple(face for face in FACES if face_path(face) is not None)
    missing = missing_faces()
    if missing:
        log.warning("card fonts not installed: %s", ", ".join(sorted(missing)))
    return faces


def missing_faces() -> dict[str, str]:
    """Faces that are not installed, with the package that provides each."""
    return {face.name: face.package for face in FACES if face_path(face) is None}


@cache
def coverage(name: str) -> frozenset[int]:
    """Code points with a glyph in face ``name`` (regular and bold share their coverage)."""
    face = FACE_BY_NAME[name]
    path = face_path(face)
    if path is None:
        return frozenset()
    font = TTFont(path, lazy=True, fontNumber=face.index)
    try:
        return frozenset(font.getBestCmap())
    finally:
        font.close()


@lru_cache(maxsize=256)
def pil_font(name: str, size: float, *, bold: bool = False) -> ImageFont.FreeTypeFont:
    """Face ``name`` at ``size`` pixels (em), laid out with RAQM so that marks are positioned,
    conjuncts formed and Arabic joined."""
    face = FACE_BY_NAME[name]
    path = face_path(face, bold=bold) or face_path(face)
    if path is None:
        raise MissingGlyphError("")  # pragma: no cover - runs only use installed faces
    return ImageFont.truetype(
        str(path), size, index=face.index, layout_engine=ImageFont.Layout.RAQM
    )


def needs_glyph(char: str) -> bool:
    """Spaces and control or format characters (ZWJ, ZWNJ) need no glyph of their own."""
    return not (char.isspace() or unicodedata.category(char) in {"Cc", "Cf"})


def font_for(char: str) -> str | None:
    """The first installed face with a glyph for ``char``."""
    code = ord(char)
    for face in installed_faces():
        if code in coverage(face.name):
            return face.name
    return None


def unprintable(text: str) -> str:
    """The distinct characters of ``text`` that no installed font can draw, in order."""
    missing: dict[str, None] = {}
    for char in text:
        if needs_glyph(char) and font_for(char) is None:
            missing[char] = None
    return "".join(missing)


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


def _stays_in_run(char: str, current: str | None) -> bool:
    """Whether ``char`` joins the run before it: it is no letter and that run's font has it."""
    if current is None:
        return False
    if not needs_glyph(char):
        return True
    return not unicodedata.category(char).startswith("L") and ord(char) in coverage(current)


@lru_cache(maxsize=1024)
def split_runs(text: str) -> tuple[Run, ...]:
    """Split ``text`` into runs, each in the first font that has its letters.

    A letter takes the first face that covers it, so Latin inside a Chinese name keeps the
    Latin design; a mark, digit, punctuation or space stays in the run before it where that
    font has it, so that a cluster (a Thai consonant and its marks) is never split.
    Raises :class:`MissingGlyphError` listing every character no font has.
    """
    missing = unprintable(text)
    if missing:
        raise MissingGlyphError(missing)
    runs: list[Run] = []
    for char in text:
        current = runs[-1].font if runs else None
        if _stays_in_run(char, current):
            assert current is not None  # noqa: S101 - _stays_in_run says so
            name = current
        elif not needs_glyph(char):
            name = installed_faces()[0].name
        else:
            found = font_for(char)
            assert found is not None  # noqa: S101 - unprintable() was empty
            name = found
        if runs and runs[-1].font == name:
            runs[-1] = Run(runs[-1].text + char, name)
        else:
            runs.append(Run(char, name))
    return tuple(runs)


def run_options(run: Run) -> dict[str, str]:
    """RAQM options for ``run``: its direction (the script is detected by RAQM itself)."""
    return {"direction": "rtl" if run.rtl else "ltr"}


@lru_cache(maxsize=4096)
def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """The advance width of ``text`` in pixels, runs laid out as ``draw_text`` does."""
    total = 0.0
    for run in split_runs(text):
        font = pil_font(run.font, size, bold=bold)
        total += font.getlength(run.text, **run_options(run))  # type: ignore[arg-type]
    return total


@lru_cache(maxsize=4096)
def ink_extent(text: str, size: float, *, bold: bool = False) -> tuple[float, float]:
    """How far the ink of ``text`` reaches above (negative) and below its baseline, in px."""
    top, bottom = 0.0, 0.0
    for run in split_runs(text):
        if not run.text.strip():
            continue
        font = pil_font(run.font, size, bold=bold)
        box = font.getbbox(run.text, anchor="ls", **run_options(run))  # type: ignore[arg-type]
        top, bottom = min(top, box[1]), max(bottom, box[3])
    return top, bottom


def fit_size(
    text: str, size: int, max_width: float, *, bold: bool = False, minimum: int = 8
) -> int:
    """The largest size up to ``size`` at which ``text`` fits ``max_width`` (for short labels;
    names are laid out by :mod:`cardissuer.render.names`, which wraps before shrinking)."""
    while size > minimum and text_width(text, size, bold=bold) > max_width:
        size -= 1
    return size


def draw_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: float,
    *,
    fill: tuple[int, int, int] = (0, 0, 0),
    bold: bool = False,
    anchor_right: bool = False,
    baseline: bool = False,
) -> float:
    """Draw ``text`` with font fallback at ``xy``; return its width.

    ``xy`` is the top left (or top right) of the first font's ascender, or with ``baseline``
    the left end of the baseline, which keeps runs in different fonts on one line. Runs are
    placed left to right; a name that is a single right-to-left run (Arabic, Hebrew) is
    shaped and ordered as a whole.
    """
    runs = split_runs(text)
    width = text_width(text, size, bold=bold)
    x, y = xy
    if anchor_right:
        x -= width
    if not baseline:
        y += pil_font(runs[0].font, size, bold=bold).getmetrics()[0] if runs else 0
    for run in runs:
        font = pil_font(run.font, size, bold=bold)
        options = run_options(run)
        draw.text((x, y), run.text, font=font, fill=fill, anchor="ls", **options)  # type: ignore[arg-type]
        x += font.getlength(run.text, **options)  # type: ignore[arg-type]
    return width
