"""Who signs: a small protocol so that a key file and a hardware module sign alike.

A :class:`Signer` produces the raw JWS signature (``r || s`` for ES256, 64 bytes for EdDSA) of
a signing input. :class:`KeySigner` signs with an in-memory key through pyjwt's algorithm
objects, so the bytes are exactly what pyjwt produces and verifies; an HSM-backed signer only
has to implement the same three members.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from keys.jwk import PrivateKey, PublicKey, algorithm_of, kid_of

_ES256 = ECAlgorithm(ECAlgorithm.SHA256)
_EDDSA = OKPAlgorithm()


class Signer(Protocol):
    """Anything that can produce JWS signatures for one key."""

    @property
    def kid(self) -> str: ...

    @property
    def algorithm(self) -> str: ...

    @property
    def public_key(self) -> PublicKey: ...

    def sign(self, signing_input: bytes) -> bytes:
        """Return the raw JWS signature of ``signing_input``."""
        ...


class KeySigner:
    """A :class:`Signer` over a private key held in memory."""

    __slots__ = ("_algorithm", "_key", "_kid")

    def __init__(self, key: PrivateKey) -> None:
        self._key = key
        self._algorithm = algorithm_of(key)
        self._kid = kid_of(key)

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def algorithm(self) -> str:
        return self._algorithm

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key()

    def sign(self, signing_input: bytes) -> bytes:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return _EDDSA.sign(signing_input, self._key)
        return _ES256.sign(signing_input, self._key)

    def __repr__(self) -> str:
        return f"KeySigner(kid={self._kid!r}, algorithm={self._algorithm!r})"
