"""Finding persons: the list of an office's persons and the search box, answered by indexes.

One text box takes a foreigner code, a passport number, a card serial or part of a name in any
script. Each kind is answered by its own index, never by reading every person:

1. **Identifiers first.** A valid foreigner code (check character included), a token shaped
   like a passport number and one shaped like a card serial are looked up by their unique
   indexes (a few index probes). When one of them names a person the officer may read, that is
   the answer: names carry no digits, so a name search would add nothing but cost.
2. **Names**, compared by their search keys (:mod:`cardissuer.services.search_key`: letter
   case, accents, Turkish dotted and dotless i, Arabic letter variants and separators
   folded, so ``celik`` finds ``Çelik``). Three characters or more: the trigram index
   (``pg_trgm`` on PostgreSQL, FTS5 ``trigram`` on SQLite; see
   :mod:`cardissuer.core.search_index`) finds every person whose names contain the text, in
   any script. One or two characters (a Chinese name such as 王伟, a family name such as LI)
   are too short for trigrams: they match names that *start* with the text, through B-tree
   indexes on the family, Chinese and native names' keys.

Results are ranked: an identifier hit, then a name equal to the text, then a name starting
with it, then any other match; newest registration first within a rank, except the names
starting with the text, which come in name order (as their index holds them). A page is
filled rank by rank, each read in its order from an index and cut at the page's end
(:mod:`cardissuer.services.search_tiers`), so a page costs what it shows, not what the text
matches. Counting stops at :data:`COUNT_CAP` ("more than 1,000") instead of counting every
match of a common name.

Pages follow a **keyset**: the opaque cursor of a page names the rank and id of its last row
(and in the prefix rank the name it was ordered by), and the next page starts after them.
Persons registered meanwhile do not shift the pages (as an OFFSET would) and are not shown
by the next pages (the cursor holds the newest id when the search began), and a page deep in
the list costs what the first one does. The cursor is bound to its search text: replaying it
with another text is refused.

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

from sqlalchemy import func
from sqlmodel import Session, col, select

from cardissuer.errors import IssuerError
from cardissuer.models import CardRecord, OfficeRecord, PassportRecord, PersonRecord
from cardissuer.services.access import ALL_OFFICES, Actor, require
from cardissuer.services.search_tiers import CONTAINS, PREFIX, NameTiers
from schemas import code as foreigner_code

COUNT_CAP = 1000
"""Counting stops here: a total above it is shown as "more than 1,000"."""

_PASSPORT = re.compile(r"[A-Z0-9<]{3,20}")
_SERIAL = re.compile(r"[0-9A-Z]{4,16}")
_RANK_IDENTIFIER = 0


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
    """Where the last row shown stands: its rank, its id and, in the prefix rank (ordered by
    name), the key it was ordered by; and the newest id when the search began (``ceiling``,
    0 for none), above which the next pages show nothing."""

    rank: int
    last_id: int
    key: str = ""
    ceiling: int = 0

    def encode(self, text: str) -> str:
        raw = f"{self.rank}.{self.last_id}.{_digest(text)}"
        if self.ceiling or self.key:  # the key in base64: a dot in a name splits nothing
            raw += f".{self.ceiling}.{base64.urlsafe_b64encode(self.key.encode()).decode()}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str, text: str) -> _Cursor:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            fields = base64.urlsafe_b64decode(padded).decode().split(".")
            rank, last_id, digest = fields[:3]
            ceiling = int(fields[3]) if len(fields) > 3 else 0
            key = "".join(base64.urlsafe_b64decode(field).decode() for field in fields[4:5])
            parsed = cls(int(rank), int(last_id), key, ceiling)
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise InvalidCursorError(
                "the page cursor is not valid: start from the first page"
            ) from None
        if digest != _digest(text):
            raise InvalidCursorError("the page cursor belongs to another search")
        valid = 0 <= parsed.rank <= CONTAINS and 0 < parsed.last_id < 2**63
        if not valid or not 0 <= parsed.ceiling < 2**63 or len(fields) not in (3, 5):
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
        return _page(session, scope, text, after, limit, offset)
    identified = _identifier_hits(session, text)
    if identified:
        where = [*scope, col(PersonRecord.id).in_(identified)]
        found = _page(session, where, text, after, limit, offset)
        if found.total:
            return found
    return _name_page(NameTiers(session, scope, text), after, limit, offset)


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


def _page(
    session: Session,
    where: list[Any],
    text: str,
    after: _Cursor | None,
    limit: int,
    offset: int,
) -> SearchResult:
    """One page of a single-rank list (every person, or identifier hits): the id alone
    orders the rows."""
    person_id = col(PersonRecord.id)
    counted = select(person_id).where(*where).limit(COUNT_CAP + 1).subquery()
    count = session.exec(select(func.count()).select_from(counted)).one()
    if after is not None:
        where = [*where, person_id < after.last_id]
    query = select(PersonRecord).where(*where).order_by(person_id.desc())
    if after is None and offset:
        query = query.offset(offset)
    rows = list(session.exec(query.limit(limit + 1)).all())
    next_cursor = None
    if len(rows) > limit and limit:
        next_cursor = _Cursor(_RANK_IDENTIFIER, rows[limit - 1].id or 0).encode(text)
    return SearchResult(
        persons=rows[:limit],
        total=min(count, COUNT_CAP),
        total_capped=count > COUNT_CAP,
        next_cursor=next_cursor,
    )


def _name_page(tiers: NameTiers, after: _Cursor | None, limit: int, offset: int) -> SearchResult:
    """One page of a name search, filled rank by rank (see :mod:`search_tiers`): a rank is
    read only while the page has room, each from where the cursor left off."""
    if after is not None and after.rank == PREFIX and not after.key:
        # A cursor naming the person alone: it resumes at the key the person stands at.
        key = tiers.prefix_key_of(after.last_id)
        if key is None:
            raise InvalidCursorError("the page cursor is not valid: start from the first page")
        after = _Cursor(after.rank, after.last_id, key, after.ceiling)
    ceiling = after.ceiling if after is not None else 0
    wanted = (0 if after else offset) + limit + 1  # one more tells whether a page follows
    found: list[_Cursor] = []  # where each row stands, in the order shown
    counted = 0
    for rank in tiers.ranks():
        room = COUNT_CAP + 1 - counted  # what is left to count; 0 once past the cap
        need = wanted - len(found) if after is None or rank >= after.rank else 0
        start = (after.key, after.last_id) if after is not None and rank == after.rank else None
        if need and room > 0 and start is None:  # one read serves the page and the count
            rows = tiers.ids(rank, None, max(need, room), ceiling)
            counted += min(len(rows), room)
            found += [_Cursor(rank, i, key) for key, i in rows[:need]]
            continue
        if room > 0:
            counted += tiers.count(rank, room)
        if need:
            found += [_Cursor(rank, i, key) for key, i in tiers.ids(rank, start, need, ceiling)]
    shown = found[(0 if after else offset) :][: limit + 1]
    page = shown[:limit]
    records = _persons(tiers.session, [row.last_id for row in page])
    next_cursor = None
    if len(shown) > limit and page:
        if not ceiling:  # the first page: later pages show no person registered after it
            newest = tiers.session.exec(select(func.max(PersonRecord.id))).one()
            ceiling = int(newest or 0)
        last = page[-1]
        next_cursor = _Cursor(last.rank, last.last_id, last.key, ceiling).encode(tiers.text)
    return SearchResult(
        persons=records,
        total=min(counted, COUNT_CAP),
        total_capped=counted > COUNT_CAP,
        next_cursor=next_cursor,
    )


def _persons(session: Session, ids: list[int]) -> list[PersonRecord]:
    """The persons of ``ids``, in that order, in one query (the portrait left unread)."""
    if not ids:
        return []
    query = select(PersonRecord).where(col(PersonRecord.id).in_(ids))
    by_id = {person.id: person for person in session.exec(query).all()}
    return [by_id[i] for i in ids if i in by_id]
