"""The statuses of each status list, kept packed in its row and updated by a change journal.

Counters download a list of every card's status; rebuilding it from the cards at each
request read every revoked, suspended and superseded card (over a second at a million
persons). Instead, each list keeps its packed statuses (``status_list.statuses``), and every
change of a card's status value is written to the ``status_change`` journal in the
transaction that changes the card. The publisher applies the journal to the packed statuses
under the list row's lock, deletes what it applied and signs, in one transaction.

The journal is written by a ``before_flush`` hook on every session, from the card rows the
ORM is about to write, so no code path that changes a card (revoke, suspend, reinstate, a
re-issue superseding the old card, a batch, expiry of a suspended card, a card issued
suspended) can forget it. Writes that bypass the ORM (``insert()``/``update()`` statements)
are not seen: the only one, batch issuance's bulk insert, writes valid cards, whose status is
the packed statuses' initial zero. :func:`rebuild` recomputes the statuses from the cards
(``fmcard db rebuild-status``; migration ``0005`` does the same for existing databases).

Writers only insert journal rows, never touch the list row: the lock order of
``cardissuer.services.cards`` is unchanged, and a change committed while the publisher signs
is simply applied by the next signing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, event, inspect
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import UOWTransaction
from sqlmodel import Session, col, select

from cardissuer.models import CardRecord, CardState, StatusChangeRecord, StatusListRecord
from keys.status_list import CardStatus, StatusList

STATE_STATUS = {
    CardState.ACTIVE: CardStatus.VALID,
    CardState.EXPIRED: CardStatus.VALID,  # expiry is in the card itself
    CardState.SUSPENDED: CardStatus.SUSPENDED,
    CardState.REVOKED: CardStatus.REVOKED,
    CardState.SUPERSEDED: CardStatus.SUPERSEDED,
}
NOT_VALID = [state for state, status in STATE_STATUS.items() if status is not CardStatus.VALID]
_DELETE_CHUNK = 5000  # bound parameters per statement (SQLite allows 32,766)


def _status(state: Any) -> int:
    return int(STATE_STATUS[CardState(state)])


def _journal(session: OrmSession, _context: UOWTransaction, _instances: Any) -> None:
    """Write a journal entry for each card whose status value this flush changes."""
    changes: list[StatusChangeRecord] = []
    for record in session.new:
        if isinstance(record, CardRecord) and _status(record.state) != CardStatus.VALID:
            changes.append(_change(record, _status(record.state)))
    for record in session.dirty:
        if not isinstance(record, CardRecord):
            continue
        history = inspect(record).attrs.state.history
        if not history.added:
            continue
        before = [_status(state) for state in history.deleted]
        if before != [_status(record.state)]:  # unknown (not loaded) counts as changed
            changes.append(_change(record, _status(record.state)))
    for record in session.deleted:
        if isinstance(record, CardRecord):
            changes.append(_change(record, int(CardStatus.VALID)))
    session.add_all(changes)


def _change(record: CardRecord, status: int) -> StatusChangeRecord:
    return StatusChangeRecord(
        list_id=record.list_id, status_index=record.status_index, status=status
    )


event.listen(OrmSession, "before_flush", _journal)


def apply_pending(session: Session, record: StatusListRecord) -> int:
    """Apply the list's journal to ``record.statuses`` and delete the entries applied; return
    how many. The caller holds the row's lock (entries are applied in the order written: a
    card's changes are serialised by its holder's lock, so the last one wins)."""
    changes = session.exec(
        select(StatusChangeRecord.id, StatusChangeRecord.status_index, StatusChangeRecord.status)
        .where(StatusChangeRecord.list_id == record.list_id)
        .order_by(col(StatusChangeRecord.id))
    ).all()
    if not changes:
        return 0
    statuses = StatusList(record.size, record.bits, record.statuses)
    for _, index, status in changes:
        statuses[index] = status
    record.statuses = statuses.to_bytes()
    session.add(record)
    _forget(session, [change_id for change_id, _, _ in changes])
    return len(changes)


def _forget(session: Session, ids: Sequence[int | None]) -> None:
    """Delete the journal entries ``ids`` (only those read: on PostgreSQL an entry with a
    lower id may commit later, and must stay for the next signing)."""
    for start in range(0, len(ids), _DELETE_CHUNK):
        chunk = ids[start : start + _DELETE_CHUNK]
        session.execute(delete(StatusChangeRecord).where(col(StatusChangeRecord.id).in_(chunk)))


def recompute(session: Session, list_id: str, *, size: int, bits: int) -> bytes:
    """The list's packed statuses computed from its cards' states."""
    statuses = StatusList(size, bits)
    for index, state in session.exec(
        select(CardRecord.status_index, CardRecord.state).where(
            CardRecord.list_id == list_id, col(CardRecord.state).in_(NOT_VALID)
        )
    ).all():
        statuses[index] = _status(state)
    return statuses.to_bytes()


def rebuild(session: Session) -> list[str]:
    """Recompute every list's statuses from the cards; return the ids of lists whose stored
    statuses (with their journal applied) differed. Such a list is signed again at the next
    request (a differing list means a write bypassed the journal)."""
    differed: list[str] = []
    list_ids = session.exec(
        select(StatusListRecord.list_id).order_by(col(StatusListRecord.list_id))
    ).all()
    for list_id in list_ids:
        record = session.exec(
            select(StatusListRecord)
            .where(StatusListRecord.list_id == list_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        applied = apply_pending(session, record)
        held = record.statuses or bytes(len(StatusList(record.size, record.bits).to_bytes()))
        fresh = recompute(session, list_id, size=record.size, bits=record.bits)
        if fresh != held:
            differed.append(list_id)
        if applied or fresh != held:  # the held signed list no longer shows every change
            record.statuses, record.signed_digest = fresh, None
            session.add(record)
        session.flush()
    return differed


def stored(session: Session, list_id: str) -> bytes:
    """The list's packed statuses with its pending journal applied, without writing."""
    record = session.exec(select(StatusListRecord).where(StatusListRecord.list_id == list_id)).one()
    statuses = StatusList(record.size, record.bits, record.statuses)
    for index, status in session.exec(
        select(StatusChangeRecord.status_index, StatusChangeRecord.status)
        .where(StatusChangeRecord.list_id == list_id)
        .order_by(col(StatusChangeRecord.id))
    ).all():
        statuses[index] = status
    return statuses.to_bytes()
