"""The service marks cards past their expiry as expired by itself (both databases).

``app`` (conftest) is a fresh service with the demo persons and their cards, per test and per
database; cards are made to look old by moving their expiry into the past.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlmodel import Session, col, select

from cardissuer.core.config import Settings
from cardissuer.core.db import session_scope
from cardissuer.main import create_app
from cardissuer.models import AuditRecord, CardRecord, CardState
from cardissuer.services import expiry
from cardissuer.services.expiry import ExpiryTimer, expire_all


def age(app: FastAPI, count: int | None = None) -> list[str]:
    """Move the expiry of ``count`` current cards (all if None) a day into the past."""
    with session_scope(app.state.engine) as session:
        query = select(CardRecord).where(CardRecord.state == CardState.ACTIVE)
        records = session.exec(query.order_by(col(CardRecord.id))).all()[:count]
        for record in records:
            record.expires_at = datetime.now(UTC) - timedelta(days=1)
            session.add(record)
        return [record.serial for record in records]


def states(app: FastAPI, serials: list[str]) -> list[CardState]:
    with Session(app.state.engine) as session:
        rows = session.exec(select(CardRecord).where(col(CardRecord.serial).in_(serials))).all()
        by_serial = {row.serial: row.state for row in rows}
        return [by_serial[serial] for serial in serials]


def expired_entries(app: FastAPI) -> list[str]:
    with Session(app.state.engine) as session:
        return list(
            session.exec(
                select(AuditRecord.record_id).where(AuditRecord.action == "card.expired")
            ).all()
        )


def test_the_timer_expires_old_cards_and_nothing_else(app: FastAPI) -> None:
    old = age(app, 2)
    with Session(app.state.engine) as session:
        others = [
            serial
            for serial in session.exec(
                select(CardRecord.serial).where(CardRecord.state == CardState.ACTIVE)
            ).all()
            if serial not in old
        ]
    assert others, "the demo has more cards than the two made old"
    timer = ExpiryTimer(app.state.engine, every_s=0.05, first_after_s=0.01)
    timer.start()
    try:
        deadline = time.monotonic() + 30
        while states(app, old) != [CardState.EXPIRED] * 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        timer.stop()
    assert states(app, old) == [CardState.EXPIRED] * 2
    assert set(states(app, others)) == {CardState.ACTIVE}
    assert len(expired_entries(app)) == 2  # once each, however many rounds ran


def test_a_backlog_goes_in_several_transactions(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = age(app)
    monkeypatch.setattr(expiry, "PER_TRANSACTION", 2)
    commits: list[int] = []

    def on_commit(_connection: object) -> None:
        commits.append(1)

    event.listen(app.state.engine, "commit", on_commit)
    try:
        assert expire_all(app.state.engine) == len(old)
    finally:
        event.remove(app.state.engine, "commit", on_commit)
    assert len(commits) == math.ceil(len(old) / 2) + 1  # and one that finds nothing left
    assert set(states(app, old)) == {CardState.EXPIRED}


def test_two_instances_at_once_expire_each_card_once(app: FastAPI) -> None:
    old = age(app)
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def instance() -> None:
        barrier.wait()
        counts.append(expire_all(app.state.engine))

    threads = [threading.Thread(target=instance) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(counts) == len(old)
    entries = expired_entries(app)
    assert len(entries) == len(set(entries)) == len(old)
    assert set(states(app, old)) == {CardState.EXPIRED}


def test_the_service_runs_the_timer_while_it_serves(service_settings: Settings) -> None:
    def expiry_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "fmcard-expiry" and t.is_alive()]

    before = len(expiry_threads())
    on = create_app(service_settings.model_copy(update={"expire_cards_every_minutes": 60}))
    try:
        with TestClient(on):
            assert len(expiry_threads()) == before + 1
        assert len(expiry_threads()) == before
    finally:
        on.state.engine.dispose()
    off = create_app(service_settings.model_copy(update={"expire_cards_every_minutes": 0}))
    try:
        with TestClient(off):
            assert len(expiry_threads()) == before
    finally:
        off.state.engine.dispose()
