"""The portal's cookies: the signed session bound to a proven address, the address waiting
for its code, and the double-submit CSRF token.

Cookies are signed values (``base64(json).hmac``) under the portal's key with a purpose
label, so a value of one kind can never be replayed as another, and each carries its own end
time. The session cookie is HttpOnly, ``SameSite=Lax`` and ``Secure`` when the service's
public URL is https; it holds the address (the holder's own, on the holder's own device) so
that no session table is needed.

CSRF: every portal page sets a random ``fmcard_portal_csrf`` cookie (HttpOnly, SameSite=Strict)
if missing and puts the same value in every form; a POST whose field and cookie differ is
refused. Another site can neither read the cookie nor set it.
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

SESSION_COOKIE = "fmcard_portal"
PENDING_COOKIE = "fmcard_portal_pending"
CSRF_COOKIE = "fmcard_portal_csrf"
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


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_valid(submitted: str | None, cookie: str | None) -> bool:
    return bool(submitted) and bool(cookie) and hmac.compare_digest(submitted or "", cookie or "")
