"""The console's front door: the home redirects, the login page and form, and the logout.

The login form is the one console form without a session, so it carries its own CSRF nonce
(a cookie scoped to ``/console/login``); a failed attempt is committed, as it counts towards
the officer's lock-out. Every other page sends an officer without a session here
(:mod:`cardissuer.web.console.errors`).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRouter

from cardissuer.api.deps import SESSION_COOKIE, end_request_session, now
from cardissuer.core.security import issue_session
from cardissuer.errors import AuthenticationError
from cardissuer.services.officers import authenticate
from cardissuer.web import cookies
from cardissuer.web.console.common import PostedDep, engine_of, read_form
from cardissuer.web.rendering import (
    error_flash,
    redirect,
    render,
    secret_of,
    settings_of,
    status_of,
)
from cardissuer.web.security import (
    LOGIN_CSRF_COOKIE,
    Flash,
    login_csrf_valid,
    new_login_nonce,
    safe_next,
)

router = APIRouter(include_in_schema=False)


@router.get("/", name="home")
def home(request: Request) -> RedirectResponse:
    return redirect(request, "/console/search", status=307)


@router.get("/console", name="console_home")
@router.get("/console/", name="console_home_slash")
def console_home(request: Request) -> RedirectResponse:
    return redirect(request, "/console/search", status=307)


def _login_page(
    request: Request, *, status: int = 200, username: str = "", flash: Flash | None = None
) -> HTMLResponse:
    nonce = cookies.read(request, LOGIN_CSRF_COOKIE) or new_login_nonce()
    response = render(
        request,
        "login.html",
        {
            "nonce": nonce,
            "next": safe_next(request.query_params.get("next")),
            "username": username,
        },
        status=status,
        flash=flash,
    )
    cookies.put(response, request, LOGIN_CSRF_COOKIE, nonce, samesite="strict")
    return response


@router.get("/console/login", name="login")
def login_page(request: Request) -> Response:
    return _login_page(request)


def _authenticate(request: Request, username: str, password: str) -> int | AuthenticationError:
    """The officer id, or the refusal; a failed attempt is committed (it counts)."""
    settings = settings_of(request)
    try:
        officer = authenticate(
            engine_of(request),
            username,
            password,
            at=now(),
            attempts=settings.login_attempts_per_window,
            window=timedelta(seconds=settings.login_window_seconds),
            environment=settings.environment,
        )
    except AuthenticationError as exc:
        return exc
    assert officer.id is not None  # noqa: S101 - stored
    return officer.id


@router.post("/console/login", name="login_submit")
async def login_submit(request: Request) -> Response:
    form = await read_form(request)
    await form.close()  # a login has no files; nothing is left open
    username = str(form.get("username") or "").strip()[:64]
    password = str(form.get("password") or "")[:256]
    target = safe_next(str(form.get("next") or ""))
    if not login_csrf_valid(str(form.get("nonce") or ""), cookies.read(request, LOGIN_CSRF_COOKIE)):
        return _login_page(
            request, status=403, username=username, flash=Flash("error", "error_csrf")
        )
    if not username or not password:
        return _login_page(
            request, status=401, username=username, flash=Flash("error", "error_auth")
        )
    result = await run_in_threadpool(_authenticate, request, username, password)
    if isinstance(result, AuthenticationError):
        return _login_page(
            request, status=status_of(result), username=username, flash=error_flash(result)
        )
    settings = settings_of(request)
    token = issue_session(
        result, secret=secret_of(request), at=now(), minutes=settings.session_minutes
    )
    response = redirect(request, target)
    cookies.put(
        response,
        request,
        SESSION_COOKIE,
        token,
        samesite="strict",
        max_age=settings.session_minutes * 60,
    )
    cookies.drop(response, request, LOGIN_CSRF_COOKIE, samesite="strict")
    return response


@router.post("/console/logout", name="logout")
def logout(request: Request, form: PostedDep) -> Response:
    del form  # checked: only this console's own logout button logs the officer out
    end_request_session(request, csrf_checked=True)  # refused from now on, even by a copy
    response = redirect(request, "/console/login", flash=Flash("ok", "done_logged_out"))
    cookies.drop(response, request, SESSION_COOKIE, samesite="strict")
    return response
