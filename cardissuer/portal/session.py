"""The portal's cookies: the signed session bound to a proven address, the address waiting
for its code, and the CSRF token bound to them.

Cookies are signed values (``base64(json).hmac``) under the portal's key with a purpose
label, so a value of one kind can never be replayed as another, and each carries its own end
time. The session cookie is HttpOnly, ``SameSite=Lax`` and ``Secure`` when the service's
public URL is https (:mod:`cardissuer.web.cookies`: then also named ``__Host-``); it holds
the address (the holder's own, on the holder's own device) so that no session table is needed.

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
from datetime import datetime, timedelta

from cardissuer.portal.codes import keyed_hash
from cardissuer.web.security import csrf_token as console_csrf_token

SESSION_COOKIE = "fmcard_portal"
PENDING_COOKIE = "fmcard_portal_pending"
NONCE_COOKIE = "fmcard_portal_csrf"
SESSION_LIFETIME = timedelta(hours=2)
PENDING_LIFETIME = timedelta(minutes=60)


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
    """A signed-in holder: the address they proved, until when."""

    address: str
    until: datetime


def sign_address(key: bytes, purpose: str, address: str, *, until: datetime) -> str:
    return _sign(key, purpose, {"a": address, "u": int(until.timestamp())})


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
