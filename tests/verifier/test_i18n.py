"""The counter's message catalogs: complete in every shipped language, placeholders intact,
plural rules right, compiled files up to date, languages negotiated, the CLI in Korean.

The runtime checks read the compiled ``.mo`` files with the standard library, as a counter
does. The checks against the code (every message the code marks exists and is translated,
every ``.mo`` is what its ``.po`` compiles to) need Babel, a development dependency; they are
skipped in the core-only install.
"""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest

from keys.cards import encode_card
from keys.status_list import CardStatus
from tests.factories import NOW, Authority, make_card
from verifier import cli
from verifier.i18n import (
    DOMAIN,
    LANGUAGE_NAMES,
    LANGUAGES,
    LOCALE_DIR,
    RTL_LANGUAGES,
    negotiate,
    translations,
)
from verifier.reason import Reason
from verifier.station_text import STATION_TEXT, service_names, station_text

PLACEHOLDER = re.compile(r"\{(\w*)\}")
REQUIRED = ("zh", "en", "ru", "ar", "fa", "ur", "ko", "tr", "fr", "es", "hi")
PLURAL_COUNTS = {"zh": 1, "ko": 1, "en": 2, "tr": 2, "fa": 2, "ur": 2, "hi": 2, "ru": 3, "ar": 6}


ISSUER_LOCALE_DIR = Path(__file__).resolve().parents[2] / "cardissuer" / "locale"
CATALOGS = {DOMAIN: LOCALE_DIR, "fmcard": ISSUER_LOCALE_DIR, "fmcard-console": ISSUER_LOCALE_DIR}
"""Every shipped domain: the counter's, the issuer's holder page and wallet passes, and the
officers' console."""


def _catalog(language: str, domain: str = DOMAIN) -> dict[object, str]:
    """The raw entries of a shipped ``.mo``: msgid (``ctx\\x04id`` with a context, or
    ``(id, form)`` for plurals) -> translation."""
    path = CATALOGS[domain] / language / "LC_MESSAGES" / f"{domain}.mo"
    with path.open("rb") as file:
        return dict(gettext.GNUTranslations(file)._catalog)  # type: ignore[attr-defined]


def test_the_required_languages_ship() -> None:
    assert set(REQUIRED) <= set(LANGUAGES)
    assert set(LANGUAGES) == set(LANGUAGE_NAMES)
    assert {"ar", "fa", "ur"} <= RTL_LANGUAGES
    for language in LANGUAGES:
        for domain, directory in CATALOGS.items():
            assert (directory / language / "LC_MESSAGES" / f"{domain}.mo").is_file(), language


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_is_translated_in_every_language(reason: Reason, language: str) -> None:
    """A reason added to the code without a message in a catalog fails here, by name."""
    entry = _catalog(language).get(f"{reason.value}\x04{reason.source_message}")
    assert entry, f"{language}: no message for {reason.value}"
    assert reason.message(language) == entry


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_station_string_and_service_name_is_translated(language: str) -> None:
    catalog = _catalog(language)
    missing = [key for key, text in STATION_TEXT.items() if not catalog.get(f"station\x04{text}")]
    assert missing == [], f"{language}: {missing}"
    assert set(station_text(language)) == set(STATION_TEXT)
    assert all(service_names(name)[language] for name in ("Healthcare", "Banking"))


@pytest.mark.parametrize("domain", sorted(CATALOGS))
@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_survive_translation(language: str, domain: str) -> None:
    """``{name}`` fields of a message are all in its translation (a plural form may leave
    out the number, as Arabic does for one and two); a translation adds none."""
    entries = _catalog(language, domain)
    assert len(entries) > 10
    for key, text in entries.items():
        if not key:
            continue
        if isinstance(key, tuple):
            singular_or_plural = _catalog("en", domain).get(key) or ""
            source = set(PLACEHOLDER.findall(key[0])) | set(PLACEHOLDER.findall(singular_or_plural))
            assert set(PLACEHOLDER.findall(text)) <= source, (language, key, text)
            continue
        msgid = str(key).split("\x04")[-1]
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(msgid)), (
            language,
            msgid,
            text,
        )


