"""Offices, officers and logins (with a rate limit that holds across service instances)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from cardissuer.core.config import Environment
from cardissuer.core.db import lock_key, session_scope
from cardissuer.core.security import dummy_hash, hash_password, login_refused, verify_password
from cardissuer.errors import AuthenticationError, ConflictError, NotFoundError, RateLimitedError
from cardissuer.models import (
    LoginAttemptRecord,
    OfficeCreate,
    OfficerCreate,
    OfficeRecord,
    OfficerRecord,
    OfficerUpdate,
    RevokedSessionRecord,
)
from cardissuer.services import audit
from cardissuer.services.access import (
    Actor,
    RecordHiddenError,
    allowed,
    require,
    require_within_reach,
)

SESSION_ENDED = "this session has ended (logged out); log in again"


def session_ended(session: Session, jti: str) -> bool:
    """Whether the session with token id ``jti`` was ended by logging out."""
    return session.get(RevokedSessionRecord, jti) is not None


def end_session(session: Session, jti: str, *, expires_at: datetime, at: datetime) -> None:
    """Refuse the session's token from now on (logging out), and forget ended sessions whose
    tokens have expired anyway. Ending a session twice is harmless."""
    session.exec(delete(RevokedSessionRecord).where(col(RevokedSessionRecord.expires_at) < at))
    if session.get(RevokedSessionRecord, jti) is not None:
        return
    try:
        with session.begin_nested():  # the same token logged out twice at once
            session.add(RevokedSessionRecord(jti=jti, expires_at=expires_at))
    except IntegrityError:
        pass


def actor_of(officer: OfficerRecord) -> Actor:
    assert officer.id is not None  # noqa: S101 - stored
    return Actor(officer.id, officer.office_id, officer.role, officer.username)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; the service stores UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def authenticate(
    engine: Engine,
    username: str,
    password: str,
    *,
    at: datetime,
    attempts: int,
    window: timedelta,
    environment: Environment,
) -> OfficerRecord:
    """Check a login; after ``attempts`` tries within ``window`` even a right password is
    refused until the window has passed.

    The attempt is counted before the password is checked, in a transaction serialised per
    username (:func:`lock_key`) and committed at once: guesses sent in parallel are counted
    one after the other, so at most ``attempts`` of them ever reach the password check,
    whichever the database and however many service instances. The (slow) check itself runs
    outside any transaction, so it holds no lock. A success clears the count.

    ``environment`` is required so that no caller can forget it: in production the published
    demo password is refused for every username (:func:`login_refused`), after the attempt
    is counted, with the same answer as a wrong password.
    """
    with session_scope(engine) as session:
        lock_key(session, "login", username)
        # Expired attempts of every username go, not only this one's: logins with names
        # nobody uses again would otherwise stay for ever.
        session.exec(delete(LoginAttemptRecord).where(col(LoginAttemptRecord.at) <= at - window))
        recent, oldest = session.exec(
            select(func.count(), func.min(LoginAttemptRecord.at))
            .select_from(LoginAttemptRecord)
            .where(LoginAttemptRecord.username == username, LoginAttemptRecord.at > at - window)
        ).one()
        if recent >= attempts:
            # Free again when the oldest counted attempt leaves the window.
            left = window - (at - _aware(oldest)) if oldest is not None else window
            seconds = max(1, math.ceil(left.total_seconds()))
            raise RateLimitedError(
                "too many failed logins for this account; try again in "
                f"{max(1, math.ceil(seconds / 60))} min",
                retry_after=seconds,
            )
        session.add(LoginAttemptRecord(username=username, at=at))
        officer = session.exec(
            select(OfficerRecord).where(OfficerRecord.username == username)
        ).first()
    if login_refused(password, production=environment is Environment.PRODUCTION):
        verify_password(password, dummy_hash())  # same time as a wrong password
        raise AuthenticationError("wrong username or password")
    if officer is None or not officer.active:
        verify_password(password, dummy_hash())  # same time as a wrong password
        raise AuthenticationError("wrong username or password")
    if not verify_password(password, officer.password_hash):
        raise AuthenticationError("wrong username or password")
    with session_scope(engine) as session:
        session.exec(delete(LoginAttemptRecord).where(col(LoginAttemptRecord.username) == username))
    return officer


def create_office(
    session: Session, actor: Actor | None, data: OfficeCreate, *, at: datetime
) -> OfficeRecord:
    if actor is not None:
        require(actor, "office.manage")
    office = OfficeRecord(code=data.code, name_en=data.name_en, name_zh=data.name_zh, created_at=at)
    session.add(office)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(f"office {data.code} exists") from None
    audit.append(
        session,
        actor=actor,
        action="office.create",
        record_type="office",
        record_id=str(office.id),
        after=audit.record_values(office),
        at=at,
    )
    return office


def create_officer(
    session: Session,
    actor: Actor | None,
    data: OfficerCreate,
    *,
    at: datetime,
    office_id: int | None = None,
) -> OfficerRecord:
    """Create an officer in the actor's office (admins: any office, by code).

    ``actor`` None is the service itself (first start, demo data). Nobody may create an
    officer who would reach further than they do (:func:`access.require_within_reach`)."""
    if actor is not None:
        require(actor, "officer.manage")  # before looking offices up: no probing by code
    if data.office_code is not None:
        office_id = _office_id(session, data.office_code)
    if actor is not None:
        office_id = office_id or actor.office_id
        require(actor, "officer.manage", office_id=office_id)
        require_within_reach(actor, data.role, office_id, doing="create")
    if office_id is None:
        raise ConflictError("an officer needs an office")
    officer = OfficerRecord(
        office_id=office_id,
        username=data.username,
        display_name=data.display_name,
        role=data.role,
        password_hash=hash_password(data.password),
        created_at=at,
    )
    session.add(officer)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(f"username {data.username!r} is taken") from None
    audit.append(
        session,
        actor=actor,
        action="officer.create",
        record_type="officer",
        record_id=str(officer.id),
        after=_audited(officer),
        at=at,
    )
    return officer


def update_officer(
    session: Session, actor: Actor, username: str, data: OfficerUpdate, *, at: datetime
) -> OfficerRecord:
    """Change an officer's role, office or ``active`` flag (disable, re-enable).

    The officer must be within the actor's reach both as they are (a supervisor cannot
    disable or demote an admin) and as they would be (nor promote anyone above themselves,
    re-enable an auditor or move an officer to another office). The row is locked, so two
    changes at once are applied one after the other, each checked against the other's result.
    """
    require(actor, "officer.manage")
    officer = session.exec(
        select(OfficerRecord).where(OfficerRecord.username == username).with_for_update()
    ).first()
    if officer is None or not allowed(actor, "officer.read", office_id=officer.office_id):
        raise RecordHiddenError(f"no officer {username!r}", "officer of another office")
    require(actor, "officer.manage", office_id=officer.office_id)
    require_within_reach(actor, officer.role, officer.office_id, doing="change")
    role = data.role or officer.role
    office_id = (
        officer.office_id if data.office_code is None else _office_id(session, data.office_code)
    )
    require(actor, "officer.manage", office_id=office_id)
    doing = "re-enable" if data.active and not officer.active else "make"
    require_within_reach(actor, role, office_id, doing=doing)
    before = _audited(officer)
    officer.role, officer.office_id = role, office_id
    if data.active is not None:
        officer.active = data.active
    session.add(officer)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="officer.update",
        record_type="officer",
        record_id=str(officer.id),
        before=before,
        after=_audited(officer),
        at=at,
    )
    return officer


def _office_id(session: Session, code: str) -> int:
    office = session.exec(select(OfficeRecord).where(OfficeRecord.code == code)).first()
    if office is None or office.id is None:
        raise NotFoundError(f"no office {code}")
    return office.id


def _audited(officer: OfficerRecord) -> dict[str, Any]:
    """The officer's values for the audit log's digests, without the password hash."""
    values = audit.record_values(officer)
    values.pop("password_hash")
    return values
