"""Online applications for officers: the review queue and the decisions, as the console's.

Each decision is committed before the holder's e-mail is sent (``mailed`` in the answer says
whether the mail server took it; a failure is recorded and ``POST .../resend`` sends it
again). Another office's application answers ``404`` like a missing one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from cardissuer.api import problems
from cardissuer.api.deps import ActorDep, SessionDep, SettingsDep, now
from cardissuer.api.routes.common import issuing_context
from cardissuer.core.config import Settings
from cardissuer.mail import mailer_for
from cardissuer.models import PersonRecord, RequestModel
from cardissuer.portal import decisions, queue
from cardissuer.portal.models import ApplicationFileRecord, ApplicationRecord
from cardissuer.services.access import Actor

router = APIRouter(
    prefix="/api", tags=["applications"], responses=problems.responses(401, 403, 404, 409, 422)
)


class ApplicationSummary(BaseModel):
    reference: str
    kind: str
    state: str
    office_id: int
    language: str
    name: str | None = None
    nationality: str | None = None
    submitted_at: datetime
    decided_at: datetime | None = None
    mail_failed: bool = False


class ApplicationPage(BaseModel):
    items: list[ApplicationSummary]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


class ApplicationFile(BaseModel):
    id: int
    kind: str
    media_type: str


class ApplicationPublic(ApplicationSummary):
    email: str | None = None
    phone: str | None = None
    form: dict[str, Any] | None = Field(
        description="what the holder entered: ApplicationForm, PassportChangeForm or "
        "ServiceForm by kind; null once the retention timer deleted it"
    )
    question: str | None = None
    answer: str | None = None
    reject_reason: str | None = None
    courier: str | None = None
    tracking_number: str | None = None
    dispatched_at: datetime | None = None
    person_code: str | None = None
    files: list[ApplicationFile] = Field(default_factory=list)
    duplicates: list[dict[str, Any]] = Field(
        default_factory=list, description="the registry's duplicate candidates (first cards)"
    )
    passport_holders: list[dict[str, Any]] = Field(
        default_factory=list, description="every person who ever held the passport number"
    )


class DecisionResult(BaseModel):
    reference: str
    state: str
    mailed: bool | None = Field(
        description="whether the holder's e-mail was handed to the mail server (null: this "
        "decision sends none)"
    )


class Question(RequestModel):
    question: str = Field(min_length=1, max_length=decisions.QUESTION_MAX)


class Rejection(RequestModel):
    reason: str = Field(min_length=1, max_length=32, description="a code of the catalogue")


class ApprovalIn(RequestModel):
    link_to: str | None = Field(
        default=None, max_length=16, description="the code of the existing person (first cards)"
    )
    confirm_new_person: bool = Field(
        default=False, description="a new person despite duplicate candidates (supervisor)"
    )


class Dispatch(RequestModel):
    courier: str = Field(min_length=1, max_length=decisions.COURIER_MAX)
    tracking_number: str = Field(min_length=1, max_length=decisions.TRACKING_MAX)


def _summary(
    record: ApplicationRecord, name: str | None, nationality: str | None
) -> dict[str, Any]:
    return {
        "reference": record.reference,
        "kind": record.kind,
        "state": record.state,
        "office_id": record.office_id,
        "language": record.language,
        "name": name,
        "nationality": nationality,
        "submitted_at": record.submitted_at,
        "decided_at": record.decided_at,
        "mail_failed": record.mail_failed_at is not None,
    }


@router.get("/applications", summary="The office's applications, oldest first (open by default)")
def list_applications(
    actor: ActorDep,
    session: SessionDep,
    kind: Annotated[str, Query(max_length=20)] = "",
    state: Annotated[str, Query(max_length=20, description="empty: every open state")] = "",
    nationality: Annotated[str, Query(max_length=3)] = "",
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = queue.PAGE_SIZE,
) -> ApplicationPage:
    choice = queue.QueueFilter.parse(kind, state, nationality)
    page = queue.queue(session, actor, choice, after=cursor, limit=limit)
    return ApplicationPage(
        items=[
            ApplicationSummary(**_summary(row.application, row.name, row.nationality))
            for row in page.rows
        ],
        next_cursor=page.next_cursor,
    )


def _public(session: Session, actor: Actor, reference: str) -> ApplicationPublic:
    record = decisions.get_application(session, actor, reference)
    form = decisions.form_of(record)
    duplicates, holders = decisions.candidates_of(session, actor, record)
    person = session.get(PersonRecord, record.person_id) if record.person_id else None
    files = session.exec(
        select(
            ApplicationFileRecord.id, ApplicationFileRecord.kind, ApplicationFileRecord.media_type
        )
        .where(ApplicationFileRecord.application_id == record.id)
        .order_by(col(ApplicationFileRecord.id))
    ).all()
    return ApplicationPublic(
        **_summary(
            record,
            None,
            getattr(getattr(form, "person", None), "nationality", None)
            or (person.nationality if person else None),
        ),
        email=record.email,
        phone=record.phone,
        form=None if form is None else form.model_dump(mode="json"),
        question=record.question,
        answer=record.answer,
        reject_reason=record.reject_reason,
        courier=record.courier,
        tracking_number=record.tracking_number,
        dispatched_at=record.dispatched_at,
        person_code=person.code if person else None,
        files=[
            ApplicationFile(id=file_id or 0, kind=kind, media_type=media_type)
            for file_id, kind, media_type in files
        ],
        duplicates=duplicates,
        passport_holders=[{**h, "state": str(h["state"].value)} for h in holders],
    )


@router.get("/applications/{reference}", summary="An application beside its candidates")
def get_application(reference: str, actor: ActorDep, session: SessionDep) -> ApplicationPublic:
    return _public(session, actor, reference)


def _urls(settings: Settings) -> decisions.Links:
    return decisions.Links(base_url=settings.public_base_url, hours=settings.holder_link_hours)


def _finish(
    request: Request,
    session: Session,
    actor: Actor,
    settings: Settings,
    outgoing: decisions.Outgoing | None,
    reference: str,
) -> DecisionResult:
    """Commit the decision, then send its e-mail (a failure is recorded, never raised)."""
    state = decisions.get_application(session, actor, reference).state
    session.commit()
    mailed = None
    if outgoing is not None:
        engine = request.app.state.engine
        mailed = decisions.deliver(engine, actor, outgoing, mailer_for(settings), at=now())
    return DecisionResult(reference=reference, state=state, mailed=mailed)


@router.post("/applications/{reference}/take", summary="Take a submitted application into review")
def take(
    reference: str, actor: ActorDep, session: SessionDep, settings: SettingsDep, request: Request
) -> DecisionResult:
    decisions.take(session, actor, reference, at=now())
    return _finish(request, session, actor, settings, None, reference)


@router.post("/applications/{reference}/ask", summary="Ask the holder; the question is mailed")
def ask(
    reference: str,
    data: Question,
    actor: ActorDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> DecisionResult:
    outgoing = decisions.ask(
        session, actor, reference, data.question, at=now(), urls=_urls(settings)
    )
    return _finish(request, session, actor, settings, outgoing, reference)


@router.post("/applications/{reference}/reject", summary="Reject for a reason of the catalogue")
def reject(
    reference: str,
    data: Rejection,
    actor: ActorDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> DecisionResult:
    outgoing = decisions.reject(
        session, actor, reference, data.reason, at=now(), urls=_urls(settings)
    )
    return _finish(request, session, actor, settings, outgoing, reference)


@router.post(
    "/applications/{reference}/approve",
    summary="Approve: register or link, grant, issue the card and mail the holder link",
)
def approve(
    reference: str,
    actor: ActorDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    data: ApprovalIn | None = None,
) -> DecisionResult:
    how = decisions.Approval(
        link_to=data.link_to if data else None,
        confirm_new_person=data.confirm_new_person if data else False,
    )
    outgoing = decisions.approve(
        session,
        actor,
        reference,
        at=now(),
        context=issuing_context(request),
        catalogue=settings.services,
        urls=_urls(settings),
        how=how,
    )
    return _finish(request, session, actor, settings, outgoing, reference)


@router.post("/applications/{reference}/dispatch", summary="Record the printed card's dispatch")
def dispatch(
    reference: str,
    data: Dispatch,
    actor: ActorDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> DecisionResult:
    decisions.dispatch(session, actor, reference, data.courier, data.tracking_number, at=now())
    return _finish(request, session, actor, settings, None, reference)


@router.post("/applications/{reference}/resend", summary="Send the decision's e-mail again")
def resend(
    reference: str, actor: ActorDep, session: SessionDep, settings: SettingsDep, request: Request
) -> DecisionResult:
    outgoing = decisions.resend(session, actor, reference, at=now(), urls=_urls(settings))
    return _finish(request, session, actor, settings, outgoing, reference)
