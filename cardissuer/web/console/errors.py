"""The console's error pages: what an officer sees when a console page or form fails.

Console paths (``/``, ``/console...``, ``/static...``) get an HTML page in the officer's
language; every other path keeps the handler it had before (the API's problem details), so
:func:`console_handler` wraps the handler already installed for each exception type. No
session sends the officer to the login page; a refusal is audited and shown as 403, or as 404
for another office's record (as if it did not exist); a validation error of the path is a
missing page; anything unexpected is logged and shown as a 500 without its details.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardissuer.api.deps import SESSION_COOKIE
from cardissuer.errors import AccessDeniedError, AuthenticationError, IssuerError
from cardissuer.services.access import Actor, RecordHiddenError
from cardissuer.web import cookies
from cardissuer.web.console.common import CsrfRefused, LoginRequired, audit_denied, log
from cardissuer.web.rendering import error_flash, redirect, render, status_of
from cardissuer.web.security import Flash, safe_next
from schemas.errors import SchemaError


def _is_console(request: Request) -> bool:
    path = request.url.path
    return path == "/" or path.startswith(("/console", "/static"))


def _error_page(request: Request, status: int, flash: Flash, *, denied: bool = False) -> Response:
    context = {"denied": denied, "status": status, "error": flash}
    return render(request, "error.html", context, status=status)


def _to_login(request: Request, message: str | None) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    next_path = safe_next(target) if request.method == "GET" else "/console/search"
    had_session = cookies.read(request, SESSION_COOKIE) is not None  # a first visit is no error
    flash = Flash("error", "error_session", message or "") if had_session else None
    response = redirect(request, f"/console/login?next={quote(next_path, safe='/')}", flash=flash)
    cookies.drop(response, request, SESSION_COOKIE, samesite="strict")
    return response


Handler = Callable[[Request, Exception], Awaitable[Response]]


def console_handler(previous: Any) -> Handler:
    """Console paths get an HTML page; every other path keeps the API's problem details."""

    async def handle(request: Request, exc: Exception) -> Response:
        if not _is_console(request):
            if previous is None:
                raise exc
            response: Response = await previous(request, exc)
            return response
        return await run_in_threadpool(_console_error, request, exc)

    return handle


def _console_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginRequired):
        return _to_login(request, str(exc) or None)
    if isinstance(exc, AuthenticationError):
        return _to_login(request, str(exc))
    if isinstance(exc, CsrfRefused):
        return _error_page(request, 403, Flash("error", "error_csrf"))
    if isinstance(exc, AccessDeniedError):
        actor: Actor | None = getattr(request.state, "actor", None)
        if actor is not None:
            audit_denied(request, actor, str(exc))
        if isinstance(exc, RecordHiddenError):  # another office's record: as if it did not exist
            return _error_page(request, 404, error_flash(exc))
        return _error_page(request, 403, error_flash(exc), denied=True)
    if isinstance(exc, IssuerError | SchemaError):
        return _error_page(request, status_of(exc), error_flash(exc))
    if isinstance(exc, RequestValidationError):
        return _error_page(request, 404, Flash("error", "error_page_missing"))
    if isinstance(exc, StarletteHTTPException):
        key = "error_page_missing" if exc.status_code in (404, 405) else "error_generic"
        return _error_page(request, exc.status_code, Flash("error", key, str(exc.detail)))
    log.error(
        "unexpected console error on %s %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc_info=exc,
    )
    return _error_page(request, 500, Flash("error", "error_internal"))
