"""Finding persons: the list of an office's persons and the search box, answered by indexes.

One text box takes a foreigner code, a passport number, a card serial or part of a name in any
script. Each kind is answered by its own index, never by reading every person:

1. **Identifiers first.** A valid foreigner code (check character included), a token shaped
   like a passport number and one shaped like a card serial are looked up by their unique
   indexes (a few index probes). When one of them names a person the officer may read, that is
   the answer: names carry no digits, so a name search would add nothing but cost.
2. **Names.** Three characters or more: the trigram index (``pg_trgm`` on PostgreSQL, FTS5
   ``trigram`` on SQLite; see :mod:`cardissuer.core.search_index`) finds every person whose
   names contain the text, in any script and letter case. One or two characters (a Chinese
   name such as 王伟, a family name such as LI) are too short for trigrams: they match names
   that *start* with the text, through B-tree indexes on the family, Chinese and native names.

Results are ranked: an identifier hit, then a name equal to the text, then a name starting
with it, then any other match; newest registration first within a rank. Counting stops at
:data:`COUNT_CAP` ("more than 1,000") instead of counting every match of a common name.

Pages follow a **keyset**: the opaque cursor of a page names the rank and id of its last row,
and the next page starts after them. Persons registered meanwhile do not shift the pages (as
an OFFSET would), and a page deep in the list costs what the first one does. The cursor is
bound to its search text: replaying it with another text is refused.

Office scoping is the same as everywhere: an officer sees only their office's persons, an
auditor or administrator all of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, case, func, literal, literal_column, or_
from sqlalchemy import text as sql_text
from sqlmodel import Session, col, select

from cardissuer.core.search_index import PG_NAMES_SQL
from cardissuer.errors import IssuerError
from cardissuer.models import CardRecord, OfficeRecord, PassportRecord, PersonRecord
from cardissuer.services.access import ALL_OFFICES, Actor, require
from schemas import code as foreigner_code

COUNT_CAP = 1000
"""Counting stops here: a total above it is shown as "more than 1,000"."""

TRIGRAM = 3
"""The shortest text the trigram indexes can answer; shorter texts match name prefixes."""

_PASSPORT = re.compile(r"[A-Z0-9<]{3,20}")
_SERIAL = re.compile(r"[0-9A-Z]{4,16}")
_RANK_IDENTIFIER, _RANK_EQUAL, _RANK_PREFIX, _RANK_CONTAINS = 0, 1, 2, 3


class InvalidCursorError(IssuerError):
    """The page cursor is malformed, or belongs to another search."""

    code = "invalid-cursor"
    http_status = 422


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page: the persons, the (capped) count of all matches and the next page's cursor."""

    persons: list[PersonRecord]
    total: int
    total_capped: bool
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class _Cursor:
    rank: int
    last_id: int

    def encode(self, text: str) -> str:
        raw = f"{self.rank}.{self.last_id}.{_digest(text)}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str, text: str) -> _Cursor:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            rank, last_id, digest = base64.urlsafe_b64decode(padded).decode().split(".")
            parsed = cls(int(rank), int(last_id))
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise InvalidCursorError(
                "the page cursor is not valid: start from the first page"
            ) from None
        if digest != _digest(text):
            raise InvalidCursorError("the page cursor belongs to another search")
        if not (0 <= parsed.rank <= _RANK_CONTAINS and 0 < parsed.last_id < 2**63):
            raise InvalidCursorError("the page cursor is not valid: start from the first page")
        return parsed


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def normalise(text: str) -> str:
    """The search text as searched: surrounding and repeated white space dropped."""
    return " ".join(text.split())


def search_persons(
    session: Session,
    actor: Actor,
    text: str,
    *,
    limit: int,
    cursor: str | None = None,
    offset: int = 0,
) -> SearchResult:
    """One page of the persons matching ``text`` (all persons when empty) that ``actor`` may
    read, best first. ``cursor`` (from the previous page) or, for older clients, ``offset``
    says where the page starts."""
    require(actor, "person.read")
    text = normalise(text)
    after = _Cursor.decode(cursor, text) if cursor else None
    scope = _scope(actor)
    if not text:
        return _page(session, scope, None, text, after, limit, offset)
    identified = _identifier_hits(session, text)
    if identified:
        where = [*scope, col(PersonRecord.id).in_(identified)]
        found = _page(session, where, None, text, after, limit, offset)
        if found.total:
            return found
    where = [*scope, _name_match(session, text)]
    return _page(session, where, _name_rank(text), text, after, limit, offset)


def offices_of(session: Session, persons: list[PersonRecord]) -> list[OfficeRecord]:
    """The offices of ``persons``, in one query."""
    ids = sorted({person.office_id for person in persons})
    if not ids:
        return []
    return list(session.exec(select(OfficeRecord).where(col(OfficeRecord.id).in_(ids))).all())


