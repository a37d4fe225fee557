"""The console's review queue: online applications, and the officer's decisions on them.

The queue lists the office's open applications oldest first with their age, filtered by
kind, state and nationality, a page at a time by cursor (:mod:`cardissuer.portal.queue`). An
application's page shows what the holder typed, the re-encoded photos of the passport page
and the portrait, the MRZ and the services asked for, beside the registry's duplicate
candidates and every person who ever held the passport number; its buttons call
:mod:`cardissuer.portal.decisions` exactly as the other console forms call the domain: CSRF
checked, one transaction, refusals audited on their own, POST/redirect/GET.

A decision's e-mail goes out after its transaction is committed; when the mail server does
not take it the page says so and offers "send the e-mail again" (the decision stands).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRouter
from sqlmodel import Session, col, select

from cardissuer.api.deps import now
from cardissuer.api.routes.common import issuing_context
from cardissuer.core.db import session_scope
from cardissuer.errors import NotFoundError
from cardissuer.i18n import translations
from cardissuer.mail import mailer_for
from cardissuer.models import OfficeRecord, PersonRecord
from cardissuer.portal import decisions, queue
from cardissuer.portal.catalogue import (
    KIND_NAMES,
    REJECT_REASONS,
    STATE_NAMES,
    ApplicationForm,
    PassportChangeForm,
    ServiceForm,
)
from cardissuer.portal.models import (
    ApplicationFileRecord,
    ApplicationKind,
    ApplicationState,
)
from cardissuer.services.access import Actor, allowed
from cardissuer.web.console.common import (
    FORM_ERRORS,
    ActorDep,
    PostedDep,
    attempt,
    engine_of,
    service_names,
)
from cardissuer.web.i18n import Translator, language_of
from cardissuer.web.rendering import (
    error_flash,
    redirect,
    render,
    settings_of,
)
from cardissuer.web.security import Flash

router = APIRouter(include_in_schema=False)

SHOWN_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
"""What an application's file may be served as; anything else is sent as a download."""
MAILED_STATES = (ApplicationState.APPROVED, ApplicationState.REJECTED, ApplicationState.INFO_NEEDED)
DECISIONS = ("take", "ask", "reject", "approve", "dispatch", "resend")


def application_path(reference: str) -> str:
    return f"/console/applications/{reference}"


def _words(request: Request) -> Any:
    """The holder's catalog in the officer's language: the kinds, states and refusal reasons
    read exactly as the holder reads them."""
    return translations(language_of(request)).gettext


@router.get("/console/applications", name="review_queue")
def queue_page(request: Request, actor: ActorDep) -> Response:
    params = request.query_params
    choice = queue.QueueFilter.parse(
        params.get("kind", "")[:20], params.get("state", "")[:20], params.get("nationality", "")[:3]
    )
    after = params.get("after", "")[:40] or None
    at = now()
    with session_scope(engine_of(request)) as session:
        page = queue.queue(session, actor, choice, after=after)
        offices = {o.id: o.code for o in session.exec(select(OfficeRecord)).all()}
    filters = {
        "kind": choice.kind.value if choice.kind else "",
        "state": choice.state.value if choice.state else "",
        "nationality": choice.nationality or "",
    }
    base = "/console/applications?" + urlencode(filters)
    return render(
        request,
        "review_queue.html",
        {
            "rows": page.rows,
            "ages": {
                row.application.id: queue.age_days(row.application.submitted_at, at=at)
                for row in page.rows
            },
            "offices": offices,
            "all_offices": decisions.sees_every_office(actor),
            "filters": filters,
            "kinds": list(ApplicationKind),
            "states": list(ApplicationState),
            "kind_names": KIND_NAMES,
            "state_names": STATE_NAMES,
            "h": _words(request),
            "next_cursor": page.next_cursor,
            "not_first": after is not None,
            "base": base,
        },
    )


