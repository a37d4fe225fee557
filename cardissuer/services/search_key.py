# ruff: noqa: RUF001, RUF002, RUF003 - look-alike letters (ı, ی, ك, ...) are what this module folds.
"""The search key of a name: what the name search stores, indexes and compares.

An officer types a name as the keyboard and the document in front of them allow: ``ÇELİK``
from a Turkish passport, ``celik`` on a keyboard without Ç, ``Celik`` from a visa. A person
registered as ``Çelik`` must be found by all three, so names are compared by a *key* that
forgets what the spellings of one name differ by. :func:`fold` makes that key; the registry
stores it for every name (``person.folded_*``, computed on insert by the column defaults and
on a change by the model, :mod:`cardissuer.models`), the search indexes cover the stored
keys (:mod:`cardissuer.core.search_index`) and the search folds the text it is given the
same way (:mod:`cardissuer.services.search_tiers`).

What is folded, in this order:

1. **Compatibility forms (NFKC)**: full-width ``ＳＭＩＴＨ`` and ``１２３`` (typed in a Chinese
   input method's full-width mode), ligatures (``ﬁ``), Arabic presentation forms.
2. **Letter case**, Turkish-aware: ``İ``, ``I``, ``i`` and dotless ``ı`` all read ``i``;
   then Unicode case folding (German ``ß`` and ``ẞ`` read ``ss``, Greek final ``ς`` reads
   ``σ``). Folding ``ı`` to ``i`` loses a distinction (``Alı`` and ``Ali`` read alike) on
   purpose: the same Turkish name reaches the registry as ``ALI`` (machine-readable zone, a
   keyboard without ``ı``), ``ALİ`` or ``Alı``. A registry's costly error is the person it
   does not find (and registers twice); one more candidate in a list is cheap.
3. **Diacritics** of Latin, Greek, Cyrillic, Hebrew and Arabic letters (combining marks after
   the canonical decomposition): ``é ñ ç ş ğ ü å`` and Vietnamese stacked marks (``ễ``)
   read as their base letter, Greek tonos and dialytika go, Cyrillic ``ё`` reads ``е`` (and
   ``й`` reads ``и``), Arabic harakat, shadda, sukun and the hamza carried on a letter go.
   Marks of the Brahmic, Thai and other scripts whose marks are vowels are kept.
   Letters with a stroke or a ligature that Unicode does not decompose are mapped by hand:
   ``đ ð → d``, ``ł → l``, ``ø → o``, ``ħ → h``, ``ŧ → t``, ``æ → ae``, ``œ → oe``,
   ``þ → th``.
4. **Arabic-script letter variants**: alef with hamza or madda and alef wasla read as bare
   alef (``أ إ آ ٱ → ا``), teh marbuta as heh (``ة → ه``, and the Persian and Urdu hehs
   ``ە ۀ ہ ۃ``), alef maksura and Persian yeh as yeh (``ى ی → ي``), keheh as kaf
   (``ک → ك``); tatweel (``ـ``) goes.
5. **Separators**: hyphens and dashes read as a space (``AL-HASHIMI`` is ``al hashimi``),
   apostrophes go (``O'BRIEN`` is ``obrien``), invisible format characters (zero-width
   joiners, marks of direction) go, and runs of white space are one space, none at either
   end.

Nothing else is folded: no transliteration between scripts (``Иванов`` does not find
``IVANOV``; the person's Latin name does), no German ``ü → ue`` (``Müller`` is ``muller``,
not ``mueller``), no phonetic or skeleton matching (the duplicate check does that).
"""

from __future__ import annotations

import functools
import unicodedata

FOLDED_LENGTH = 256
"""The longest key stored (``person.folded_*`` columns): a 64-character name folds to at
most a few times its length; a longer key is cut here."""

