"""Expiry reminders on both databases: one per (card, offset) even when two instances run at
once, a failed send tried again next round, the holder's language (or English and Chinese),
the service's timer and the CLI command."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import col, select

from cardissuer.api.routes.common import issuing_context_of
from cardissuer.cli import main as cli_main
from cardissuer.core.config import Settings
from cardissuer.core.db import session_scope
from cardissuer.mail import SmtpMailer
from cardissuer.main import create_app
from cardissuer.models import GrantCreate, PassportIn, PersonCreate
from cardissuer.portal.models import ApplicationKind, ApplicationState, ReminderRecord
from cardissuer.portal.reminders import send_reminders, windows
from cardissuer.services import cards, registry
from tests.cardissuer import applications as factory
from tests.cardissuer.test_api_helpers import finishes_while_written
from tests.mail_sink import MailSink, body_of, mail_sink

OFFSETS = (60, 14)
BASE = "https://cards.example"


@pytest.fixture
def sink() -> Iterator[MailSink]:
    with mail_sink() as running:
        yield running


def _holder(
    app: FastAPI, family: str, passport: str, *, email: str | None, days: int
) -> tuple[int, int]:
    """A registered person with a card valid for ``days``; (person id, card id)."""
    engine = app.state.engine
    actor = factory.officer(engine, "registrar")
    at = datetime.now(UTC).replace(microsecond=0)
    with session_scope(engine) as session:
        person = registry.register(
            session,
            actor,
            PersonCreate(
                family_name=family,
                given_names="TEST",
                nationality="BRA",
                birth_date="1991-02-03",
                email=email,
                passport=PassportIn(number=passport, issuing_country="BRA"),
                confirm_new_person=False,
            ),
            at=at,
        )
        cards.grant(
            session,
            actor,
            person.code,
            GrantCreate(service="hc"),
            at=at,
            catalogue=["hc"],
            context=None,
        )
        card = cards.issue(
            session, actor, person.code, at=at, context=issuing_context_of(app), valid_days=days
        )
        return person.id or 0, card.id or 0


def _claims(app: FastAPI) -> list[tuple[int, int]]:
    with session_scope(app.state.engine) as session:
        rows = session.exec(
            select(ReminderRecord.card_id, ReminderRecord.days_before).order_by(
                col(ReminderRecord.id)
            )
        ).all()
        return [(card, days) for card, days in rows]


def _mailer(sink: MailSink) -> SmtpMailer:
    return SmtpMailer(sink.host, sink.port, sender="fmcard@cards.example", timeout=5)


def test_each_offset_has_a_window_down_to_the_next() -> None:
    assert windows((14, 60)) == [(60, 14), (14, 0)]
    assert windows((30,)) == [(30, 0)]


def test_two_instances_at_once_send_each_reminder_once(app: FastAPI, sink: MailSink) -> None:
    soon_person, soon = _holder(app, "SOUZA", "FB100001", email="souza@example.org", days=30)
    _, sooner = _holder(app, "LIMA", "FB100002", email="lima@example.org", days=10)
    _holder(app, "COSTA", "FB100003", email=None, days=10)  # no address: nothing to send
    _holder(app, "ALVES", "FB100004", email="alves@example.org", days=400)  # not yet
    factory.submit(  # SOUZA applied online in Russian once
        app.state.engine,
        kind=ApplicationKind.RENEWAL,
        person_id=soon_person,
        language="ru",
        state=ApplicationState.APPROVED,
    )

    start = threading.Barrier(2)
    reports = []

    def instance() -> None:
        start.wait(timeout=10)
        reports.append(
            send_reminders(app.state.engine, _mailer(sink), offsets=OFFSETS, base_url=BASE)
        )

    threads = [threading.Thread(target=instance) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(reports) == 2
    assert sum(r.sent for r in reports) == 2
    assert sorted(_claims(app)) == sorted([(soon, 60), (sooner, 14)])
    (russian,) = sink.wait_for("souza@example.org")
    (bilingual,) = sink.wait_for("lima@example.org")
    assert russian["Content-Language"] == "ru"
    assert bilingual["Content-Language"] == "en, zh"
    assert "Your Foreign Merchant Card expires on" in body_of(bilingual)
    assert "----------" in body_of(bilingual)
    assert f"{BASE}/portal/" in body_of(bilingual)

    # Again: nothing new. Twenty days on, SOUZA's card enters the 14-day window.
    again = send_reminders(app.state.engine, _mailer(sink), offsets=OFFSETS, base_url=BASE)
    assert again.sent == 0
    later = datetime.now(UTC) + timedelta(days=20)
    moved = send_reminders(
        app.state.engine, _mailer(sink), offsets=OFFSETS, base_url=BASE, at=later
    )
    assert moved.sent == 1
    assert (soon, 14) in _claims(app)
    assert len(sink.wait_for("souza@example.org", count=2)) == 2
    assert len(sink.messages) == 3


def test_a_failed_send_is_tried_again_next_round(app: FastAPI, sink: MailSink) -> None:
    _, card = _holder(app, "ROCHA", "FB100005", email="rocha@example.org", days=20)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    down = SmtpMailer("127.0.0.1", closed, sender="fmcard@cards.example", timeout=2)
    failed = send_reminders(app.state.engine, down, offsets=OFFSETS, base_url=BASE)
    assert (failed.sent, failed.failed) == (0, 1)
    assert _claims(app) == []  # the claim went with the failure
    retried = send_reminders(app.state.engine, _mailer(sink), offsets=OFFSETS, base_url=BASE)
    assert retried.sent == 1
    assert _claims(app) == [(card, 60)]
    sink.wait_for("rocha@example.org")


def test_the_cli_sends_the_reminders_due(
    tmp_path: Path, sink: MailSink, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    settings = Settings(workspace=tmp_path / "workspace", database_url=sqlite_url)
    app = create_app(settings)
    try:
        from cardissuer.seed import seed_demo

        seed_demo(app.state.engine, issuing_context_of(app), environment=settings.environment)
        _holder(app, "MELO", "FB100006", email="melo@example.org", days=5)
    finally:
        app.state.engine.dispose()
    monkeypatch.setenv("FMCARD_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("FMCARD_MAIL_URL", sink.url)
    monkeypatch.setenv("FMCARD_WORKSPACE", str(tmp_path / "workspace"))
    assert cli_main(["db", "send-reminders"]) == 0
    sink.wait_for("melo@example.org")
    assert cli_main(["db", "send-reminders"]) == 0
    assert len(sink.messages) == 1


def test_the_service_runs_the_reminder_timer(service_settings: Settings) -> None:
    def reminder_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "fmcard-reminders" and t.is_alive()]

    before = len(reminder_threads())
    on = create_app(service_settings.model_copy(update={"expire_cards_every_minutes": 60}))
    try:
        with TestClient(on):
            assert len(reminder_threads()) == before + 1
        assert len(reminder_threads()) == before
    finally:
        on.state.engine.dispose()
    assert os.environ.get("FMCARD_EXPIRE_CARDS_EVERY_MINUTES") == "0"


def test_looking_for_due_cards_does_not_hold_the_write_lock(app: FastAPI, sink: MailSink) -> None:
    """The reminders' search reads a window of cards (many, in a large registry, whose holders
    have no address) in a snapshot: on SQLite a writer holding the lock does not stop it, and
    it does not stop writers."""
    _holder(app, "PEREIRA", "FB100009", email=None, days=10)  # due, but no address
    reports = []

    def look() -> None:
        reports.append(
            send_reminders(app.state.engine, _mailer(sink), offsets=OFFSETS, base_url=BASE)
        )

    assert finishes_while_written(app.state.engine, look), "the reminders waited for the writer"
    assert reports[0].sent == 0
