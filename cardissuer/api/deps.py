"""Request dependencies: settings, the database, the officer behind the request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from cardissuer.core.config import Settings
from cardissuer.core.db import read_snapshot, session_scope
from cardissuer.core.security import SessionClaims, read_session
from cardissuer.errors import AuthenticationError
from cardissuer.models import OfficerRecord
from cardissuer.services.access import Actor
from cardissuer.services.officers import SESSION_ENDED, actor_of, end_session, session_ended

SESSION_COOKIE = "fmcard_session"
MAX_OFFSET = 1_000_000
"""The largest ``offset`` a list accepts (larger ones overflow the databases' integers)."""


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, else rolled back."""
    with session_scope(get_engine(request)) as session:
        yield session


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def session_claims(request: Request) -> SessionClaims:
    """The checked session token of the request, for routes that read the officer (and
    whether the session was ended) themselves, inside their own transaction. On the event
    loop: it checks an HMAC and reads no database."""
    return claims_of_token(request)


def claims_of_token(request: Request) -> SessionClaims:
    """The claims of the request's session token (bearer or console cookie), checked."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    token = token or request.cookies.get(SESSION_COOKIE)
    if not token:
        raise AuthenticationError("not logged in")
    settings = get_settings(request)
    return read_session(token, secret=settings.session_secret.get_secret_value(), at=now())


def end_request_session(request: Request) -> None:
    """Log out: end the session whose token came with the request (bearer or cookie), in a
    transaction of its own, for every service instance. Without a valid token there is
    nothing to end."""
    try:
        claims = claims_of_token(request)
    except AuthenticationError:
        return
    with session_scope(get_engine(request)) as session:
        end_session(session, claims.jti, expires_at=claims.expires_at, at=now())


def current_actor(request: Request) -> Actor:
    """The logged-in officer, re-read from the database (a disabled account stops at once)."""
    claims = claims_of_token(request)
    with read_snapshot(get_engine(request)) as session:  # never waits for SQLite writers
        officer = session.get(OfficerRecord, claims.officer_id)
        if officer is None or not officer.active:
            raise AuthenticationError("this account is disabled")
        if session_ended(session, claims.jti):
            raise AuthenticationError(SESSION_ENDED)
        actor = actor_of(officer)
    request.state.actor = actor
    return actor


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
EngineDep = Annotated[Engine, Depends(get_engine)]
"""The engine, for work that needs transactions of its own (logging in)."""
ActorDep = Annotated[Actor, Depends(current_actor)]
ClaimsDep = Annotated[SessionClaims, Depends(session_claims)]
"""Only the checked session token: for routes that read the officer themselves, inside their
own transaction (card issuance through the queue)."""
