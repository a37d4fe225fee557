"""The issuer's words for the holder (card page, wallet passes) from gettext catalogs.

Messages are English in the code and templates (``_("Valid until")``) and translated in
``cardissuer/locale/<language>/LC_MESSAGES/fmcard.po`` (``docs/TRANSLATING.md``); the names
of the services come from the counter's catalog (:mod:`verifier.i18n`), so each is translated
once. The languages, the right-to-left set and ``Accept-Language`` negotiation are the
counter's too: a holder sees the same language at the counter and on the phone.
"""

from __future__ import annotations

import functools
import gettext as _gettext
from pathlib import Path

from verifier.i18n import (
    HTML_LANG,
    LANGUAGE_NAMES,
    LANGUAGES,
    RTL_LANGUAGES,
    negotiate,
    primary,
    supported,
)
from verifier.i18n import translations as counter_translations

__all__ = [
    "DOMAIN",
    "HTML_LANG",
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "LOCALE_DIR",
    "N_",
    "RTL_LANGUAGES",
    "catalog",
    "holder_language",
    "translations",
]

DOMAIN = "fmcard"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DEFAULT_LANGUAGE = "zh"
"""For a visit that states no language at all (no ``Accept-Language``)."""
UNMATCHED_LANGUAGE = "en"
"""For a browser that asks only for languages not shipped: a foreign merchant's phone."""


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


def translations(language: str) -> _gettext.NullTranslations:
    """The issuer's catalog for ``language``, falling back to the counter's (service names),
    then to the English in the code. Only shipped languages are cached."""
    return catalog(DOMAIN, primary(language))


def catalog(domain: str, code: str) -> _gettext.NullTranslations:
    """The issuer's catalog ``domain`` (the holder's ``fmcard``, the console's
    ``fmcard-console``) for the shipped language ``code``, falling back to the counter's
    catalog (service names), then to the English in the code; unshipped codes get the
    English (and are not cached: a client chooses them)."""
    return _load(domain, code) if code in LANGUAGES else _gettext.NullTranslations()


@functools.cache
def _load(domain: str, code: str) -> _gettext.NullTranslations:
    try:
        found: _gettext.NullTranslations = _gettext.translation(
            domain, LOCALE_DIR, languages=[code]
        )
    except OSError:
        found = _gettext.NullTranslations()
    found.add_fallback(counter_translations(code))
    return found


def holder_language(asked: str | None, remembered: str | None, accept_language: str | None) -> str:
    """The holder's language: asked for in the link (``?lang=``), else remembered in the
    cookie, else the browser's best by ``Accept-Language``, else Chinese."""
    for choice in (asked, remembered):
        language = supported(choice)
        if language is not None:
            return language
    if not (accept_language or "").strip():
        return DEFAULT_LANGUAGE
    return negotiate(accept_language, LANGUAGES, default=UNMATCHED_LANGUAGE)
