# ruff: noqa: RUF001, RUF002 - the dotless i is the point of this module.
"""Latin names in capitals, as a passport's visual inspection zone prints them.

Passports print the holder's Latin name in capitals, and a counter compares the card with
the passport, so the card and the wallet passes show the same capitals. Capitals are
language-dependent for one letter: Turkish and Azerbaijani have a dotted and a dotless i,
and their passports print ``i`` as ``İ`` and ``ı`` as ``I`` (``Çelik`` is ``ÇELİK``, not
``ÇELIK``, which reads as another name). Every other nationality gets Unicode's default
mapping, which is also what their passports print (German ``ß`` becomes ``SS``). The
names are signed as registered; the console registers them in capitals by this same rule.
"""

from __future__ import annotations

DOTTED_I_NATIONALITIES = frozenset({"TUR", "AZE"})
"""ICAO codes of the states whose alphabets have a dotted ``i``/``İ`` and a dotless ``ı``/``I``."""
_TURKIC = str.maketrans({"i": "İ", "ı": "I"})


def viz_capitals(name: str, nationality: str) -> str:
    """``name`` in capitals for a holder of ``nationality`` (ICAO alpha-3 code)."""
    if nationality.upper() in DOTTED_I_NATIONALITIES:
        name = name.translate(_TURKIC)
    return name.upper()
