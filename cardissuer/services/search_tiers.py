"""The name search, one rank ("tier") at a time, each read in index order a page at a time.

A name search ranks its matches: a name equal to the text, then a name starting with it, then
any other name containing it; newest registration (highest id) first within a rank. Names and
text are compared by their search keys (:mod:`cardissuer.services.search_key`), stored in
``person.folded_*`` and indexed there, so "equal" means equal once case, accents and letter
variants are folded. Ranking every match before cutting the page costs what the text
*matches* (a common family name matches a hundred thousand persons at a million). Here each
rank is its own query that reads its rows already in the order shown, so a page costs what
it shows:

* **equal**: one probe per name column (family, ``FAMILY GIVEN``, Chinese, native) on a
  B-tree index ``(name, id)``, or ``(office_id, name, id)`` for an officer: equal names sit
  together, newest last, so ``ORDER BY id DESC LIMIT n`` reads ``n`` index entries. The
  probes' few rows are merged (``UNION``) and cut again;
* **prefix**: a range on the same indexes (a name starting with the text, not equal to it,
  and not equal in another column). A range is not in id order, so this rank costs what it
  matches; it is read only when the equal rank does not fill the page;
* **contains** (3+ characters), only when the ranks above run out. SQLite walks the FTS5
  trigram index newest first (``ORDER BY rowid DESC``, which FTS5 reads in index order) and
  stops at the page's end. PostgreSQL's ``pg_trgm`` GIN index has no order, so the search
  looks through **windows of recent ids** (8,192 ids, then 8 times wider each time): a
  common substring fills its page in the first window; a rare one reaches the whole table in
  a few steps, where the GIN index answers it at the cost of its (few) matches.

Counting stops at ``cap``: each rank counts at most what is left under the cap, through the
same queries, so a common name is counted from the newest 1,001 index entries of one rank.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Integer, and_, case, column, func, literal_column, or_, table, union
from sqlalchemy import text as sql_text
from sqlmodel import Session, col, select

from cardissuer.core.search_index import FULL_NAME_SQL, NAMES_SQL
from cardissuer.models import PersonRecord
from cardissuer.services.search_key import fold

EQUAL, PREFIX, CONTAINS = 1, 2, 3
"""The name ranks, as the page cursor names them (0 is an identifier hit)."""

TRIGRAM = 3
"""The shortest text the trigram indexes can answer; shorter texts have no "contains" rank."""

WINDOW = 8192
"""PostgreSQL's first window of recent ids for the "contains" rank; each next is 8 times wider."""

_FULL = "(" + FULL_NAME_SQL.replace("folded_", "person.folded_") + ")"
_FTS = table("person_search", column("rowid", Integer))


