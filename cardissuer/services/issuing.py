"""Issuing many cards in one transaction, with the database work done a query per batch.

Two callers need it. The bureau's bulk runs (:func:`issue_batch`) want all or nothing: one
refusal and nothing of the batch is written. The service's issuance queue
(:mod:`cardissuer.services.issuing_queue`) gathers the HTTP requests that arrive together and
wants each request's own outcome: a refused request writes nothing, the others go ahead in the
same transaction. Both run :func:`issue_many`; it gives every request exactly the guarantees
of :func:`cardissuer.services.cards.issue` (visibility and ``card.issue`` in the person's
office, the ``Idempotency-Key``, at least one entitlement, no suspended current card, the
current card superseded and audited, a random never-reused status index within the list's own
size), and the result is what the requests would have given one after the other.

Requests for the same person (or with the same idempotency key) are taken in rounds: the
second waits for the next round, so that it supersedes the first's card (or returns it) as it
would have one request later. The order is that of the rounds, each in request order (for
requests ``A, A, B``: ``A, B``, then the second ``A``), which is one order the requests could
have arrived in. Locks follow the order of :mod:`cardissuer.services.cards` for the whole
transaction: every person's row up front, in id order; then status lists and cards, round
after round; the audit chain's head last, once, for all the rounds' entries. So two batches,
or a batch and a single change, never wait for each other in a circle.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from cardissuer.errors import IssuerError, NotFoundError
from cardissuer.models import CardRecord, CardState, PersonRecord
from cardissuer.services import audit, blobs, cards
from cardissuer.services.access import Actor, RecordHiddenError, allowed, require
from cardissuer.services.cards import (
    CardSuspendedError,
    DuplicateInBatchError,
    IdempotencyKeyReusedError,
    IssuingContext,
    NoEntitlementError,
    StatusListFullError,
    is_retry_of,
)
from schemas import code as foreigner_code
from schemas.card import Card, StatusRef
from schemas.errors import SchemaError

_INSERT_ATTEMPTS = 20
_DRAW_ROUNDS = 64


@dataclass(frozen=True, slots=True)
class IssueRequest:
    """One card asked for: by whom, for which person, and the request's own options."""

    actor: Actor
    code: str
    idempotency_key: str | None = None
    valid_days: int | None = None


Outcome = CardRecord | IssuerError
"""A request's card (new, or the earlier one of its idempotency key), or why it was refused."""


def issue_batch(
    session: Session,
    actor: Actor,
    codes: Sequence[str],
    *,
    at: datetime,
    context: IssuingContext,
) -> list[CardRecord]:
    """Issue a card to each person of ``codes`` (the bureau's bulk runs), in ``codes`` order.

    All or nothing: the first refusal (in ``codes`` order) is raised before anything is
    written, and any later failure rolls back with the caller's transaction. A batch may not
    name a person twice (the second card would supersede the first at once). Keep batches to
    a few hundred codes: each is a parameter of the ``IN`` queries and the batch holds its
    locks to the end.
    """
    canonical = [_canonical(code) or code for code in codes]
    if len(set(canonical)) != len(canonical):
        raise DuplicateInBatchError("the batch names a person more than once")
    outcomes = issue_many(
        session, [IssueRequest(actor, code) for code in codes], at=at, context=context, strict=True
    )
    return [outcome for outcome in outcomes if isinstance(outcome, CardRecord)]


