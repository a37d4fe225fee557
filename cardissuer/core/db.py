"""Database engines and sessions: SQLite embedded by default, PostgreSQL to scale out.

SQLite runs in WAL mode with foreign keys on and a busy timeout, so several requests (and a
backup) can run while one writes. Schema changes go through Alembic (``fmcard db upgrade``);
:func:`create_schema` exists for tests and first start of the embedded database.

Write transactions on SQLite start with ``BEGIN IMMEDIATE`` (they queue for the write lock
instead of failing half-way); :func:`read_snapshot` opens a read-only transaction that sees one
consistent state of the database without blocking writers, for checks such as verifying the
audit chain while the service keeps appending to it. :func:`lock_key` serialises the
transactions that check something and then write on its strength (the login limit, the
duplicate check before a registration).

SQLite's query planner needs statistics (``ANALYZE``) to choose between indexes; without them
it guesses, and at a million persons a guess can read every active card. :func:`optimize`
follows SQLite's advice (``PRAGMA optimize`` with an ``analysis_limit``): the service runs it
at start and after bulk changes (the expiry timer's rounds, a search-index rebuild).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, create_engine

ANALYSIS_LIMIT = 1000
"""Rows ANALYZE samples per index (SQLite's ``analysis_limit``): fast on any size, and enough
for the planner, as SQLite's documentation recommends for ``PRAGMA optimize``."""

STALE_GROWTH = 10
"""Statistics are refreshed when a table has grown this many times since they were taken."""

SQLITE_BEGIN = "fmcard_sqlite_begin"
"""Connection execution option: how SQLite transactions begin (``IMMEDIATE`` by default)."""


def make_engine(url: str, **options: Any) -> Engine:
    """Return an engine for ``url`` with the settings each database needs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **options
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **options)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    connection.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN itself
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    # Switching a new database to WAL needs an exclusive lock and SQLite does not wait for it
    # with the busy handler: several instances starting at once retry for a while.
    for attempt in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:
            if attempt == 99:
                raise
            time.sleep(0.05)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    # Take the write lock at the start of every transaction: read-then-write transactions
    # then queue instead of failing with "database is locked" on upgrade. Read snapshots ask
    # for a deferred transaction instead (execution option SQLITE_BEGIN).
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
    connection.exec_driver_sql(f"BEGIN {'DEFERRED' if mode == 'DEFERRED' else 'IMMEDIATE'}")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; ``None`` for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def optimize(engine: Engine, *, analyze_all: bool = False) -> list[str]:
    """Give SQLite's planner fresh statistics where they are missing or stale; return the
    tables analysed. Nothing on other databases (PostgreSQL's autovacuum analyses).

    A table is analysed when it has rows and indexes but no statistics, or has grown
    :data:`STALE_GROWTH` times since they were taken (its largest rowid, an index probe,
    against the row count ANALYZE recorded); ``analyze_all`` analyses every table (after a
    bulk load). Then ``PRAGMA optimize=0x10002``, which SQLite 3.46 and later use to refresh
    whatever else they judge stale. ``analysis_limit`` keeps each ANALYZE to a sample.
    """
    if engine.dialect.name != "sqlite":
        return []
    with engine.begin() as connection:
        connection.exec_driver_sql(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        stale = sorted(_stale_tables(connection, analyze_all=analyze_all))
        for table in stale:
            connection.exec_driver_sql(f'ANALYZE "{table}"')
        connection.exec_driver_sql("PRAGMA optimize=0x10002")
    if stale:
        # A connection reads the statistics once, when it loads the schema: open new ones.
        engine.dispose()
    return stale


def _stale_tables(connection: Any, *, analyze_all: bool) -> set[str]:
    indexed = {
        row[0]
        for row in connection.exec_driver_sql(
            "SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name NOT LIKE 'sqlite_%'"
        )
    }
    if analyze_all:
        return indexed
    has_stats = connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).first()
    recorded: dict[str, int] = {}
    if has_stats:
        for table, stat in connection.exec_driver_sql("SELECT tbl, stat FROM sqlite_stat1"):
            rows = int(str(stat).split()[0]) if stat else 0
            recorded[table] = max(recorded.get(table, 0), rows)
    stale = set()
    for table in indexed:
        largest_rowid = f'SELECT max(rowid) FROM "{table}"'  # noqa: S608 - from sqlite_master
        largest = connection.exec_driver_sql(largest_rowid).scalar()
        if largest is None:  # empty: ANALYZE would record nothing
            continue
        if table not in recorded or largest > STALE_GROWTH * max(recorded[table], 100):
            stale.add(table)
    return stale


def create_schema(engine: Engine) -> None:
    """Create every table (tests, and the first start of an embedded database)."""
    from cardissuer import models  # noqa: F401 - registers the tables
    from cardissuer.core import search_index

    SQLModel.metadata.create_all(engine)
    with engine.begin() as connection:  # the search indexes are not in the models
        search_index.rebuild(connection)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Session]:
    """A read-only transaction over one consistent state of the database.

    Every query inside sees the same snapshot, even while other transactions commit: on
    PostgreSQL a REPEATABLE READ, READ ONLY transaction; on SQLite (WAL) a deferred
    transaction, which neither waits for nor blocks writers. Never committed.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection = connection.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
        elif engine.dialect.name == "postgresql":
            connection = connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        # Closing the session (not rolling it back) leaves what was read usable afterwards;
        # closing the connection then ends the transaction without changing anything.
        with Session(bind=connection, expire_on_commit=False) as session:
            yield session


def lock_key(session: Session, *key: str) -> None:
    """Hold a lock on ``key`` until the session's transaction ends, so that transactions that
    read and then write on the strength of what they read (count login attempts, look for a
    duplicate person) run one after the other for the same key and each sees what the
    previous one wrote.

    PostgreSQL: a transaction-scoped advisory lock on a 64-bit digest of the key (READ
    COMMITTED: the statements after it see every transaction that held it before). SQLite:
    write transactions begin IMMEDIATE, holding the database's write lock, which serialises
    them all; this begins the transaction so that everything after it runs under that lock.
    """
    connection = session.connection()  # begins the transaction (SQLite: BEGIN IMMEDIATE)
    if connection.dialect.name == "postgresql":
        digest = hashlib.sha256("\x1f".join(key).encode()).digest()
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"),
            {"key": int.from_bytes(digest[:8], "big", signed=True)},
        )
