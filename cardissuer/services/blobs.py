"""The large values of persons and cards, kept out of their rows.

A portrait (about 500 bytes of AVIF) and a card's QR text (up to about 1,300 characters) would
make the ``person`` and ``card`` rows several times larger than all their other columns: every
search, list, duplicate check, state change and expiry sweep would read them. They live in
``person_portrait`` and ``card_text`` instead, one row per person or card, read only where a
portrait is shown or signed into a card, or a card's text is served or drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import insert
from sqlmodel import Session, col, select

from cardissuer.models import CardTextRecord, PersonPortraitRecord


def portrait_of(session: Session, person_id: int | None) -> bytes | None:
    """The person's portrait, or ``None`` without one."""
    if person_id is None:
        return None
    record = session.get(PersonPortraitRecord, person_id)
    return None if record is None else record.data


def portraits_of(session: Session, person_ids: Iterable[int]) -> dict[int, bytes]:
    """The portraits of ``person_ids`` that have one, in one query (batch issuance)."""
    ids = sorted(set(person_ids))
    if not ids:
        return {}
    rows = session.exec(
        select(PersonPortraitRecord.person_id, PersonPortraitRecord.data).where(
            col(PersonPortraitRecord.person_id).in_(ids)
        )
    ).all()
    return dict(rows)


def has_portrait(session: Session, person_id: int | None) -> bool:
    """Whether the person has a portrait, without reading it."""
    if person_id is None:
        return False
    found = session.exec(
        select(PersonPortraitRecord.person_id).where(PersonPortraitRecord.person_id == person_id)
    ).first()
    return found is not None


def store_portrait(session: Session, person_id: int, data: bytes) -> None:
    """Give the person ``data`` as their portrait, replacing any earlier one."""
    record = session.get(PersonPortraitRecord, person_id)
    if record is None:
        record = PersonPortraitRecord(person_id=person_id, data=data)
    else:
        record.data = data
    session.add(record)
    session.flush()


def qr_text_of(session: Session, card_id: int | None) -> str:
    """The card's signed QR text (every stored card has one)."""
    record = None if card_id is None else session.get(CardTextRecord, card_id)
    if record is None:
        raise LookupError(f"card {card_id} has no stored text")
    return record.qr_text


def qr_texts_of(session: Session, card_ids: Iterable[int | None]) -> dict[int, str]:
    """The QR texts of ``card_ids``, in one query (a person's card list)."""
    ids = sorted({card_id for card_id in card_ids if card_id is not None})
    if not ids:
        return {}
    rows = session.exec(
        select(CardTextRecord.card_id, CardTextRecord.qr_text).where(
            col(CardTextRecord.card_id).in_(ids)
        )
    ).all()
    return dict(rows)


def store_qr_texts(session: Session, texts: Sequence[tuple[int, str]]) -> None:
    """Store the QR texts of newly inserted cards, ``(card id, text)``: one ``executemany``."""
    if texts:
        session.execute(
            insert(CardTextRecord),
            [{"card_id": card_id, "qr_text": text} for card_id, text in texts],
        )
