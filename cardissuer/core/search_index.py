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
characters, a Korean family name of one), and it returns its matches in no useful order. So
the family, full (``FAMILY GIVEN``), Chinese and native names also have B-tree indexes
``(name, id)`` and ``(office_id, name, id)``: they answer the equal and prefix ranks of every
search, newest first, a page at a time (:mod:`cardissuer.services.search_tiers`).

Migrations ``0005_search_indexes`` and ``0008_search_tiers`` create the same objects with their
own frozen copies of these statements; :func:`rebuild` re-creates them from here (``fmcard db
rebuild-search``), and a test checks that rebuilding a migrated database changes nothing in
its schema.
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

FULL_NAME_SQL = "family_name || ' ' || given_names"
"""The full name ``FAMILY GIVEN``, which the search compares for equality too."""

POSTGRESQL_INDEXES = (
    # fastupdate off: a registration updates the index at once, instead of queueing entries
    # in a pending list that every search would then read through until the next VACUUM.
    f"CREATE INDEX ix_person_search_trgm ON person USING gin (({PG_NAMES_SQL}) gin_trgm_ops) "
    "WITH (fastupdate = off)",
    *(
        f"CREATE INDEX ix_person_search_{name}{scoped} ON person ({lead}{key}, id)"
        for name, key in (
            ("family", '(upper(family_name)) COLLATE "C"'),
            ("full", f'(upper({FULL_NAME_SQL})) COLLATE "C"'),
            ("chinese", 'chinese_name COLLATE "C"'),
            ("native", 'native_name COLLATE "C"'),
        )
        for scoped, lead in (("", ""), ("_office", "office_id, "))
    ),
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
SQLITE_INDEXES = tuple(
    f"CREATE INDEX ix_person_search_{name}{scoped} ON person ({lead}{key}, id)"
    for name, key in (
        ("family", "family_name COLLATE NOCASE"),
        ("full", f"({FULL_NAME_SQL}) COLLATE NOCASE"),
        ("chinese", "chinese_name"),
        ("native", "native_name"),
    )
    for scoped, lead in (("", ""), ("_office", "office_id, "))
)
NAME_INDEXES = tuple(
    f"ix_person_search_{name}{scoped}"
    for name in ("family", "full", "chinese", "native")
    for scoped in ("", "_office")
)
"""The B-tree indexes of the equal and prefix ranks: each name ``(name, id)`` for a search of
every office, ``(office_id, name, id)`` for an officer's; equal names sit newest last."""
_INDEX_NAMES = ("ix_person_search_trgm", *NAME_INDEXES)


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