class NameTiers:
    """The queries of one name search within ``scope``: ``text`` as typed (it names the
    search in page cursors), compared by its search key (``key``) with the names' keys."""

    def __init__(self, session: Session, scope: list[Any], text: str) -> None:
        self.session = session
        self.scope = scope
        self.text = text
        self.key = fold(text)
        self.postgresql = session.get_bind().dialect.name == "postgresql"

    def ranks(self) -> tuple[int, ...]:
        if not self.key:  # only separators or marks: no name to look for
            return ()
        return (EQUAL, PREFIX, CONTAINS) if len(self.key) >= TRIGRAM else (EQUAL, PREFIX)

    def ids(self, rank: int, before: int | None, limit: int) -> list[int]:
        """Up to ``limit`` ids of ``rank``, newest first, below ``before`` when given."""
        if rank == CONTAINS:
            return self._contains_ids(before, limit)
        parts = [
            self._part(condition, rank, before).limit(limit) for condition in self._columns(rank)
        ]
        return self._merged(parts, limit)

    def count(self, rank: int, limit: int) -> int:
        """How many persons ``rank`` holds, counted up to ``limit`` (no further)."""
        if rank == CONTAINS:
            return self._contains_count(limit)
        parts = [
            self._part(condition, rank, None).order_by(None).limit(limit)  # any order counts
            for condition in self._columns(rank)
        ]
        return len(self._merged(parts, limit))

    # --- equal and prefix: B-tree probes ------------------------------------------------------

    def _columns(self, rank: int) -> list[Any]:
        """One condition per name column, each answered by that column's index."""
        key = self.key
        names: list[Any] = [
            col(PersonRecord.folded_family),
            literal_column(_FULL),
            col(PersonRecord.folded_chinese),
            col(PersonRecord.folded_native),
        ]
        if self.postgresql:  # the indexes' collation: code point order, as _successor
            names = [name.collate("C") for name in names]
        family, full, chinese, native = names
        if rank == EQUAL:
            return [family == key, full == key, chinese == key, native == key]
        # Strictly after the key itself: an equal name is the rank above.
        return [and_(name > key, name < _successor(key)) for name in (family, chinese, native)]

    def _part(self, condition: Any, rank: int, before: int | None) -> Any:
        person_id = col(PersonRecord.id)
        where = [*self.scope, condition]
        if rank != EQUAL:  # equal in another column ranks the person higher
            where.append(self.rank_of() == rank)
        if before is not None:
            where.append(person_id < before)
        order: Any = person_id
        if rank == PREFIX:
            # A range comes out of its index in name order, so it is sorted anyway; "id + 0"
            # keeps the planner from walking every person by id instead, in the hope that
            # the LIMIT is reached early (it is not, for a prefix nobody has).
            order = person_id + 0
        return select(person_id).where(*where).order_by(order.desc())

    def _merged(self, parts: list[Any], limit: int) -> list[int]:
        """The newest ``limit`` distinct ids of the parts (each already cut to ``limit``)."""
        merged = union(*(select(part.subquery().c.id) for part in parts)).subquery()
        query = select(merged.c.id).order_by(merged.c.id.desc()).limit(limit)
        return [int(i) for i in self.session.exec(query).all()]

    # --- contains: the trigram index ----------------------------------------------------------

    def _contains_ids(self, before: int | None, limit: int) -> list[int]:
        if not self.postgresql:
            return self._fts_ids(before, limit)
        found: list[int] = []
        for low, high in self._windows(before):
            query = self._trigram(low, high).order_by(col(PersonRecord.id).desc())
            found += [int(i) for i in self.session.exec(query.limit(limit - len(found))).all()]
            if len(found) >= limit:
                break
        return found

    def _contains_count(self, limit: int) -> int:
        if not self.postgresql:
            return len(self._fts_ids(None, limit))
        counted = 0
        for low, high in self._windows(None):
            inner = self._trigram(low, high).limit(limit - counted).subquery()
            counted += int(self.session.exec(select(func.count()).select_from(inner)).one())
            if counted >= limit:
                break
        return counted

    def _fts_ids(self, before: int | None, limit: int) -> list[int]:
        """SQLite: the FTS5 index read newest first, joined to ``person`` for the scope and
        the rank, stopping after ``limit`` rows."""
        phrase = '"' + self.key.replace('"', '""') + '"'  # one FTS5 string: the key as is
        where = [
            sql_text("person_search MATCH :phrase").bindparams(phrase=phrase),
            *self.scope,
            self.rank_of() == CONTAINS,
        ]
        if before is not None:
            where.append(_FTS.c.rowid < before)
        query = (
            select(_FTS.c.rowid)
            .select_from(_FTS.join(PersonRecord, col(PersonRecord.id) == _FTS.c.rowid))
            .where(*where)
            .order_by(_FTS.c.rowid.desc())
            .limit(limit)
        )
        return [int(i) for i in self.session.exec(query).all()]

    def _trigram(self, low: int, high: int) -> Any:
        escaped = self.key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # PostgreSQL's LIKE escapes with a backslash by default; pg_trgm reads it too.
        person_id = col(PersonRecord.id)
        return select(person_id).where(
            *self.scope,
            literal_column(NAMES_SQL).like(f"%{escaped}%"),
            self.rank_of() == CONTAINS,
            person_id >= low,
            person_id < high,
        )

    def _windows(self, before: int | None) -> Iterator[tuple[int, int]]:
        """Id ranges ``[low, high)``, newest first, each 8 times wider, down to the first id."""
        high = before
        if high is None:
            newest = self.session.exec(select(func.max(PersonRecord.id))).one()
            if newest is None:
                return
            high = int(newest) + 1
        width = WINDOW
        while high > 0:
            low = max(high - width, 0)
            yield low, high
            high, width = low, width * 8

    # --- the rank of a row --------------------------------------------------------------------

    def rank_of(self) -> Any:
        """The rank of a person matching the text, as a SQL expression over its row."""
        key, length = self.key, len(self.key)
        family: Any = col(PersonRecord.folded_family)
        full: Any = literal_column(_FULL)
        chinese: Any
        native: Any
        chinese, native = col(PersonRecord.folded_chinese), col(PersonRecord.folded_native)
        return case(
            (or_(family == key, full == key, chinese == key, native == key), EQUAL),
            (
                or_(
                    func.substr(family, 1, length) == key,
                    func.substr(chinese, 1, length) == key,
                    func.substr(native, 1, length) == key,
                ),
                PREFIX,
            ),
            else_=CONTAINS,
        )


def _successor(prefix: str) -> str:
    """The smallest string after every string that starts with ``prefix`` (code point order,
    which is UTF-8 byte order: SQLite's BINARY and PostgreSQL's "C" collation)."""
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates cannot be stored: skip to the next character
        last = 0xE000
    return prefix[:-1] + chr(min(last, 0x10FFFF))
