"""Wallet passes of a card for officers, and one-time links that open the card on a phone."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, FastAPI, Request, Response, status
from pydantic import BaseModel
from sqlmodel import Session

from cardissuer.api import problems
from cardissuer.api.deps import ActorDep, SessionDep, SettingsDep, now
from cardissuer.api.media import binary
from cardissuer.core.config import Settings
from cardissuer.models import CardRecord, PersonRecord
from cardissuer.services import blobs, cards
from cardissuer.wallet import apple, barcode, google, links
from cardissuer.wallet.credentials import apple_credentials, google_credentials
from keys.signer import Signer

PRIVATE = {"Cache-Control": "private, no-store"}

router = APIRouter(prefix="/api", tags=["wallet"], responses=problems.responses(401, 403, 404))


class GoogleWalletLink(BaseModel):
    save_url: str
    development: bool


class HolderLink(BaseModel):
    url: str
    expires_at: datetime


def wallet_signer(request: Request) -> Signer:
    """The key that signs a pass's compact card (:mod:`cardissuer.wallet.barcode`)."""
    signer: Signer = request.app.state.keys.signer
    return signer


def pass_input(session: Session, card: CardRecord, signer: Signer) -> apple.PassInput:
    cards.require_printable(card)
    person = session.get(PersonRecord, card.person_id)
    if person is None:  # pragma: no cover - a foreign key guarantees it
        raise LookupError("card without a person")
    text = barcode.wallet_text(card, blobs.qr_text_of(session, card.id), signer)
    return apple.PassInput(card=card, person=person, qr_text=text)


def pkpass_response(
    session: Session, card: CardRecord, settings: Settings, signer: Signer
) -> Response:
    credentials = apple_credentials(settings)
    content = apple.build_pkpass(pass_input(session, card, signer), settings, credentials)
    headers = {
        **PRIVATE,
        "Content-Disposition": f'attachment; filename="fmcard-{card.serial}.pkpass"',
    }
    if credentials.development:
        headers["X-FMCard-Development"] = "true"
    return Response(content, media_type=apple.MEDIA_TYPE, headers=headers)


def google_link(
    session: Session, card: CardRecord, settings: Settings, signer: Signer
) -> GoogleWalletLink:
    credentials = google_credentials(settings)
    url = google.save_url(pass_input(session, card, signer), settings, credentials, at=now())
    return GoogleWalletLink(save_url=url, development=credentials.development)


@router.get(
    "/cards/{serial}/pass.pkpass",
    summary="The card as an Apple Wallet pass",
    **binary(apple.MEDIA_TYPE, "The pass (a signed zip archive)"),
)
def pkpass(
    serial: str, actor: ActorDep, session: SessionDep, settings: SettingsDep, request: Request
) -> Response:
    card = cards.get_card(session, actor, serial)
    return pkpass_response(session, card, settings, wallet_signer(request))


@router.get("/cards/{serial}/google-wallet", summary="The card's 'Add to Google Wallet' link")
def google_wallet(
    serial: str,
    actor: ActorDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> GoogleWalletLink:
    response.headers.update(PRIVATE)
    card = cards.get_card(session, actor, serial)
    return google_link(session, card, settings, wallet_signer(request))


@router.post(
    "/cards/{serial}/holder-link",
    status_code=status.HTTP_201_CREATED,
    summary="A one-time link that opens the card on the holder's phone",
    responses=problems.responses(409),
)
def holder_link(
    serial: str,
    actor: ActorDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> HolderLink:
    created = links.create(session, actor, serial, at=now(), hours=settings.holder_link_hours)
    session.commit()
    response.headers.update(PRIVATE)
    base = str(request.base_url).rstrip("/")
    return HolderLink(url=f"{base}/h/{created.token}", expires_at=created.expires_at)


def install(app: FastAPI) -> None:
    app.include_router(router)
