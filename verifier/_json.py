"""JSON read from outside (an HTTP body, a bundle, a policy file), refused when nested deeply.

``json.loads`` answers 8,000 ``[`` with a :class:`RecursionError`, which is not a
:class:`ValueError` and so slipped past every ``except ValueError`` of its callers: the
station dropped the connection with a traceback and ``sync`` crashed. :func:`loads` turns it,
and any nesting deeper than any document of ours, into a :class:`ValueError`. Integers longer
than Python's 4,300-digit limit are a :class:`ValueError` already.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32
"""Deeper than any bundle, policy or request (a bundle's policies nest five levels)."""


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises :class:`ValueError` for anything nested too deeply."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    if depth(value) > max_depth:
        raise ValueError(f"the JSON is nested deeper than {max_depth} levels")
    return value


def depth(value: Any) -> int:
    """How deeply ``value`` nests arrays and objects; iterative, so any depth is safe."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level + 1)
            pending.extend((child, level + 1) for child in item)
    return deepest
