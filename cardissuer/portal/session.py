"""The portal's cookies: the signed session bound to a proven address, the address waiting
for its code, and the CSRF token bound to them.

Cookies are signed values (``base64(json).hmac``) under the portal's key with a purpose
label, so a value of one kind can never be replayed as another, and each carries its own end
time. The session cookie is HttpOnly, ``SameSite=Lax`` and ``Secure`` when the service's
public URL is https (:mod:`cardissuer.web.cookies`: then also named ``__Host-``); it holds
the address (the holder's own, on the holder's own device) so that no session table is needed,
and a random session id (``jti``) so that signing out ends the session on the server too: the
id goes into the console's ``revoked_session`` table (prefixed ``portal:``, which no console
token id can contain) and a copy of the cookie is refused from then on. A session cookie
without an id (made before ids existed) is refused: the holder signs in again.

CSRF, the console's mechanism (:func:`cardissuer.web.security.csrf_token`): every form carries
an HMAC, under the service's session secret, of the cookie that the form acts for, its
*anchor*: the session cookie when the holder is signed in; before that, the cookie of the
address waiting for its code; before even that ("send me a code"), a random pre-session
nonce cookie. A POST is checked against the anchor the request has now, and only that one,
so a token minted for one session (or a nonce another site tossed in) is refused in another.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from cardissuer.portal.codes import keyed_hash
from cardissuer.services.officers import end_session as end_console_session
from cardissuer.services.officers import session_ended
from cardissuer.web.security import csrf_token as console_csrf_token

SESSION_COOKIE = "fmcard_portal"
PENDING_COOKIE = "fmcard_portal_pending"
NONCE_COOKIE = "fmcard_portal_csrf"
SESSION_LIFETIME = timedelta(hours=2)
PENDING_LIFETIME = timedelta(minutes=60)
SESSION_ID_PREFIX = "portal:"
"""The portal's session ids in ``revoked_session`` start with this; the console's are
``secrets.token_urlsafe`` (letters, digits, ``-`` and ``_``), so the two never collide."""
SESSION_ID_MAX = 64
"""The length of ``revoked_session.jti``."""


def _sign(key: bytes, purpose: str, values: dict[str, object]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode()
    return f"{body}.{keyed_hash(key, 'cookie-' + purpose, body)}"


def _read(key: bytes, purpose: str, value: str | None) -> dict[str, object] | None:
    if not value or "." not in value or len(value) > 1024:
        return None
    body, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, keyed_hash(key, "cookie-" + purpose, body)):
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(body))
    except (ValueError, binascii.Error):
        return None
    return values if isinstance(values, dict) else None


@dataclass(frozen=True, slots=True)
class PortalSession:
    """A signed-in holder: the address they proved, the session's id, until when."""

    address: str
    jti: str
    until: datetime


def new_session_id() -> str:
    """A fresh portal session id (192 random bits), in the portal's namespace."""
    return SESSION_ID_PREFIX + secrets.token_urlsafe(24)


def sign_session(key: bytes, address: str, *, jti: str, until: datetime) -> str:
    """The session cookie's value: the proved address and the session's id, until ``until``."""
    return _sign(key, "session", {"a": address, "j": jti, "u": int(until.timestamp())})


def read_session(key: bytes, value: str | None, *, at: datetime) -> PortalSession | None:
    """The session in a cookie made by :func:`sign_session`, if it is genuine, not over and
    has an id in the portal's namespace (an older cookie without one is no session). Whether
    it was signed out is :func:`session_signed_out`'s question (a database read)."""
    values = _read(key, "session", value)
    if values is None:
        return None
    address, jti, until = values.get("a"), values.get("j"), values.get("u")
    if (
        not isinstance(address, str)
        or not isinstance(jti, str)
        or not jti.startswith(SESSION_ID_PREFIX)
        or len(jti) > SESSION_ID_MAX
        or not isinstance(until, int)
        or until <= at.timestamp()
    ):
        return None
    return PortalSession(address, jti, datetime.fromtimestamp(until, UTC))


def session_signed_out(db: Session, portal_session: PortalSession) -> bool:
    """Whether the holder signed this session out (one primary-key read)."""
    return session_ended(db, portal_session.jti)


def sign_out(db: Session, portal_session: PortalSession, *, at: datetime) -> None:
    """Refuse the session from now on, on every service instance, until its cookie would have
    ended anyway; prunes ended sessions (the console's too) that are over by now."""
    end_console_session(db, portal_session.jti, expires_at=portal_session.until, at=at)


def sign_address(key: bytes, purpose: str, address: str, *, until: datetime) -> str:
    """A cookie naming an address awaiting its code (``pending``); the session's is
    :func:`sign_session`. A random part makes each one unique: forms' CSRF tokens are bound
    to it, and anyone asking a code for the same address in the same second must not get
    the same cookie (and so the same tokens) as the holder."""
    values = {"a": address, "u": int(until.timestamp()), "n": secrets.token_urlsafe(12)}
    return _sign(key, purpose, values)


def read_address(key: bytes, purpose: str, value: str | None, *, at: datetime) -> str | None:
    """The address in a cookie made by :func:`sign_address`, if it is genuine and not over."""
    values = _read(key, purpose, value)
    if values is None:
        return None
    address, until = values.get("a"), values.get("u")
    if not isinstance(address, str) or not isinstance(until, int) or until <= at.timestamp():
        return None
    return address


def new_nonce() -> str:
    """A pre-session nonce: the anchor of forms shown before any address cookie exists."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class Anchor:
    """What a portal form's CSRF token is bound to: the kind (``session``, ``pending`` or
    ``nonce``) and the value of that cookie as the browser sent it."""

    kind: str
    value: str


def csrf_token(anchor: Anchor, secret: str) -> str:
    return console_csrf_token(f"portal-{anchor.kind}:{anchor.value}", secret)


def csrf_valid(submitted: object, anchor: Anchor | None, secret: str) -> bool:
    """Whether ``submitted`` is the token of ``anchor`` (never without an anchor)."""
    if anchor is None or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(submitted, csrf_token(anchor, secret))
