"""The name-search indexes, defined once for the rebuild command and the schema checks.

Names are searched by substring in any script (Latin, Cyrillic, Arabic, Chinese, Korean), which
a B-tree cannot answer. Each database gets a trigram index over one text made of all the
person's names (``FAMILY GIVEN NATIVE CHINESE``):

* PostgreSQL: a ``pg_trgm`` GIN index on the upper-cased text (the extension must be installed:
  PostgreSQL 13 and later trust it, so a database owner may create it; older servers need a
  superuser to run ``CREATE EXTENSION pg_trgm`` once);
* SQLite: an FTS5 table with the ``trigram`` tokenizer, kept in step with ``person`` by
  triggers. It stores no copy of the names (``content=''``): only the index.

A trigram index cannot answer a query shorter than three characters (a Chinese name of two
characters, a Korean family name of one), so the first characters of the family, Chinese and
native names also have B-tree indexes for prefix and equality searches.

Migration ``0005_search_indexes`` creates the same objects with its own frozen copy of these
statements; :func:`rebuild` re-creates them from here (``fmcard db rebuild-search``), and a test
checks that rebuilding a migrated database changes nothing in its schema.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

PREFIX = "person_search"
"""Every search object (tables, indexes, triggers) is named with this prefix or ``ix_`` + it."""

NAMES_SQL = (
    "family_name || ' ' || given_names || ' ' || coalesce(native_name, '') || ' ' || "
    "coalesce(chinese_name, '')"
)
"""The text that is trigram-indexed: every name of the person, space separated."""

PG_NAMES_SQL = f"upper({NAMES_SQL})"
"""PostgreSQL indexes the upper-cased text (the query upper-cases the search text too)."""

POSTGRESQL_INDEXES = (
    # fastupdate off: a registration updates the index at once, instead of queueing entries
    # in a pending list that every search would then read through until the next VACUUM.
    f"CREATE INDEX ix_person_search_trgm ON person USING gin (({PG_NAMES_SQL}) gin_trgm_ops) "
    "WITH (fastupdate = off)",
    'CREATE INDEX ix_person_search_family ON person ((upper(family_name)) COLLATE "C")',
    'CREATE INDEX ix_person_search_chinese ON person (chinese_name COLLATE "C")',
    'CREATE INDEX ix_person_search_native ON person (native_name COLLATE "C")',
)


def _sqlite_names(row: str) -> str:
    return (
        NAMES_SQL.replace("family_name", f"{row}.family_name")
        .replace("given_names", f"{row}.given_names")
        .replace("native_name", f"{row}.native_name")
        .replace("chinese_name", f"{row}.chinese_name")
    )


SQLITE_TABLE = (
    "CREATE VIRTUAL TABLE person_search USING fts5(names, tokenize='trigram', content='')"
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER person_search_insert AFTER INSERT ON person BEGIN "
    f"INSERT INTO person_search(rowid, names) VALUES (new.id, {_sqlite_names('new')}); END",
    "CREATE TRIGGER person_search_delete AFTER DELETE ON person BEGIN "
    "INSERT INTO person_search(person_search, rowid, names) "
    f"VALUES ('delete', old.id, {_sqlite_names('old')}); END",
    "CREATE TRIGGER person_search_update "
    "AFTER UPDATE OF id, family_name, given_names, native_name, chinese_name ON person BEGIN "
    "INSERT INTO person_search(person_search, rowid, names) "
    f"VALUES ('delete', old.id, {_sqlite_names('old')}); "
    f"INSERT INTO person_search(rowid, names) VALUES (new.id, {_sqlite_names('new')}); END",
)
SQLITE_FILL = f"INSERT INTO person_search(rowid, names) SELECT id, {NAMES_SQL} FROM person"
SQLITE_INDEXES = (
    "CREATE INDEX ix_person_search_family ON person (family_name COLLATE NOCASE)",
    "CREATE INDEX ix_person_search_chinese ON person (chinese_name)",
    "CREATE INDEX ix_person_search_native ON person (native_name)",
)
_INDEX_NAMES = (
    "ix_person_search_trgm",
    "ix_person_search_family",
    "ix_person_search_chinese",
    "ix_person_search_native",
)


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """Alembic's filter: leave the search objects (made by SQL, not by the models) out of
    schema comparisons, where they would read as tables and indexes to drop."""
    del type_
    return not (name or "").startswith((PREFIX, f"ix_{PREFIX}"))


def rebuild(connection: Connection) -> None:
    """Drop and re-create every search index from the current rows (inside the caller's
    transaction): for a damaged index, or one that fell out of step with ``person``."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        for name in _INDEX_NAMES:
            connection.execute(text(f"DROP INDEX IF EXISTS {name}"))
        for statement in POSTGRESQL_INDEXES:
            connection.execute(text(statement))
        connection.execute(text("ANALYZE person"))
        return
    for trigger in ("insert", "delete", "update"):
        connection.execute(text(f"DROP TRIGGER IF EXISTS person_search_{trigger}"))
    connection.execute(text("DROP TABLE IF EXISTS person_search"))
    for name in _INDEX_NAMES:
        connection.execute(text(f"DROP INDEX IF EXISTS {name}"))
    for statement in (SQLITE_TABLE, *SQLITE_TRIGGERS, SQLITE_FILL, *SQLITE_INDEXES):
        connection.execute(text(statement))