def _scope(actor: Actor) -> list[Any]:
    if "person.read" in ALL_OFFICES.get(actor.role, frozenset()):
        return []
    return [PersonRecord.office_id == actor.office_id]


def _identifier_hits(session: Session, text: str) -> list[int]:
    """Ids of the persons a code, passport number or card serial in ``text`` names (any
    office: the caller's scope decides what is shown)."""
    compact = "".join(text.split()).upper()
    ids: set[int] = set()
    if foreigner_code.is_valid(text):
        code = foreigner_code.validate(text)
        ids.update(
            i
            for i in session.exec(select(PersonRecord.id).where(PersonRecord.code == code)).all()
            if i is not None
        )
    if _PASSPORT.fullmatch(compact):
        ids.update(
            session.exec(
                select(PassportRecord.person_id).where(PassportRecord.number == compact)
            ).all()
        )
    if _SERIAL.fullmatch(compact):
        ids.update(
            session.exec(select(CardRecord.person_id).where(CardRecord.serial == compact)).all()
        )
    return sorted(ids)


def _name_match(session: Session, text: str) -> Any:
    """The condition "a name contains ``text``" (3+ characters) or "starts with" (1-2),
    written so that each database answers it from an index."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    if len(text) >= TRIGRAM:
        if postgresql:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            # PostgreSQL's LIKE escapes with a backslash by default; pg_trgm reads it too.
            return literal_column(PG_NAMES_SQL).like(func.upper(f"%{escaped}%"))
        phrase = '"' + text.replace('"', '""') + '"'  # one FTS5 string: the text as it is
        matching = (
            sql_text("SELECT rowid FROM person_search WHERE person_search MATCH :phrase")
            .bindparams(phrase=phrase)
            .columns(rowid=Integer)
        )
        return col(PersonRecord.id).in_(matching)
    low, high = text, _successor(text)
    if postgresql:
        family = func.upper(PersonRecord.family_name).collate("C")
        family_low, family_high = low.upper(), _successor(low.upper())
    else:  # NOCASE compares ASCII letters as lower case
        family = col(PersonRecord.family_name).collate("NOCASE")
        family_low, family_high = low.lower(), _successor(low.lower())
    chinese: Any = col(PersonRecord.chinese_name)
    native: Any = col(PersonRecord.native_name)
    if postgresql:
        chinese, native = chinese.collate("C"), native.collate("C")
    return or_(
        and_(family >= family_low, family < family_high),
        and_(chinese >= low, chinese < high),
        and_(native >= low, native < high),
    )


def _successor(prefix: str) -> str:
    """The smallest string after every string that starts with ``prefix`` (code point order,
    which is UTF-8 byte order: SQLite's BINARY and PostgreSQL's "C" collation)."""
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates cannot be stored: skip to the next character
        last = 0xE000
    return prefix[:-1] + chr(min(last, 0x10FFFF))


def _name_rank(text: str) -> Any:
    upper, length = text.upper(), len(text)
    family = func.upper(PersonRecord.family_name)
    full = func.upper(PersonRecord.family_name + " " + PersonRecord.given_names)
    chinese, native = col(PersonRecord.chinese_name), col(PersonRecord.native_name)
    return case(
        (
            or_(family == upper, full == upper, chinese == text, native == text),
            _RANK_EQUAL,
        ),
        (
            or_(
                func.substr(family, 1, length) == upper,
                func.substr(chinese, 1, length) == text,
                func.substr(native, 1, length) == text,
            ),
            _RANK_PREFIX,
        ),
        else_=_RANK_CONTAINS,
    )


def _page(
    session: Session,
    where: list[Any],
    rank: Any | None,
    text: str,
    after: _Cursor | None,
    limit: int,
    offset: int,
) -> SearchResult:
    person_id = col(PersonRecord.id)
    counted = select(person_id).where(*where).limit(COUNT_CAP + 1).subquery()
    count = session.exec(select(func.count()).select_from(counted)).one()
    if rank is None:  # one rank (a list, or identifier hits): the id alone orders the rows
        ranked = select(PersonRecord, literal(_RANK_IDENTIFIER).label("search_rank"))
        order: tuple[Any, ...] = (person_id.desc(),)
        if after is not None:
            where = [*where, person_id < after.last_id]
    else:
        ranked = select(PersonRecord, rank.label("search_rank"))
        order = (rank, person_id.desc())
        if after is not None:
            where = [
                *where,
                or_(rank > after.rank, and_(rank == after.rank, person_id < after.last_id)),
            ]
    query = ranked.where(*where).order_by(*order)
    if after is None and offset:
        query = query.offset(offset)
    rows = session.exec(query.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last, last_rank = rows[-1]
        next_cursor = _Cursor(int(last_rank), last.id or 0).encode(text)
    return SearchResult(
        persons=[person for person, _ in rows],
        total=min(count, COUNT_CAP),
        total_capped=count > COUNT_CAP,
        next_cursor=next_cursor,
    )
