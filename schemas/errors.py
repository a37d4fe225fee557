"""Errors raised by the card data model and wire format.

Tree::

    SchemaError                 anything wrong with card data or its encoding
    ├── InvalidClaimError       one claim is missing, of the wrong type or out of range
    ├── InvalidCodeError        a persistent foreigner code is malformed
    └── EncodingError           QR text, Base45 or JSON is malformed or too large
"""

from __future__ import annotations


class SchemaError(ValueError):
    """Base class for every error of the ``schemas`` package."""


class InvalidClaimError(SchemaError):
    """A claim of a card is missing, has the wrong type or an impossible value.

    ``claim`` names the field at fault (wire name, e.g. ``"exp"`` or ``"en.hc"``) so that an
    error message or an API problem response can point at it.
    """

    def __init__(self, claim: str, message: str) -> None:
        super().__init__(f"{claim}: {message}")
        self.claim = claim
        self.message = message


class InvalidCodeError(SchemaError):
    """A persistent foreigner code has the wrong length, alphabet or check character."""


class EncodingError(SchemaError):
    """QR text, Base45, the binary container or a JSON document cannot be decoded."""
