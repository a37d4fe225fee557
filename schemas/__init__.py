"""The card data model and wire format shared by the issuer and the verifier.

Imports nothing else of fmcard and nothing outside the standard library.
"""

from __future__ import annotations

from schemas.card import BirthDate, Card, Entitlement, StatusRef
from schemas.errors import EncodingError, InvalidClaimError, InvalidCodeError, SchemaError
from schemas.qrtext import QRParts
from schemas.services import DEFAULT_CATALOGUE, Service

__all__ = [
    "DEFAULT_CATALOGUE",
    "BirthDate",
    "Card",
    "EncodingError",
    "Entitlement",
    "InvalidClaimError",
    "InvalidCodeError",
    "QRParts",
    "SchemaError",
    "Service",
    "StatusRef",
]
