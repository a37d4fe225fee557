"""Public keys as JWK (RFC 7517), their RFC 7638 thumbprints, short key ids and JWKS.

Only two key types exist in fmcard: P-256 for ES256 (the default: faster to verify with the
``cryptography`` wheel and what DCC, SMART Health Cards and ICAO VDS-NC use) and Ed25519 for
EdDSA. :func:`public_key_from_jwk` accepts exactly those and nothing else, so a trust list can
never smuggle in an RSA or HMAC key for an algorithm-confusion attack.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from keys.errors import UnsupportedKeyError

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

ES256 = "ES256"
EDDSA = "EdDSA"
ALGORITHMS = (ES256, EDDSA)

KID_LENGTH = 8
"""Characters of the base64url thumbprint kept as ``kid`` (48 bits). Two keys of one issuer
sharing a short kid is harmless: verifiers try every key with that kid. A kid is a lookup
hint only: 48 bits can be ground to collide, so wherever a key's identity decides trust
(the pinned anchor, who owns a status list or a policy token) the full thumbprint is compared."""
THUMBPRINT_LENGTH = 43
"""Characters of a full RFC 7638 SHA-256 thumbprint in base64url without padding."""
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")


def generate(algorithm: str = ES256) -> PrivateKey:
    """Return a new private key for ``algorithm`` (``ES256`` or ``EdDSA``)."""
    if algorithm == ES256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == EDDSA:
        return ed25519.Ed25519PrivateKey.generate()
    raise UnsupportedKeyError(f"algorithm {algorithm!r} is not supported; use ES256 or EdDSA")


def algorithm_of(key: PrivateKey | PublicKey) -> str:
    """Return the JWS algorithm name that ``key`` signs or verifies with."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise UnsupportedKeyError(f"EC curve {key.curve.name} is not supported; use P-256")
        return ES256
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return EDDSA
    raise UnsupportedKeyError(f"key type {type(key).__name__} is not supported")


def public_jwk(key: PrivateKey | PublicKey) -> dict[str, str]:
    """Return the public JWK members of ``key`` (the RFC 7638 required members only)."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    if isinstance(public, ed25519.Ed25519PrivateKey):
        public = public.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        algorithm_of(public)
        numbers = public.public_numbers()
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
    raw = public.public_bytes_raw()
    return {"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)}


def thumbprint(jwk: dict[str, Any]) -> str:
    """Return the RFC 7638 SHA-256 thumbprint of a public JWK, base64url without padding."""
    required = ("crv", "kty", "x", "y") if jwk.get("kty") == "EC" else ("crv", "kty", "x")
    canonical = json.dumps({name: jwk[name] for name in required}, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


def key_thumbprint(key: PrivateKey | PublicKey) -> str:
    """Return the full RFC 7638 SHA-256 thumbprint of ``key``: its identity."""
    return thumbprint(public_jwk(key))


def is_thumbprint(text: str) -> bool:
    """Whether ``text`` has the shape of a full SHA-256 thumbprint (43 base64url characters)."""
    return _THUMBPRINT.fullmatch(text) is not None


def kid_of(key: PrivateKey | PublicKey) -> str:
    """Return the short key id: the first :data:`KID_LENGTH` characters of the thumbprint."""
    return thumbprint(public_jwk(key))[:KID_LENGTH]


def public_key_from_jwk(jwk: object) -> PublicKey:
    """Return the public key of a P-256 or Ed25519 JWK; refuse private or other keys."""
    if not isinstance(jwk, dict) or "d" in jwk:
        raise UnsupportedKeyError("a JWK must be a public-key object")
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        x, y = _coordinate(jwk, "x", 32), _coordinate(jwk, "y", 32)
        try:
            return ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
            ).public_key()
        except ValueError:
            raise UnsupportedKeyError("EC JWK point is not on P-256") from None
    if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(_coordinate(jwk, "x", 32))
    raise UnsupportedKeyError("only P-256 (EC) and Ed25519 (OKP) keys are supported")


def jwks(keys: list[tuple[PublicKey, str]]) -> dict[str, list[dict[str, str]]]:
    """Return a JWK Set of ``(public key, kid)`` pairs with ``alg`` and ``use``."""
    return {
        "keys": [
            {**public_jwk(key), "kid": kid, "alg": algorithm_of(key), "use": "sig"}
            for key, kid in keys
        ]
    }


def _coordinate(jwk: dict[str, Any], name: str, size: int) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or len(value) != (size * 4 + 2) // 3:
        raise UnsupportedKeyError(f"JWK member {name!r} is missing or has the wrong length")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        raise UnsupportedKeyError(f"JWK member {name!r} is not base64url") from None
    if len(raw) != size or _b64(raw) != value:
        raise UnsupportedKeyError(f"JWK member {name!r} is not canonical base64url")
    return raw


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
