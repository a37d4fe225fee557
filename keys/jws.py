"""Compact JWS for fmcard's signed documents: trust lists, status lists and cards.

Signing builds the protected header from a fixed, minimal set of members (``alg``, ``kid`` and
``typ`` or ``zip``) and lets a :class:`~keys.signer.Signer` sign. Verification is strict before
any cryptography runs: the header may hold only the members this format uses (so ``jku``,
``jwk``, ``x5u``, ``crit``, ``b64`` and friends are refused outright), the algorithm comes from
the key found in the verified trust list and never from the token, and the signature is then
checked by pyjwt with that single algorithm allowed.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.exceptions import InvalidTokenError

from keys.errors import SignedDocumentError
from keys.jwk import PublicKey, algorithm_of
from keys.signer import Signer
from schemas import strictjson
from schemas.errors import EncodingError

MAX_DOCUMENT_SIZE = 4 * 1024 * 1024
"""Characters of a signed trust list or status list token (a 10-million-card list is ~200 KB)."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key as a verifier knows it: its ``kid`` and what it may verify."""

    kid: str
    public_key: PublicKey

    @property
    def algorithm(self) -> str:
        return algorithm_of(self.public_key)


def b64url(data: bytes) -> bytes:
    """Return base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64url_decode(text: str | bytes) -> bytes:
    """Decode canonical base64url without padding; raise :class:`EncodingError` otherwise."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    if len(raw) % 4 == 1:
        raise EncodingError("base64url text has an impossible length")
    try:
        data = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except ValueError:
        raise EncodingError("not base64url") from None
    if b64url(data) != raw:
        raise EncodingError("base64url text is not canonical")
    return data


def signing_input(header: bytes, payload: bytes) -> bytes:
    """Return ``b64url(header) || '.' || b64url(payload)``, the bytes a JWS signature covers."""
    return b64url(header) + b"." + b64url(payload)


def sign_parts(payload: bytes, signer: Signer, **header_members: str) -> tuple[bytes, bytes]:
    """Sign ``payload``; return the protected header's JSON bytes and the raw signature."""
    header = strictjson.dumps({"alg": signer.algorithm, "kid": signer.kid, **header_members})
    return header, signer.sign(signing_input(header, payload))


def encode_jwt(claims: dict[str, Any], signer: Signer, *, typ: str) -> str:
    """Return a compact JWS of ``claims`` with header ``typ``."""
    payload = strictjson.dumps(claims)
    header, signature = sign_parts(payload, signer, typ=typ)
    return b".".join((b64url(header), b64url(payload), b64url(signature))).decode("ascii")


def decode_jwt(
    token: str, *, typ: str, keys: Iterable[VerificationKey]
) -> tuple[dict[str, Any], VerificationKey]:
    """Verify a compact JWS of type ``typ`` against ``keys``; return its claims and the key.

    Raises :class:`SignedDocumentError` for anything but a well-formed token signed by one of
    ``keys`` with that key's own algorithm.
    """
    if len(token) > MAX_DOCUMENT_SIZE:
        raise SignedDocumentError("signed document is too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise SignedDocumentError("not a compact JWS (three dot-separated parts)")
    try:
        header = strictjson.loads(b64url_decode(parts[0]))
    except EncodingError as exc:
        raise SignedDocumentError(f"JWS header: {exc}") from None
    kid = check_header(header, allowed={"alg", "kid", "typ"})
    if header.get("typ") != typ:
        raise SignedDocumentError(f"JWS header typ must be {typ!r}")
    candidates = [key for key in keys if key.kid == kid]
    if not candidates:
        raise SignedDocumentError(f"signed by an unknown key (kid {kid!r})")
    for key in candidates:
        if key.algorithm != header["alg"]:
            continue
        try:
            payload = jwt.PyJWS().decode(token, key=key.public_key, algorithms=[key.algorithm])
        except InvalidTokenError:
            continue
        try:
            return strictjson.loads(payload), key
        except EncodingError as exc:
            raise SignedDocumentError(f"JWS payload: {exc}") from None
    raise SignedDocumentError("signature does not verify with the trusted key")


def check_header(header: dict[str, Any], *, allowed: set[str]) -> str:
    """Refuse header members outside ``allowed`` and malformed ``alg``/``kid``; return kid."""
    extra = sorted(set(header) - allowed)
    if extra:
        raise SignedDocumentError(f"JWS header member {extra[0]!r} is not allowed")
    if type(header.get("alg")) is not str or type(header.get("kid")) is not str:
        raise SignedDocumentError("JWS header needs string 'alg' and 'kid'")
    kid: str = header["kid"]
    if not 1 <= len(kid) <= 64:
        raise SignedDocumentError("JWS header kid has a bad length")
    return kid
