"""The persistent foreigner code: generation, normalisation, validation and the check character."""

from __future__ import annotations

import itertools
import random

import pytest

from schemas import code
from schemas.errors import InvalidCodeError

ALPHABET = code.ALPHABET
_MOD = 31
_RADIX = 3


def _weighted_sum(text: str) -> int:
    """ISO/IEC 7064 MOD 31-3, written from the spec independently of the implementation.

    The rightmost (check) character has weight 3**0, the one before it 3**1, and so on; a valid
    code's weighted sum is 1 modulo 31.
    """
    length = len(text)
    return sum(ALPHABET.index(char) * _RADIX ** (length - 1 - i) for i, char in enumerate(text))


def _complete(body: str) -> str:
    """Return ``body`` plus its check character, found by asking the validator."""
    accepted = [body + char for char in ALPHABET if code.is_valid(body + char)]
    assert len(accepted) == 1, f"{body!r} has {len(accepted)} valid check characters"
    return accepted[0]


def _sample_codes(count: int) -> list[str]:
    """Half fresh codes from :func:`code.generate`, half from a seeded generator."""
    rng = random.Random(20261122)
    seeded = [_complete("".join(rng.choice(ALPHABET) for _ in range(9))) for _ in range(count // 2)]
    fresh = [code.generate() for _ in range(count - count // 2)]
    return seeded + fresh


CODES = _sample_codes(300)


def test_alphabet_has_31_distinct_characters_without_look_alikes() -> None:
    assert len(ALPHABET) == 31
    assert len(set(ALPHABET)) == 31
    for look_alike in "1ILOU":
        assert look_alike not in ALPHABET


def test_generate_gives_valid_codes_of_ten_alphabet_characters() -> None:
    for _ in range(500):
        generated = code.generate()
        assert len(generated) == code.CODE_LENGTH == 10
        assert set(generated) <= set(ALPHABET)
        assert code.validate(generated) == generated
        assert code.is_valid(generated)
        assert _weighted_sum(generated) % _MOD == 1


def test_generate_is_random_not_sequential() -> None:
    generated = [code.generate() for _ in range(1000)]
    # 45 bits of entropy: a repeat among 1000 codes has probability about 1.4e-8.
    assert len(set(generated)) == len(generated)
    # A counter (even from a random start) keeps the leading characters; random codes almost
    # never share a 4-character prefix with the previous code (p = 31**-4 per pair).
    shared_prefix = sum(1 for a, b in itertools.pairwise(generated) if a[:4] == b[:4])
    assert shared_prefix < 5
    # Every position takes many values (each of the 31 is expected about 32 times).
    for position in range(9):
        assert len({g[position] for g in generated}) >= 25
    assert generated != sorted(generated)


def test_every_body_has_exactly_one_check_character() -> None:
    rng = random.Random(7)
    for _ in range(300):
        body = "".join(rng.choice(ALPHABET) for _ in range(9))
        completed = _complete(body)
        assert _weighted_sum(completed) % _MOD == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("7KQ4M X9TRB", "7KQ4MX9TRB", id="space"),
        pytest.param("7KQ4M-X9TRB", "7KQ4MX9TRB", id="hyphen"),
        pytest.param(" 7kq4m - x9trb\n", "7KQ4MX9TRB", id="mixed-whitespace-hyphen-lower"),
        pytest.param("7kq4mx9trb", "7KQ4MX9TRB", id="lower-case"),
        pytest.param("O0oO0", "00000", id="letter-o-read-as-zero"),
        pytest.param("", "", id="empty"),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert code.normalise(text) == expected


def test_validate_accepts_reading_forms_of_a_code() -> None:
    for valid in CODES[:50]:
        assert code.validate(valid.lower()) == valid
        assert code.validate(code.format_for_reading(valid)) == valid
        assert code.validate(f"{valid[:5]}-{valid[5:]}") == valid
        assert code.validate(f"  {valid[:3]} {valid[3:7]} {valid[7:]} ") == valid
        with_letter_o = valid.replace("0", "O")
        assert code.validate(with_letter_o) == valid
        assert code.validate(with_letter_o.lower()) == valid


def test_check_catches_every_single_substitution() -> None:
    checked = 0
    for valid in CODES:
        for position in range(code.CODE_LENGTH):  # the check position included
            for char in ALPHABET:
                if char == valid[position]:
                    continue
                mistyped = valid[:position] + char + valid[position + 1 :]
                assert not code.is_valid(mistyped), (valid, position, char)
                checked += 1
    assert checked == len(CODES) * code.CODE_LENGTH * 30


def test_check_catches_every_adjacent_transposition() -> None:
    checked = 0
    for valid in CODES:
        for position in range(code.CODE_LENGTH - 1):  # the last pair includes the check
            a, b = valid[position], valid[position + 1]
            if a == b:
                continue
            swapped = valid[:position] + b + a + valid[position + 2 :]
            assert not code.is_valid(swapped), (valid, position)
            checked += 1
    assert checked > len(CODES) * 8


def test_check_catches_every_adjacent_transposition_of_every_character_pair() -> None:
    # Exhaustive over the alphabet: every ordered pair (a, b) of distinct characters at every
    # adjacent position, the last body character and the check character included.
    base = CODES[0][:9]
    pairs_seen: dict[int, set[tuple[str, str]]] = {position: set() for position in range(9)}
    for position in range(8):  # both characters in the body
        for a in ALPHABET:
            for b in ALPHABET:
                if a != b:
                    valid = _complete(base[:position] + a + b + base[position + 2 :])
                    swapped = valid[:position] + b + a + valid[position + 2 :]
                    assert not code.is_valid(swapped), (valid, position)
                    pairs_seen[position].add((a, b))
    for a in ALPHABET:  # last body character and check character
        for first in ALPHABET:  # the first character's weight makes every check value occur
            valid = _complete(first + base[1:8] + a)
            b = valid[9]
            if a != b:
                swapped = valid[:8] + b + a
                assert not code.is_valid(swapped), valid
                pairs_seen[8].add((a, b))
    for position, seen in pairs_seen.items():
        assert len(seen) == 31 * 30, position


@pytest.mark.parametrize("length", [0, 1, 9, 11, 20])
def test_wrong_length_is_refused_with_the_length(length: int) -> None:
    text = (CODES[0] * 2)[:length]
    with pytest.raises(InvalidCodeError, match=rf"has 10 characters, got {length}\b"):
        code.validate(text)
    assert not code.is_valid(text)


@pytest.mark.parametrize("bad", ["1", "I", "L", "U", "i", "l", "u", "*", "É"])
def test_characters_outside_the_alphabet_are_named(bad: str) -> None:
    valid = CODES[0]
    text = valid[:3] + bad + valid[4:]
    with pytest.raises(InvalidCodeError, match=r"character 4 \(") as exc_info:
        code.validate(text)
    message = str(exc_info.value)
    assert repr(bad.upper()) in message
    assert "not used in foreigner codes" in message
    assert "1, I, L or U" in message


def test_bad_check_character_is_refused_with_a_clear_message() -> None:
    valid = CODES[0]
    wrong = ALPHABET[(ALPHABET.index(valid[-1]) + 1) % len(ALPHABET)]
    with pytest.raises(InvalidCodeError, match="check character does not match"):
        code.validate(valid[:-1] + wrong)


def test_invalid_code_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="10 characters"):
        code.validate("ABC")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7KQ4MX9TRB", "7KQ4M X9TRB"), ("0000000000", "00000 00000")],
)
def test_format_for_reading(text: str, expected: str) -> None:
    assert code.format_for_reading(text) == expected


def test_format_for_reading_round_trips_through_validate() -> None:
    for valid in CODES:
        shown = code.format_for_reading(valid)
        assert len(shown) == 11
        assert shown[5] == " "
        assert shown.replace(" ", "") == valid
        assert code.validate(shown) == valid
