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
from cardissuer.web import cookies

SESSION_COOKIE = "fmcard_session"
MAX_OFFSET = 1_000_000
"""The largest ``offset`` a list accepts (larger ones overflow the databases' integers)."""


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


READ_METHODS = frozenset({"GET", "HEAD"})


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, else rolled back.

    A GET or HEAD only reads: it gets a read-only snapshot (:func:`read_snapshot`), which on
    SQLite neither waits for nor blocks writers. A write transaction there holds the
    database's one write lock from its first statement, so a search would otherwise queue
    behind every card being issued and behind the expiry timer's round (measured at a
    million persons: a search waited 350 ms for the timer's statistics refresh)."""
    engine = get_engine(request)
    if request.method in READ_METHODS:
        with read_snapshot(engine) as session:
            yield session
        return
    with session_scope(engine) as session:
        yield session


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def session_claims(request: Request) -> SessionClaims:
    """The checked session token of the request, for routes that read the officer (and
    whether the session was ended) themselves, inside their own transaction. On the event
    loop: it checks an HMAC and reads no database."""
    return claims_of_token(request)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COOKIE_READS_ONLY = (
    "changes through the API need the session token as 'Authorization: Bearer <token>'; "
    "the console's cookie is accepted for reading only"
)


def claims_of_token(request: Request, *, csrf_checked: bool = False) -> SessionClaims:
    """The claims of the request's session token, checked.

    The token comes from the ``Authorization: Bearer`` header, or else from the console's
    cookie. A browser sends that cookie with any request to this site, also one that another
    site makes it send, so the cookie authenticates a change (a method other than GET, HEAD,
    OPTIONS) only for a caller that checks the console's CSRF token before acting
    (``csrf_checked``: the console's forms). Everywhere else, that is every write of the JSON
    API, a cookie alone is refused, whatever the Origin or Content-Type.
    """
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    if not token:
        token = cookies.read(request, SESSION_COOKIE)
        if token and not csrf_checked and request.method not in SAFE_METHODS:
            raise AuthenticationError(COOKIE_READS_ONLY)
    if not token:
        raise AuthenticationError("not logged in")
    settings = get_settings(request)
    return read_session(token, secret=settings.session_secret.get_secret_value(), at=now())


def end_request_session(request: Request, *, csrf_checked: bool = False) -> bool:
    """Log out: end the session whose token came with the request (bearer, or the cookie
    where ``csrf_checked``, see :func:`claims_of_token`), in a transaction of its own, for
    every service instance. Without such a token there is nothing to end: return whether a
    session was ended."""
    try:
        claims = claims_of_token(request, csrf_checked=csrf_checked)
    except AuthenticationError:
        return False
    with session_scope(get_engine(request)) as session:
        end_session(session, claims.jti, expires_at=claims.expires_at, at=now())
    return True


def current_actor(request: Request) -> Actor:
    """The logged-in officer, re-read from the database (a disabled account stops at once);
    the dependency of the API's routes (see :func:`claims_of_token` for the cookie)."""
    return actor_of_request(request)


def actor_of_request(request: Request, *, csrf_checked: bool = False) -> Actor:
    """The officer behind the request's session token, re-read from the database."""
    claims = claims_of_token(request, csrf_checked=csrf_checked)
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
