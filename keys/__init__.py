"""Keys: generation, protection at rest, signing, JWKS, trust lists and status lists.

May import :mod:`schemas`; never imports the issuer stack.
"""

from __future__ import annotations

from keys.cards import encode_card
from keys.errors import (
    KeyFileError,
    KeysError,
    PassphraseError,
    RollbackError,
    SignedDocumentError,
    StatusListError,
    TrustListExpiredError,
    UnsupportedKeyError,
)
from keys.jwk import generate, key_thumbprint, kid_of, public_jwk, public_key_from_jwk
from keys.jws import VerificationKey
from keys.keyring import IssuerInfo, KeyRing
from keys.signer import KeySigner, Signer
from keys.status_list import CardStatus, StatusList, read_status_list, sign_status_list
from keys.store import Passphrase
from keys.trust_list import (
    KeyState,
    TrustedIssuer,
    TrustedKey,
    TrustList,
    read_trust_list,
    sign_trust_list,
)

__all__ = [
    "CardStatus",
    "IssuerInfo",
    "KeyFileError",
    "KeyRing",
    "KeySigner",
    "KeyState",
    "KeysError",
    "Passphrase",
    "PassphraseError",
    "RollbackError",
    "SignedDocumentError",
    "Signer",
    "StatusList",
    "StatusListError",
    "TrustList",
    "TrustListExpiredError",
    "TrustedIssuer",
    "TrustedKey",
    "UnsupportedKeyError",
    "VerificationKey",
    "encode_card",
    "generate",
    "key_thumbprint",
    "kid_of",
    "public_jwk",
    "public_key_from_jwk",
    "read_status_list",
    "read_trust_list",
    "sign_status_list",
    "sign_trust_list",
]
