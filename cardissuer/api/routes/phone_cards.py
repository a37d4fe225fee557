"""Phone cards: a card bound to the device key that the holder's phone registered.

The phone makes a P-256 key with WebCrypto (non-extractable) and sends its public JWK; the
bureau signs a phone card bound to it (``docs/FORMAT.md`` section 11), beside the printed
card. A new phone gets a new phone card, which supersedes the previous one only.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from cardissuer.api import problems
from cardissuer.api.deps import ActorDep, SessionDep, now
from cardissuer.api.routes.common import card_public, issuing_context
from cardissuer.models import PhoneCardIssue, PhoneCardPublic
from cardissuer.services import blobs, cards
from keys.phone import PhoneCard

router = APIRouter(
    prefix="/api", tags=["cards"], responses=problems.responses(401, 403, 404, 409, 422)
)


@router.post(
    "/persons/{code}/phone-cards",
    status_code=status.HTTP_201_CREATED,
    summary="Issue the person's phone card, bound to the device key their phone registered",
)
def issue_phone_card(
    code: str, data: PhoneCardIssue, request: Request, actor: ActorDep, session: SessionDep
) -> PhoneCardPublic:
    record = cards.issue_phone_card(
        session,
        actor,
        code,
        device_jwk=data.device_jwk,
        at=now(),
        context=issuing_context(request),
        valid_days=data.valid_days,
    )
    session.commit()
    text = blobs.qr_text_of(session, record.id)
    return PhoneCardPublic(
        **card_public(record, text).model_dump(),
        phone_card=PhoneCard.from_text(text).to_json(),
    )