def issue_many(
    session: Session,
    requests: Sequence[IssueRequest],
    *,
    at: datetime,
    context: IssuingContext,
    strict: bool = False,
) -> list[Outcome]:
    """Each request's outcome, in order, all in the caller's transaction.

    A refused request (an :class:`IssuerError`) writes nothing; the others are written. With
    ``strict``, the first refusal is raised instead, before anything of the batch is written
    (every check of a round comes before its writes, and ``strict`` callers have one round).
    Database failures are raised: the caller's transaction then holds nothing of the batch.
    """
    at = at.astimezone(UTC).replace(microsecond=0)
    outcomes: list[Outcome | None] = [None] * len(requests)
    codes: list[str | None] = [_canonical(request.code) for request in requests]
    persons = _lock_persons(session, {code for code in codes if code is not None})
    entries: list[audit.AuditEntryIn] = []
    for number, round_ in enumerate(_rounds(requests, codes)):
        if number and strict:  # strict callers name every person once (see issue_batch)
            raise DuplicateInBatchError("the batch names a person more than once")
        entries += _issue_round(
            session, requests, codes, persons, round_, outcomes, at, context, strict
        )
    # The audit head last, once, after every round: it is held to the commit, and a later
    # round's inserts (a new status list, cards with unique keys) may wait for another
    # transaction, which may itself be waiting for the head (the lock order of ``cards``).
    audit.append_many(session, entries)
    return [outcome for outcome in outcomes if outcome is not None]


def _canonical(code: str) -> str | None:
    try:
        return foreigner_code.validate(code)
    except SchemaError:
        return None


def _rounds(requests: Sequence[IssueRequest], codes: Sequence[str | None]) -> list[list[int]]:
    """Positions of ``requests`` split into rounds in which no person and no idempotency key
    comes twice; each request in the first round after the last one that named either."""
    rounds: list[list[int]] = []
    last_round: dict[tuple[str, str], int] = {}
    for position, (request, code) in enumerate(zip(requests, codes, strict=True)):
        keys = [("code", code or f"?{position}")]
        if request.idempotency_key is not None:
            keys.append(("key", request.idempotency_key))
        number = max((last_round[key] + 1 for key in keys if key in last_round), default=0)
        for key in keys:
            last_round[key] = number
        while len(rounds) <= number:
            rounds.append([])
        rounds[number].append(position)
    return rounds


def _lock_persons(session: Session, codes: Iterable[str]) -> dict[str, PersonRecord]:
    """The persons of ``codes`` by code, their rows locked in id order (PostgreSQL)."""
    wanted = sorted(codes)
    if not wanted:
        return {}
    persons = session.exec(
        select(PersonRecord)
        .where(col(PersonRecord.code).in_(wanted))
        .order_by(col(PersonRecord.id))
        .with_for_update()
    ).all()
    return {person.code: person for person in persons}


