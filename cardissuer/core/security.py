"""Officer passwords and session tokens.

Passwords are hashed with scrypt (memory-hard: 32 MiB per guess at the default cost) and a
random salt; verification is constant-time. Sessions are short-lived HS256 JWTs made and
checked with pyjwt, with the algorithm pinned; the officer's role and office are re-read from
the database on every request, so a demotion takes effect at once.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from cardissuer.errors import AuthenticationError

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SESSION_ALGORITHM = "HS256"
SESSION_AUDIENCE = "fmcard-console"
DEMO_PASSWORD = "fmcard-demo-2026"  # noqa: S105 - development data, printed on purpose
"""The demo officers' password (:mod:`cardissuer.seed`): published in the docs and printed by
``serve --demo``, so it never logs anyone in in production (:func:`login_refused`)."""


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=n,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=256 * 1024 * 1024,
        dklen=32,
    )
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=256 * 1024 * 1024,
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate, _unb64(key))


@functools.cache
def dummy_hash() -> str:
    """A hash to check against for unknown usernames: the same time as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


def login_refused(password: str, *, production: bool) -> bool:
    """Whether ``password`` is refused whoever's it is: in production, the published demo
    password (an officer made in a development database that went into production, or given
    it by an admin, would otherwise log in with a password anyone can read)."""
    return production and hmac.compare_digest(password.encode(), DEMO_PASSWORD.encode())


def issue_session(officer_id: int, *, secret: str, at: datetime, minutes: int) -> str:
    claims = {
        "sub": str(officer_id),
        "aud": SESSION_AUDIENCE,
        "iat": int(at.timestamp()),
        "exp": int((at + timedelta(minutes=minutes)).timestamp()),
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode(claims, secret, algorithm=SESSION_ALGORITHM)


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """What a checked session token says: whose it is, when it ends, its own id (``jti``,
    which logging out records as revoked)."""

    officer_id: int
    expires: int
    jti: str

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, UTC)


def read_session(token: str, *, secret: str, at: datetime) -> SessionClaims:
    """The claims of a valid, unexpired session token; raise otherwise. Whether the session
    was ended by logging out is the database's to say (``revoked_session``)."""
    claims = _checked_session(token, secret)
    if claims.expires <= at.timestamp():
        raise AuthenticationError("the session has expired; log in again")
    return claims


@functools.lru_cache(maxsize=4096)
def _checked_session(token: str, secret: str) -> SessionClaims:
    """The claims of a token whose signature and claims pyjwt accepted.

    Remembered per (token, secret): an officer's client sends the same token with every
    request for 30 minutes, and pyjwt's checks cost a fifth of a small request's time in the
    service. Only accepted tokens are remembered (a refusal raises), the expiry is compared
    with the clock on every use, and a new secret never meets an old entry.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[SESSION_ALGORITHM],
            audience=SESSION_AUDIENCE,
            options={"require": ["exp", "iat", "sub", "aud", "jti"]},
            leeway=0,
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("the session has expired; log in again") from None
    except jwt.InvalidTokenError:
        raise AuthenticationError("not logged in") from None
    try:
        jti = claims["jti"]
        if not isinstance(jti, str) or not 0 < len(jti) <= 64:
            raise ValueError("jti")
        return SessionClaims(int(claims["sub"]), int(claims["exp"]), jti)
    except (TypeError, ValueError):
        raise AuthenticationError("not logged in") from None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
