"""Cards: issue, re-issue, suspend, reinstate, revoke; the QR as an image."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.exceptions import RequestValidationError

from cardissuer.api import problems
from cardissuer.api.deps import ActorDep, ClaimsDep, SessionDep, now
from cardissuer.api.media import binary
from cardissuer.api.routes.common import card_public
from cardissuer.models import CardAction, CardIssue, CardPublic, CardRevoke, CardState
from cardissuer.services import blobs, cards
from cardissuer.services.access import Actor, require
from cardissuer.services.issuing_queue import CardAsked, IssuingQueue

router = APIRouter(
    prefix="/api", tags=["cards"], responses=problems.responses(401, 403, 404, 409, 422)
)


@router.post(
    "/persons/{code}/cards",
    status_code=status.HTTP_201_CREATED,
    summary="Issue (or re-issue, renew) the person's card; retries are idempotent",
)
async def issue(
    code: str,
    claims: ClaimsDep,
    request: Request,
    data: CardIssue | None = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=128,
            pattern=r"^[\x21-\x7e]+$",
            description="any unique string per intended card (a UUID): a retry with the same "
            "key returns the same card instead of issuing another",
            examples=["6f1c2a7e-0d7b-4a57-9a51-3b8f1e0c2d44"],
        ),
    ] = None,
) -> CardPublic:
    if len(request.headers.getlist("idempotency-key")) > 1:
        raise RequestValidationError(  # which one would be the retry's? refuse to guess
            [
                {
                    "loc": ("header", "Idempotency-Key"),
                    "msg": "send one Idempotency-Key header, not several",
                    "type": "value_error",
                }
            ]
        )
    # Through the issuance queue: requests that arrive together share a transaction (see
    # cardissuer.services.issuing_queue); the answer comes after the commit.
    queue: IssuingQueue = request.app.state.issuing
    answer = await queue.issue(
        CardAsked(
            claims.officer_id,
            code,
            idempotency_key,
            data.valid_days if data else None,
            session_id=claims.jti,
        )
    )
    if answer.actor is not None:
        request.state.actor = answer.actor  # a refusal is audited in the officer's name
    if isinstance(answer.outcome, Exception):
        raise answer.outcome
    if answer.qr_text is None:  # pragma: no cover - stored with the card, in its transaction
        raise LookupError("an issued card without its text")
    return card_public(answer.outcome, answer.qr_text)


@router.get("/cards/{serial}", summary="One card")
def get(serial: str, actor: ActorDep, session: SessionDep) -> CardPublic:
    record = cards.get_card(session, actor, serial)
    return card_public(record, blobs.qr_text_of(session, record.id))


@router.get(
    "/cards/{serial}/qr.png",
    summary="The card's QR code as PNG",
    **binary("image/png", "The QR code"),
)
def qr_png(serial: str, actor: ActorDep, session: SessionDep) -> Response:
    from cardissuer.render.qr import qr_png as render

    record = cards.require_printable(cards.get_card(session, actor, serial))
    return Response(
        render(blobs.qr_text_of(session, record.id)),
        media_type="image/png",
        headers={"Cache-Control": "private, no-store"},
    )


def _change(
    serial: str,
    target: CardState,
    data: CardAction | CardRevoke | None,
    actor: ActorDep,
    session: SessionDep,
) -> CardPublic:
    record = cards.change_state(
        session, actor, serial, target, at=now(), reason=data.reason if data else ""
    )
    session.commit()
    return card_public(record, blobs.qr_text_of(session, record.id))


@router.post("/cards/{serial}/suspend", summary="Suspend a card (supervisor)")
def suspend(
    serial: str, actor: ActorDep, session: SessionDep, data: CardAction | None = None
) -> CardPublic:
    return _change(serial, CardState.SUSPENDED, data, actor, session)


@router.post("/cards/{serial}/reinstate", summary="Lift a suspension (supervisor)")
def reinstate(
    serial: str, actor: ActorDep, session: SessionDep, data: CardAction | None = None
) -> CardPublic:
    return _change(serial, CardState.ACTIVE, data, actor, session)


def may_revoke(serial: str, actor: ActorDep, session: SessionDep) -> Actor:
    """Visibility and permission, checked as a dependency, so before the body is validated
    and in the service's order: another office's card is not found, and an officer who may
    not revoke learns that rather than which field is missing (the service checks again)."""
    record = cards.get_card(session, actor, serial)
    require(actor, "card.revoke", office_id=record.office_id)
    return actor


@router.post("/cards/{serial}/revoke", summary="Revoke a card for good, with a reason (supervisor)")
def revoke(
    serial: str,
    actor: Annotated[Actor, Depends(may_revoke)],
    session: SessionDep,
    data: CardRevoke,
) -> CardPublic:
    return _change(serial, CardState.REVOKED, data, actor, session)
