"""Helpers shared by the routers: the issuing context and record-to-response converters."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI, Request
from sqlmodel import Session

from cardissuer.models import (
    CardPublic,
    CardRecord,
    GrantPublic,
    PassportPublic,
    PersonPublic,
    PersonRecord,
    PersonSummary,
)
from cardissuer.services import blobs
from cardissuer.services.cards import IssuingContext, active_grants, cards_of
from cardissuer.services.registry import office_code, passports_of
from schemas.card import BirthDate


def issuing_context(request: Request) -> IssuingContext:
    return issuing_context_of(request.app)


def issuing_context_of(app: FastAPI) -> IssuingContext:
    state = app.state
    return IssuingContext(
        signer=state.keys.signer,
        issuer_id=state.keys.issuer_id,
        status_list_size=state.settings.status_list_size,
        validity=timedelta(days=state.settings.card_validity_days),
    )


def card_public(record: CardRecord, qr_text: str) -> CardPublic:
    """The card as the API shows it, with its text (:mod:`cardissuer.services.blobs`)."""
    return CardPublic(
        serial=record.serial,
        state=record.state,
        issued_at=record.issued_at,
        valid_from=record.valid_from,
        expires_at=record.expires_at,
        kid=record.kid,
        qr_text=qr_text,
        revoked_reason=record.revoked_reason,
        kind=record.kind,
    )


def person_summary(session: Session, person: PersonRecord) -> PersonSummary:
    return PersonSummary(
        code=person.code,
        family_name=person.family_name,
        given_names=person.given_names,
        nationality=person.nationality,
        birth_date=str(BirthDate.from_wire(person.birth_date)),
        office_code=office_code(session, person.office_id),
    )


def person_public(session: Session, person: PersonRecord) -> PersonPublic:
    person_cards = list(reversed(cards_of(session, person)))
    texts = blobs.qr_texts_of(session, [card.id for card in person_cards])
    return PersonPublic(
        code=person.code,
        office_code=office_code(session, person.office_id),
        family_name=person.family_name,
        given_names=person.given_names,
        native_name=person.native_name,
        chinese_name=person.chinese_name,
        nationality=person.nationality,
        birth_date=str(BirthDate.from_wire(person.birth_date)),
        sex=person.sex,
        phone=person.phone,
        email=person.email,
        has_portrait=blobs.has_portrait(session, person.id),
        passports=[
            PassportPublic(
                number=p.number,
                issuing_country=p.issuing_country,
                state=p.state,
                expires_on=p.expires_on,
                recorded_at=p.recorded_at,
            )
            for p in passports_of(session, person)
        ],
        grants=[
            GrantPublic(
                id=g.id or 0,
                service=g.service,
                valid_from=g.valid_from,
                valid_until=g.valid_until,
                granted_at=g.granted_at,
                withdrawn_at=g.withdrawn_at,
            )
            for g in active_grants(session, person)
        ],
        cards=[card_public(c, texts[c.id or 0]) for c in person_cards],
    )
