"""The pages about one person and their cards: the search, the person's page and its forms
(portrait, grants, issuing), the holder's one-time link, the card actions (suspend, reinstate,
revoke), the Google Wallet redirect and the card's QR text.

The forms call the same services as ``/api/persons`` and ``/api/cards``, each in one
transaction (:func:`~cardissuer.web.console.common.attempt`), and come back to the person's
page with what happened.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRouter
from sqlmodel import Session, select

from cardissuer.api.deps import now
from cardissuer.api.routes.common import issuing_context
from cardissuer.core.db import session_scope
from cardissuer.errors import NotFoundError
from cardissuer.models import CardState, GrantCreate, OfficeRecord, PersonRecord
from cardissuer.portrait import make_portrait
from cardissuer.services import blobs, cards, registry, search
from cardissuer.services.access import Actor, allowed, require
from cardissuer.services.cards import CURRENT_STATES
from cardissuer.web.console.common import (
    FORM_ERRORS,
    ActorDep,
    PostedDep,
    attempt,
    end_of_day,
    engine_of,
    parse_date,
    posted_photo,
    service_names,
)
from cardissuer.web.i18n import Translator, language_of
from cardissuer.web.rendering import FormError, error_flash, redirect, render, settings_of
from cardissuer.web.security import Flash, person_path, safe_next

SEARCH_PAGE_SIZE = 20
CARD_ACTIONS = {
    "suspend": (CardState.SUSPENDED, "done_suspended"),
    "reinstate": (CardState.ACTIVE, "done_reinstated"),
    "revoke": (CardState.REVOKED, "done_revoked"),
}

router = APIRouter(include_in_schema=False)


@router.get("/console/search", name="search")
def search_page(request: Request, actor: ActorDep) -> Response:
    """The same search as ``GET /api/persons``, a page at a time by cursor (``after``)."""
    require(actor, "person.read")
    text = search.normalise(request.query_params.get("q", "")[:64])
    after = request.query_params.get("after", "")[:128] or None
    with session_scope(engine_of(request)) as session:
        try:
            found = search.search_persons(
                session, actor, text, limit=SEARCH_PAGE_SIZE, cursor=after
            )
        except search.InvalidCursorError:  # an old or edited link: show the first page
            found = search.search_persons(session, actor, text, limit=SEARCH_PAGE_SIZE)
            after = None
        offices = {o.id: o.code for o in session.exec(select(OfficeRecord)).all()}
    return render(
        request,
        "search.html",
        {
            "q": text,
            "persons": found.persons,
            "offices": offices,
            "total": found.total,
            "total_capped": found.total_capped,
            "next_cursor": found.next_cursor,
            "not_first": after is not None,
        },
    )


# --- person --------------------------------------------------------------------------------


def _person_view(
    request: Request, session: Session, actor: Actor, person: PersonRecord
) -> dict[str, Any]:
    settings = settings_of(request)
    grants = cards.active_grants(session, person)
    held = {grant.service for grant in grants}
    all_cards = list(reversed(cards.cards_of(session, person)))
    current = next((card for card in all_cards if card.state in CURRENT_STATES), None)
    office = session.get(OfficeRecord, person.office_id)
    translate = Translator(language_of(request))
    permissions = (
        "person.update",
        "passport.change",
        "passport.mark_lost",
        "grant.change",
        "card.issue",
        "card.suspend",
        "card.reinstate",
        "card.revoke",
    )
    return {
        "person": person,
        "office": office,
        "passports": list(reversed(registry.passports_of(session, person))),
        "grants": grants,
        "grantable": [code for code in settings.services if code not in held],
        "service_name": service_names(translate),
        "current_card": current,
        # The large values, read only for what the page shows (cardissuer.services.blobs).
        "current_qr_text": blobs.qr_text_of(session, current.id) if current else "",
        "has_portrait": blobs.has_portrait(session, person.id),
        "other_cards": [card for card in all_cards if card is not current],
        "can": {p: allowed(actor, p, office_id=person.office_id) for p in permissions},
        "issue_key": secrets.token_urlsafe(16),
        "max_photo_kb": settings.max_photo_bytes // 1024,
        "max_photo_bytes": settings.max_photo_bytes,
    }


@router.get("/console/persons/{code}", name="person")
def person_page(code: str, request: Request, actor: ActorDep) -> Response:
    with session_scope(engine_of(request)) as session:
        person = registry.get_person(session, actor, code)
        if person.code != code:  # a code typed with spaces or in lower case: one URL per person
            return redirect(request, person_path(person.code), status=307)
        view = _person_view(request, session, actor, person)
    return render(request, "person.html", view)


@router.post("/console/persons/{code}/portrait", name="portrait")
def portrait_submit(code: str, request: Request, form: PostedDep) -> Response:
    actor = form.actor

    def work(session: Session) -> str:
        person = registry.get_person(
            session, actor, code, permission="person.update", for_update=True
        )
        photo = posted_photo(request, form)
        if photo is None:
            raise FormError("choose a photo file or take a photo first")
        context = issuing_context(request)
        return cards.set_portrait(
            session, actor, person.code, make_portrait(photo).data, at=now(), context=context
        ).code

    try:
        done = attempt(request, actor, work)
    except FORM_ERRORS as exc:
        return redirect(request, person_path(code), flash=error_flash(exc))
    return redirect(request, person_path(done), flash=Flash("ok", "done_portrait"))


@router.post("/console/persons/{code}/grants", name="grant")
def grant_submit(code: str, request: Request, form: PostedDep) -> Response:
    actor = form.actor
    settings = settings_of(request)
    try:
        data = GrantCreate(
            service=form.text("service", 8),
            valid_until=end_of_day(parse_date(form.text("valid_until", 10), "valid_until")),
        )
        attempt(
            request,
            actor,
            lambda session: cards.grant(
                session,
                actor,
                code,
                data,
                at=now(),
                catalogue=settings.services,
                context=issuing_context(request),
            ),
        )
    except FORM_ERRORS as exc:
        return redirect(request, person_path(code), flash=error_flash(exc))
    return redirect(request, person_path(code), flash=Flash("ok", "done_granted"))


@router.post("/console/persons/{code}/grants/{grant_id}/withdraw", name="withdraw")
def withdraw_submit(code: str, grant_id: int, request: Request, form: PostedDep) -> Response:
    actor = form.actor
    try:
        attempt(
            request,
            actor,
            lambda session: cards.withdraw(
                session, actor, code, grant_id, at=now(), context=issuing_context(request)
            ),
        )
    except FORM_ERRORS as exc:
        return redirect(request, person_path(code), flash=error_flash(exc))
    return redirect(request, person_path(code), flash=Flash("ok", "done_withdrawn"))


@router.post("/console/persons/{code}/cards", name="issue")
def issue_submit(code: str, request: Request, form: PostedDep) -> Response:
    """Issue or re-issue; the form's one-time key makes a double click issue one card."""
    actor = form.actor
    key = form.text("issue_key", 64)
    idempotency_key = f"console-{key}" if re.fullmatch(r"[A-Za-z0-9_-]{16,64}", key) else None
    try:
        attempt(
            request,
            actor,
            lambda session: cards.issue(
                session,
                actor,
                code,
                at=now(),
                context=issuing_context(request),
                idempotency_key=idempotency_key,
            ),
        )
    except FORM_ERRORS as exc:
        return redirect(request, person_path(code), flash=error_flash(exc))
    return redirect(request, person_path(code), flash=Flash("ok", "done_issued"))