def _issue_round(
    session: Session,
    requests: Sequence[IssueRequest],
    codes: Sequence[str | None],
    persons: dict[str, PersonRecord],
    positions: Sequence[int],
    outcomes: list[Outcome | None],
    at: datetime,
    context: IssuingContext,
    strict: bool,
) -> list[audit.AuditEntryIn]:
    """Check, then write, the requests at ``positions`` (distinct persons and keys); return
    the audit entries of what was written, for the caller to append."""

    def refuse(position: int, error: IssuerError) -> None:
        if strict:
            raise error
        outcomes[position] = error

    # Who may issue for whom, exactly as get_person(..., permission="card.issue") decides.
    allowed_positions: list[int] = []
    for position in positions:
        request, code = requests[position], codes[position]
        person = persons.get(code) if code is not None else None
        which = f" {request.code!r}" if strict else " that"  # a bulk run names the person
        try:
            if code is None:
                raise NotFoundError(f"no person with{which} code (check the code's spelling)")
            if person is None:
                raise NotFoundError(f"no person with{which} code")
            if not allowed(request.actor, "person.read", office_id=person.office_id):
                raise RecordHiddenError(f"no person with{which} code")
            require(request.actor, "card.issue", office_id=person.office_id)
        except IssuerError as error:
            refuse(position, error)
        else:
            allowed_positions.append(position)

    # Retries: the card issued earlier with the same key, if it was for the same request.
    earlier = _cards_with_keys(
        session, [k for p in allowed_positions if (k := requests[p].idempotency_key) is not None]
    )
    fresh: list[int] = []
    for position in allowed_positions:
        request = requests[position]
        person = persons[codes[position] or ""]
        card = earlier.get(request.idempotency_key or "")
        validity = timedelta(days=request.valid_days) if request.valid_days else context.validity
        if card is None:
            fresh.append(position)
        elif not is_retry_of(card, person.id or 0, request.actor.officer_id, validity):
            refuse(position, IdempotencyKeyReusedError(_KEY_REUSED))
        else:
            outcomes[position] = card

    person_ids = [persons[codes[p] or ""].id or 0 for p in fresh]
    grants = cards.active_grants_of(session, person_ids)
    current = cards.current_cards_of(session, person_ids)
    ready: list[int] = []
    for position in fresh:
        person = persons[codes[position] or ""]
        if not grants[person.id or 0]:
            who = person.code if strict else "the person"  # a bulk run names the person
            refuse(
                position,
                NoEntitlementError(f"{who} has no entitlement; grant at least one service first"),
            )
        elif any(card.state is CardState.SUSPENDED for card in current[person.id or 0]):
            whose = f"{person.code}'s" if strict else "the person's"
            refuse(
                position,
                CardSuspendedError(
                    f"{whose} current card is suspended: reinstate or revoke it first"
                ),
            )
        else:
            ready.append(position)
    if not ready:
        return []

    list_id, list_size = cards.open_list(session, context.status_list_size)
    cards.note_fill(session, list_id, len(ready) - 1)
    portraits = blobs.portraits_of(session, [persons[codes[p] or ""].id or 0 for p in ready])

    def sign(position: int, index: int) -> tuple[Card, str]:
        request, person = requests[position], persons[codes[position] or ""]
        validity = timedelta(days=request.valid_days) if request.valid_days else context.validity
        return cards.sign_card(
            person,
            grants[person.id or 0],
            context,
            at=at,
            validity=validity,
            status=StatusRef(list_id, index),
            portrait=portraits.get(person.id or 0),
        )

    indexes = _free_indexes(session, list_id, list_size, len(ready), avoid=set())
    signed = [sign(position, index) for position, index in zip(ready, indexes, strict=True)]
    for attempt in range(_INSERT_ATTEMPTS):
        rows = [
            cards.card_row(
                persons[codes[position] or ""],
                signed[number][0],
                context=context,
                issued_by=requests[position].actor.officer_id,
                idempotency_key=requests[position].idempotency_key,
                state=CardState.ACTIVE,
            )
            for number, position in enumerate(ready)
        ]
        try:
            with session.begin_nested():  # a collision with a racing issuance redraws only
                records = _insert_cards(session, rows, [text for _, text in signed])
            break
        except IntegrityError:
            if attempt == _INSERT_ATTEMPTS - 1:
                raise
            keys = [requests[position].idempotency_key for position in ready]
            if any(keys) and _cards_with_keys(session, [k for k in keys if k]):
                # The same key at the same moment for another person (whose lock is not
                # ours), and the other request won: refuse those, keep the rest.
                taken = _cards_with_keys(session, [k for k in keys if k])
                keep = [n for n, key in enumerate(keys) if key is None or key not in taken]
                for number in set(range(len(ready))) - set(keep):
                    refuse(ready[number], IdempotencyKeyReusedError(_KEY_REUSED))
                ready = [ready[n] for n in keep]
                signed = [signed[n] for n in keep]
                if not ready:
                    return []
                continue
            indexes = [card.status.index for card, _ in signed]
            redraw = _colliding(session, list_id, indexes, [card.serial for card, _ in signed])
            if not redraw:
                raise
            kept = {index for number, index in enumerate(indexes) if number not in redraw}
            replacements = _free_indexes(session, list_id, list_size, len(redraw), avoid=kept)
            for number, index in zip(sorted(redraw), replacements, strict=True):
                signed[number] = sign(ready[number], index)  # with a new serial too

    entries: list[audit.AuditEntryIn] = []
    superseded = False
    for position, record, (_, text) in zip(ready, records, signed, strict=True):
        actor = requests[position].actor
        for old in current[record.person_id]:
            before = audit.record_values(old)
            old.state, old.state_changed_at = CardState.SUPERSEDED, at
            old.superseded_by = record.id
            session.add(old)
            superseded = True
            entries.append(
                audit.AuditEntryIn(
                    actor=actor,
                    action=f"card.{CardState.SUPERSEDED.value}",
                    record_type="card",
                    record_id=str(old.id),
                    before=before,
                    after=audit.record_values(old),
                    detail="re-issued",
                    at=at,
                )
            )
        entries.append(
            audit.AuditEntryIn(
                actor=actor,
                action="card.issue",
                record_type="card",
                record_id=str(record.id),
                after=cards.card_values(record, text),
                at=at,
            )
        )
        outcomes[position] = record
    if superseded:
        session.flush()  # the existing cards before the audit head (see "Locks" in cards)
    return entries


