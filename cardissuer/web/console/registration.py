"""Registering a person and reviewing suspected duplicates, and the passport forms: the
registration form (with the candidates it may match), linking its passport to an existing
person instead, the list of duplicate reviews, a person's passport change, and marking a
passport lost or stolen.

A registration refused as a suspected duplicate comes back with the candidates and the photo
already taken (carried in a signed token, :func:`cardissuer.web.security.sign_portrait`), so
the officer decides without typing or photographing again.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRouter
from sqlalchemy import func
from sqlmodel import Session, col, select

from cardissuer.api.deps import now
from cardissuer.core.db import session_scope
from cardissuer.errors import AccessDeniedError, DuplicateSuspectedError, NotFoundError
from cardissuer.models import (
    DuplicateReviewRecord,
    OfficerRecord,
    PassportChange,
    PassportIn,
    PassportState,
    PersonCreate,
    PersonRecord,
)
from cardissuer.portrait import make_portrait
from cardissuer.services import registry
from cardissuer.services.access import ALL_OFFICES, Actor, require
from cardissuer.web.console.common import (
    FORM_ERRORS,
    ActorDep,
    Posted,
    PostedDep,
    attempt,
    engine_of,
    page_number,
    pages,
    parse_date,
    posted_photo,
)
from cardissuer.web.rendering import (
    FormError,
    error_flash,
    redirect,
    render,
    secret_of,
    settings_of,
    status_of,
)
from cardissuer.web.security import Flash, person_path, read_portrait, sign_portrait
from schemas.names import viz_capitals

DUPLICATES_PAGE_SIZE = 50
REGISTER_FIELDS = (
    "family_name",
    "given_names",
    "native_name",
    "chinese_name",
    "nationality",
    "birth_date",
    "sex",
    "phone",
    "email",
    "passport_number",
    "passport_country",
    "passport_expires",
)

router = APIRouter(include_in_schema=False)


def _register_values(form: Posted | None) -> dict[str, str]:
    values = {name: form.text(name, 64) if form else "" for name in REGISTER_FIELDS}
    values["sex"] = values["sex"] if values["sex"] in ("M", "F", "X") else "X"
    return values


def _person_create(values: dict[str, str], *, confirm: bool) -> PersonCreate:
    passport = {
        "number": values["passport_number"].replace(" ", ""),
        "issuing_country": values["passport_country"].upper(),
        "expires_on": parse_date(values["passport_expires"], "passport_expires"),
    }
    return PersonCreate.model_validate(
        {
            "family_name": viz_capitals(values["family_name"], values["nationality"]),
            "given_names": viz_capitals(values["given_names"], values["nationality"]),
            "native_name": values["native_name"] or None,
            "chinese_name": values["chinese_name"] or None,
            "nationality": values["nationality"].upper(),
            "birth_date": values["birth_date"],
            "sex": values["sex"],
            "phone": values["phone"] or None,
            "email": values["email"] or None,
            "passport": passport,
            "confirm_new_person": confirm,
        }
    )


def _register_page(
    request: Request,
    values: dict[str, str],
    *,
    status: int = 200,
    flash: Flash | None = None,
    candidates: list[dict[str, Any]] | None = None,
    portrait: bytes | None = None,
) -> HTMLResponse:
    settings = settings_of(request)
    return render(
        request,
        "register.html",
        {
            "values": values,
            "candidates": candidates or [],
            "portrait_token": sign_portrait(portrait, secret_of(request)) if portrait else "",
            "portrait_preview": base64.b64encode(portrait).decode() if portrait else "",
            "max_photo_kb": settings.max_photo_bytes // 1024,
            "max_photo_bytes": settings.max_photo_bytes,
        },
        status=status,
        flash=flash,
    )


@router.get("/console/register", name="register")
def register_page(request: Request, actor: ActorDep) -> Response:
    require(actor, "person.register")
    return _register_page(request, _register_values(None))


def _candidates(request: Request, actor: Actor, data: PersonCreate | None) -> list[dict[str, Any]]:
    if data is None:
        return []
    try:
        with session_scope(engine_of(request)) as session:
            return registry.find_duplicates(session, actor, data)
    except FORM_ERRORS:
        return []


@router.post("/console/register", name="register_submit")
def register_submit(request: Request, form: PostedDep) -> Response:
    """Register; on suspected duplicates show them with "link" and "register as new"."""
    actor = form.actor
    values = _register_values(form)
    confirm = form.text("confirm_new_person") == "1"
    carried = read_portrait(form.text("portrait_token", 8192), secret_of(request))
    portrait: bytes | None = carried
    data: PersonCreate | None = None
    try:
        photo = posted_photo(request, form)
        if photo is not None:
            portrait = make_portrait(photo).data
        data = _person_create(values, confirm=confirm)
        checked = data
        person = attempt(
            request,
            actor,
            lambda session: registry.register(session, actor, checked, at=now(), portrait=portrait),
        )
    except DuplicateSuspectedError as exc:
        return _register_page(
            request,
            values,
            status=409,
            flash=error_flash(exc),
            candidates=exc.candidates,
            portrait=portrait,
        )
    except FORM_ERRORS as exc:
        return _register_page(
            request,
            values,
            status=status_of(exc),
            flash=error_flash(exc),
            candidates=_candidates(request, actor, data) if confirm else [],
            portrait=portrait,
        )
    return redirect(request, person_path(person.code), flash=Flash("ok", "done_registered"))


@router.post("/console/persons/{code}/link", name="link_passport")
def link_submit(code: str, request: Request, form: PostedDep) -> Response:
    """Duplicate review: the passport on the registration form belongs to person ``code``."""
    actor = form.actor
    values = _register_values(form)
    carried = read_portrait(form.text("portrait_token", 8192), secret_of(request))
    try:
        passport = PassportIn.model_validate(
            {
                "number": values["passport_number"].replace(" ", ""),
                "issuing_country": values["passport_country"].upper(),
                "expires_on": parse_date(values["passport_expires"], "passport_expires"),
            }
        )
        person = attempt(
            request,
            actor,
            lambda session: registry.link_passport_to_existing(
                session, actor, code, passport, at=now()
            ),
        )
    except FORM_ERRORS as exc:
        data: PersonCreate | None
        try:
            data = _person_create(values, confirm=False)
        except FORM_ERRORS:
            data = None
        return _register_page(
            request,
            values,
            status=status_of(exc),
            flash=error_flash(exc),
            candidates=_candidates(request, actor, data),
            portrait=carried,
        )
    return redirect(request, person_path(person.code), flash=Flash("ok", "done_linked"))


@router.get("/console/duplicates", name="duplicates")
def duplicates_page(request: Request, actor: ActorDep) -> Response:
    require(actor, "person.read")
    page = page_number(request)
    query = select(DuplicateReviewRecord, PersonRecord).join(
        PersonRecord,
        col(PersonRecord.id) == col(DuplicateReviewRecord.person_id),
    )
    if "person.read" not in ALL_OFFICES.get(actor.role, frozenset()):
        query = query.where(PersonRecord.office_id == actor.office_id)
    with session_scope(engine_of(request)) as session:
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(
            query.order_by(col(DuplicateReviewRecord.id).desc())
            .offset((page - 1) * DUPLICATES_PAGE_SIZE)
            .limit(DUPLICATES_PAGE_SIZE)
        ).all()
        officers = {o.id: o for o in session.exec(select(OfficerRecord)).all()}
    reviews = [
        {
            "review": review,
            "person": person,
            "candidates": [c for c in review.candidate_ids.split(",") if c],
            "officer": officers.get(review.decided_by),
        }
        for review, person in rows
    ]
    return render(
        request,
        "duplicates.html",
        {
            "reviews": reviews,
            "total": total,
            "page": page,
            "pages": pages(total, DUPLICATES_PAGE_SIZE),
        },
    )


# --- passports -----------------------------------------------------------------------------


def _passport_change_page(
    request: Request,
    actor: Actor,
    code: str,
    values: dict[str, str],
    *,
    status: int = 200,
    flash: Flash | None = None,
) -> HTMLResponse:
    with session_scope(engine_of(request)) as session:
        person = registry.get_person(session, actor, code)
        passports = registry.passports_of(session, person)
    current = next((p for p in passports if p.state is PassportState.CURRENT), None)
    return render(
        request,
        "passport_change.html",
        {"person": person, "current": current, "values": values},
        status=status,
        flash=flash,
    )


@router.get("/console/persons/{code}/passport", name="passport_change")
def passport_change_page(code: str, request: Request, actor: ActorDep) -> Response:
    values = {"number": "", "country": "", "expires": "", "reason": "renewed"}
    with session_scope(engine_of(request)) as session:
        person = registry.get_person(session, actor, code, permission="passport.change")
        values["country"] = person.nationality
    return _passport_change_page(request, actor, code, values)


@router.post("/console/persons/{code}/passport", name="passport_change_submit")
def passport_change_submit(code: str, request: Request, form: PostedDep) -> Response:
    actor = form.actor
    values = {
        "number": form.text("number", 20).replace(" ", ""),
        "country": form.text("country", 3).upper(),
        "expires": form.text("expires", 10),
        "reason": form.text("reason", 10),
    }
    try:
        change = PassportChange.model_validate(
            {
                "passport": {
                    "number": values["number"],
                    "issuing_country": values["country"],
                    "expires_on": parse_date(values["expires"], "expires"),
                },
                "reason": values["reason"] or "renewed",
            }
        )
        person = attempt(
            request,
            actor,
            lambda session: registry.change_passport(session, actor, code, change, at=now()),
        )
    except FORM_ERRORS as exc:
        if isinstance(exc, AccessDeniedError | NotFoundError):
            return redirect(request, person_path(code), flash=error_flash(exc))
        return _passport_change_page(
            request, actor, code, values, status=status_of(exc), flash=error_flash(exc)
        )
    return redirect(request, person_path(person.code), flash=Flash("ok", "done_passport_changed"))


@router.get("/console/passports/mark", name="passport_mark")
def passport_mark_page(request: Request, actor: ActorDep) -> Response:
    require(actor, "passport.mark_lost")
    values = {
        "number": request.query_params.get("number", "")[:20],
        "country": request.query_params.get("country", "")[:3],
        "state": request.query_params.get("state", "lost"),
    }
    return render(request, "passport_mark.html", {"values": values})


@router.post("/console/passports/mark", name="passport_mark_submit")
def passport_mark_submit(request: Request, form: PostedDep) -> Response:
    actor = form.actor
    values = {
        "number": form.text("number", 20).replace(" ", ""),
        "country": form.text("country", 3).upper(),
        "state": form.text("state", 10),
    }

    def work(session: Session) -> str:
        try:
            state = PassportState(values["state"])
        except ValueError:
            raise FormError("report a passport as lost or stolen") from None
        passport = registry.mark_passport(
            session, actor, values["number"], values["country"], state, at=now()
        )
        person = session.get(PersonRecord, passport.person_id)
        return person.code if person else ""

    try:
        code = attempt(request, actor, work)
    except FORM_ERRORS as exc:
        return render(
            request,
            "passport_mark.html",
            {"values": values},
            status=status_of(exc),
            flash=error_flash(exc),
        )
    return redirect(request, person_path(code), flash=Flash("ok", "done_passport_marked"))