@router.post("/console/holder-link/{serial}", name="holder_link")
def holder_link_submit(serial: str, request: Request, form: PostedDep) -> Response:
    """A one-time link (and its QR) for the holder's phone; the page shows it to scan."""
    import segno

    from cardissuer.wallet import links

    actor = form.actor
    back = safe_next(form.text("next", 200))
    hours = settings_of(request).holder_link_hours

    def work(session: Session) -> links.CreatedLink:
        return links.create(session, actor, serial, at=now(), hours=hours)

    try:
        created = attempt(request, actor, work)
    except FORM_ERRORS as exc:
        return redirect(request, back, flash=error_flash(exc))
    url = f"{str(request.base_url).rstrip('/')}/h/{created.token}"
    context = {
        "url": url,
        "qr_uri": segno.make_qr(url, error="m").png_data_uri(scale=6, border=4),
        "expires_at": created.expires_at,
        "back": back,
    }
    response = render(request, "person_holder_link.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/console/cards/{serial}/google-wallet", name="google_wallet")
def google_wallet_redirect(serial: str, request: Request) -> Response:
    """Open the "Add to Google Wallet" page for the card (the API answers its URL as JSON)."""
    from cardissuer.api.deps import current_actor
    from cardissuer.api.routes.wallet import google_link, wallet_signer

    actor = current_actor(request)
    with session_scope(engine_of(request)) as session:
        record = cards.get_card(session, actor, serial)
        url = google_link(session, record, settings_of(request), wallet_signer(request)).save_url
    return RedirectResponse(url, status_code=303)


@router.post("/console/cards/{serial}/{action}", name="card_action")
def card_action_submit(serial: str, action: str, request: Request, form: PostedDep) -> Response:
    """Suspend, reinstate or revoke; a revocation needs a reason (it is shown to the holder's
    officer later and kept on the card record)."""
    if action not in CARD_ACTIONS:
        raise NotFoundError("no such card action")
    target, done = CARD_ACTIONS[action]
    actor = form.actor
    reason = form.text("reason", 256)
    back = safe_next(form.text("next", 200))

    def work(session: Session) -> str:
        if target is CardState.REVOKED and not reason:
            record = cards.get_card(session, actor, serial)
            require(actor, "card.revoke", office_id=record.office_id)  # refusals come first
            raise FormError("a reason is required to revoke a card")
        record = cards.change_state(session, actor, serial, target, at=now(), reason=reason)
        person = session.get(PersonRecord, record.person_id)
        return person.code if person else ""

    try:
        code = attempt(request, actor, work)
    except FORM_ERRORS as exc:
        return redirect(request, back, flash=error_flash(exc))
    return redirect(request, person_path(code), flash=Flash("ok", done))


@router.get("/console/cards/{serial}/qr.txt", name="qr_text")
def qr_text(serial: str, request: Request, actor: ActorDep) -> Response:
    with session_scope(engine_of(request)) as session:
        record = cards.get_card(session, actor, serial)
        text = blobs.qr_text_of(session, record.id)
    return Response(
        text + "\n",
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="fmcard-{record.serial}.txt"',
            "Cache-Control": "private, no-store",
        },
    )
