"""JSON for signed documents: one canonical writer and a reader that refuses ambiguity.

Signed payloads are read with :func:`loads`, which rejects duplicate member names (two parsers
could otherwise see two different cards in one signed payload), ``NaN``/``Infinity``, numbers
with a fraction or exponent where the format has only integers, integers longer than 19 digits,
nesting deeper than :data:`MAX_DEPTH`, and anything but an object at the top.
"""

from __future__ import annotations

import json
from typing import Any

from schemas.errors import EncodingError

MAX_DEPTH = 8
_MAX_INT_DIGITS = 19


def dumps(value: Any) -> bytes:
    """Return compact UTF-8 JSON with a stable member order (the order given)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def loads(data: bytes | str, *, max_depth: int | None = MAX_DEPTH) -> dict[str, Any]:
    """Return the JSON object in ``data``; raise :class:`EncodingError` for anything unusual.

    ``max_depth=None`` skips the nesting check for callers whose schema check refuses every
    nested value anyway (the card reader): the parser's own recursion limit still applies.
    """
    value = _parse(data)
    if not isinstance(value, dict):
        raise EncodingError("JSON document is not an object")
    if max_depth is not None and _depth(value) > max_depth:
        raise EncodingError(f"JSON nesting is deeper than {max_depth}")
    return value


def loads_value(data: bytes | str) -> object:
    """Return the JSON value in ``data`` (any type at the top, with :func:`loads`'s rules):
    a disclosure's value is a string, an integer or an object."""
    value = _parse(data)
    if _depth(value) > MAX_DEPTH:
        raise EncodingError(f"JSON nesting is deeper than {MAX_DEPTH}")
    return value


def _parse(data: bytes | str) -> object:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")  # strict: no UTF-16/32 guessing, no surrogates
        except UnicodeDecodeError:
            raise EncodingError("JSON is not valid UTF-8") from None
    try:
        value: object = json.loads(
            data,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_float=_reject_float,
            parse_int=_bounded_int,
        )
    except EncodingError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise EncodingError(f"not valid JSON: {type(exc).__name__}") from None
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise EncodingError(f"JSON object has the member {key!r} twice")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise EncodingError(f"JSON has the non-standard constant {name}")


def _reject_float(text: str) -> Any:
    raise EncodingError(f"JSON has a non-integer number {text[:20]!r}")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise EncodingError("JSON has an integer with too many digits")
    return int(text)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0
