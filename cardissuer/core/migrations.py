"""Schema migrations with Alembic, run against the service's own engine.

``fmcard db upgrade`` brings a database to the newest revision. The service upgrades a
development database by itself and refuses to start on a production database that is behind
(or ahead of) its code.

Upgrades are serialised: on PostgreSQL by a transaction-level advisory lock, on SQLite by the
write lock every transaction takes first. So several instances (or workers) starting at once
migrate once, and the others find the schema already at the head.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from cardissuer.errors import WorkspaceError

MIGRATION_LOCK = 0x666D6361  # "fmca": the advisory lock key held while migrating (PostgreSQL)


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("cardissuer") / "migrations"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = _config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def ensure_schema(engine: Engine, *, upgrade: bool) -> None:
    """Upgrade (development) or check that the database is at the code's revision."""
    if upgrade:
        globals()["upgrade"](engine)
        return
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise WorkspaceError(
            f"the database is at revision {current or 'none'} but this version needs {head}: "
            "run 'fmcard db upgrade'"
        )
