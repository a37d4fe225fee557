"""The name search, one rank ("tier") at a time, each read in index order a page at a time.

A name search ranks its matches: a name equal to the text, then a name starting with it, then
any other name containing it; newest registration (highest id) first within the equal and
contains ranks, name order within the prefix rank (below). Names and
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
  and not equal in another column), read only when the equal rank does not fill the page.
  A range is in name order, not id order, so this rank is shown in the order its index
  holds it: by the matching name's key, then id (oldest first among equal names). Each
  column's range is walked from its start (or from the page cursor's key and id) and cut
  at the page's end, so a page reads a page of index entries per column, whatever the
  range holds (``иванов`` prefixes every ``Иванов ...``);
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

from sqlalchemy import (
    Integer,
    and_,
    case,
    column,
    func,
    literal_column,
    not_,
    or_,
    table,
    union,
)
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

Position = tuple[str, int]
"""Where a row stands in its rank: the key it is ordered by (prefix rank; empty in the
others) and its id."""


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

    def ids(
        self, rank: int, after: Position | None, limit: int, ceiling: int = 0
    ) -> list[Position]:
        """Up to ``limit`` rows of ``rank`` in the rank's order, after ``after`` when given:
        newest first (``after``'s id alone counts) for equal and contains, name order (the
        matching name's key, then id) for prefix; none with an id above ``ceiling`` (when
        not 0: the newest person when the first page was read)."""
        if rank == PREFIX:
            return self._prefix(after, limit, ceiling)
        before = after[1] if after is not None else (ceiling + 1 if ceiling else None)
        if rank == CONTAINS:
            return [("", i) for i in self._contains_ids(before, limit)]
        parts = [self._equal(condition, before).limit(limit) for condition in self._columns()]
        return [("", i) for i in self._merged(parts, limit)]

    def count(self, rank: int, limit: int) -> int:
        """How many persons ``rank`` holds, counted up to ``limit`` (no further)."""
        if rank == CONTAINS:
            return self._contains_count(limit)
        if rank == PREFIX:
            return len(self._prefix(None, limit))
        parts = [
            self._equal(condition, None).order_by(None).limit(limit)  # any order counts
            for condition in self._columns()
        ]
        return len(self._merged(parts, limit))

    def prefix_key_of(self, person_id: int) -> str | None:
        """The key a person stands at in the prefix rank (its first name, in key order, that
        starts with the text), or None when it is not in that rank: where a page cursor
        that names the person alone resumes."""
        row = self.session.exec(
            select(
                col(PersonRecord.folded_family),
                col(PersonRecord.folded_chinese),
                col(PersonRecord.folded_native),
            ).where(col(PersonRecord.id) == person_id)
        ).first()
        keys = [k for k in row or () if k and k != self.key and k.startswith(self.key)]
        return min(keys) if keys else None

    # --- equal: B-tree probes, newest first -------------------------------------------------

    def _names(self) -> list[Any]:
        """The B-tree-indexed name keys: family, ``FAMILY GIVEN``, Chinese, native."""
        names: list[Any] = [
            col(PersonRecord.folded_family),
            literal_column(_FULL),
            col(PersonRecord.folded_chinese),
            col(PersonRecord.folded_native),
        ]
        if self.postgresql:  # the indexes' collation: code point order, as _successor
            names = [name.collate("C") for name in names]
        return names

    def _columns(self) -> list[Any]:
        """One equality per name column, each answered by that column's index."""
        return [name == self.key for name in self._names()]

    def _equal(self, condition: Any, before: int | None) -> Any:
        person_id = col(PersonRecord.id)
        where = [*self.scope, condition]
        if before is not None:
            where.append(person_id < before)
        return select(person_id).where(*where).order_by(person_id.desc())

    def _merged(self, parts: list[Any], limit: int) -> list[int]:
        """The newest ``limit`` distinct ids of the parts (each already cut to ``limit``)."""
        merged = union(*(select(part.subquery().c.id) for part in parts)).subquery()
        query = select(merged.c.id).order_by(merged.c.id.desc()).limit(limit)
        return [int(i) for i in self.session.exec(query).all()]

    # --- prefix: B-tree ranges, in key order --------------------------------------------------

    def _prefix(self, after: Position | None, limit: int, ceiling: int = 0) -> list[Position]:
        """The first ``limit`` persons of the prefix rank after ``after``, in ``(key, id)``
        order, where a person's key is its first name (family, Chinese, native; in key
        order) that starts with the text. Each column's range is read from its
        ``(name, id)`` or ``(office_id, name, id)`` index in index order and cut at
        ``limit``: a page reads ``limit`` index entries per column, whatever the range
        holds. A person stands in the range of one column only (the filter below), so the
        columns' rows merge without repeats.

        After a cursor each column is read in two seeks: the rest of the cursor's key
        (``name = key AND id > last``), then the names after it (``name > key``). A row
        value ``(name, id) > (key, last)`` says the same, but SQLite (3.40) seeks on its
        first member only and then steps over every earlier entry of that name."""
        family, _full, chinese, native = self._names()
        columns = (family, chinese, native)
        person_id = col(PersonRecord.id)
        found: list[Position] = []
        for index, name in enumerate(columns):
            where = [
                *self.scope,
                # Equal in another column ranks higher. Spelled as inequalities, not as
                # rank_of() == PREFIX: PostgreSQL guesses a CASE equal to a constant holds
                # for 0.5 % of the rows and then sorts the whole range rather than walk it.
                *(func.coalesce(other, "") != self.key for other in self._names()),
                *self._first_in(name, index, columns),
            ]
            if ceiling:  # read from the index entries: a registration since is skipped
                where.append(person_id <= ceiling)
            ranges: list[list[Any]] = []
            if after is None:  # strictly after the text: an equal name is the rank above
                ranges.append([name > self.key])
            else:
                ranges.append([name == after[0], person_id > after[1]])
                ranges.append([name > after[0]])
            for start in ranges:
                query = (
                    select(name, person_id)
                    .where(*start, name < _successor(self.key), *where)
                    .order_by(name, person_id)
                    .limit(limit)
                )
                rows: list[Any] = list(self.session.exec(query).all())
                found += [(str(key), int(person)) for key, person in rows]
        return sorted(found)[:limit]  # code point order, as the indexes' collation

    def _first_in(self, name: Any, index: int, columns: tuple[Any, ...]) -> list[Any]:
        """The person's place is ``name``'s range unless another of its names starts with
        the text too and comes first (a smaller key; on a tie, the earlier column)."""
        conditions = []
        for other_index, other in enumerate(columns):
            if other_index == index:
                continue
            other = func.coalesce(other, "")
            starts = func.substr(other, 1, len(self.key)) == self.key
            first = other <= name if other_index < index else other < name
            conditions.append(not_(and_(starts, first)))
        return conditions

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