_KEY_REUSED = "this Idempotency-Key was used for another request"


def _cards_with_keys(session: Session, keys: Sequence[str]) -> dict[str, CardRecord]:
    if not keys:
        return {}
    found = session.exec(
        select(CardRecord).where(col(CardRecord.idempotency_key).in_(sorted(set(keys))))
    ).all()
    return {card.idempotency_key or "": card for card in found}


def _free_indexes(
    session: Session, list_id: str, size: int, count: int, *, avoid: set[int]
) -> list[int]:
    """``count`` distinct random indexes below ``size`` that no card of ``list_id`` has and
    that are not in ``avoid``: drawn together and checked with one query per round (the list
    is at most half full, so each round leaves about half as many to redraw as the last)."""
    chosen: list[int] = []
    taken = set(avoid)
    for _ in range(_DRAW_ROUNDS):
        if size - len(taken) < count - len(chosen):
            break  # fewer free places than cards: drawing would never end
        draws: list[int] = []
        while len(draws) < count - len(chosen):
            index = secrets.randbelow(size)  # the list's own size: the setting may change
            if index not in taken:
                taken.add(index)
                draws.append(index)
        used = set(
            session.exec(
                select(CardRecord.status_index).where(
                    CardRecord.list_id == list_id, col(CardRecord.status_index).in_(draws)
                )
            ).all()
        )
        chosen.extend(index for index in draws if index not in used)
        if len(chosen) == count:
            return chosen
    raise StatusListFullError(f"status list {list_id} has no room for {count} more cards")


def _colliding(
    session: Session, list_id: str, indexes: Sequence[int], serials: Sequence[str]
) -> set[int]:
    """Positions in the batch whose index or serial another (committed) card now holds."""
    used = set(
        session.exec(
            select(CardRecord.status_index).where(
                CardRecord.list_id == list_id, col(CardRecord.status_index).in_(indexes)
            )
        ).all()
    )
    used_serials = set(
        session.exec(select(CardRecord.serial).where(col(CardRecord.serial).in_(serials))).all()
    )
    return {
        number
        for number, (index, serial) in enumerate(zip(indexes, serials, strict=True))
        if index in used or serial in used_serials
    }


def _insert_cards(
    session: Session, rows: list[dict[str, Any]], texts: Sequence[str]
) -> list[CardRecord]:
    """Insert ``rows`` in bulk, with their QR ``texts``, and return them as records, in order.

    One ``executemany`` for the cards, one ``SELECT`` by serial and one ``executemany`` for
    their texts, whatever the batch's size: building
    the records through the model's constructor cost 0.25 ms a card (SQLModel validates and
    instruments attribute by attribute), and ``INSERT ... RETURNING`` in parameter order ran
    one statement per card on SQLite.
    """
    session.execute(insert(CardRecord), rows)
    serials = [row["serial"] for row in rows]
    loaded = session.exec(select(CardRecord).where(col(CardRecord.serial).in_(serials))).all()
    by_serial = {record.serial: record for record in loaded}
    records = [by_serial[serial] for serial in serials]
    blobs.store_qr_texts(
        session, [(record.id or 0, text) for record, text in zip(records, texts, strict=True)]
    )
    return records
