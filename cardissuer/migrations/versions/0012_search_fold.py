"""search fold: the names' search keys stored, and the search indexes built on them

Revision ID: 0012_search_fold
Revises: 0011_phone_devices
Create Date: 2026-12-06 00:00:00

The name search compared names as typed (upper-cased by the database's locale on
PostgreSQL, ASCII letters only on SQLite): ``celik`` did not find ``Çelik``. Each name now
has a search key (``cardissuer.services.search_key.fold``: case, accents, Turkish i, Arabic
letter variants, separators) in ``person.folded_family``, ``folded_given``,
``folded_native`` and ``folded_chinese``, and the trigram and B-tree search indexes cover
the keys instead of the names.

The upgrade drops the old search indexes (and on SQLite the FTS table and its triggers)
first, so that filling the keys rewrites no index entry for them; fills the keys 5,000
persons at a time in id order (the fold is Python's: Unicode normalisation and case folding
have no portable SQL), so memory stays flat at a million persons; then builds the indexes on
the keys once. It uses the service's own fold: the stored keys must be what the search
computes from the text it is given. A later change of the fold is applied by ``fmcard db
rebuild-search``, which recomputes the keys that differ. On PostgreSQL the rewritten rows
leave the old versions behind: run ``VACUUM ANALYZE person`` after upgrading a large registry.

The index statements are a frozen copy of ``cardissuer.core.search_index``; a test checks
that a rebuild of a migrated database changes nothing in its schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

revision = "0012_search_fold"
down_revision = "0011_phone_devices"
branch_labels = None
depends_on = None

_KEYS = ("folded_family", "folded_given", "folded_native", "folded_chinese")
_NAMES = (
    "folded_family || ' ' || folded_given || ' ' || coalesce(folded_native, '') || ' ' || "
    "coalesce(folded_chinese, '')"
)
_NAME_KEYS = (
    ("family", "folded_family"),
    ("full", "(folded_family || ' ' || folded_given)"),
    ("chinese", "folded_chinese"),
    ("native", "folded_native"),
)
_SCOPES = (("", ""), ("_office", "office_id, "))
_BTREE = tuple(
    f"ix_person_search_{name}{scoped}" for name, _ in _NAME_KEYS for scoped, _ in _SCOPES
)


def _fts(names: str, columns: tuple[str, ...]) -> tuple[str, ...]:
    """The FTS5 table over ``names`` (SQL over the ``columns`` of a person row) and the
    triggers that keep it in step (0005's over the names, this one's over the keys)."""

    def _row(names: str, row: str) -> str:
        for column in columns:
            names = names.replace(column, f"{row}.{column}")
        return names

    return (
        "CREATE VIRTUAL TABLE person_search USING fts5(names, tokenize='trigram', content='')",
        "CREATE TRIGGER person_search_insert AFTER INSERT ON person BEGIN "
        f"INSERT INTO person_search(rowid, names) VALUES (new.id, {_row(names, 'new')}); END",
        "CREATE TRIGGER person_search_delete AFTER DELETE ON person BEGIN "
        "INSERT INTO person_search(person_search, rowid, names) "
        f"VALUES ('delete', old.id, {_row(names, 'old')}); END",
        f"CREATE TRIGGER person_search_update AFTER UPDATE OF id, {', '.join(columns)} ON person "
        "BEGIN INSERT INTO person_search(person_search, rowid, names) "
        f"VALUES ('delete', old.id, {_row(names, 'old')}); "
        f"INSERT INTO person_search(rowid, names) VALUES (new.id, {_row(names, 'new')}); END",
        f"INSERT INTO person_search(rowid, names) SELECT id, {names} FROM person",
    )


_POSTGRESQL = (
    f"CREATE INDEX ix_person_search_trgm ON person USING gin (({_NAMES}) gin_trgm_ops) "
    "WITH (fastupdate = off)",
    *(
        f'CREATE INDEX ix_person_search_{name}{scoped} ON person ({lead}{key} COLLATE "C", id)'
        for name, key in _NAME_KEYS
        for scoped, lead in _SCOPES
    ),
)
_SQLITE = (
    *_fts(_NAMES, _KEYS),
    *(
        f"CREATE INDEX ix_person_search_{name}{scoped} ON person ({lead}{key}, id)"
        for name, key in _NAME_KEYS
        for scoped, lead in _SCOPES
    ),
)

# What 0005_search_indexes and 0008_search_tiers made, for the downgrade.
_OLD_NAMES = (
    "family_name || ' ' || given_names || ' ' || coalesce(native_name, '') || ' ' || "
    "coalesce(chinese_name, '')"
)
_OLD_FULL = "family_name || ' ' || given_names"
_OLD_POSTGRESQL = (
    f"CREATE INDEX ix_person_search_trgm ON person USING gin ((upper({_OLD_NAMES})) "
    "gin_trgm_ops) WITH (fastupdate = off)",
    *(
        f"CREATE INDEX ix_person_search_{name}{scoped} ON person ({lead}{key}, id)"
        for name, key in (
            ("family", '(upper(family_name)) COLLATE "C"'),
            ("full", f'(upper({_OLD_FULL})) COLLATE "C"'),
            ("chinese", 'chinese_name COLLATE "C"'),
            ("native", 'native_name COLLATE "C"'),
        )
        for scoped, lead in _SCOPES
    ),
)
_OLD_SQLITE = (
    *_fts(_OLD_NAMES, ("family_name", "given_names", "native_name", "chinese_name")),
    *(
        f"CREATE INDEX ix_person_search_{name}{scoped} ON person ({lead}{key}, id)"
        for name, key in (
            ("family", "family_name COLLATE NOCASE"),
            ("full", f"({_OLD_FULL}) COLLATE NOCASE"),
            ("chinese", "chinese_name"),
            ("native", "native_name"),
        )
        for scoped, lead in _SCOPES
    ),
)


def _drop_search(connection: sa.engine.Connection) -> None:
    for name in ("ix_person_search_trgm", *_BTREE):
        connection.execute(text(f"DROP INDEX IF EXISTS {name}"))
    if connection.dialect.name != "postgresql":
        for trigger in ("insert", "delete", "update"):
            connection.execute(text(f"DROP TRIGGER IF EXISTS person_search_{trigger}"))
        connection.execute(text("DROP TABLE IF EXISTS person_search"))


def _fill(connection: sa.engine.Connection) -> None:
    """Every person's keys, ``REFOLD_BATCH`` (5,000) persons at a time in id order (the
    columns frozen here; the fold is the service's, which the search uses on what it is
    given)."""
    from cardissuer.core.search_index import REFOLD_BATCH
    from cardissuer.services.search_key import fold

    names = ("family_name", "given_names", "native_name", "chinese_name")
    read = text(
        f"SELECT id, {', '.join(names)} FROM person "
        f"WHERE id > :after ORDER BY id LIMIT {int(REFOLD_BATCH)}"
    )
    write = text(
        f"UPDATE person SET {', '.join(f'{key} = :{key}' for key in _KEYS)} WHERE id = :row_id"
    )
    after = 0
    while rows := connection.execute(read, {"after": after}).all():
        connection.execute(
            write,
            [
                {
                    "row_id": row[0],
                    **{
                        key: None if value is None else fold(value)
                        for key, value in zip(_KEYS, row[1:], strict=True)
                    },
                }
                for row in rows
            ],
        )
        after = rows[-1][0]


def upgrade() -> None:
    connection = op.get_bind()
    _drop_search(connection)
    for key in _KEYS:  # nullable, no default: in place on both databases, whatever the size
        op.add_column("person", sa.Column(key, sa.String(length=256), nullable=True))
    _fill(connection)
    postgresql = connection.dialect.name == "postgresql"
    for statement in _POSTGRESQL if postgresql else _SQLITE:
        connection.execute(text(statement))
    if postgresql:
        connection.execute(text("ANALYZE person"))


def downgrade() -> None:
    connection = op.get_bind()
    _drop_search(connection)  # nothing may name a column being dropped
    for key in reversed(_KEYS):
        op.drop_column("person", key)  # in place (SQLite 3.35 and later, as 0009)
    postgresql = connection.dialect.name == "postgresql"
    for statement in _OLD_POSTGRESQL if postgresql else _OLD_SQLITE:
        connection.execute(text(statement))
