"""The name-search indexes, defined once for the rebuild command and the schema checks.

Names are searched by substring in any script (Latin, Cyrillic, Arabic, Chinese, Korean), which
a B-tree cannot answer. The indexes cover the names' search keys (``person.folded_*``: case,
accents and letter variants folded by :mod:`cardissuer.services.search_key`), not the names as
written. Each database gets a trigram index over one text made of all the person's keys
(``FAMILY GIVEN NATIVE CHINESE``):

* PostgreSQL: a ``pg_trgm`` GIN index on that text (the extension must be installed:
  PostgreSQL 13 and later trust it, so a database owner may create it; older servers need a
  superuser to run ``CREATE EXTENSION pg_trgm`` once);
* SQLite: an FTS5 table with the ``trigram`` tokenizer, kept in step with ``person`` by
  triggers. It stores no copy of the names (``content=''``): only the index.

A trigram index cannot answer a query shorter than three characters (a Chinese name of two
characters, a Korean family name of one), and it returns its matches in no useful order. So
the family, full (``FAMILY GIVEN``), Chinese and native names also have B-tree indexes
``(name, id)`` and ``(office_id, name, id)``: they answer the equal and prefix ranks of every
search, newest first, a page at a time (:mod:`cardissuer.services.search_tiers`).

Migrations ``0005_search_indexes``, ``0008_search_tiers`` and ``0012_search_fold`` create the
same objects with their own frozen copies of these statements; :func:`rebuild` recomputes the
keys that differ and re-creates the indexes from here (``fmcard db rebuild-search``), and a
test checks that rebuilding a migrated database changes nothing in its schema.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

PREFIX = "person_search"
"""Every search object (tables, indexes, triggers) is named with this prefix or ``ix_`` + it."""

NAMES_SQL = (
    "folded_family || ' ' || folded_given || ' ' || coalesce(folded_native, '') || ' ' || "
    "coalesce(folded_chinese, '')"
)
"""The text that is trigram-indexed: the search keys of every name of the person
(:mod:`cardissuer.services.search_key`), space separated."""

FULL_NAME_SQL = "folded_family || ' ' || folded_given"
"""The key of the full name ``FAMILY GIVEN``, which the search compares for equality too."""

NAME_KEYS = {
    "family": "folded_family",
    "full": f"({FULL_NAME_SQL})",
    "chinese": "folded_chinese",
    "native": "folded_native",
}
"""Each B-tree-indexed name and its key, as SQL over a ``person`` row."""

POSTGRESQL_INDEXES = (
    # fastupdate off: a registration updates the index at once, instead of queueing entries
    # in a pending list that every search would then read through until the next VACUUM.
    f"CREATE INDEX ix_person_search_trgm ON person USING gin (({NAMES_SQL}) gin_trgm_ops) "
    "WITH (fastupdate = off)",
    *(
        f'CREATE INDEX ix_person_search_{name}{scoped} ON person ({lead}{key} COLLATE "C", id)'
        for name, key in NAME_KEYS.items()
        for scoped, lead in (("", ""), ("_office", "office_id, "))
    ),
)


def _sqlite_names(row: str) -> str:
    names = NAMES_SQL
    for column in ("folded_family", "folded_given", "folded_native", "folded_chinese"):
        names = names.replace(column, f"{row}.{column}")
    return names


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
    "AFTER UPDATE OF id, folded_family, folded_given, folded_native, folded_chinese ON person "
    "BEGIN INSERT INTO person_search(person_search, rowid, names) "
    f"VALUES ('delete', old.id, {_sqlite_names('old')}); "
    f"INSERT INTO person_search(rowid, names) VALUES (new.id, {_sqlite_names('new')}); END",
)
SQLITE_FILL = f"INSERT INTO person_search(rowid, names) SELECT id, {NAMES_SQL} FROM person"
SQLITE_INDEXES = tuple(
    f"CREATE INDEX ix_person_search_{name}{scoped} ON person ({lead}{key}, id)"
    for name, key in NAME_KEYS.items()
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

REFOLD_BATCH = 5000
"""Persons read, folded and written back at a time by :func:`refold`."""


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """Alembic's filter: leave the search objects (made by SQL, not by the models) out of
    schema comparisons, where they would read as tables and indexes to drop."""
    del type_
    return not (name or "").startswith((PREFIX, f"ix_{PREFIX}"))


def rebuild(connection: Connection) -> int:
    """Drop and re-create every search index from the current rows (inside the caller's
    transaction), after recomputing the names' search keys where they differ from what
    :func:`~cardissuer.services.search_key.fold` makes of the names now: for a damaged index,
    one that fell out of step with ``person``, or keys made by an older fold. Returns how
    many persons' keys were rewritten."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        for name in _INDEX_NAMES:
            connection.execute(text(f"DROP INDEX IF EXISTS {name}"))
        changed = refold(connection)
        for statement in POSTGRESQL_INDEXES:
            connection.execute(text(statement))
        connection.execute(text("ANALYZE person"))
        return changed
    for trigger in ("insert", "delete", "update"):
        connection.execute(text(f"DROP TRIGGER IF EXISTS person_search_{trigger}"))
    connection.execute(text("DROP TABLE IF EXISTS person_search"))
    for name in _INDEX_NAMES:
        connection.execute(text(f"DROP INDEX IF EXISTS {name}"))
    changed = refold(connection)
    for statement in (SQLITE_TABLE, *SQLITE_TRIGGERS, SQLITE_FILL, *SQLITE_INDEXES):
        connection.execute(text(statement))
    return changed


def refold(connection: Connection, *, batch: int | None = None) -> int:
    """Recompute the search keys of every person, :data:`REFOLD_BATCH` persons at a time in
    id order (memory stays flat at any size), writing only the rows whose keys differ.
    Returns how many were written. The indexes on the keys are best dropped first: each
    rewritten row would update them."""
    from cardissuer.services.search_key import FOLDED_COLUMNS, folded_names

    names, keys = list(FOLDED_COLUMNS.values()), list(FOLDED_COLUMNS)
    batch = batch or REFOLD_BATCH
    read = text(
        f"SELECT id, {', '.join(names + keys)} FROM person "
        "WHERE id > :after ORDER BY id LIMIT :batch"
    )
    write = text(
        f"UPDATE person SET {', '.join(f'{key} = :{key}' for key in keys)} WHERE id = :row_id"
    )
    changed, after = 0, 0
    while True:
        rows = connection.execute(read, {"after": after, "batch": batch}).all()
        if not rows:
            return changed
        updates = []
        for row in rows:
            folded = folded_names(dict(zip(names, row[1 : 1 + len(names)], strict=True)))
            if tuple(folded.values()) != tuple(row[1 + len(names) :]):
                updates.append({"row_id": row[0], **folded})
        if updates:
            connection.execute(write, updates)
            changed += len(updates)
        after = rows[-1][0]
