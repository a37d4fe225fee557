"""Operating the service: migrations, production refusals, health, backup and restore, the
request body limit, and ``fmcard serve`` as a real process, including being killed mid-work.

Subprocess tests start ``python -m cardissuer.cli serve`` on a free port of 127.0.0.1, bound
every wait in time, and always stop the server (terminate, then kill) in a ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, text
from sqlmodel import Session, SQLModel, col, select

from cardissuer import cli, service_cli
from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core import search_index
from cardissuer.core.config import Settings
from cardissuer.core.db import make_engine, read_snapshot, session_scope
from cardissuer.core.migrations import current_revision, head_revision, upgrade
from cardissuer.core.security import hash_password
from cardissuer.core.signing import load_key_material
from cardissuer.demo import DEMO_PASSPHRASE
from cardissuer.errors import DemoRefusedError, WorkspaceError
from cardissuer.main import create_app
from cardissuer.models import (
    AuditRecord,
    CardRecord,
    CardState,
    OfficeRecord,
    OfficerRecord,
    PersonRecord,
    Role,
)
from cardissuer.seed import DEMO_PASSWORD, DEMO_PERSONS, seed_demo
from cardissuer.services import audit
from keys.jws import VerificationKey

GOOD_SECRET = "a-production-session-secret-of-48-characters-xyz"


def _use(monkeypatch: pytest.MonkeyPatch, workspace: Path, database_url: str) -> None:
    """Point ``fmcard`` (run in this process) at a workspace and database, as an operator
    would with environment variables."""
    monkeypatch.setenv("FMCARD_WORKSPACE", str(workspace))
    monkeypatch.setenv("FMCARD_DATABASE_URL", database_url)


def _dev_workspace(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A development workspace made by ``fmcard init --dev`` in ``tmp_path``, ``fmcard``
    pointed at it and ``database_url``; the ``--dir`` arguments that name it."""
    workspace = tmp_path / "workspace"
    _use(monkeypatch, workspace, database_url)
    argv = ["--dir", str(workspace)]
    assert cli.main([*argv, "init", "--dev"]) == 0
    return argv


@pytest.fixture
def bare_app(tmp_path: Path, sqlite_url: str) -> Iterator[FastAPI]:
    """The service on SQLite, without demo data, with a small body limit."""
    app = create_app(
        Settings(workspace=tmp_path / "workspace", database_url=sqlite_url, max_body_bytes=4096)
    )
    yield app
    app.state.engine.dispose()


# --- migrations and refusals ------------------------------------------------------------------


