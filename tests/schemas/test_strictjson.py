"""Strict JSON for signed documents: one writer, and a reader that refuses ambiguity."""

from __future__ import annotations

from typing import Any

import pytest

from schemas import strictjson
from schemas.errors import EncodingError


def test_dumps_is_compact_utf8_in_the_given_order() -> None:
    value = {"z": 1, "a": [1, 2], "name": "穆罕默德", "n": None, "t": True}
    out = strictjson.dumps(value)
    assert out == '{"z":1,"a":[1,2],"name":"穆罕默德","n":null,"t":true}'.encode()
    assert strictjson.loads(out) == value


def test_dumps_refuses_nan() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        strictjson.dumps({"x": float("nan")})


@pytest.mark.parametrize("data", [b'{"a":1}', '{"a":1}', bytearray(b'{"a":1}')])
def test_loads_accepts_bytes_and_str(data: bytes | str) -> None:
    assert strictjson.loads(data) == {"a": 1}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"a":1,"a":1}', id="same-value"),
        pytest.param(b'{"a":1,"a":2}', id="top-level"),
        pytest.param(b'{"x":{"k":"v","k":"w"}}', id="nested"),
        pytest.param(b'{"x":[{"k":1,"k":2}]}', id="in-array"),
        pytest.param(b'{"a":1,"\\u0061":2}', id="escaped-name"),
    ],
)
def test_duplicate_member_names_are_refused(data: bytes) -> None:
    with pytest.raises(EncodingError, match="twice"):
        strictjson.loads(data)


@pytest.mark.parametrize(
    "data",
    [b'{"x":NaN}', b'{"x":Infinity}', b'{"x":-Infinity}', b'{"x":[NaN]}'],
)
def test_non_standard_constants_are_refused(data: bytes) -> None:
    with pytest.raises(EncodingError, match="non-standard constant"):
        strictjson.loads(data)


@pytest.mark.parametrize(
    "number", ["1.0", "0.5", "-0.0", "1e3", "1E3", "1e-3", "2.5E+10", "10000000000000000000.0"]
)
def test_numbers_with_fraction_or_exponent_are_refused(number: str) -> None:
    with pytest.raises(EncodingError, match="non-integer number"):
        strictjson.loads('{"x":' + number + "}")


@pytest.mark.parametrize(
    "number", ["0", "-1", "9" * 19, "-" + "9" * 19, "1700000000", "9223372036854775807"]
)
def test_integers_up_to_19_digits_are_accepted(number: str) -> None:
    assert strictjson.loads('{"x":' + number + "}") == {"x": int(number)}


@pytest.mark.parametrize("number", ["1" + "0" * 19, "-" + "9" * 20, "9" * 5000])
def test_huge_integers_are_refused(number: str) -> None:
    with pytest.raises(EncodingError, match="too many digits"):
        strictjson.loads('{"x":' + number + "}")


def _nested(depth: int, *, kind: str) -> str:
    """A document whose nesting depth (objects and arrays, the top object included) is depth."""
    inner = "1"
    for _ in range(depth - 1):
        inner = '{"k":' + inner + "}" if kind == "object" else "[" + inner + "]"
    return '{"k":' + inner + "}"


@pytest.mark.parametrize("kind", ["object", "array"])
def test_nesting_up_to_the_limit_is_accepted(kind: str) -> None:
    assert strictjson.MAX_DEPTH == 8
    assert isinstance(strictjson.loads(_nested(strictjson.MAX_DEPTH, kind=kind)), dict)


@pytest.mark.parametrize("kind", ["object", "array"])
def test_nesting_beyond_the_limit_is_refused(kind: str) -> None:
    with pytest.raises(EncodingError, match="deeper than 8"):
        strictjson.loads(_nested(strictjson.MAX_DEPTH + 1, kind=kind))


def test_depth_limit_is_configurable_and_can_be_skipped() -> None:
    document = _nested(12, kind="object")
    with pytest.raises(EncodingError, match="deeper than 3"):
        strictjson.loads(_nested(4, kind="array"), max_depth=3)
    assert strictjson.loads(_nested(3, kind="array"), max_depth=3) == {"k": [[1]]}
    assert isinstance(strictjson.loads(document, max_depth=None), dict)


def test_pathological_nesting_is_an_encoding_error_not_a_crash() -> None:
    with pytest.raises(EncodingError):
        strictjson.loads('{"k":' + "[" * 100_000 + "]" * 100_000 + "}", max_depth=None)


@pytest.mark.parametrize(
    "data",
    [b"[]", b"[1]", b"1", b'"text"', b"null", b"true", b" []"],
)
def test_top_level_must_be_an_object(data: bytes) -> None:
    with pytest.raises(EncodingError, match="not an object"):
        strictjson.loads(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"a":"\xff"}', id="ff-byte"),
        pytest.param(b'{"a":"\xc0\xaf"}', id="overlong-slash"),
        pytest.param(b'{"a":"\xe6\x97"}', id="truncated-sequence"),
        pytest.param(b'{"\x80":1}', id="lone-continuation-in-name"),
        pytest.param(b'{"a":"\xf4\x90\x80\x80"}', id="above-U+10FFFF"),
        pytest.param(b'{"a":"\xed\xa0\x80"}', id="encoded-surrogate-U+D800"),
        pytest.param(b"\xff\xfe" + '{"a":1}'.encode("utf-16-le"), id="utf-16-with-bom"),
        pytest.param('{"a":1}'.encode("utf-16-le"), id="utf-16-le-without-bom"),
        pytest.param('{"a":1}'.encode("utf-32-be"), id="utf-32-be"),
    ],
)
def test_bytes_that_are_not_utf8_are_refused(data: bytes) -> None:
    # RFC 8259 section 8.1: JSON exchanged between systems is UTF-8. Each of these byte strings
    # is either not well-formed UTF-8 (RFC 3629: bad bytes, overlong forms, encoded surrogates,
    # code points above U+10FFFF) or, read as UTF-8, not JSON (UTF-16/32 text is full of NULs),
    # so a strict reader must refuse every one; guessing another encoding is ambiguity.
    with pytest.raises(EncodingError):
        strictjson.loads(data)


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b'{"a":1,}', b"{'a':1}", b'{"a":1} {}', b'{"a":01}', b"{a:1}"],
)
def test_malformed_json_is_refused(data: bytes) -> None:
    with pytest.raises(EncodingError, match="not valid JSON"):
        strictjson.loads(data)


def test_errors_are_schema_errors_and_value_errors() -> None:
    with pytest.raises(ValueError, match="twice"):
        strictjson.loads(b'{"a":1,"a":2}')


def test_round_trip_of_a_typical_document() -> None:
    value: dict[str, Any] = {
        "v": 1,
        "iss": "CN-ZJ-YWPSB",
        "en": {"hc": [], "bk": [1767225600, 1798761600]},
        "st": ["1", 7],
        "nn": "محمد\u200cعبدالله",  # noqa: RUF001
        "n": -(10**18),
    }
    assert strictjson.loads(strictjson.dumps(value)) == value
