"""The words of the counter in the holder's and the clerk's languages: gettext catalogs.

Every sentence a counter shows (the reasons, the station page, ``fmcard-verify``'s lines) is
written in English in the code, marked with :func:`N_` or looked up with :func:`gettext` /
:func:`ngettext` / :func:`pgettext`, and translated in a gettext catalog:
``verifier/locale/<language>/LC_MESSAGES/fmcard-verifier.po``, compiled to ``.mo`` next to it.
The compiled files ship inside the wheel and are read with the standard library's
:mod:`gettext`, so a counter needs nothing beyond its two core dependencies.

Translators edit the ``.po`` files (``docs/TRANSLATING.md``); the code never holds a
translation. A language missing a message falls back to English rather than to nothing.

Language negotiation (:func:`negotiate`) lives here too, because both the counter and the
issuer's holder page choose among the shipped languages from an ``Accept-Language`` header.
"""

from __future__ import annotations

import functools
import gettext as _gettext
from collections.abc import Iterable
from pathlib import Path

DOMAIN = "fmcard-verifier"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

LANGUAGES: tuple[str, ...] = ("zh", "en", "ru", "ar", "fa", "ur", "ko", "tr", "fr", "es", "hi")
"""The shipped languages (each has a catalog in every domain), Chinese first."""
RTL_LANGUAGES = frozenset({"ar", "fa", "ur"})
"""Languages written right to left: their pages get ``dir="rtl"``."""
LANGUAGE_NAMES: dict[str, str] = {
    "zh": "中文",
    "en": "English",
    "ru": "Русский",
    "ar": "العربية",
    "fa": "فارسی",
    "ur": "اردو",
    "ko": "한국어",
    "tr": "Türkçe",
    "fr": "Français",
    "es": "Español",
    "hi": "हिन्दी",
}
"""Each language's name in itself, for language menus."""
HTML_LANG = {"zh": "zh-CN"}
"""The ``lang`` attribute of a page, where it differs from the code (Simplified Chinese)."""


def N_(context: str, message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark ``message`` (under ``context``) for extraction without translating it now.

    Used for tables built at import time; the text is translated when shown, with
    :func:`pgettext` and the same context."""
    del context
    return message


def primary(tag: str | None) -> str:
    """The primary language of a tag: ``"zh-Hans-CN"`` and ``"zh_CN"`` give ``"zh"``."""
    return (tag or "").strip().replace("_", "-").split("-", 1)[0].lower()


def supported(tag: str | None, languages: Iterable[str] = LANGUAGES) -> str | None:
    """``tag``'s primary language if it is one of ``languages``, else ``None``."""
    language = primary(tag)
    return language if language in tuple(languages) else None


def translations(language: str) -> _gettext.NullTranslations:
    """The catalog of ``language`` (a tag; its primary language counts); English text for a
    language without one. Catalogs are read once per process, and only shipped languages
    are kept, so arbitrary tags cannot grow the cache."""
    code = primary(language)
    return _catalog(code) if code in LANGUAGES else _gettext.NullTranslations()


@functools.cache
def _catalog(code: str) -> _gettext.NullTranslations:
    try:
        return _gettext.translation(DOMAIN, LOCALE_DIR, languages=[code])
    except OSError:
        return _gettext.NullTranslations()


def gettext(language: str, message: str) -> str:
    return translations(language).gettext(message)


def pgettext(language: str, context: str, message: str) -> str:
    return translations(language).pgettext(context, message)


def ngettext(language: str, singular: str, plural: str, n: int) -> str:
    return translations(language).ngettext(singular, plural, n)


def negotiate(
    accept_language: str | None, languages: Iterable[str] = LANGUAGES, *, default: str = "en"
) -> str:
    """The best of ``languages`` for an ``Accept-Language`` header (RFC 9110 section 12.5.4).

    Ranges are taken by their q-value (1 when absent), ties in the header's order; ``q=0``
    means "not this one"; ``*`` stands for every offered language the header does not name.
    A range counts by its primary language (``zh-TW`` selects ``zh``, the only Chinese
    shipped; the first range naming a language sets its quality). A malformed q-value makes
    its range count as absent rather than break the page."""
    offered = tuple(languages)
    explicit: dict[str, tuple[float, int]] = {}
    wildcard: tuple[float, int] | None = None
    for position, part in enumerate((accept_language or "")[:1000].split(",")):
        fields = part.split(";")
        tag = fields[0].strip()
        quality = 1.0
        for parameter in fields[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = -1.0
        if not tag or not 0.0 <= quality <= 1.0:
            continue
        if tag == "*":
            wildcard = wildcard or (quality, position)
        else:
            explicit.setdefault(primary(tag), (quality, position))
    ranked = [(q, p, code) for code, (q, p) in explicit.items() if code in offered and q > 0]
    if wildcard is not None and wildcard[0] > 0:
        ranked.extend((wildcard[0], wildcard[1], code) for code in offered if code not in explicit)
    if not ranked:
        return default
    return min(ranked, key=lambda r: (-r[0], r[1], offered.index(r[2])))[2]
