"""Base45 (RFC 9285): the examples of the RFC, round trips and strict, canonical decoding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import base45
from schemas.errors import EncodingError

CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def test_charset_is_the_rfc_alphabet() -> None:
    assert base45.CHARSET == CHARSET
    assert len(set(CHARSET)) == 45


@pytest.mark.parametrize(
    ("data", "text"),
    [
        pytest.param(b"AB", "BB8", id="rfc9285-4.3-AB"),
        pytest.param(b"Hello!!", "%69 VD92EX0", id="rfc9285-4.3-Hello"),
        pytest.param(b"base-45", "UJCLQE7W581", id="rfc9285-4.3-base-45"),
        pytest.param(b"ietf!", "QED8WEX0", id="rfc9285-4.4-ietf"),
        pytest.param(b"", "", id="empty"),
        pytest.param(b"\x00", "00", id="zero-byte"),
        pytest.param(b"\x00\x00", "000", id="zero-pair"),
        pytest.param(b"\xff", "U5", id="largest-byte"),
        pytest.param(b"\xff\xff", "FGW", id="largest-pair"),
    ],
)
def test_known_encodings(data: bytes, text: str) -> None:
    assert base45.encode(data) == text
    assert base45.decode(text) == data


@settings(deadline=None, max_examples=300)
@given(st.binary(min_size=0, max_size=600))
def test_round_trip(data: bytes) -> None:
    text = base45.encode(data)
    assert len(text) == 3 * (len(data) // 2) + 2 * (len(data) % 2)
    assert set(text) <= set(CHARSET)
    assert base45.decode(text) == data


def test_round_trip_of_every_length_up_to_600() -> None:
    for size in range(601):
        data = bytes((i * 97 + size) & 0xFF for i in range(size))
        assert base45.decode(base45.encode(data)) == data


@pytest.mark.parametrize("text", ["0", "BB8B", "%69 VD92EX0AB", "0000"])
def test_length_3n_plus_1_is_refused(text: str) -> None:
    assert len(text) % 3 == 1
    with pytest.raises(EncodingError, match="3n\\+1"):
        base45.decode(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("bb8", id="lower-case"),
        pytest.param("BBb", id="lower-case-last"),
        pytest.param("hello!", id="lower-case-word"),
        pytest.param("BB=", id="equals"),
        pytest.param("BB_", id="underscore"),
        pytest.param("A\nB", id="newline"),
        pytest.param("AB\x00", id="nul"),
        pytest.param("#0", id="hash-in-pair"),
        pytest.param("BB8,0", id="comma-in-final-pair"),
    ],
)
def test_characters_outside_the_alphabet_are_refused(text: str) -> None:
    with pytest.raises(EncodingError, match="outside the Base45 alphabet"):
        base45.decode(text)


@pytest.mark.parametrize("text", ["BBÄ", "ÄB", "BB8\u00a0B", "\uff11\uff12\uff13", "BB\U0001f600"])
def test_non_ascii_is_refused(text: str) -> None:
    with pytest.raises(EncodingError, match="non-ASCII"):
        base45.decode(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("GGW", id="65536"),
        pytest.param(":::", id="91124-largest"),
        pytest.param(":: ", id="74924"),
        pytest.param("000GGW", id="second-group"),
        pytest.param("GGW000", id="first-group"),
        pytest.param("GGW00", id="first-group-before-pair"),
    ],
)
def test_group_value_above_65535_is_refused(text: str) -> None:
    with pytest.raises(EncodingError, match="exceeds two bytes"):
        base45.decode(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("V5", id="256"),
        pytest.param("::", id="2024"),
        pytest.param("000::", id="after-group"),
        pytest.param("FGWV5", id="after-largest-group"),
    ],
)
def test_final_pair_above_255_is_refused(text: str) -> None:
    with pytest.raises(EncodingError, match="exceeds one byte"):
        base45.decode(text)


def test_group_boundaries_are_exact() -> None:
    # 65535 = 15 + 16*45 + 32*2025 ("FGW") is the largest group; 65536 ("GGW") is refused.
    assert base45.decode("FGW") == b"\xff\xff"
    assert base45.decode("U5") == b"\xff"


def _check_canonical(text: str) -> None:
    """Either ``text`` is refused, or it decodes to bytes that encode back to exactly it."""
    try:
        data = base45.decode(text)
    except EncodingError:
        return
    assert base45.encode(data) == text
    assert base45.decode(base45.encode(data)) == data


@settings(deadline=None, max_examples=400)
@given(st.text(alphabet=CHARSET, max_size=60))
def test_every_accepted_text_is_canonical(text: str) -> None:
    _check_canonical(text)


@settings(deadline=None, max_examples=300)
@given(st.text(alphabet=CHARSET + "abz=_#\x00\x7fé", max_size=30))
def test_decode_refuses_or_is_canonical_for_any_text(text: str) -> None:
    _check_canonical(text)


@settings(deadline=None, max_examples=300)
@given(st.lists(st.integers(min_value=0, max_value=44), min_size=3, max_size=3))
def test_three_symbol_groups_decode_exactly_when_they_fit_in_two_bytes(
    digits: list[int],
) -> None:
    text = "".join(CHARSET[d] for d in digits)
    value = digits[0] + 45 * digits[1] + 2025 * digits[2]
    if value <= 0xFFFF:
        assert base45.decode(text) == value.to_bytes(2, "big")
    else:
        with pytest.raises(EncodingError):
            base45.decode(text)


def test_every_two_symbol_pair_decodes_exactly_when_it_fits_in_one_byte() -> None:
    accepted = 0
    for first, a in enumerate(CHARSET):
        for second, b in enumerate(CHARSET):
            value = first + 45 * second
            if value <= 0xFF:
                assert base45.decode(a + b) == bytes([value])
                accepted += 1
            else:
                with pytest.raises(EncodingError):
                    base45.decode(a + b)
    assert accepted == 256
