"""Service fixtures: a database per test on SQLite and on PostgreSQL, an app, logged-in clients.

PostgreSQL tests run against ``FMCARD_TEST_POSTGRES`` (default: the local server, trust auth)
in a fresh database per test. Where no server answers they are skipped, except under CI
(``CI=true``), where a missing server is a failure: CI must test both databases.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.config import Settings
from cardissuer.core.security import SCRYPT_N, hash_password
from cardissuer.main import create_app
from cardissuer.seed import DEMO_PASSWORD, seed_demo
from cardissuer.services import officers

ADMIN_URL = os.environ.get(
    "FMCARD_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _postgres_available() -> bool:
    try:
        engine = create_engine(ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception:  # any failure to connect means "not available"
        return False
    return True


POSTGRES = _postgres_available()

# The service's own expiry timer would change cards and the audit log under the tests' feet;
# test_expiry.py runs it on purpose.
os.environ.setdefault("FMCARD_EXPIRE_CARDS_EVERY_MINUTES", "0")


@pytest.fixture(scope="session", autouse=True)
def cheap_demo_password_hashes() -> Iterator[None]:
    """The demo officers' password is hashed at a low scrypt cost (as the tests' own officers'
    are): seeding the demo data and every login as a demo officer then cost no 130 ms of scrypt
    each. Any other password is hashed as the service does, and unknown usernames are still
    checked against the full-cost dummy hash."""

    def hash_demo_password_cheaply(password: str, *, n: int = SCRYPT_N) -> str:
        return hash_password(password, n=2**10 if password == DEMO_PASSWORD else n)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(officers, "hash_password", hash_demo_password_cheaply)
        yield


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fmcard.db'}"
        return
    if not POSTGRES:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL} (CI must test it)")
        pytest.skip("PostgreSQL is not reachable")
    name = f"fmcard_test_{secrets.token_hex(6)}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fmcard.db'}"


@pytest.fixture
def service_settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(workspace=tmp_path / "workspace", database_url=database_url)


@pytest.fixture
def app(service_settings: Settings) -> Iterator[FastAPI]:
    """The issuer app with the demo office, officers and persons."""
    application = create_app(service_settings)
    seed_demo(
        application.state.engine,
        issuing_context_of(application),
        environment=application.state.settings.environment,
    )
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def login_headers(
    client: TestClient, username: str, password: str = DEMO_PASSWORD
) -> dict[str, str]:
    """Log in as a demo officer and return the Authorization header."""
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    client.cookies.clear()  # the bearer header, not the console cookie, carries the session
    return {"Authorization": f"Bearer {response.json()['token']}"}