@pytest.mark.parametrize(("language", "forms"), sorted(PLURAL_COUNTS.items()))
def test_plural_forms_follow_each_language(language: str, forms: int) -> None:
    catalog = translations(language)
    assert f"nplurals={forms};" in catalog.info()["plural-forms"]
    used = {catalog.plural(n) for n in range(0, 112)}  # type: ignore[attr-defined]
    assert used == set(range(forms))
    plurals = 0
    for domain in CATALOGS:
        entries = _catalog(language, domain)
        singulars = {key[0] for key in entries if isinstance(key, tuple)}
        plurals += len(singulars)
        for singular in singulars:
            assert all(entries.get((singular, form)) for form in range(forms)), singular
    assert plurals, language


def test_russian_and_arabic_plurals_pick_the_right_form() -> None:
    def days(language: str, n: int) -> str:
        catalog = gettext.translation("fmcard", ISSUER_LOCALE_DIR, languages=[language])
        return catalog.ngettext("{n} day left", "{n} days left", n).format(n=n)

    assert days("ru", 1) == "остался 1 день"
    assert days("ru", 3) == "осталось 3 дня"
    assert days("ru", 11) == "осталось 11 дней"
    assert days("ru", 21) == "остался 21 день"
    assert days("ar", 2) == "بقي يومان"
    assert days("ar", 5) == "بقيت 5 أيام"
    assert days("en", 1) == "1 day left"


