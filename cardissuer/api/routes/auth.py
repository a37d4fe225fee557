"""Logging in and out."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response

from cardissuer.api import problems
from cardissuer.api.deps import (
    SESSION_COOKIE,
    ActorDep,
    EngineDep,
    SessionDep,
    SettingsDep,
    end_request_session,
    now,
)
from cardissuer.core.security import issue_session
from cardissuer.models import LoginIn, OfficerPublic, OfficerRecord
from cardissuer.services.officers import authenticate
from cardissuer.services.registry import office_code
from cardissuer.web import cookies

router = APIRouter(prefix="/api/auth", tags=["auth"], responses=problems.responses(401, 422, 429))


@router.post("/login", summary="Log in; returns a session token (also set as a cookie)")
def login(
    data: LoginIn, engine: EngineDep, settings: SettingsDep, request: Request, response: Response
) -> dict[str, str | int]:
    at = now()
    officer = authenticate(  # counts the attempt in a transaction of its own, first
        engine,
        data.username,
        data.password,
        at=at,
        attempts=settings.login_attempts_per_window,
        window=timedelta(seconds=settings.login_window_seconds),
        environment=settings.environment,
    )
    assert officer.id is not None  # noqa: S101 - stored
    token = issue_session(
        officer.id,
        secret=settings.session_secret.get_secret_value(),
        at=at,
        minutes=settings.session_minutes,
    )
    cookies.put(
        response,
        request,
        SESSION_COOKIE,
        token,
        samesite="strict",
        max_age=settings.session_minutes * 60,
    )
    return {"token": token, "token_type": "bearer", "expires_in": settings.session_minutes * 60}


@router.post("/logout", summary="Log out: the session's token is refused from now on")
def logout(request: Request, response: Response) -> dict[str, str]:
    """Ends the session whose bearer token comes with the request, on every service
    instance (the database records it), and deletes the cookie of that session. Without a
    valid bearer token there is nothing to end, and the answer is the same: like every change
    through the API, logging out is not done by the console's cookie alone (the console logs
    out with its own button, which carries its CSRF token)."""
    if end_request_session(request):
        cookies.drop(response, request, SESSION_COOKIE, samesite="strict")
    return {"status": "logged out"}


@router.get("/me", summary="The logged-in officer")
def me(actor: ActorDep, session: SessionDep) -> OfficerPublic:
    officer = session.get(OfficerRecord, actor.officer_id)
    assert officer is not None  # noqa: S101 - checked by the dependency
    return OfficerPublic(
        username=officer.username,
        display_name=officer.display_name,
        role=officer.role,
        office_code=office_code(session, officer.office_id),
        active=officer.active,
    )
