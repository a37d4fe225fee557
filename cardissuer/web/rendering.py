"""Turning a template and its values into a page: language, CSRF token, flash, headers.

Every page goes through :func:`render`, so every page has the language switcher, the
officer's name and role, the CSRF token for its forms, the message left by the previous form
(POST/redirect/GET) and the same security headers. Templates are Jinja2 with autoescaping on
for every file: names in Arabic or Cyrillic, reasons typed by officers and domain messages are
all shown as text, never as markup.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.exc import SQLAlchemyError

from cardissuer.api.deps import SESSION_COOKIE
from cardissuer.api.problems import STATUS_BY_ERROR
from cardissuer.core.config import Settings
from cardissuer.core.db import read_snapshot
from cardissuer.errors import (
    AccessDeniedError,
    AuthenticationError,
    DuplicateSuspectedError,
    IssuerError,
    NotFoundError,
    PortraitError,
    RateLimitedError,
)
from cardissuer.services.access import Actor, allowed
from cardissuer.web import cookies
from cardissuer.web.i18n import (
    HTML_LANG,
    LANG_COOKIE,
    LANGUAGE_NAMES,
    LANGUAGES,
    RTL_LANGUAGES,
    STRINGS,
    Translator,
    language_of,
    parse_language,
)
from cardissuer.web.security import FLASH_COOKIE, Flash, csrf_token, read_flash, sign_flash
from schemas.card import BirthDate
from schemas.code import format_for_reading

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
CHINA_TIME = timezone(timedelta(hours=8), "UTC+8")
"""Yiwu's time (China has one zone and no daylight saving): officers read local times."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""Only the console's own script and style run; no inline code, no framing."""


def _datetime(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")


def _date(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return _datetime(value)[:10]
    return value.isoformat()


def _birth(value: int) -> str:
    return str(BirthDate.from_wire(value))


ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENVIRONMENT.filters.update(dt=_datetime, date=_date, birth=_birth, grouped=format_for_reading)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def secret_of(request: Request) -> str:
    return settings_of(request).session_secret.get_secret_value()


def language_links(request: Request) -> list[tuple[str, str, bool]]:
    """(language, URL of this page in it, is current) for the switcher."""
    current = language_of(request)
    links: list[tuple[str, str, bool]] = []
    for language in LANGUAGES:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
        query.append(("lang", language))
        links.append((language, f"{request.url.path}?{urlencode(query)}", language == current))
    return links


def nav_of(actor: Actor | None) -> dict[str, bool]:
    """Which menu entries the officer's role can use (the server checks again on use)."""
    if actor is None:
        return {}
    return {
        "register": allowed(actor, "person.register"),
        "mark_passport": allowed(actor, "passport.mark_lost"),
        "audit": allowed(actor, "audit.read"),
        "review": allowed(actor, "application.read"),
    }


def open_applications(request: Request, actor: Actor | None) -> int | None:
    """The count beside the review queue's link in the menu: the office's open applications
    (every office's for auditors). Read from a snapshot, so a page never waits for a writer;
    a database that cannot answer leaves the count out rather than the page."""
    if actor is None or not allowed(actor, "application.read"):
        return None
    from cardissuer.portal.decisions import open_count

    try:
        with read_snapshot(request.app.state.engine) as session:
            return open_count(session, actor)
    except SQLAlchemyError:
        return None


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    flash: Flash | None = None,
) -> HTMLResponse:
    """The page ``template`` with ``context``, in the request's language."""
    language = language_of(request)
    actor: Actor | None = getattr(request.state, "actor", None)
    secret = secret_of(request)
    session_token = cookies.read(request, SESSION_COOKIE)
    carried = read_flash(cookies.read(request, FLASH_COOKIE), secret)
    values: dict[str, Any] = {
        "t": Translator(language),
        "lang": language,
        "html_lang": HTML_LANG.get(language, language),
        "rtl": language in RTL_LANGUAGES,
        "language_names": LANGUAGE_NAMES,
        "actor": actor,
        "nav": nav_of(actor),
        "open_applications": open_applications(request, actor),
        "csrf": csrf_token(session_token, secret) if actor and session_token else "",
        "flash": flash or carried,
        "language_links": language_links(request),
        "path": request.url.path,
        "settings": settings_of(request),
    }
    values.update(context or {})
    html = ENVIRONMENT.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status)
    if carried is not None:
        cookies.drop(response, request, FLASH_COOKIE, samesite="strict")
    remember_language(request, response)
    secure_headers(response)
    return response


def remember_language(request: Request, response: HTMLResponse | RedirectResponse) -> None:
    chosen = parse_language(request.query_params.get("lang"))
    if chosen is not None and chosen != request.cookies.get(LANG_COOKIE):
        cookies.put_plain(
            response, request, LANG_COOKIE, chosen, max_age=365 * 24 * 3600, samesite="strict"
        )


def secure_headers(response: HTMLResponse | RedirectResponse) -> None:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"  # pages show personal data


def redirect(
    request: Request, url: str, *, flash: Flash | None = None, status: int = 303
) -> RedirectResponse:
    """POST/redirect/GET: go to ``url`` and show ``flash`` there once."""
    response = RedirectResponse(url, status_code=status)
    if flash is not None:
        cookies.put(
            response,
            request,
            FLASH_COOKIE,
            sign_flash(flash, secret_of(request)),
            samesite="strict",
            max_age=120,
        )
    remember_language(request, response)
    secure_headers(response)
    return response


class FormError(IssuerError):
    """A form field the console cannot read (a date that is not a date, a missing reason)."""

    code = "invalid-form"


ERROR_TITLES: list[tuple[type[Exception], str]] = [
    (FormError, "error_invalid"),
    (RateLimitedError, "error_rate_limited"),
    (AuthenticationError, "error_auth"),
    (AccessDeniedError, "error_denied"),
    (NotFoundError, "error_not_found"),
    (DuplicateSuspectedError, "error_duplicate"),
    (PortraitError, "error_photo"),
    (IssuerError, "error_conflict"),
]
"""The translated title shown over a domain error's own (English) message."""


def error_flash(error: Exception) -> Flash:
    """What to show for a refused form: a translated title, a translated sentence for the
    kind of error (by its stable code) where there is one, and the server's own message."""
    key = next((key for kind, key in ERROR_TITLES if isinstance(error, kind)), "error_invalid")
    code = getattr(error, "code", "")
    reason = f"refusal_{code.replace('-', '_')}" if isinstance(code, str) else ""
    return Flash("error", key, describe(error), reason if reason in STRINGS else "")


def describe(error: Exception) -> str:
    """The readable reason of ``error`` (field names and messages, never values or traces)."""
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        parts = []
        for item in error.errors():
            field = ".".join(str(part) for part in item.get("loc", ())) or "form"
            parts.append(f"{field}: {item.get('msg', 'invalid')}")
        return "; ".join(parts)
    return str(error)


def status_of(error: Exception) -> int:
    own: int | None = getattr(type(error), "http_status", None)  # as the API answers
    if own is not None:
        return own
    return next((status for kind, status in STATUS_BY_ERROR if isinstance(error, kind)), 422)
