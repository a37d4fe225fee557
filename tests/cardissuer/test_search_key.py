# ruff: noqa: RUF001 - look-alike letters in other scripts are what these tests are about.
"""The search key of a name: which spellings of one name read alike, and which do not."""

from __future__ import annotations

import unicodedata

import pytest

from cardissuer.services.search_key import FOLDED_LENGTH, fold, folded_names

SAME = [
    # Turkish and Azerbaijani i: dotted capital, dotless small, plain I and i read alike.
    ("Çelik", "ÇELİK"),
    ("Çelik", "celik"),
    ("Çelik", "CELIK"),
    ("İnci", "inci"),
    ("İnci", "INCI"),
    ("Alı", "Ali"),
    ("ALİ", "alı"),
    ("Şükrü Işık", "sukru isik"),
    ("Ağaoğlu", "AGAOGLU"),
    ("Əliyev", "ƏLİYEV"),
    # German sharp s, and accented Latin.
    ("Straße", "STRASSE"),
    ("STRAẞE", "strasse"),
    ("Gómez Peña", "GOMEZ PENA"),
    ("François", "francois"),
    ("Søren Ærø", "soren aero"),
    ("Łukasz Wałęsa", "lukasz walesa"),
    ("Đorđević", "dordevic"),
    ("Håkon Þórðarson", "hakon thordarson"),
    ("Œuvray", "oeuvray"),
    ("Dvořák", "DVORAK"),
    # Vietnamese stacked diacritics.
    ("Nguyễn Thị Ngọc Ánh", "nguyen thi ngoc anh"),
    ("Trần Đức Thắng", "TRAN DUC THANG"),
    # Greek: tonos, dialytika, final sigma.
    ("Σωκράτης", "ΣΩΚΡΑΤΗΣ"),
    ("Άννα", "αννα"),
    ("Ευτυχία Ζαΐμη", "ευτυχια ζαιμη"),
    # Cyrillic ё.
    ("Семён Воробьёв", "семен воробьев"),
    ("Пётр", "ПЕТР"),
    # Arabic: alef variants, teh marbuta, alef maksura, Persian yeh and kaf, harakat, tatweel.
    ("أحمد", "احمد"),
    ("إبراهيم", "ابراهيم"),
    ("آمنة", "امنه"),
    ("ٱلله", "الله"),
    ("فاطمة", "فاطمه"),
    ("مصطفى", "مصطفي"),
    ("علی", "علي"),
    ("کریم", "كريم"),
    ("مُحَمَّد", "محمد"),
    ("محـــمد", "محمد"),
    ("زهرۀ", "زهره"),
    # Compatibility forms: full-width letters and digits, ligatures, presentation forms.
    ("SMITH", "ｓｍｉｔｈ"),
    ("ZHANG 3", "ＺＨＡＮＧ　３"),
    ("Rafiq", "Raﬁq"),
    ("سمير", "ﺳﻤﻴﺮ"),
    # Separators: hyphens and dashes, apostrophes, invisible joiners, white space.
    ("AL-HASHIMI", "al hashimi"),
    ("Jean‑Luc", "JEAN LUC"),
    ("O'Brien", "OBRIEN"),
    ("D’Angelo", "dangelo"),
    ("Мар'яна", "МАРЯНА"),
    ("عبد\u200cالله", "عبدالله"),
    ("  VAN   DER\tBERG ", "van der berg"),
]

DIFFERENT = [
    ("Müller", "mueller"),  # no German transliteration: ü is u
    ("Ørsted", "oersted"),
    ("Straße", "strase"),  # ß is two letters
    ("Иванов", "ivanov"),  # no transliteration between scripts
    ("محمد", "محمود"),
    ("Smith", "Smyth"),
    ("王伟", "王偉"),  # simplified and traditional characters are different characters
    ("Ali", "Alia"),
    ("हिंदी", "हिदी"),  # Devanagari marks are vowels and nasals: kept
    ("กิ่ง", "กง"),  # Thai vowel and tone marks: kept
]


@pytest.mark.parametrize(("registered", "typed"), SAME)
def test_spellings_of_one_name_read_alike(registered: str, typed: str) -> None:
    assert fold(registered) == fold(typed), (fold(registered), fold(typed))


@pytest.mark.parametrize(("registered", "typed"), DIFFERENT)
def test_different_names_stay_different(registered: str, typed: str) -> None:
    assert fold(registered) != fold(typed)


@pytest.mark.parametrize("text", [text for pair in SAME + DIFFERENT for text in pair])
def test_a_key_is_its_own_key_composed_lower_case_and_trimmed(text: str) -> None:
    """Folding twice changes nothing (the search folds what the officer typed, the registry
    what was registered), and a key has no capital, no decomposed letter, no stray space."""
    key = fold(text)
    assert fold(key) == key
    assert unicodedata.is_normalized("NFC", key)
    assert key == " ".join(key.split())
    assert key == key.casefold()


def test_hangul_and_chinese_are_kept_as_written() -> None:
    assert fold("윤서준") == "윤서준"  # syllables, not their decomposed letters
    assert fold("欧阳娜娜") == "欧阳娜娜"


def test_separators_only_fold_to_nothing_and_long_keys_are_cut() -> None:
    assert fold(" - ' ـ ") == ""
    assert fold("ﷺ" * 64) == fold("ﷺ" * 64)[:FOLDED_LENGTH]
    assert len(fold("ﷺ" * 64)) == FOLDED_LENGTH


def test_a_person_s_keys_are_the_keys_of_each_name_and_null_for_no_name() -> None:
    names = {
        "family_name": "ÇELİK",
        "given_names": "AYŞE",
        "native_name": None,
        "chinese_name": "切利克",
    }
    assert folded_names(names) == {
        "folded_family": "celik",
        "folded_given": "ayse",
        "folded_native": None,
        "folded_chinese": "切利克",
    }
