"""Retention: the personal data of applications that led nowhere is deleted on a timer.

After ``application_retention_days`` the form (names, birth date, passport), the uploaded
images, the address and the phone number of an application are deleted when it was

* rejected or withdrawn that long ago (``decided_at``), or
* abandoned: waiting for the holder's answer (INFO_NEEDED) with no change for that long.

What stays is what the audit chain and the statistics need: the reference, kind, state,
office and dates (and the owner's keyed hash, which names nobody). Approved applications
keep their form: the person record made from them holds the same data anyway, and the
console shows what the holder sent. Each round is audited as a count (no references: a
count is what the log needs). Expired one-time codes are pruned in the same round.

The service runs it with the card-expiry timer (``expire_cards_every_minutes``);
``fmcard db purge-applications`` does the same by hand or from cron.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, and_, col, select

from cardissuer.core.db import session_scope
from cardissuer.portal import codes
from cardissuer.portal.models import ApplicationFileRecord, ApplicationRecord, ApplicationState
from cardissuer.services import audit
from cardissuer.services.expiry import FIRST_RUN_AFTER_S, ExpiryTimer

log = logging.getLogger("fmcard.retention")

PER_TRANSACTION = 500


@dataclass(frozen=True, slots=True)
class Purged:
    applications: int
    codes: int


def _has_personal_data() -> ColumnElement[bool]:
    return or_(
        col(ApplicationRecord.form).is_not(None),
        col(ApplicationRecord.email).is_not(None),
        col(ApplicationRecord.phone).is_not(None),
    )


def purge_round(session: Session, *, at: datetime, days: int, limit: int | None = None) -> int:
    """Delete the personal data of at most ``limit`` due applications; return how many.

    An abandoned application is closed as refused for ``no-answer`` (the holder reads why)."""
    cutoff = at - timedelta(days=days)
    closed = [ApplicationState.REJECTED.value, ApplicationState.WITHDRAWN.value]
    query = (
        select(ApplicationRecord.id, ApplicationRecord.state)
        .where(
            _has_personal_data(),
            or_(
                and_(
                    col(ApplicationRecord.state).in_(closed),
                    col(ApplicationRecord.decided_at) < cutoff,
                ),
                and_(
                    ApplicationRecord.state == ApplicationState.INFO_NEEDED.value,
                    col(ApplicationRecord.updated_at) < cutoff,
                ),
            ),
        )
        .order_by(col(ApplicationRecord.id))
    )
    if limit is not None:
        query = query.limit(limit)
    found = session.exec(query.with_for_update()).all()
    ids = [found_id for found_id, _ in found if found_id is not None]
    if not ids:
        return 0
    abandoned = [
        found_id
        for found_id, state in found
        if found_id is not None and state == ApplicationState.INFO_NEEDED.value
    ]
    session.exec(
        delete(ApplicationFileRecord).where(col(ApplicationFileRecord.application_id).in_(ids))
    )
    session.exec(
        update(ApplicationRecord)
        .where(col(ApplicationRecord.id).in_(ids))
        .values(form=None, email=None, phone=None, answer=None)
    )
    if abandoned:
        session.exec(
            update(ApplicationRecord)
            .where(col(ApplicationRecord.id).in_(abandoned))
            .values(
                state=ApplicationState.REJECTED.value,
                reject_reason="no-answer",
                decided_at=at,
                updated_at=at,
            )
        )
    audit.append(
        session,
        actor=None,
        action="application.personal_data_deleted",
        record_type="application",
        record_id="*",
        detail=f"{len(ids)} application(s) past {days} days, {len(abandoned)} of them abandoned",
        at=at,
    )
    return len(ids)


def purge(engine: Engine, *, days: int, at: datetime | None = None) -> Purged:
    """Every due application, :data:`PER_TRANSACTION` at a time, and the dead codes."""
    at = at or datetime.now(UTC)
    total = 0
    while True:
        with session_scope(engine) as session:
            count = purge_round(session, at=at, days=days, limit=PER_TRANSACTION)
        total += count
        if count < PER_TRANSACTION:
            break
    with session_scope(engine) as session:
        pruned = codes.prune(session, at=at)
    return Purged(total, pruned)


class RetentionTimer(ExpiryTimer):
    """Runs :func:`purge` on the expiry timer's clock, in a thread of its own."""

    def __init__(
        self, engine: Engine, *, days: int, every_s: float, first_after_s: float = FIRST_RUN_AFTER_S
    ) -> None:
        super().__init__(
            engine, every_s=every_s, first_after_s=first_after_s, name="fmcard-retention"
        )
        self._days = days

    def round(self) -> None:
        purged = purge(self._engine, days=self._days)
        if purged.applications:
            log.info("deleted the personal data of %d application(s)", purged.applications)
