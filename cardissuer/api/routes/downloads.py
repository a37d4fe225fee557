"""Downloads of the printable card: PNG per side and size, PDF, and an A4 sheet of cards.

Reading a card's image is reading the card: ``cards.get_card`` applies the same permission
and answers "not found" for another office's card. The images carry a person's name, photo
and signed QR, so they are never cached (``private, no-store``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, FastAPI, Response
from sqlmodel import Session

from cardissuer.api import problems
from cardissuer.api.deps import ActorDep, SessionDep
from cardissuer.api.media import binary
from cardissuer.models import CardRecord, OfficeRecord, PersonRecord
from cardissuer.render.card import CardView, card_png
from cardissuer.render.pdf import card_pdf, sheet_pdf
from cardissuer.services import blobs, cards
from cardissuer.services.cards import active_grants

NO_STORE = {"Cache-Control": "private, no-store"}
MAX_SHEET = 50
"""Cards per sheet request: 50 cards render in a few seconds; more belong in a batch job."""

router = APIRouter(prefix="/api", tags=["cards"], responses=problems.responses(401, 404, 422))


def _view(session: Session, actor: ActorDep, serial: str) -> CardView:
    return card_view(session, cards.get_card(session, actor, serial))


def card_view(session: Session, record: CardRecord) -> CardView:
    """What the printed card shows: the card, its holder, the issuing office, the services.
    (The holder's page draws the same view.)"""
    cards.require_printable(record)
    person = session.get(PersonRecord, record.person_id)
    office = session.get(OfficeRecord, record.office_id)
    if person is None or office is None:  # pragma: no cover - foreign keys forbid it
        raise LookupError("a card without its person or office")
    services = [g.service for g in active_grants(session, person)]
    return CardView.from_records(
        record,
        person,
        office.name_en,
        office.name_zh,
        services,
        qr_text=blobs.qr_text_of(session, record.id),
        portrait=blobs.portrait_of(session, person.id),
    )


@router.get(
    "/cards/{serial}/card.png",
    summary="The printable card as PNG",
    **binary("image/png", "One side of the card"),
)
def png(
    serial: str,
    actor: ActorDep,
    session: SessionDep,
    side: Literal["front", "back"] = "front",
    size: Literal["print", "screen"] = "print",
) -> Response:
    view = _view(session, actor, serial)
    return Response(card_png(view, side=side, size=size), media_type="image/png", headers=NO_STORE)


@router.get(
    "/cards/{serial}/card.pdf",
    summary="The card as PDF, CR80 size with crop marks",
    **binary("application/pdf", "The card, both sides"),
)
def pdf(serial: str, actor: ActorDep, session: SessionDep) -> Response:
    view = _view(session, actor, serial)
    return Response(card_pdf(view), media_type="application/pdf", headers=NO_STORE)


@router.post(
    "/cards/sheet.pdf",
    summary="Cards on A4 sheets for batch printing",
    **binary("application/pdf", "The cards on A4 pages"),
)
def sheet(
    serials: Annotated[list[str], Body(min_length=1, max_length=MAX_SHEET)],
    actor: ActorDep,
    session: SessionDep,
) -> Response:
    views = [_view(session, actor, serial) for serial in serials]
    return Response(sheet_pdf(views), media_type="application/pdf", headers=NO_STORE)


def install(app: FastAPI) -> None:
    """Add the download routes to ``app`` (called by ``cardissuer.main``)."""
    app.include_router(router)
