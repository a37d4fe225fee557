"""Helpers for the API tests (no tests here): a service shared by the tests of one module.

Building the app costs about a second (schema, key ring, demo officers with scrypt hashes),
so the table-driven API tests share one service per module and backend, and keep out of each
other's way by registering their own persons (unique birth dates and passports). Tests that
count rows or audit entries look at what changed after they started, never at totals.

:func:`shared_service` is used by a module-scoped fixture in each module, parametrized over
SQLite and PostgreSQL like ``conftest.database_url``.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, col, select

from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.config import Settings
from cardissuer.core.security import hash_password
from cardissuer.main import create_app
from cardissuer.models import (
    AuditHeadRecord,
    AuditRecord,
    CardRecord,
    LoginAttemptRecord,
    OfficeRecord,
    OfficerRecord,
    PersonRecord,
    Role,
)
from cardissuer.seed import DEMO_PASSWORD, seed_demo
from cardissuer.services import audit, blobs
from cardissuer.services.access import Actor
from cardissuer.services.cards import IssuingContext
from cardissuer.services.officers import actor_of
from keys.jws import VerificationKey
from tests.cardissuer.conftest import ADMIN_URL, POSTGRES
from verifier import Bundle, Reason, Verifier

BACKENDS = ["sqlite", "postgresql"]
OTHER_OFFICE = "YW-CHOUCHENG"
"""The second demo office: it has no officers until a test asks for one."""
UNAUDITED_TABLES = frozenset({"audit", "audit_head", "audit_checkpoint", "login_attempt"})


@contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    """A fresh, empty database URL (the module-scoped twin of ``conftest.database_url``)."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'fmcard.db'}"
        return
    if not POSTGRES:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL} (CI must test it)")
        pytest.skip("PostgreSQL is not reachable")
    name = f"fmcard_test_{secrets.token_hex(6)}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def copy_database(source: str, target: str) -> None:
    """Fill the database at ``target`` with a copy of the one at ``source`` (same backend, no
    connection open to either): rows, sequences and the planner's statistics. ``target`` is a
    SQLite file not yet made, or an existing PostgreSQL database (replaced by the copy)."""
    if source.startswith("sqlite"):
        source_path, target_path = (make_url(url).database for url in (source, target))
        assert source_path
        assert target_path
        assert not Path(target_path).exists(), target_path
        with (
            closing(sqlite3.connect(source_path)) as read,
            closing(sqlite3.connect(target_path)) as write,
        ):
            read.backup(write)
        return
    template, name = make_url(source).database, make_url(target).database
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}"'))
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()