_BEFORE_CASE = str.maketrans({"İ": "i", "I": "i", "ı": "i"})
_LETTERS = str.maketrans(
    {
        # Latin letters with a stroke or ligatures, which have no canonical decomposition.
        "đ": "d",
        "ð": "d",
        "ł": "l",
        "ø": "o",
        "ħ": "h",
        "ŧ": "t",
        "æ": "ae",
        "œ": "oe",
        "þ": "th",
        "ŀ": "l",
        # Arabic script: one letter for each group a reader takes for the same letter.
        "ٱ": "ا",
        "ة": "ه",
        "ە": "ه",
        "ہ": "ه",
        "ۃ": "ه",
        "ى": "ي",
        "ی": "ي",
        "ک": "ك",
        # Apostrophes (removed) and the middle dot of Catalan l·l.
        "'": None,
        "’": None,
        "‘": None,
        "ʼ": None,
        "ʻ": None,
        "`": None,
        "´": None,
        "·": None,
        "ـ": None,  # tatweel, which only stretches a word
    }
)
_ASCII = str.maketrans({"-": " ", "'": None, "`": None})
_DIACRITIC_SCRIPTS = (
    (0x0000, 0x08FF),  # Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic, Syriac, Thaana
    (0x1C80, 0x1C8F),  # Cyrillic Extended-C
    (0x1E00, 0x1FFF),  # Latin Extended Additional (Vietnamese), Greek Extended
    (0x2C60, 0x2C7F),  # Latin Extended-C
    (0xA640, 0xA69F),  # Cyrillic Extended-B
    (0xA720, 0xA7FF),  # Latin Extended-D
    (0xAB30, 0xAB6F),  # Latin Extended-E
)
"""Base letters whose combining marks are diacritics (dropped), not vowels (kept)."""


@functools.lru_cache(maxsize=1 << 14)
def fold(text: str) -> str:
    """The search key of ``text`` (a name, or what an officer typed to find one). Names
    repeat (a registry's common family names), so recent keys are remembered: a bulk load
    or a migration folds each distinct name about once."""
    if text.isascii():  # most Latin names: the same steps, without decompositions
        text = text.translate(_ASCII).lower()
        return " ".join(text.split())[:FOLDED_LENGTH]
    # Before NFKC too: it turns a spacing acute (´) into a space and a combining mark.
    text = unicodedata.normalize("NFKC", text.translate(_LETTERS))
    text = text.translate(_BEFORE_CASE).casefold().translate(_LETTERS)
    kept: list[str] = []
    diacritic_base = True  # a mark with no letter before it is dropped
    for char in unicodedata.normalize("NFD", text):
        category = unicodedata.category(char)
        if category == "Mn":
            if not diacritic_base:
                kept.append(char)
            continue
        if category == "Cf":  # zero-width joiners, marks of direction: invisible
            continue
        if category == "Pd":  # hyphens and dashes separate words
            char = " "
        elif not char.isspace():
            diacritic_base = _has_diacritics(ord(char))
        kept.append(char)
    # Letters whose decomposition was a variant's base and a dropped mark (ۀ is ە + hamza).
    folded = unicodedata.normalize("NFC", "".join(kept)).translate(_LETTERS)
    return " ".join(folded.split())[:FOLDED_LENGTH]


def _has_diacritics(point: int) -> bool:
    return any(low <= point <= high for low, high in _DIACRITIC_SCRIPTS)


FOLDED_COLUMNS = {
    "folded_family": "family_name",
    "folded_given": "given_names",
    "folded_native": "native_name",
    "folded_chinese": "chinese_name",
}
"""Each stored key and the name it is the key of (an absent name has no key: NULL)."""


def folded_names(names: dict[str, str | None]) -> dict[str, str | None]:
    """The stored keys of a person's names (``family_name``, ``given_names``,
    ``native_name``, ``chinese_name`` -> ``folded_family``, ...)."""
    return {
        key: None if names.get(name) is None else fold(names[name] or "")
        for key, name in FOLDED_COLUMNS.items()
    }