def test_db_upgrade_brings_a_fresh_database_to_the_head_revision(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use(monkeypatch, tmp_path / "workspace", database_url)
    argv = ["--dir", str(tmp_path / "workspace"), "db", "upgrade"]
    assert cli.main(argv) == 0
    assert "(was empty)" in capsys.readouterr().out
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision() is not None
        assert cli.main(argv) == 0  # idempotent
        assert f"(was {head_revision()})" in capsys.readouterr().out
        with session_scope(engine) as session:  # the schema is usable
            audit.append(session, actor=None, action="test.ok", record_type="x", record_id="1")
    finally:
        engine.dispose()


@pytest.mark.filterwarnings(
    # SQLite's reflection cannot read the full-name search index; include_name skips it anyway
    "ignore:Skipped unsupported reflection of expression-based index ix_person_search"
)
def test_the_migrations_build_exactly_the_models_schema(database_url: str) -> None:
    """Alembic's own comparison finds nothing between the migrated database and the models:
    a model changed without a migration (or the reverse) fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_name": search_index.include_name}
            )
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_status_lists_are_stored_uncompressed_on_postgresql(database_url: str) -> None:
    """A list's 256 KB of statuses is rewritten at every signing: PostgreSQL keeps it (and the
    token) out of line without compressing it (0014_list_storage), and goes back; on SQLite
    the migration does nothing, both ways."""
    from alembic import command

    from cardissuer.core import migrations

    engine = make_engine(database_url)
    postgresql = engine.dialect.name == "postgresql"

    def storage() -> dict[str, str]:
        if not postgresql:
            return {}
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT attname, attstorage FROM pg_attribute WHERE attrelid ="
                    " 'status_list'::regclass AND attname IN ('statuses', 'signed_token')"
                )
            ).all()
        return {str(name): str(kind) for name, kind in rows}

    external = {"statuses": "e", "signed_token": "e"} if postgresql else {}
    extended = {"statuses": "x", "signed_token": "x"} if postgresql else {}
    try:
        upgrade(engine)
        assert storage() == external
        config = migrations._config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0013_review")
        assert current_revision(engine) == "0013_review"
        assert storage() == extended
        upgrade(engine)
        assert storage() == external
    finally:
        engine.dispose()


def test_instances_starting_at_once_migrate_once(database_url: str) -> None:
    """Four workers upgrade the same fresh database at the same moment."""
    engines = [make_engine(database_url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def migrate(engine: Engine) -> None:
        try:
            start.wait(timeout=10)
            upgrade(engine)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=migrate, args=(engine,)) for engine in engines]
    try:
        for thread in threads:
            thread.start()
        _join(threads, seconds=60)
        assert not failures, failures
        assert current_revision(engines[0]) == head_revision()
    finally:
        for engine in engines:
            engine.dispose()


def _refuses_to_serve(
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *serve_options: str,
) -> str:
    """Run ``fmcard serve``; it must exit 1 with one line on stderr and never serve."""

    def must_not_serve(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("fmcard serve started although it should have refused")

    monkeypatch.setattr(uvicorn, "run", must_not_serve)
    capsys.readouterr()
    assert cli.main([*argv, "serve", "--port", "9", *serve_options]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("fmcard: error: ")
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


@pytest.mark.parametrize(
    ("secret", "dev_keys", "extra", "expected"),
    [
        (None, False, {}, "FMCARD_SESSION_SECRET must be set in production"),
        ("too-short-secret", False, {}, "at least 32 characters"),
        (GOOD_SECRET, True, {}, "holds development keys"),
        (GOOD_SECRET, True, {"FMCARD_DEV_PASSPHRASE_FILE": "x.txt"}, "holds development keys"),
    ],
    ids=[
        "development-secret",
        "short-secret",
        "development-passphrase-file",
        "development-passphrase-file-renamed-setting",
    ],
)
def test_production_refuses_development_secrets(
    secret: str | None,
    dev_keys: bool,
    extra: dict[str, str],
    expected: str,
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    if dev_keys:
        (workspace / "dev-passphrase.txt").write_text("development only")
    _use(monkeypatch, workspace, sqlite_url)
    monkeypatch.setenv("FMCARD_ENVIRONMENT", "production")
    if secret is not None:
        monkeypatch.setenv("FMCARD_SESSION_SECRET", secret)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    assert expected in _refuses_to_serve(["--dir", str(workspace)], monkeypatch, capsys)


def test_production_refuses_a_database_not_at_the_head_revision(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workspace = tmp_path / "workspace"
    _use(monkeypatch, workspace, database_url)
    monkeypatch.setenv("FMCARD_ENVIRONMENT", "production")
    monkeypatch.setenv("FMCARD_SESSION_SECRET", GOOD_SECRET)
    argv = ["--dir", str(workspace)]
    message = _refuses_to_serve(argv, monkeypatch, capsys)  # empty: never upgraded
    assert "revision none" in message
    assert "fmcard db upgrade" in message
    assert cli.main([*argv, "db", "upgrade"]) == 0
    engine = make_engine(database_url)
    try:  # a database from a newer version of the code
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    finally:
        engine.dispose()
    assert "revision f00dfeed" in _refuses_to_serve(argv, monkeypatch, capsys)


def test_production_starts_with_a_real_secret_real_keys_and_an_upgraded_database(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The refusals are not overbroad: done right, production gets as far as serving."""
    workspace = tmp_path / "workspace"
    _use(monkeypatch, workspace, sqlite_url)
    monkeypatch.setenv("FMCARD_KEY_PASSPHRASE", "a real passphrase, not in the workspace")
    argv = ["--dir", str(workspace)]
    assert cli.main([*argv, "init"]) == 0
    assert cli.main([*argv, "db", "upgrade"]) == 0
    monkeypatch.setenv("FMCARD_ENVIRONMENT", "production")
    monkeypatch.setenv("FMCARD_SESSION_SECRET", GOOD_SECRET)
    served: list[FastAPI] = []

    def serve(app: FastAPI, **_options: Any) -> None:
        served.append(app)

    monkeypatch.setattr(uvicorn, "run", serve)
    capsys.readouterr()
    assert cli.main([*argv, "serve", "--port", str(_free_port())]) == 0, capsys.readouterr().err
    assert served[0].state.settings.environment == "production"
    served[0].state.engine.dispose()