def _view(request: Request, session: Session, actor: Actor, reference: str) -> dict[str, Any]:
    record = decisions.get_application(session, actor, reference)
    form = decisions.form_of(record)
    duplicates, holders = decisions.candidates_of(session, actor, record)
    files = session.exec(
        select(ApplicationFileRecord.id, ApplicationFileRecord.kind)
        .where(ApplicationFileRecord.application_id == record.id)
        .order_by(col(ApplicationFileRecord.id))
    ).all()
    office = session.get(OfficeRecord, record.office_id)
    holder = session.get(PersonRecord, record.person_id) if record.person_id else None
    settings = settings_of(request)
    translate = Translator(language_of(request))
    decide = allowed(actor, "application.decide", office_id=record.office_id)
    state = ApplicationState(record.state)
    return {
        "application": record,
        "state": state,
        "kind": ApplicationKind(record.kind),
        "office": office,
        "holder": holder,
        "first_card": form if isinstance(form, ApplicationForm) else None,
        "passport_change": form if isinstance(form, PassportChangeForm) else None,
        "service_form": form if isinstance(form, ServiceForm) else None,
        "files": [{"id": file_id, "kind": kind} for file_id, kind in files],
        "duplicates": duplicates,
        "holders": holders,
        "age": queue.age_days(record.submitted_at, at=now()),
        "kind_names": KIND_NAMES,
        "state_names": STATE_NAMES,
        "reasons": REJECT_REASONS,
        "h": _words(request),
        "service_name": service_names(translate),
        "catalogue": settings.services,
        "can": {
            "take": decide and state in decisions.TAKEABLE,
            "ask": decide and state in decisions.ASKABLE,
            "reject": decide and state in decisions.REJECTABLE,
            "approve": decide and state in decisions.APPROVABLE,
            "confirm_new": allowed(actor, "duplicate.approve", office_id=record.office_id),
            "dispatch": decide and state is ApplicationState.APPROVED and record.card_id,
            "resend": decide and record.mail_failed_at is not None and state in MAILED_STATES,
        },
    }


@router.get("/console/applications/{reference}", name="review_application")
def application_page(reference: str, request: Request, actor: ActorDep) -> Response:
    with session_scope(engine_of(request)) as session:
        view = _view(request, session, actor, reference)
    return render(request, "review_application.html", view)


@router.get("/console/applications/{reference}/files/{file_id}", name="review_file")
def application_file(reference: str, file_id: int, request: Request, actor: ActorDep) -> Response:
    """An uploaded image as the service re-encoded it, to the officers who may read the
    application only; shown inline, never cached, and sandboxed (every answer of the service
    carries ``X-Content-Type-Options: nosniff``)."""
    with session_scope(engine_of(request)) as session:
        record = decisions.get_application(session, actor, reference)
        stored = session.exec(
            select(ApplicationFileRecord).where(
                ApplicationFileRecord.id == file_id,
                ApplicationFileRecord.application_id == record.id,
            )
        ).first()
        if stored is None:
            raise NotFoundError("no such file")
        data, media_type = stored.data, stored.media_type
    shown = media_type in SHOWN_MEDIA_TYPES
    return Response(
        data,
        media_type=media_type if shown else "application/octet-stream",
        headers={
            "Content-Disposition": "inline" if shown else "attachment",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


@router.post("/console/applications/{reference}/{decision}", name="review_decide")
def decide(reference: str, decision: str, request: Request, form: PostedDep) -> Response:
    """One decision; a refusal comes back to the application's page with its reason."""
    if decision not in DECISIONS:
        raise NotFoundError("no such decision")
    actor = form.actor
    settings = settings_of(request)
    urls = decisions.Links(base_url=settings.public_base_url, hours=settings.holder_link_hours)
    at = now()
    back = application_path(reference)

    def work(session: Session) -> decisions.Outgoing | None:
        if decision == "take":
            decisions.take(session, actor, reference, at=at)
            return None
        if decision == "ask":
            question = form.text("question", decisions.QUESTION_MAX + 1)
            return decisions.ask(session, actor, reference, question, at=at, urls=urls)
        if decision == "reject":
            reason = form.text("reason", 32)
            return decisions.reject(session, actor, reference, reason, at=at, urls=urls)
        if decision == "dispatch":
            decisions.dispatch(
                session,
                actor,
                reference,
                form.text("courier", 80),
                form.text("tracking_number", 80),
                at=at,
            )
            return None
        if decision == "resend":
            return decisions.resend(session, actor, reference, at=at, urls=urls)
        how = decisions.Approval(
            link_to=form.text("link_to", 32) or None,
            confirm_new_person=form.text("confirm_new_person") == "1",
        )
        return decisions.approve(
            session,
            actor,
            reference,
            at=at,
            context=issuing_context(request),
            catalogue=settings.services,
            urls=urls,
            how=how,
        )

    try:
        outgoing = attempt(request, actor, work)
    except FORM_ERRORS as exc:
        return redirect(request, back, flash=error_flash(exc))
    if outgoing is None:
        return redirect(request, back, flash=Flash("ok", f"done_review_{decision}"))
    sent = decisions.deliver(engine_of(request), actor, outgoing, mailer_for(settings), at=at)
    done = f"done_review_{decision}" if sent else "done_review_mail_failed"
    return redirect(request, back, flash=Flash("ok" if sent else "error", done))


def install(app: FastAPI) -> None:
    app.include_router(router)
