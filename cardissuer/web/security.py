"""CSRF tokens, signed flash messages and signed carried-over portraits for the console.

The session cookie is ``SameSite=Strict``, which already keeps other sites' forms from acting
as the officer. A per-session CSRF token in every form is the second lock (older browsers,
same-site subdomains, a misconfigured proxy): it is an HMAC of the session token under the
service's session secret, so nothing needs storing and it dies with the session.

The login form has no session yet; it uses a random double-submit cookie instead, so that
another site cannot log the officer's browser into an account of its choosing.

Values the console hands to the browser and reads back (a message to show after a redirect,
the portrait already made from a photo when a form is shown again) are signed with the same
secret and a purpose label, so a browser cannot make the console show invented messages or
store a portrait that did not come from :func:`cardissuer.portrait.make_portrait`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from schemas import code as foreigner_code

LOGIN_CSRF_COOKIE = "fmcard_login_csrf"
FLASH_COOKIE = "fmcard_flash"


def _mac(secret: str, purpose: str, value: str) -> str:
    message = f"fmcard-console:{purpose}:{value}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def csrf_token(session_token: str, secret: str) -> str:
    """The CSRF token of a session (the same for every form of that session)."""
    return _mac(secret, "csrf", session_token)


def csrf_valid(submitted: str, session_token: str, secret: str) -> bool:
    return bool(submitted) and hmac.compare_digest(submitted, csrf_token(session_token, secret))


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def login_csrf_valid(submitted: str, cookie: str | None) -> bool:
    return bool(submitted) and bool(cookie) and hmac.compare_digest(submitted, cookie or "")


@dataclass(frozen=True, slots=True)
class Flash:
    """A message to show once on the next page: ``key`` is an i18n key, ``detail`` free text
    (the domain's English message), ``level`` "ok" or "error", ``reason`` an i18n key that
    explains the kind of error in the officer's language (empty when the title says it)."""

    level: str
    key: str
    detail: str = ""
    reason: str = ""


def sign_flash(flash: Flash, secret: str) -> str:
    body = base64.urlsafe_b64encode(
        json.dumps([flash.level, flash.key, flash.detail[:600], flash.reason]).encode()
    ).decode()
    return f"{body}.{_mac(secret, 'flash', body)}"


def read_flash(value: str | None, secret: str) -> Flash | None:
    if not value or "." not in value:
        return None
    body, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, _mac(secret, "flash", body)):
        return None
    try:
        level, key, detail, reason = json.loads(base64.urlsafe_b64decode(body))
    except (ValueError, binascii.Error, TypeError):
        return None
    if level not in ("ok", "error"):
        return None
    return Flash(str(level), str(key), str(detail), str(reason))


def sign_portrait(portrait: bytes, secret: str) -> str:
    body = base64.b64encode(portrait).decode()
    return f"{body}.{_mac(secret, 'portrait', body)}"


def read_portrait(value: str, secret: str) -> bytes | None:
    """The portrait in a token made by :func:`sign_portrait`, or None if it was not."""
    if "." not in value:
        return None
    body, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, _mac(secret, "portrait", body)):
        return None
    try:
        return base64.b64decode(body, validate=True)
    except (ValueError, binascii.Error):
        return None


def safe_next(value: str | None, default: str = "/console/search") -> str:
    """A local console path to go to after a form or login; anything else is ``default``.

    Only absolute paths below ``/console/`` are accepted: no scheme, no host, no ``//`` or
    backslash, so a link cannot send the officer to another site after logging in."""
    if not value or not value.startswith("/console/") or "//" in value or "\\" in value:
        return default
    if any(ord(char) < 0x20 for char in value):
        return default
    return value


def person_path(code: str) -> str:
    """The console page of the person with ``code`` (validated, so it is safe in a URL)."""
    if not foreigner_code.is_valid(code):
        return "/console/search"
    return f"/console/persons/{foreigner_code.validate(code)}"
