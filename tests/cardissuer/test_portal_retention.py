"""Retention: personal data of applications that led nowhere is deleted after the period."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from sqlmodel import select

from cardissuer.cli import main
from cardissuer.core.db import session_scope
from cardissuer.models import AuditRecord, OfficeRecord
from cardissuer.portal import applications, codes
from cardissuer.portal.models import (
    ApplicationFileRecord,
    ApplicationKind,
    ApplicationRecord,
    ApplicationState,
    OneTimeCodeRecord,
)
from cardissuer.portal.retention import RetentionTimer, purge
from cardissuer.portal.uploads import CheckedImage

NOW = datetime.now(UTC).replace(microsecond=0)
KEY = codes.portal_key("a test secret of sufficient length for hashing")


def _application(app: FastAPI, state: ApplicationState, *, age_days: int) -> str:
    at = NOW - timedelta(days=age_days)
    with session_scope(app.state.engine) as session:
        office = session.exec(select(OfficeRecord)).first()
        assert office is not None
        record = applications.submit(
            session,
            owner=applications.owner_hash(KEY, "someone@example.org"),
            kind=ApplicationKind.RENEWAL,
            form=None,
            email="someone@example.org",
            phone="+86 1",
            language="en",
            office_id=office.id or 0,
            uploads=[
                applications.Upload(
                    "portrait", CheckedImage(b"\xff\xd8\xffjpeg", "image/jpeg", 1, 1)
                )
            ],
            at=at,
        )
        record.form = '{"person": "data"}'
        record.state = state.value
        record.answer = "an answer" if state is ApplicationState.INFO_NEEDED else None
        if state in (ApplicationState.REJECTED, ApplicationState.WITHDRAWN):
            record.decided_at = at
        session.add(record)
        return record.reference


def _record(app: FastAPI, reference: str) -> tuple[ApplicationRecord, int]:
    with session_scope(app.state.engine) as session:
        record = session.exec(
            select(ApplicationRecord).where(ApplicationRecord.reference == reference)
        ).one()
        files = session.exec(
            select(ApplicationFileRecord).where(ApplicationFileRecord.application_id == record.id)
        ).all()
        session.expunge(record)
        return record, len(files)


def test_retention_deletes_personal_data_of_applications_that_led_nowhere(app: FastAPI) -> None:
    old_rejected = _application(app, ApplicationState.REJECTED, age_days=91)
    old_withdrawn = _application(app, ApplicationState.WITHDRAWN, age_days=120)
    abandoned = _application(app, ApplicationState.INFO_NEEDED, age_days=95)
    recent_rejected = _application(app, ApplicationState.REJECTED, age_days=10)
    old_open = _application(app, ApplicationState.SUBMITTED, age_days=200)
    old_approved = _application(app, ApplicationState.APPROVED, age_days=200)

    purged = purge(app.state.engine, days=90, at=NOW)

    assert purged.applications == 3
    for reference in (old_rejected, old_withdrawn, abandoned):
        record, files = _record(app, reference)
        assert (record.form, record.email, record.phone, record.answer, files) == (
            None,
            None,
            None,
            None,
            0,
        )
        assert record.secret_hash  # the owner can still see that it existed
    record, _ = _record(app, abandoned)
    assert (record.state, record.reject_reason) == ("rejected", "no-answer")
    for reference in (recent_rejected, old_open, old_approved):
        record, files = _record(app, reference)
        assert record.form is not None
        assert record.email == "someone@example.org"
        assert files == 1
    with session_scope(app.state.engine) as session:
        entry = session.exec(
            select(AuditRecord).where(AuditRecord.action == "application.personal_data_deleted")
        ).one()
        assert entry.detail.startswith("3 application(s)")
        assert "someone" not in entry.detail
    assert purge(app.state.engine, days=90, at=NOW).applications == 0  # once


def test_retention_prunes_dead_codes(app: FastAPI) -> None:
    with session_scope(app.state.engine) as session:
        for age in (0, 30, 120, 600):
            codes.issue(
                session,
                key=KEY,
                address=f"a{age}@example.org",
                client="192.0.2.1",
                at=NOW - timedelta(minutes=age),
                minutes=10,
                per_address=5,
                per_client=50,
            )
    assert purge(app.state.engine, days=90, at=NOW).codes == 2
    with session_scope(app.state.engine) as session:
        assert len(session.exec(select(OneTimeCodeRecord)).all()) == 2


def test_the_timer_runs_the_purge(app: FastAPI) -> None:
    reference = _application(app, ApplicationState.REJECTED, age_days=100)
    timer = RetentionTimer(app.state.engine, days=90, every_s=60, first_after_s=0.01)
    timer.start()
    try:
        for _ in range(200):
            if _record(app, reference)[0].form is None:
                break
            time.sleep(0.05)
    finally:
        timer.stop()
    assert _record(app, reference)[0].form is None


def test_the_cli_purges(app: FastAPI, capsys: pytest.CaptureFixture[str]) -> None:
    reference = _application(app, ApplicationState.WITHDRAWN, age_days=100)
    settings = app.state.settings
    argv = ["--dir", str(settings.workspace), "db", "purge-applications"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FMCARD_DATABASE_URL", settings.database_url)
        assert main(argv) == 0
    assert "personal data of 1 application(s) deleted" in capsys.readouterr().out
    assert _record(app, reference)[0].form is None
