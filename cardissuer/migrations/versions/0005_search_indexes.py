"""search indexes: trigram name search, prefix fallbacks, keyset list, card expiry

Revision ID: 0005_search_indexes
Revises: 0004_status_list_iat
Create Date: 2026-12-05 21:30:00

PostgreSQL needs the ``pg_trgm`` extension. PostgreSQL 13 and later mark it trusted, so the
database owner may create it here; on older servers (or where extensions are restricted) a
superuser runs ``CREATE EXTENSION pg_trgm;`` in the database once, before this upgrade.

The statements are a frozen copy of ``cardissuer.core.search_index`` (which ``fmcard db
rebuild-search`` uses); a test checks that the two build the same schema.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0005_search_indexes"
down_revision = "0004_status_list_iat"
branch_labels = None
depends_on = None

_NAMES = (
    "family_name || ' ' || given_names || ' ' || coalesce(native_name, '') || ' ' || "
    "coalesce(chinese_name, '')"
)


def _row(row: str) -> str:
    names = _NAMES
    for column in ("family_name", "given_names", "native_name", "chinese_name"):
        names = names.replace(column, f"{row}.{column}")
    return names


_POSTGRESQL = (
    f"CREATE INDEX ix_person_search_trgm ON person USING gin ((upper({_NAMES})) gin_trgm_ops) WITH (fastupdate = off)",
    'CREATE INDEX ix_person_search_family ON person ((upper(family_name)) COLLATE "C")',
    'CREATE INDEX ix_person_search_chinese ON person (chinese_name COLLATE "C")',
    'CREATE INDEX ix_person_search_native ON person (native_name COLLATE "C")',
)
_SQLITE = (
    "CREATE VIRTUAL TABLE person_search USING fts5(names, tokenize='trigram', content='')",
    "CREATE TRIGGER person_search_insert AFTER INSERT ON person BEGIN "
    f"INSERT INTO person_search(rowid, names) VALUES (new.id, {_row('new')}); END",
    "CREATE TRIGGER person_search_delete AFTER DELETE ON person BEGIN "
    "INSERT INTO person_search(person_search, rowid, names) "
    f"VALUES ('delete', old.id, {_row('old')}); END",
    "CREATE TRIGGER person_search_update "
    "AFTER UPDATE OF id, family_name, given_names, native_name, chinese_name ON person BEGIN "
    "INSERT INTO person_search(person_search, rowid, names) "
    f"VALUES ('delete', old.id, {_row('old')}); "
    f"INSERT INTO person_search(rowid, names) VALUES (new.id, {_row('new')}); END",
    f"INSERT INTO person_search(rowid, names) SELECT id, {_NAMES} FROM person",
    "CREATE INDEX ix_person_search_family ON person (family_name COLLATE NOCASE)",
    "CREATE INDEX ix_person_search_chinese ON person (chinese_name)",
    "CREATE INDEX ix_person_search_native ON person (native_name)",
)


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        installed = connection.execute(
            text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        ).first()
        if installed is None:
            connection.execute(text("CREATE EXTENSION pg_trgm"))
        statements: tuple[str, ...] = _POSTGRESQL
    else:
        statements = _SQLITE
    for statement in statements:
        connection.execute(text(statement))
    # Plain CREATE INDEX, not a batch: a batch may copy the table on SQLite, which would drop
    # the search triggers and expression indexes made above.
    op.create_index("ix_person_office_id_id", "person", ["office_id", "id"], unique=False)
    op.create_index("ix_card_state_expires_at", "card", ["state", "expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_card_state_expires_at", table_name="card")
    op.drop_index("ix_person_office_id_id", table_name="person")
    connection = op.get_bind()
    for name in ("trgm", "family", "chinese", "native"):
        connection.execute(text(f"DROP INDEX IF EXISTS ix_person_search_{name}"))
    if connection.dialect.name != "postgresql":
        for trigger in ("insert", "delete", "update"):
            connection.execute(text(f"DROP TRIGGER IF EXISTS person_search_{trigger}"))
        connection.execute(text("DROP TABLE IF EXISTS person_search"))
