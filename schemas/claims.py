"""Claim names of a card, in one place.

Registered JWT names (RFC 7519) where one fits, otherwise two-letter names: the QR is small,
and every byte of the payload costs QR area. ``docs/FORMAT.md`` gives the full table.
"""

from __future__ import annotations

VERSION = "v"  # format version of the claims, an integer; 1 today
ISSUER = "iss"  # issuer id, e.g. "CN-ZJ-YWPSB"
CODE = "sub"  # persistent foreigner code
SERIAL = "jti"  # card serial
ISSUED_AT = "iat"
VALID_FROM = "nbf"
EXPIRES_AT = "exp"
FAMILY_NAME = "fn"  # Latin, as in the passport's machine-readable zone
GIVEN_NAMES = "gn"
NATIVE_NAME = "nn"  # native script
CHINESE_NAME = "zh"
NATIONALITY = "na"  # ISO 3166-1 alpha-3 (or ICAO Doc 9303 code)
BIRTH_DATE = "bd"  # integer YYYYMMDD; 00 for an unknown month or day
ENTITLEMENTS = "en"  # {service: [] | [from, until]}
STATUS = "st"  # [status list id, index]
HOLDER_KEY = "cnf"  # phone cards: RFC 7800 {"jwk": ...}, the device key the proof is made with
DISCLOSURES = "_sd"  # phone cards: digests of the disclosures (docs/FORMAT.md section 11.3)
PORTRAIT = "pt"  # not a claim: the name of the portrait's disclosure

REQUIRED = (
    VERSION,
    ISSUER,
    CODE,
    SERIAL,
    ISSUED_AT,
    VALID_FROM,
    EXPIRES_AT,
    FAMILY_NAME,
    NATIONALITY,
    BIRTH_DATE,
    ENTITLEMENTS,
    STATUS,
)
DISCLOSED_ON_PHONE = (NATIONALITY, BIRTH_DATE, ENTITLEMENTS)
"""Claims a phone card (version 2) carries as disclosures, never in clear."""
REQUIRED_PHONE = (
    *(name for name in REQUIRED if name not in DISCLOSED_ON_PHONE),
    HOLDER_KEY,
    DISCLOSURES,
)
"""A phone card's required claims: the printed card's, less the disclosed ones, plus the
device key and the digests of the disclosures."""
OPTIONAL = (GIVEN_NAMES, NATIVE_NAME, CHINESE_NAME, HOLDER_KEY, DISCLOSURES)
KNOWN = frozenset(REQUIRED + OPTIONAL)