@pytest.mark.parametrize(
    ("language", "minutes", "hours", "days"),
    [
        ("en", "12 min", "3 h", "4 d"),
        ("zh", "12分钟", "3小时", "4天"),
        ("ru", "12 мин", "3 ч", "4 дн."),
        ("ko", "12분", "3시간", "4일"),
    ],
)
def test_ages_are_said_by_one_formatter_in_the_clerks_language(
    language: str, minutes: str, hours: str, days: str
) -> None:
    """``sync``, ``serve``, the check's verdict and the station page say an age with the
    same units (the check said "0 hours old" where sync said "1 min old")."""
    from datetime import timedelta

    from verifier.station_text import station_text
    from verifier.sync import human_duration

    said = [human_duration(timedelta(minutes=m), language) for m in (12, 180, 4 * 24 * 60)]
    assert said == [minutes, hours, days]
    page = station_text(language)
    units = [page[key].format(n=n) for key, n in (("unit_min", 12), ("unit_h", 3), ("unit_d", 4))]
    assert said == units


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", "ko"),
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr"),
        ("de-DE,de;q=0.9", "en"),
        ("de, ur;q=0.3, ar;q=0.4", "ar"),
        ("en;q=0.1, fa", "fa"),
        ("zh-TW", "zh"),
        ("zh-Hant-HK;q=0.5, ru;q=0.5", "zh"),
        ("*", "zh"),
        ("*, zh;q=0", "en"),
        ("tr;q=0, *;q=0.2, es;q=0.1", "zh"),
        ("es;q=0.1, *;q=0.2", "zh"),
        ("zh;q=0.1, en;q=0.1, *;q=0.05", "zh"),
        ("en;q=0.1, zh;q=0.1", "en"),
        ("hi;q=abc, es;q=0.2", "es"),
        ("es;q=2, hi;q=0.2", "hi"),
        ("", "en"),
        (None, "en"),
        (";;,,q=1", "en"),
    ],
)
def test_accept_language_is_negotiated_by_quality(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_negotiation_keeps_to_the_offered_languages_and_default() -> None:
    assert negotiate("ko, ru;q=0.5", ("zh", "en")) == "en"
    assert negotiate("ko, ru;q=0.5", ("zh", "ru")) == "ru"
    assert negotiate("x" * 5000, default="zh") == "zh"


def test_an_unknown_language_reads_english() -> None:
    assert Reason.EXPIRED.message("xx-YY") == "Card has expired."
    assert Reason.EXPIRED.message("") == "Card has expired."


def test_cli_speaks_korean_and_urdu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = make_card()
    authority = Authority()
    qr = encode_card(card, authority.issuing)
    path = tmp_path / "bundle.json"
    at = ["--at", NOW.isoformat(), "--bundle", str(path), "--service", "hc"]
    authority.bundle().save(path)
    assert cli.main([*at, qr, "--lang", "ko"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"VALID: {Reason.VALID.message('ko')}")
    assert "  국적: SAU" in out
    assert "  상태 목록: 3시간 전" in out
    assert cli.main([*at, qr, "--lang", "ru"]) == 0
    assert "  список статусов: 3 ч назад" in capsys.readouterr().out
    assert cli.main([*at, qr]) == 0
    assert "  status list: 3 h old" in capsys.readouterr().out
    authority.statuses[card.status.index] = CardStatus.REVOKED
    authority.bundle().save(path)
    assert cli.main([*at, qr, "--lang", "ur"]) == 1
    assert Reason.REVOKED.message("ur") in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main([*at, qr, "--lang", "xx"])


def test_catalogs_match_the_code_and_are_compiled() -> None:
    """Every message the code and templates mark is in every ``.po`` and translated, and
    every ``.mo`` is exactly what its ``.po`` compiles to."""
    pytest.importorskip("babel")
    from tools import catalogs

    for domain in catalogs.DOMAINS:
        assert catalogs.problems(domain) == [], domain.name
    assert catalogs.LANGUAGES == LANGUAGES


def test_the_catalog_check_catches_a_missing_entry_an_empty_one_and_a_stale_mo(
    tmp_path: Path,
) -> None:
    """The check the tests rely on, attacked: a copy of the counter's catalogs with one
    language missing a reason, one with a blank translation, one with an old ``.mo``."""
    pytest.importorskip("babel")
    import shutil
    from dataclasses import replace

    from tools import catalogs

    (domain,) = (d for d in catalogs.DOMAINS if d.name == DOMAIN)
    copy = replace(domain, locale_dir=tmp_path / "locale")
    shutil.copytree(domain.locale_dir, copy.locale_dir)
    assert catalogs.problems(copy) == []

    def edit(language: str, old: str, new: str) -> None:
        path = copy.po(language)
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    edit("ko", 'msgctxt "REVOKED"\n', 'msgctxt "REVOKED-GONE"\n')
    edit("tr", 'msgstr "Kart iptal edilmiş."', 'msgstr ""')
    catalogs.compile_all(copy)
    edit("hi", 'msgstr "कार्ड रद्द कर दिया गया है।"', 'msgstr "कार्ड रद्द है।"')
    found = "\n".join(catalogs.problems(copy))
    assert (
        "ko/LC_MESSAGES/fmcard-verifier.po: no entry for REVOKED|'Card has been revoked.'" in found
    )
    assert (
        "tr/LC_MESSAGES/fmcard-verifier.po: untranslated REVOKED|'Card has been revoked.'" in found
    )
    assert "hi/LC_MESSAGES/fmcard-verifier.mo: out of date" in found


def test_arbitrary_tags_share_the_shipped_catalogs() -> None:
    """Any tag reaches one of the shipped catalogs or plain English; the cache holds at most
    one catalog per shipped language whatever tags arrive."""
    from verifier import i18n

    for n in range(500):
        assert i18n.translations(f"x{n}-YY").gettext("Healthcare") == "Healthcare"
    assert i18n.translations("ko-KR") is i18n.translations("ko")
    assert i18n._catalog.cache_info().currsize <= len(LANGUAGES)


@pytest.mark.parametrize("holder_languages", [(), ("xx",), ("en", "klingon")])
def test_the_station_refuses_holder_languages_it_does_not_ship(
    holder_languages: tuple[str, ...],
) -> None:
    from verifier.errors import VerifierError
    from verifier.server import StationConfig

    with pytest.raises(VerifierError, match="holder's languages"):
        StationConfig("hc", holder_languages=holder_languages)
    assert StationConfig("hc", clerk_language="ur", holder_languages=("fa", "ko")).clerk_language
