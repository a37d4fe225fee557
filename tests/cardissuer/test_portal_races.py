"""The portal's one-time codes under parallel requests, on SQLite and PostgreSQL.

The counters that guard a holder's address must hold however the requests arrive: "send me a
code" stops at the hourly limits per address and per client (each extra code is five more
guesses at the address's sign-in, and a mail nobody asked for), and wrong guesses at one code
end it after :data:`codes.MAX_WRONG_TRIES`, after which even the right code is refused.
Requests are released together by a barrier, as in ``test_security_races``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, text
from sqlmodel import select

from cardissuer.core.config import Settings
from cardissuer.core.db import session_scope
from cardissuer.main import create_app
from cardissuer.portal import codes
from cardissuer.portal.models import OneTimeCodeRecord
from tests.cardissuer.portal_helpers import ask_code, code_in, csrf_of, enter_code
from tests.cardissuer.test_concurrency import at_once, only
from tests.mail_sink import MailSink, mail_sink

ADDRESS = "guessed.holder@example.org"
PARALLEL = 30
PER_ADDRESS = 3
PER_CLIENT = 6
ENGLISH = {"Accept-Language": "en"}


@pytest.fixture
def sink() -> Iterator[MailSink]:
    with mail_sink() as running:
        yield running


def _app(tmp_path: Path, database_url: str, sink: MailSink, *, per_client: int) -> FastAPI:
    return create_app(
        Settings(
            workspace=tmp_path / "workspace",
            database_url=database_url,
            mail_url=sink.url,
            one_time_codes_per_address_per_hour=PER_ADDRESS,
            one_time_codes_per_client_per_hour=per_client,
        )
    )


@pytest.fixture
def client_of(
    tmp_path: Path, database_url: str, sink: MailSink
) -> Iterator[tuple[FastAPI, TestClient]]:
    """A portal whose client limit is out of the way (the address's limit is tested)."""
    app = _app(tmp_path, database_url, sink, per_client=10 * PARALLEL)
    try:
        with TestClient(app, base_url="https://testserver", headers=ENGLISH) as client:
            yield app, client
    finally:
        app.state.engine.dispose()


def codes_stored(app: FastAPI) -> int:
    with session_scope(app.state.engine) as session:
        return int(session.exec(select(func.count()).select_from(OneTimeCodeRecord)).one())


def test_parallel_code_requests_for_one_address_keep_its_hourly_limit(
    client_of: tuple[FastAPI, TestClient], sink: MailSink
) -> None:
    app, client = client_of
    csrf_of(client)
    statuses = only(at_once(PARALLEL, lambda _: ask_code(client, ADDRESS).status_code))
    assert statuses == [303] * PARALLEL  # the same answer, limited or not
    assert codes_stored(app) == PER_ADDRESS
    sink.wait_for(ADDRESS, PER_ADDRESS)
    assert len(sink.to(ADDRESS)) == PER_ADDRESS


def test_parallel_code_requests_from_one_client_keep_its_hourly_limit(
    tmp_path: Path, database_url: str, sink: MailSink
) -> None:
    app = _app(tmp_path, database_url, sink, per_client=PER_CLIENT)
    try:
        with TestClient(app, base_url="https://testserver", headers=ENGLISH) as client:
            csrf_of(client)
            statuses = only(
                at_once(
                    PARALLEL,
                    lambda n: ask_code(client, f"probe{n}@example.org").status_code,
                )
            )
        assert Counter(statuses) == {303: PER_CLIENT, 429: PARALLEL - PER_CLIENT}
        assert codes_stored(app) == PER_CLIENT
    finally:
        app.state.engine.dispose()


def test_parallel_wrong_codes_end_the_code_and_the_right_one_is_refused_after(
    client_of: tuple[FastAPI, TestClient], sink: MailSink
) -> None:
    app, client = client_of
    assert ask_code(client, ADDRESS).status_code == 303
    code = code_in(sink, ADDRESS)
    wrong = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, PARALLEL + 1)]
    answers = only(at_once(PARALLEL, lambda n: enter_code(client, wrong[n])))
    assert {a.status_code for a in answers} == {422}
    told_wrong = sum("This code is not right" in a.text for a in answers)
    assert told_wrong == codes.MAX_WRONG_TRIES - 1  # the last counted one ends the code
    with session_scope(app.state.engine) as session:
        [record] = session.exec(select(OneTimeCodeRecord)).all()
        assert record.attempts == codes.MAX_WRONG_TRIES
    refused = enter_code(client, code)
    assert refused.status_code == 422
    assert "no longer valid" in refused.text
    assert client.cookies.get("__Host-fmcard_portal") is None


def _writers_can_start(database_url: str) -> bool:
    """Whether nothing holds the registry's write lock (SQLite) or an advisory lock in its
    database (PostgreSQL) right now."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[1]
        with contextlib.closing(sqlite3.connect(path, timeout=0.5)) as raw:
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return False
            raw.rollback()
            return True
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            held = connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
                    "database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return int(held) == 0


def test_no_lock_is_held_while_the_code_is_mailed(
    tmp_path: Path, database_url: str, sink: MailSink
) -> None:
    """The limits' locks end with the code's transaction, before the mail goes out: a mail
    server taking its time (up to the SMTP timeout) held them, and with them a database
    connection and a worker for every parallel request of the same client."""
    app = _app(tmp_path, database_url, sink, per_client=PER_CLIENT)
    free: list[bool] = []
    sink.while_receiving = lambda: free.append(_writers_can_start(database_url))
    try:
        with TestClient(app, base_url="https://testserver", headers=ENGLISH) as client:
            csrf_of(client)
            assert ask_code(client, ADDRESS).status_code == 303
        assert free == [True]
        assert codes_stored(app) == 1
    finally:
        app.state.engine.dispose()