@dataclass
class Service:
    """A running issuer with the demo data, and shortcuts the tests share."""

    app: FastAPI
    client: TestClient
    backend: str
    _headers: dict[str, dict[str, str]] = field(default_factory=dict)
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.state.engine
        return engine

    @property
    def context(self) -> IssuingContext:
        return issuing_context_of(self.app)

    # --- officers -----------------------------------------------------------------------

    def headers(self, username: str) -> dict[str, str]:
        """The Authorization header of ``username`` (logged in once per service)."""
        if username not in self._headers:
            self._headers[username] = login(self.client, username)
        return self._headers[username]

    def officer(self, username: str, role: Role, office: str | None = None) -> dict[str, str]:
        """Create (once) an officer with the demo password and return their headers."""
        if username not in self._headers:
            with Session(self.engine) as session:
                office_id = session.exec(
                    select(OfficeRecord.id).where(OfficeRecord.code == (office or "YW-FUTIAN"))
                ).one()
                assert office_id is not None
                session.add(
                    OfficerRecord(
                        office_id=office_id,
                        username=username,
                        display_name=username,
                        role=role,
                        # A cheap hash: logging in as them costs no 100 ms of scrypt.
                        password_hash=hash_password(DEMO_PASSWORD, n=2**10),
                    )
                )
                session.commit()
        return self.headers(username)

    def actor(self, username: str) -> Actor:
        with Session(self.engine) as session:
            officer = session.exec(
                select(OfficerRecord).where(OfficerRecord.username == username)
            ).one()
            return actor_of(officer)

    # --- persons and cards -------------------------------------------------------------

    def person_body(self, **overrides: Any) -> dict[str, Any]:
        """A valid registration no other test's person resembles (unique birth date)."""
        n = next(self._counter)
        body: dict[str, Any] = {
            "family_name": "TESTPERSON",
            "given_names": "ANNE MARIE",
            "nationality": "FRA",
            "birth_date": (date(1950, 1, 1) + timedelta(days=n)).isoformat(),
            "sex": "F",
            "passport": {"number": new_passport(), "issuing_country": "FRA"},
        }
        body.update(overrides)
        return body

    def register(self, username: str = "registrar", **overrides: Any) -> str:
        """Register a fresh person; return the code."""
        response = self.client.post(
            "/api/persons", headers=self.headers(username), json=self.person_body(**overrides)
        )
        assert response.status_code == 201, response.text
        code: str = response.json()["code"]
        return code

    def person(self, code: str, username: str = "registrar") -> dict[str, Any]:
        response = self.client.get(f"/api/persons/{code}", headers=self.headers(username))
        assert response.status_code == 200, response.text
        person: dict[str, Any] = response.json()
        return person

    def entitled(self, count: int, username: str = "registrar") -> list[str]:
        """``count`` fresh persons holding ``hc`` and no card; their codes."""
        codes = []
        for _ in range(count):
            code = self.register(username)
            granted = self.client.post(
                f"/api/persons/{code}/grants",
                headers=self.headers(username),
                json={"service": "hc"},
            )
            assert granted.status_code == 201, granted.text
            codes.append(code)
        return codes

    def text_of(self, record: CardRecord) -> str:
        """The card's signed QR text, as stored apart from its row."""
        with Session(self.engine) as session:
            return blobs.qr_text_of(session, record.id)

    def cards_of(self, code: str) -> list[CardRecord]:
        """The person's cards as stored, oldest first."""
        with Session(self.engine) as session:
            person = session.exec(select(PersonRecord).where(PersonRecord.code == code)).one()
            return list(
                session.exec(
                    select(CardRecord)
                    .where(CardRecord.person_id == person.id)
                    .order_by(col(CardRecord.id))
                ).all()
            )

    def with_card(
        self, services: tuple[str, ...] = ("hc",), username: str = "registrar"
    ) -> tuple[str, dict[str, Any]]:
        """A fresh person holding ``services`` and a card; return the code and the card."""
        code = self.register(username)
        headers = self.headers(username)
        for service in services:
            granted = self.client.post(
                f"/api/persons/{code}/grants", headers=headers, json={"service": service}
            )
            assert granted.status_code == 201, granted.text
        card = self.client.post(f"/api/persons/{code}/cards", headers=headers)
        assert card.status_code == 201, card.text
        issued: dict[str, Any] = card.json()
        return code, issued

    def card(self, serial: str, username: str = "registrar") -> dict[str, Any]:
        response = self.client.get(f"/api/cards/{serial}", headers=self.headers(username))
        assert response.status_code == 200, response.text
        card: dict[str, Any] = response.json()
        return card

    # --- what counters see ---------------------------------------------------------------

    def verifier(self) -> Verifier:
        """A counter that just downloaded the bundle."""
        response = self.client.get("/bundle.json")
        assert response.status_code == 200, response.text
        return Verifier(Bundle.from_json(json.loads(response.content), at=datetime.now(UTC)))

    def reasons(self, *qr_texts: str, service: str = "hc") -> list[Reason]:
        """What a counter with a fresh bundle says about each card."""
        verifier, at = self.verifier(), datetime.now(UTC)
        return [verifier.verify(qr, service=service, at=at).reason for qr in qr_texts]

    # --- the database, for checking what changed --------------------------------------

    def audit_seq(self) -> int:
        with Session(self.engine) as session:
            head = session.exec(select(AuditHeadRecord)).first()
            return head.seq if head else 0

    def audit_after(self, seq: int) -> list[AuditRecord]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(AuditRecord).where(AuditRecord.seq > seq).order_by(col(AuditRecord.seq))
                ).all()
            )

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table except the audit log and login attempts."""
        return snapshot(self.engine)

    def verify_chain(self) -> audit.ChainReport:
        return verify_chain(self.app)

    def failed_logins(self, username: str) -> int:
        with Session(self.engine) as session:
            return session.exec(
                select(func.count())
                .select_from(LoginAttemptRecord)
                .where(LoginAttemptRecord.username == username)
            ).one()


def new_passport() -> str:
    return "T" + secrets.token_hex(4).upper()


def login(client: TestClient, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    client.cookies.clear()  # the console's cookie would log in every later request
    return {"Authorization": f"Bearer {response.json()['token']}"}


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    tables = [t for t in SQLModel.metadata.sorted_tables if t.name not in UNAUDITED_TABLES]
    with engine.connect() as connection:
        return {
            table.name: sorted((tuple(row) for row in connection.execute(table.select())), key=repr)
            for table in tables
        }


def verify_chain(app: FastAPI) -> audit.ChainReport:
    keys = [VerificationKey(kid, key) for key, kid in app.state.public_keys]
    with Session(app.state.engine) as session:
        return audit.verify_chain(session, keys=keys)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status`` and the stable type ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://fmcard.example/problems/{code}", body
    assert body["status"] == status
    assert {"title", "detail", "instance"} <= set(body)
    return body


@contextmanager
def shared_service(backend: str, directory: Path) -> Iterator[Service]:
    """Build a service with the demo data on ``backend``; dispose of it afterwards."""
    with database(backend, directory) as url:
        app = create_app(Settings(workspace=directory / "workspace", database_url=url))
        seed_demo(
            app.state.engine, issuing_context_of(app), environment=app.state.settings.environment
        )
        try:
            with TestClient(app) as client:
                yield Service(app=app, client=client, backend=backend)
        finally:
            app.state.engine.dispose()


def finishes_while_written(
    engine: Engine, work: Callable[[], object], seconds: float = 20.0
) -> bool:
    """Run ``work`` in a thread while another connection holds a write transaction that has
    written (on SQLite: the database's write lock); whether it finished before ``seconds``,
    with the lock still held. ``work`` that waits for writers would wait the whole time."""
    done = threading.Event()

    def run() -> None:
        try:
            work()
        finally:
            done.set()

    with engine.connect() as writer:
        writer.execute(text("UPDATE office SET name_en = name_en WHERE id = 1"))
        worker = threading.Thread(target=run)
        worker.start()
        finished = done.wait(seconds)
        writer.rollback()
    worker.join(60)
    return finished
