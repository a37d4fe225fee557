"""The registry: persons, passports, portraits and entitlements."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Path, Query, Request, Response, UploadFile, status

from cardissuer.api import problems
from cardissuer.api.deps import MAX_OFFSET, ActorDep, SessionDep, SettingsDep, now
from cardissuer.api.media import binary
from cardissuer.api.routes.common import issuing_context, person_public, person_summary
from cardissuer.errors import NotFoundError, PortraitError
from cardissuer.models import (
    GrantCreate,
    GrantPublic,
    Page,
    PassportChange,
    PassportIn,
    PassportState,
    PersonCreate,
    PersonPublic,
    PersonSummary,
)
from cardissuer.services import blobs, cards, registry, search

router = APIRouter(
    prefix="/api", tags=["registry"], responses=problems.responses(401, 403, 404, 409, 422)
)


@router.get(
    "/persons",
    name="search",  # the operation id clients were generated with
    summary="Search persons by name, code, passport number or card serial",
    description=(
        "A foreigner code, passport number or card serial finds its person; otherwise the "
        "text is searched in every name (any script; 1-2 characters match the start of a "
        "family, Chinese or native name). Best matches first. Counting stops after "
        f"{search.COUNT_CAP:,} matches (`total_capped`). For the next page pass the "
        "`next_cursor` of this one as `cursor`; `offset` still works but is slow deep in a "
        "long list and shifts when persons are registered meanwhile."
    ),
)
def search_persons(
    actor: ActorDep,
    session: SessionDep,
    q: Annotated[
        str,
        Query(
            max_length=64,
            pattern=r"^[^\x00-\x1f\x7f]*$",
            description="part of a name, a code, a passport number or a card serial",
            examples=["HASHIMI"],
        ),
    ] = "",
    cursor: Annotated[
        str | None,
        Query(max_length=128, description="`next_cursor` of the previous page"),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[PersonSummary]:
    if cursor is not None and offset:
        raise search.InvalidCursorError("give either a cursor or an offset, not both")
    found = search.search_persons(session, actor, q, limit=limit, cursor=cursor, offset=offset)
    # Load the page's offices once and hold them: the identity map keeps only weak references,
    # and each summary's office lookup would otherwise query again (one query per row).
    offices = search.offices_of(session, found.persons)
    page = Page(
        items=[person_summary(session, p) for p in found.persons],
        total=found.total,
        total_capped=found.total_capped,
        next_cursor=found.next_cursor,
        offset=offset,
        limit=limit,
    )
    del offices
    return page


_DUPLICATE_EXAMPLE = {
    "type": problems.PROBLEM_TYPE_BASE + "duplicate-suspected",
    "title": "Duplicate suspected",
    "status": 409,
    "detail": "1 registered person(s) look like the same person: link the passport to one "
    "of them, or confirm a new person (supervisor)",
    "instance": "/api/persons",
    "candidates": [
        {
            "code": "7K2M9QXR4T",
            "family_name": "AL-HASHIMI",
            "given_names": "MUHAMMAD",
            "nationality": "SAU",
            "birth_date": "1985-03-14",
            "score": 1.0,
        }
    ],
}


@router.post(
    "/persons",
    status_code=status.HTTP_201_CREATED,
    summary="Register a foreigner; 409 with candidates when a duplicate is suspected",
    description=(
        "A suspected duplicate (same nationality and birth date, a similar Latin name) is "
        "answered with a `duplicate-suspected` problem listing the candidates. The officer "
        "then either links the passport to one of them "
        "(`POST /api/persons/{code}/passports/link`) or, as a supervisor, repeats the request "
        "with `confirm_new_person`; the decision is audited."
    ),
    responses={
        409: {
            "model": problems.Problem,
            "description": "Duplicate suspected, or the passport is known",
            "content": {"application/problem+json": {"example": _DUPLICATE_EXAMPLE}},
        }
    },
)
def register(data: PersonCreate, actor: ActorDep, session: SessionDep) -> PersonPublic:
    person = registry.register(session, actor, data, at=now())
    session.commit()
    return person_public(session, person)


@router.get("/persons/{code}", summary="A person with passports, entitlements and cards")
def get(code: str, actor: ActorDep, session: SessionDep) -> PersonPublic:
    return person_public(session, registry.get_person(session, actor, code))


@router.put(
    "/persons/{code}/portrait",
    summary="Set the portrait from a photo (JPEG/PNG/WebP); re-issues the current card",
)
def set_portrait(
    code: str,
    actor: ActorDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    photo: Annotated[UploadFile, File()],
) -> PersonPublic:
    # A plain function, so it runs in the thread pool: it waits for the person's row lock and
    # encodes and signs, which must not stop the event loop (and every other request).
    from cardissuer.portrait import make_portrait

    data = photo.file.read(settings.max_photo_bytes + 1)
    if len(data) > settings.max_photo_bytes:
        raise PortraitError(f"the photo is larger than {settings.max_photo_bytes // 1024} KB")
    portrait = make_portrait(data).data
    person = cards.set_portrait(
        session, actor, code, portrait, at=now(), context=issuing_context(request)
    )
    session.commit()
    return person_public(session, person)


@router.get(
    "/persons/{code}/portrait",
    summary="The card portrait (AVIF)",
    **binary("image/avif", "The portrait"),
)
def get_portrait(code: str, actor: ActorDep, session: SessionDep) -> Response:
    person = registry.get_person(session, actor, code)
    portrait = blobs.portrait_of(session, person.id)
    if portrait is None:
        raise NotFoundError("the person has no portrait")
    return Response(
        portrait, media_type="image/avif", headers={"Cache-Control": "private, no-store"}
    )


@router.get("/passports/{number}", summary="Find a person by any passport they ever held")
def by_passport(number: str, actor: ActorDep, session: SessionDep) -> PersonPublic:
    return person_public(session, registry.find_by_passport(session, actor, number))


@router.post("/persons/{code}/passports", summary="Record a new passport; the code stays")
def change_passport(
    code: str, change: PassportChange, actor: ActorDep, session: SessionDep
) -> PersonPublic:
    person = registry.change_passport(session, actor, code, change, at=now())
    session.commit()
    return person_public(session, person)


@router.post(
    "/persons/{code}/passports/link",
    summary="Duplicate review: this passport belongs to this existing person",
)
def link_passport(
    code: str, passport: PassportIn, actor: ActorDep, session: SessionDep
) -> PersonPublic:
    person = registry.link_passport_to_existing(session, actor, code, passport, at=now())
    session.commit()
    return person_public(session, person)


@router.post(
    "/passports/{country}/{number}/{state}",
    summary="Mark a passport lost or stolen (it can never register again)",
)
def mark_passport(
    country: Annotated[str, Path(examples=["SAU"])],
    number: Annotated[str, Path(examples=["K1234567"])],
    state: Literal["lost", "stolen"],
    actor: ActorDep,
    session: SessionDep,
) -> dict[str, str]:
    passport = registry.mark_passport(
        session, actor, number, country, PassportState(state), at=now()
    )
    session.commit()
    return {"state": passport.state.value}


@router.post(
    "/persons/{code}/grants",
    status_code=status.HTTP_201_CREATED,
    summary="Grant a service (re-issues the current card)",
)
def grant(
    code: str,
    data: GrantCreate,
    actor: ActorDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> GrantPublic:
    record = cards.grant(
        session,
        actor,
        code,
        data,
        at=now(),
        catalogue=settings.services,
        context=issuing_context(request),
    )
    session.commit()
    return GrantPublic(
        id=record.id or 0,
        service=record.service,
        valid_from=record.valid_from,
        valid_until=record.valid_until,
        granted_at=record.granted_at,
        withdrawn_at=record.withdrawn_at,
    )


@router.delete(
    "/persons/{code}/grants/{grant_id}", summary="Withdraw a service (re-issues the current card)"
)
def withdraw(
    code: str,
    grant_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    actor: ActorDep,
    session: SessionDep,
    request: Request,
) -> dict[str, str]:
    cards.withdraw(session, actor, code, grant_id, at=now(), context=issuing_context(request))
    session.commit()
    return {"status": "withdrawn"}