def test_production_refuses_demo_data_and_writes_nothing(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The demo officers' password is published and demo cards would be signed with the
    production key: ``serve --demo``, the seed function itself and ``fmcard demo`` all refuse."""
    workspace = tmp_path / "workspace"
    _use(monkeypatch, workspace, database_url)
    monkeypatch.setenv("FMCARD_KEY_PASSPHRASE", "a real passphrase, not in the workspace")
    argv = ["--dir", str(workspace)]
    assert cli.main([*argv, "init"]) == 0
    assert cli.main([*argv, "db", "upgrade"]) == 0
    monkeypatch.setenv("FMCARD_ENVIRONMENT", "production")
    monkeypatch.setenv("FMCARD_SESSION_SECRET", GOOD_SECRET)
    engine = make_engine(database_url)
    try:
        with read_snapshot(engine) as session:
            before = _row_counts(session)
        message = _refuses_to_serve(argv, monkeypatch, capsys, "--demo")
        assert "demo data is for development only" in message
        app = create_app(Settings())
        try:  # whoever calls the seed function, it refuses in production
            with pytest.raises(DemoRefusedError, match="development only"):
                seed_demo(
                    app.state.engine,
                    issuing_context_of(app),
                    environment=app.state.settings.environment,
                )
        finally:
            app.state.engine.dispose()
        with read_snapshot(engine) as session:
            assert _row_counts(session) == before
        assert before["officer"] == before["person"] == before["card"] == 0
    finally:
        engine.dispose()
    assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 1
    assert "development only" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
    monkeypatch.setenv("FMCARD_ENVIRONMENT", "not-an-environment")  # read cautiously
    assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 1
    assert not (tmp_path / "demo").exists()


def _row_counts(session: Session) -> dict[str, int]:
    return {
        table.name: session.exec(select(func.count()).select_from(table)).one()
        for table in SQLModel.metadata.sorted_tables
    }


def test_an_unreachable_database_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+psycopg://fmcard:hunter2-db-password@127.0.0.1:1/fmcard"
    _use(monkeypatch, tmp_path / "workspace", url)
    assert cli.main(["--dir", str(tmp_path / "workspace"), "db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fmcard: error: database: OperationalError")
    assert len(err.strip().splitlines()) == 1
    assert "hunter2" not in err


# --- health, body limit -----------------------------------------------------------------------


def test_healthz_and_readyz_follow_the_database(bare_app: FastAPI) -> None:
    with TestClient(bare_app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["kid"] == bare_app.state.keys.signer.kid
        bare_app.state.engine.dispose()  # the database goes away
        bare_app.state.engine = make_engine(
            "postgresql+psycopg://postgres@127.0.0.1:1/gone", connect_args={"connect_timeout": 3}
        )
        gone = client.get("/readyz")
        assert gone.status_code == 503
        assert gone.json()["status"] == "not ready"
        assert client.get("/healthz").status_code == 200  # alive, just not ready


def _chunks(total: int, size: int = 1024) -> Iterator[bytes]:
    """A body sent without Content-Length (chunked transfer)."""
    yield b'{"username": "registrar", "password": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}'


def test_bodies_over_the_limit_are_refused_with_or_without_content_length(
    bare_app: FastAPI,
) -> None:
    with TestClient(bare_app) as client:
        declared = client.post(
            "/api/auth/login", content=b"x" * 5000, headers={"Content-Type": "application/json"}
        )
        assert declared.status_code == 413
        chunked = client.post(
            "/api/auth/login", content=_chunks(8192), headers={"Content-Type": "application/json"}
        )
        assert chunked.status_code == 413, chunked.text
        assert chunked.headers["content-type"] == "application/problem+json"
        assert chunked.json()["type"].endswith("/too-large")
        assert "4096 bytes" in chunked.json()["detail"]
        small = client.post(
            "/api/auth/login",
            content=_chunks(200, size=50),
            headers={"Content-Type": "application/json"},
        )
        assert small.status_code == 401  # read in full and judged on its merits


# --- backup and restore -----------------------------------------------------------------------


class Writer(threading.Thread):
    """Keeps appending audit entries, one transaction each, like a busy service."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(daemon=True)
        self.app = app
        self.committed: list[int] = []
        self.failures: list[BaseException] = []
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set() and len(self.committed) < 5000:
                with session_scope(self.app.state.engine) as session:
                    entry = audit.append(
                        session, actor=None, action="test.write", record_type="x", record_id="1"
                    )
                self.committed.append(entry.seq)
        except BaseException as exc:  # reported by the test
            self.failures.append(exc)


def _join(threads: list[threading.Thread], seconds: float) -> None:
    """Wait for all ``threads`` together for at most ``seconds``; fail if any is stuck."""
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "threads are stuck"


def _wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _verify_file(database: Path, app: FastAPI) -> audit.ChainReport:
    engine = make_engine(f"sqlite:///{database}")
    keys = [VerificationKey(kid, key) for key, kid in app.state.public_keys]
    try:
        with read_snapshot(engine) as session:
            return audit.verify_chain(session, keys=keys)
    finally:
        engine.dispose()


def test_backup_while_writing_and_restore(
    bare_app: FastAPI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings: Settings = bare_app.state.settings
    _use(monkeypatch, settings.workspace, settings.database_url)
    live = Path(settings.database_url.removeprefix("sqlite:///"))
    # Some bulk, so that the copy takes a moment while the writer goes on.
    with bare_app.state.engine.begin() as connection:
        connection.execute(text("CREATE TABLE ballast (data BLOB)"))
        for _ in range(64):
            connection.execute(text("INSERT INTO ballast VALUES (randomblob(65536))"))
    writer = Writer(bare_app)
    writer.start()
    backup = tmp_path / "backups" / "fmcard.db"
    try:
        _wait_for(lambda: len(writer.committed) >= 20, 20, "the writer")
        before = writer.committed[-1]
        assert cli.main(["--dir", str(settings.workspace), "db", "backup", str(backup)]) == 0
        during = len(writer.committed)
        _wait_for(lambda: len(writer.committed) >= during + 10, 20, "more writes")
    finally:
        writer.stop.set()
        _join([writer], seconds=30)
    assert not writer.failures, writer.failures
    with contextlib.closing(sqlite3.connect(backup)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        seqs = [row[0] for row in copy.execute("SELECT seq FROM audit ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) >= before  # everything committed before the backup began
    assert _verify_file(backup, bare_app).head_seq == len(seqs)
    assert not Path(f"{backup}-wal").exists()
    assert writer.committed[-1] > len(seqs)  # the live database went on beyond the copy

    # Restore (service stopped): the live database becomes the copy, and its chain verifies.
    bare_app.state.engine.dispose()
    capsys.readouterr()
    workspace = ["--dir", str(settings.workspace)]
    assert cli.main([*workspace, "db", "restore", str(backup)]) == 0
    assert _verify_file(live, bare_app).head_seq == len(seqs)
    assert cli.main([*workspace, "audit", "verify"]) == 0
    assert "intact" in capsys.readouterr().out

    # Damaged or foreign files are refused and the database stays as it is.
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    half = tmp_path / "half.db"
    half.write_bytes(backup.read_bytes()[: backup.stat().st_size // 2])
    foreign = tmp_path / "foreign.db"
    with contextlib.closing(sqlite3.connect(foreign)) as database:
        database.execute("CREATE TABLE notes (text TEXT)")
    for bad, reason in (
        (garbage, "not a sound SQLite database"),
        (half, "not a sound SQLite database"),
        (foreign, "not an fmcard database"),
        (tmp_path / "missing.db", "no database at"),
    ):
        capsys.readouterr()
        assert cli.main([*workspace, "db", "restore", str(bad)]) == 1, bad
        assert reason in capsys.readouterr().err, bad
    assert _verify_file(live, bare_app).head_seq == len(seqs)


# --- fmcard serve as a process ----------------------------------------------------------------


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """``fmcard serve`` in a subprocess, its output in a file."""

    def __init__(self, workspace: Path, log: Path, *extra: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.stuck = False
        env = {k: v for k, v in os.environ.items() if not k.startswith("FMCARD_")}
        env["FMCARD_AUDIT_CHECKPOINT_EVERY"] = "5"
        command = [sys.executable, "-m", "cardissuer.cli", "--dir", str(workspace)]
        command += ["serve", "--host", "127.0.0.1", "--port", str(self.port), *extra]
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, env=env
            )

    def wait_healthy(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"fmcard serve exited:\n{self.log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"fmcard serve did not come up:\n{self.log.read_text()}")

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down gracefully, then re-raises it), SIGKILL if stuck."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                self.stuck = True

    def crash(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@contextlib.contextmanager
def serving(workspace: Path, log: Path, *extra: str) -> Iterator[Server]:
    server = Server(workspace, log, *extra)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


def _login(url: str, username: str = "registrar") -> dict[str, str]:
    response = httpx.post(
        f"{url}/api/auth/login",
        json={"username": username, "password": DEMO_PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_fmcard_serve_serves(tmp_path: Path) -> None:
    with serving(tmp_path / "workspace", tmp_path / "server.log", "--demo") as server:
        headers = _login(server.url)
        me = httpx.get(f"{server.url}/api/auth/me", headers=headers, timeout=10)
        assert me.json()["username"] == "registrar"
        assert httpx.get(f"{server.url}/readyz", timeout=10).json()["status"] == "ready"
        with httpx.Client(timeout=10) as client:  # a real chunked upload, over the limit
            big = client.post(
                f"{server.url}/api/auth/login",
                content=_chunks(3 * 1024 * 1024, size=64 * 1024),
                headers={"Content-Type": "application/json"},
            )
        assert big.status_code == 413
        assert big.json()["type"].endswith("/too-large")
        assert server.process.poll() is None
    assert not server.stuck
    assert server.process.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in server.log.read_text()


def test_killing_the_server_during_issuance_leaves_consistent_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace, log = tmp_path / "workspace", tmp_path / "server.log"
    issued: list[str] = []  # serials the client was told were issued (201)
    statuses: list[int] = []
    server = Server(workspace, log, "--demo")
    try:
        server.wait_healthy()
        headers = _login(server.url)
        persons = httpx.get(f"{server.url}/api/persons", headers=headers, timeout=10).json()
        codes = [p["code"] for p in persons["items"]]
        assert len(codes) == len(DEMO_PERSONS)
        done = threading.Event()

        def issue(number: int) -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
                for attempt in range(200):
                    if done.is_set():
                        return
                    try:
                        response = client.post(
                            f"/api/persons/{codes[(number + attempt) % len(codes)]}/cards"
                        )
                    except httpx.TransportError:
                        return  # the server is gone
                    statuses.append(response.status_code)
                    if response.status_code == 201:
                        issued.append(response.json()["serial"])

        threads = [threading.Thread(target=issue, args=(n,), daemon=True) for n in range(6)]
        for thread in threads:
            thread.start()
        _wait_for(lambda: len(issued) >= 15, 30, "issuance")
        server.crash()  # SIGKILL, in the middle of requests
        done.set()
        _join(threads, seconds=20)
    finally:
        server.stop()
    assert server.process.returncode == -signal.SIGKILL
    assert set(statuses) == {201}, statuses  # no request failed before the crash

    with serving(workspace, log) as again:  # the same SQLite database, recovered
        headers = _login(again.url)
        after = httpx.post(f"{again.url}/api/persons/{codes[0]}/cards", headers=headers, timeout=10)
        assert after.status_code == 201, after.text
        issued.append(after.json()["serial"])

    engine = make_engine(f"sqlite:///{workspace / 'fmcard.db'}")
    try:
        with read_snapshot(engine) as session:
            cards = session.exec(select(CardRecord)).all()
            persons_with_cards = session.exec(select(PersonRecord)).all()
            issue_entries = session.exec(
                select(func.count())
                .select_from(AuditRecord)
                .where(col(AuditRecord.action) == "card.issue")
            ).one()
            keys = load_key_material(Settings(workspace=workspace))
            public = keys.keyring.public_keys(keys.passphrase)
            report = audit.verify_chain(
                session, keys=[VerificationKey(kid, key) for key, kid in public]
            )
    finally:
        engine.dispose()
    slots = [(card.list_id, card.status_index) for card in cards]
    assert len(slots) == len(set(slots)), "two cards share a status index"
    for person in persons_with_cards:
        current = [
            c
            for c in cards
            if c.person_id == person.id and c.state in (CardState.ACTIVE, CardState.SUSPENDED)
        ]
        assert len(current) <= 1, f"person {person.id} holds {len(current)} current cards"
    serials = {card.serial for card in cards}
    assert set(issued) <= serials, "a card the client was given is gone"
    assert issue_entries == len(cards), "cards and their audit entries disagree"
    assert report.entries == report.head_seq > 0
    assert report.checkpoints == report.head_seq // 5  # none lost to the crash either
    # And the command operators run says the same.
    monkeypatch.setenv("FMCARD_WORKSPACE", str(workspace))
    monkeypatch.delenv("FMCARD_DATABASE_URL", raising=False)
    capsys.readouterr()
    assert cli.main(["--dir", str(workspace), "audit", "verify"]) == 0
    assert "intact" in capsys.readouterr().out
    # Nothing personal reached the server's output, crash or not.
    output = log.read_text()
    assert "Traceback" not in output
    for _family, _given, _native, _chinese, _nat, birth, passport, _services in DEMO_PERSONS:
        assert passport not in output
        assert birth not in output
    for code in codes:
        assert code not in output


def test_expire_cards_marks_cards_past_their_expiry(
    app: FastAPI, service_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlmodel import select

    from cardissuer.cli import main
    from cardissuer.core.db import session_scope
    from cardissuer.models import CardRecord, CardState

    with session_scope(app.state.engine) as session:
        card = session.exec(select(CardRecord)).first()
        assert card is not None
        card.expires_at = datetime.now(UTC) - timedelta(days=1)
        session.add(card)
        serial = card.serial
    argv = ["--dir", str(service_settings.workspace), "db", "expire-cards"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FMCARD_DATABASE_URL", service_settings.database_url)
        assert main(argv) == 0
    assert "1 card(s) marked expired" in capsys.readouterr().out
    with session_scope(app.state.engine) as session:
        stored = session.exec(select(CardRecord).where(CardRecord.serial == serial)).one()
        assert stored.state is CardState.EXPIRED


def test_several_workers_on_sqlite_are_served_with_a_warning(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = _dev_workspace(tmp_path, sqlite_url, monkeypatch)
    served: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda _app, **options: served.append(options))
    capsys.readouterr()
    assert cli.main([*argv, "serve", "--port", str(_free_port()), "--workers", "2"]) == 0
    assert served[0]["workers"] == 2
    err = capsys.readouterr().err
    assert "2 workers on SQLite contend for its write lock" in err
    assert cli.main([*argv, "serve", "--port", str(_free_port())]) == 0
    assert "contend" not in capsys.readouterr().err


def test_forwarded_headers_are_believed_only_from_configured_proxies(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The client address keys the portal's per-client limits: by default no X-Forwarded-For
    is believed (uvicorn's own default believes 127.0.0.1); FMCARD_FORWARDED_ALLOW_IPS names
    the proxies that are."""
    argv = _dev_workspace(tmp_path, sqlite_url, monkeypatch)
    served: list[tuple[FastAPI, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append((app, options)))
    capsys.readouterr()
    assert cli.main([*argv, "serve", "--port", str(_free_port())]) == 0
    by_default = served[-1][1]
    assert by_default["proxy_headers"] is False
    monkeypatch.setenv("FMCARD_FORWARDED_ALLOW_IPS", "10.0.0.5,10.0.0.6")
    assert cli.main([*argv, "serve", "--port", str(_free_port())]) == 0
    configured = served[-1][1]
    assert configured["proxy_headers"] is True
    assert configured["forwarded_allow_ips"] == "10.0.0.5,10.0.0.6"
    for app, _ in served:
        app.state.engine.dispose()


def test_the_demo_mails_links_to_itself(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``serve --demo`` without FMCARD_PUBLIC_BASE_URL: the holder links and portal links it
    mails lead to the demo service, not to the placeholder host; a configured URL wins."""
    argv = _dev_workspace(tmp_path, sqlite_url, monkeypatch)
    monkeypatch.delenv("FMCARD_PUBLIC_BASE_URL", raising=False)
    served: list[FastAPI] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_options: served.append(app))
    capsys.readouterr()
    port = str(_free_port())  # the port must be free: serve checks it can listen there
    assert cli.main([*argv, "serve", "--demo", "--port", port]) == 0
    assert served[-1].state.settings.public_base_url == f"http://127.0.0.1:{port}"
    monkeypatch.setenv("FMCARD_PUBLIC_BASE_URL", "https://cards.bureau.example")
    assert cli.main([*argv, "serve", "--demo", "--port", port]) == 0
    assert served[-1].state.settings.public_base_url == "https://cards.bureau.example"
    for app in served:
        app.state.engine.dispose()


def _production_app(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, passphrase: str
) -> FastAPI:
    """The service as production runs it: keys made by ``fmcard init``, an upgraded database."""
    workspace = tmp_path / "workspace"
    _use(monkeypatch, workspace, database_url)
    monkeypatch.setenv("FMCARD_KEY_PASSPHRASE", passphrase)
    argv = ["--dir", str(workspace)]
    assert cli.main([*argv, "init"]) == 0
    assert cli.main([*argv, "db", "upgrade"]) == 0
    monkeypatch.setenv("FMCARD_ENVIRONMENT", "production")
    monkeypatch.setenv("FMCARD_SESSION_SECRET", GOOD_SECRET)
    return create_app(Settings())


def test_production_never_logs_in_with_the_published_demo_password(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Officers whose password is the demo's (a development database taken into production,
    or an admin who chose it) are refused at the API and the console; another password of
    the same kind of officer logs in (the refusal is not overbroad)."""
    app = _production_app(tmp_path, database_url, monkeypatch, "a real passphrase, not here")
    try:
        with session_scope(app.state.engine) as session:
            office = OfficeRecord(code="YW-PROD", name_en="Production", name_zh="Production")
            session.add(office)
            session.flush()
            for username, password in (("demo.kept", DEMO_PASSWORD), ("real.one", GOOD_SECRET)):
                session.add(
                    OfficerRecord(
                        office_id=office.id or 0,
                        username=username,
                        display_name=username,
                        role=Role.ADMIN,
                        password_hash=hash_password(password, n=2**10),
                    )
                )
        with TestClient(app, base_url="https://testserver") as client:
            refused = client.post(
                "/api/auth/login", json={"username": "demo.kept", "password": DEMO_PASSWORD}
            )
            assert refused.status_code == 401, refused.text
            login = client.get("/console/login")
            nonce = login.text.split('name="nonce" value="', 1)[1].split('"', 1)[0]
            console = client.post(
                "/console/login",
                data={"username": "demo.kept", "password": DEMO_PASSWORD, "nonce": nonce},
                follow_redirects=False,
            )
            assert console.status_code == 401, console.text
            assert not {"fmcard_session", "__Host-fmcard_session"} & set(client.cookies)
            sound = client.post(
                "/api/auth/login", json={"username": "real.one", "password": GOOD_SECRET}
            )
            assert sound.status_code == 200, sound.text
    finally:
        app.state.engine.dispose()


def test_production_refuses_the_published_demo_key_passphrase(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys of 'fmcard demo' whose passphrase file was deleted (or any keys under its
    published passphrase) do not sign production cards."""
    with pytest.raises(WorkspaceError, match="published one of 'fmcard demo'"):
        _production_app(tmp_path, sqlite_url, monkeypatch, DEMO_PASSPHRASE)


def test_a_port_in_use_is_refused_in_one_line_before_the_address_is_announced(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = _dev_workspace(tmp_path, sqlite_url, monkeypatch)
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _refuses_to_serve(argv, monkeypatch, capsys, "--demo", "--port", str(port))
    assert line == (
        f"fmcard: error: 127.0.0.1:{port} is in use (another fmcard serve?): "
        "choose another with --port N"
    )


def test_the_port_check_binds_as_the_server_does() -> None:
    """Every address of the host is checked (``localhost`` is IPv4 and IPv6), and an IPv6
    address as asyncio binds it, IPv6 only: ``--host ::`` beside an IPv4 listener on the
    port is free (a dual-stack probe called it in use)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("0.0.0.0", 0))  # noqa: S104 - the port taken on every IPv4 address
        taken.listen()
        port = taken.getsockname()[1]
        for host in ("127.0.0.1", "localhost", "0.0.0.0"):  # noqa: S104
            with pytest.raises(WorkspaceError, match="is in use"):
                service_cli._check_port(host, port)
        if socket.has_ipv6:
            refused = ""
            try:
                service_cli._check_port("::", port)
            except WorkspaceError as error:  # e.g. IPv6 disabled: another refusal
                refused = str(error)
            assert "is in use" not in refused
    with pytest.raises(WorkspaceError, match=r"^cannot listen on no-such-host\.invalid:"):
        service_cli._check_port("no-such-host.invalid", 8000)


def test_every_demo_start_prints_the_logins_and_a_stop_prints_one_line(
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The first start seeds the demo and prints the logins; a restart prints them again
    (the README promises them); when the server returns, one line says the issuer stopped."""
    workspace = tmp_path / "workspace"
    _use(monkeypatch, workspace, sqlite_url)
    argv = ["--dir", str(workspace), "serve", "--demo"]
    served: list[FastAPI] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_options: served.append(app))
    for start in ("seeded the demo office", "the demo office is in the database:"):
        capsys.readouterr()
        assert cli.main([*argv, "--port", str(_free_port())]) == 0
        err = capsys.readouterr().err
        assert f"{start} YW-FUTIAN; log in as one of:" in err
        for username in ("registrar", "supervisor", "auditor", "admin"):
            assert f"  {username:10} / {DEMO_PASSWORD}" in err
        assert err.endswith("fmcard: issuer stopped\n")
    for app in served:
        app.state.engine.dispose()


def test_ctrl_c_stops_the_issuer_with_one_line_and_status_0(tmp_path: Path) -> None:
    server = Server(tmp_path / "workspace", tmp_path / "server.log", "--demo")
    try:
        server.wait_healthy()
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=20) == 0, server.log.read_text()
    finally:
        server.stop()
    log = server.log.read_text()
    assert log.endswith("fmcard: issuer stopped\n"), log
    assert "interrupted" not in log
    assert "Traceback" not in log
