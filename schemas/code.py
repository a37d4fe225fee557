"""The persistent foreigner code: one person, one code, for life.

A code is ten characters: nine random characters and one check character, drawn from a
31-character alphabet that leaves out the look-alikes ``1 I L O U`` (a typed ``O`` is read as
``0``). It is never derived
from the passport, the name or the birth date and never issued in sequence, so it reveals
nothing and cannot be guessed from a neighbour's code.

The check character follows the ISO/IEC 7064 pure-system construction with modulus 31 and
radix 3 ("MOD 31-3"): the weighted sum of the character values times powers of 3 plus the
check value is 1 modulo 31. Because 31 is prime, larger than every character value, and 3 is a
primitive root modulo 31, the check catches every single-character substitution (check
character included) and every transposition of two adjacent characters; a test proves this
exhaustively over the alphabet. (The hybrid system MOD 31,30 was measured to miss about one
adjacent transposition in 500, so it is not used.)

Codes are shown in two groups of five (``7KQ4M X9TRB``) for reading aloud; input is
normalised by dropping spaces and hyphens and upper-casing.
"""

from __future__ import annotations

import secrets

from schemas.errors import InvalidCodeError

ALPHABET = "023456789ABCDEFGHJKMNPQRSTVWXYZ"
"""The 31 code characters: digits without 1 and the Latin capitals without I, L, O and U."""

CODE_LENGTH = 10
"""Total length, check character included."""

_MODULUS = 31  # prime, and equal to the alphabet size so that every check value has a character
_RADIX = 3  # a primitive root modulo 31
_VALUE = {char: index for index, char in enumerate(ALPHABET)}


def _check_value(body: str) -> int:
    """Return the value of the check character for ``body`` (ISO/IEC 7064 pure system)."""
    total = 0
    for char in body:
        total = (total + _VALUE[char]) * _RADIX % _MODULUS
    return (1 - total) % _MODULUS


def generate() -> str:
    """Return a new random code (45 bits of entropy from :mod:`secrets`)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH - 1))
    return body + ALPHABET[_check_value(body)]


def normalise(text: str) -> str:
    """Drop spaces and hyphens, upper-case ``text`` and read ``O`` as ``0``; does not validate."""
    return "".join(text.split()).replace("-", "").upper().replace("O", "0")


def validate(text: str) -> str:
    """Return the normalised code, or raise :class:`InvalidCodeError` saying what is wrong."""
    code = normalise(text)
    if len(code) != CODE_LENGTH:
        raise InvalidCodeError(f"a foreigner code has {CODE_LENGTH} characters, got {len(code)}")
    for position, char in enumerate(code, start=1):
        if char not in _VALUE:
            raise InvalidCodeError(
                f"character {position} ({char!r}) is not used in foreigner codes (no 1, I, L or U)"
            )
    if ALPHABET[_check_value(code[:-1])] != code[-1]:
        raise InvalidCodeError("check character does not match: the code was mistyped")
    return code


def is_valid(text: str) -> bool:
    """Return whether ``text`` is a valid code after normalisation."""
    try:
        validate(text)
    except InvalidCodeError:
        return False
    return True


def format_for_reading(code: str) -> str:
    """Return ``code`` in two groups of five characters, e.g. ``7KQ4M X9TRB``."""
    return f"{code[:5]} {code[5:]}"
