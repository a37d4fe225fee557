"""The officer console's pages and forms.

Pages are rendered on the server from Jinja2 templates; the browser needs no build step and
runs one small script (``console.js``) only for the webcam. Every form posts to a console
route which checks the CSRF token, calls the same domain services as the JSON API inside one
transaction, and redirects (POST/redirect/GET) to a page that shows what happened. A form
that the domain refuses comes back as a page with a readable message: never a traceback and
never a JSON problem. Buttons are shown only to roles that may use them, but the services
check every permission again, and refusals are audited in a transaction of their own exactly
as the API does, so a forged request leaves the same trace as an API call.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRouter
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardissuer.api.deps import SESSION_COOKIE, actor_of_request, end_request_session, now
from cardissuer.api.routes.common import issuing_context
from cardissuer.core.db import session_scope
from cardissuer.core.security import issue_session
from cardissuer.errors import (
    AccessDeniedError,
    AuditChainError,
    AuthenticationError,
    DuplicateSuspectedError,
    IssuerError,
    NotFoundError,
)
from cardissuer.models import (
    CardState,
    DuplicateReviewRecord,
    GrantCreate,
    OfficeRecord,
    OfficerRecord,
    PassportChange,
    PassportIn,
    PassportState,
    PersonCreate,
    PersonRecord,
)
from cardissuer.portrait import make_portrait
from cardissuer.services import audit, blobs, cards, registry, search
from cardissuer.services.access import ALL_OFFICES, Actor, RecordHiddenError, allowed, require
from cardissuer.services.cards import CURRENT_STATES
from cardissuer.services.officers import authenticate
from cardissuer.web.i18n import Translator, language_of
from cardissuer.web.rendering import (
    CHINA_TIME,
    STATIC_DIR,
    FormError,
    error_flash,
    redirect,
    render,
    secret_of,
    settings_of,
    status_of,
)
from cardissuer.web.security import (
    LOGIN_CSRF_COOKIE,
    Flash,
    csrf_valid,
    login_csrf_valid,
    new_login_nonce,
    person_path,
    read_portrait,
    safe_next,
    sign_portrait,
)
from keys.jws import VerificationKey
from schemas.errors import SchemaError
from schemas.names import viz_capitals
from schemas.services import SERVICES_BY_CODE

log = logging.getLogger("fmcard.console")
T = TypeVar("T")

SEARCH_PAGE_SIZE = 20
AUDIT_PAGE_SIZE = 50
DUPLICATES_PAGE_SIZE = 50
CARD_ACTIONS = {
    "suspend": (CardState.SUSPENDED, "done_suspended"),
    "reinstate": (CardState.ACTIVE, "done_reinstated"),
    "revoke": (CardState.REVOKED, "done_revoked"),
}
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
DATA_URL = re.compile(r"^data:image/(jpeg|png|webp);base64,")


class LoginRequired(Exception):  # noqa: N818 - control flow to the login page, not a failure
    """No valid session: the officer is sent to the login page."""


class CsrfRefused(Exception):  # noqa: N818 - control flow to a refusal page
    """A form came without this session's CSRF token."""


FORM_ERRORS: tuple[type[Exception], ...] = (IssuerError, SchemaError, ValidationError)
"""What a form can be refused with: shown on the page, never as a 500."""

router = APIRouter(include_in_schema=False)


# --- request plumbing ----------------------------------------------------------------------


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def console_actor(request: Request, *, csrf_checked: bool = False) -> Actor:
    """The logged-in officer, or :class:`LoginRequired` (the console redirects, not 401s).

    The session cookie authenticates a POST only for :func:`posted`, which checks the
    form's CSRF token before anything is done (``csrf_checked``)."""
    try:
        return actor_of_request(request, csrf_checked=csrf_checked)
    except AuthenticationError as exc:
        raise LoginRequired(str(exc)) from None


def page_actor(request: Request) -> Actor:
    """The dependency of the console's pages (reading: the cookie suffices)."""
    return console_actor(request)


async def read_form(request: Request) -> FormData:
    """The posted form; a photo (file or camera) may be as large as the configured limit."""
    limit = settings_of(request).max_photo_bytes
    return await request.form(max_files=2, max_fields=40, max_part_size=limit * 4 // 3 + 4096)


@dataclass(frozen=True, slots=True)
class Posted:
    """A console form whose CSRF token was checked, and the officer who sent it."""

    actor: Actor
    form: FormData

    def text(self, name: str, limit: int = 256) -> str:
        value = self.form.get(name)
        return value.strip()[:limit] if isinstance(value, str) else ""


async def posted(request: Request) -> AsyncIterator[Posted]:
    """The checked form; its uploaded files are closed when the request is done."""
    actor = await run_in_threadpool(functools.partial(console_actor, csrf_checked=True), request)
    form = await read_form(request)
    try:
        submitted = form.get("csrf")
        session_token = request.cookies.get(SESSION_COOKIE, "")
        if not isinstance(submitted, str) or not csrf_valid(
            submitted, session_token, secret_of(request)
        ):
            await run_in_threadpool(
                audit_denied, request, actor, "the form's CSRF token is missing or wrong"
            )
            raise CsrfRefused
        yield Posted(actor, form)
    finally:
        await form.close()


ActorDep = Annotated[Actor, Depends(page_actor)]
PostedDep = Annotated[Posted, Depends(posted)]


def audit_denied(request: Request, actor: Actor, message: str, target: str | None = None) -> None:
    """Audit a refused attempt like the API does (``api.problems._audit_denied``): in its own
    transaction, with a digest of the target instead of the code or passport number."""
    route = request.scope.get("route")
    action = "console." + str(getattr(route, "name", request.url.path))
    if target is None:
        target = str(next(iter(request.path_params.values()), ""))
    record_id = (audit.digest({"target": target}) or "")[:16] if target else ""
    try:
        audit.record_denied(
            engine_of(request),
            actor=actor,
            action=action[:64],
            record_type="request",
            record_id=record_id,
            detail=message,
        )
    except Exception:  # the refusal stands even if auditing it failed; say so in the log
        log.exception("could not audit a denied console request")


def attempt(request: Request, actor: Actor, work: Callable[[Session], T]) -> T:
    """Run ``work`` in one transaction; a refusal is rolled back, then audited on its own."""
    try:
        with session_scope(engine_of(request)) as session:
            return work(session)
    except AccessDeniedError as exc:
        audit_denied(request, actor, str(exc))
        raise


def page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    return max(1, min(int(text), 100_000)) if text.isdigit() else 1


def pages(total: int, size: int) -> int:
    return max(1, -(-total // size))


def parse_date(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FormError(f"{field}: not a date (YYYY-MM-DD)") from None


def end_of_day(day: date | None) -> datetime | None:
    """The last second of ``day`` in China time, in UTC (a grant is valid through that day)."""
    if day is None:
        return None
    return datetime.combine(day, time(23, 59, 59), tzinfo=CHINA_TIME).astimezone(UTC)


def service_names(translate: Translator) -> Callable[[str], str]:
    def name(code: str) -> str:
        service = SERVICES_BY_CODE.get(code)
        if service is None:
            return code
        return translate.service(service.name_en)

    return name


# --- login and logout ----------------------------------------------------------------------


@router.get("/", name="home")
def home(request: Request) -> RedirectResponse:
    return redirect(request, "/console/search", status=307)


@router.get("/console", name="console_home")
@router.get("/console/", name="console_home_slash")
def console_home(request: Request) -> RedirectResponse:
    return redirect(request, "/console/search", status=307)


def _login_page(
    request: Request, *, status: int = 200, username: str = "", flash: Flash | None = None
) -> HTMLResponse:
    nonce = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_nonce()
    response = render(
        request,
        "login.html",
        {
            "nonce": nonce,
            "next": safe_next(request.query_params.get("next")),
            "username": username,
        },
        status=status,
        flash=flash,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, nonce, httponly=True, samesite="strict", path="/console/login"
    )
    return response


@router.get("/console/login", name="login")
def login_page(request: Request) -> Response:
    return _login_page(request)


def _authenticate(request: Request, username: str, password: str) -> int | AuthenticationError:
    """The officer id, or the refusal; a failed attempt is committed (it counts)."""
    settings = settings_of(request)
    try:
        officer = authenticate(
            engine_of(request),
            username,
            password,
            at=now(),
            attempts=settings.login_attempts_per_window,
            window=timedelta(seconds=settings.login_window_seconds),
        )
    except AuthenticationError as exc:
        return exc
    assert officer.id is not None  # noqa: S101 - stored
    return officer.id


@router.post("/console/login", name="login_submit")
async def login_submit(request: Request) -> Response:
    form = await read_form(request)
    await form.close()  # a login has no files; nothing is left open
    username = str(form.get("username") or "").strip()[:64]
    password = str(form.get("password") or "")[:256]
    target = safe_next(str(form.get("next") or ""))
    if not login_csrf_valid(str(form.get("nonce") or ""), request.cookies.get(LOGIN_CSRF_COOKIE)):
        return _login_page(
            request, status=403, username=username, flash=Flash("error", "error_csrf")
        )
    if not username or not password:
        return _login_page(
            request, status=401, username=username, flash=Flash("error", "error_auth")
        )
    result = await run_in_threadpool(_authenticate, request, username, password)
    if isinstance(result, AuthenticationError):
        return _login_page(
            request, status=status_of(result), username=username, flash=error_flash(result)
        )
    settings = settings_of(request)
    token = issue_session(
        result, secret=secret_of(request), at=now(), minutes=settings.session_minutes
    )
    response = redirect(request, target)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings.public_base_url.startswith("https://")
        and settings.environment == "production",
        max_age=settings.session_minutes * 60,
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    return response


@router.post("/console/logout", name="logout")
def logout(request: Request, form: PostedDep) -> Response:
    del form  # checked: only this console's own logout button logs the officer out
    end_request_session(request, csrf_checked=True)  # refused from now on, even by a copy
    response = redirect(request, "/console/login", flash=Flash("ok", "done_logged_out"))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- search --------------------------------------------------------------------------------


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


def _photo(request: Request, form: Posted) -> bytes | None:
    """The photo sent with a form: a camera snapshot (data URL) or an uploaded file."""
    limit = settings_of(request).max_photo_bytes
    too_large = FormError(f"the photo is larger than {limit // 1024} KB")
    camera = form.form.get("camera_photo")
    if isinstance(camera, str) and camera:
        match = DATA_URL.match(camera)
        if match is None or len(camera) > limit * 4 // 3 + 100:
            raise too_large if match else FormError("the camera picture is not an image")
        try:
            return base64.b64decode(camera[match.end() :], validate=True)
        except (ValueError, binascii.Error):
            raise FormError("the camera picture is not an image") from None
    upload = form.form.get("photo")
    if isinstance(upload, UploadFile) and upload.filename:
        data = upload.file.read(limit + 1)
        if len(data) > limit:
            raise too_large
        return data or None
    return None


@router.post("/console/persons/{code}/portrait", name="portrait")
def portrait_submit(code: str, request: Request, form: PostedDep) -> Response:
    actor = form.actor

    def work(session: Session) -> str:
        person = registry.get_person(
            session, actor, code, permission="person.update", for_update=True
        )
        photo = _photo(request, form)
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


# --- registration and duplicates --------------------------------------------------------------


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
        photo = _photo(request, form)
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


# --- audit ---------------------------------------------------------------------------------


@router.get("/console/audit", name="audit")
def audit_page(request: Request, actor: ActorDep) -> Response:
    """The audit log, newest first; ``?verify=1`` also checks the chain and checkpoints."""
    require(actor, "audit.read")
    page = page_number(request)
    chain: dict[str, Any] | None = None
    with session_scope(engine_of(request)) as session:
        total, entries = audit.newest_entries(
            session, skip=(page - 1) * AUDIT_PAGE_SIZE, limit=AUDIT_PAGE_SIZE
        )
        officers = {o.id: o for o in session.exec(select(OfficerRecord)).all()}
        offices = {o.id: o.code for o in session.exec(select(OfficeRecord)).all()}
        if request.query_params.get("verify") == "1":
            keys = [VerificationKey(kid, key) for key, kid in request.app.state.public_keys]
            try:
                report = audit.verify_chain(session, keys=keys)
                chain = {
                    "ok": True,
                    "entries": report.entries,
                    "checkpoints": report.checkpoints,
                    "head": report.head_seq,
                }
            except AuditChainError as exc:
                chain = {"ok": False, "detail": str(exc), "seq": exc.seq}
    return render(
        request,
        "audit.html",
        {
            "entries": entries,
            "officers": officers,
            "offices": offices,
            "total": total,
            "page": page,
            "pages": pages(total, AUDIT_PAGE_SIZE),
            "chain": chain,
        },
    )


# --- installation and error pages ------------------------------------------------------------


def _is_console(request: Request) -> bool:
    path = request.url.path
    return path == "/" or path.startswith(("/console", "/static"))


def _error_page(request: Request, status: int, flash: Flash, *, denied: bool = False) -> Response:
    context = {"denied": denied, "status": status, "error": flash}
    return render(request, "error.html", context, status=status)


def _to_login(request: Request, message: str | None) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    next_path = safe_next(target) if request.method == "GET" else "/console/search"
    had_session = SESSION_COOKIE in request.cookies  # a first visit is no error
    flash = Flash("error", "error_session", message or "") if had_session else None
    response = redirect(request, f"/console/login?next={quote(next_path, safe='/')}", flash=flash)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _console_handler(previous: Any) -> Handler:
    """Console paths get an HTML page; every other path keeps the API's problem details."""

    async def handle(request: Request, exc: Exception) -> Response:
        if not _is_console(request):
            if previous is None:
                raise exc
            response: Response = await previous(request, exc)
            return response
        return await run_in_threadpool(_console_error, request, exc)

    return handle


def _console_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginRequired):
        return _to_login(request, str(exc) or None)
    if isinstance(exc, AuthenticationError):
        return _to_login(request, str(exc))
    if isinstance(exc, CsrfRefused):
        return _error_page(request, 403, Flash("error", "error_csrf"))
    if isinstance(exc, AccessDeniedError):
        actor: Actor | None = getattr(request.state, "actor", None)
        if actor is not None:
            audit_denied(request, actor, str(exc))
        if isinstance(exc, RecordHiddenError):  # another office's record: as if it did not exist
            return _error_page(request, 404, error_flash(exc))
        return _error_page(request, 403, error_flash(exc), denied=True)
    if isinstance(exc, IssuerError | SchemaError):
        return _error_page(request, status_of(exc), error_flash(exc))
    if isinstance(exc, RequestValidationError):
        return _error_page(request, 404, Flash("error", "error_page_missing"))
    if isinstance(exc, StarletteHTTPException):
        key = "error_page_missing" if exc.status_code in (404, 405) else "error_generic"
        return _error_page(request, exc.status_code, Flash("error", key, str(exc.detail)))
    log.error(
        "unexpected console error on %s %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc_info=exc,
    )
    return _error_page(request, 500, Flash("error", "error_internal"))


def install(app: FastAPI) -> None:
    """Mount the console pages, their static files and HTML error pages for console paths."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
    for kind in (
        IssuerError,
        SchemaError,
        RequestValidationError,
        StarletteHTTPException,
        Exception,
    ):
        app.add_exception_handler(kind, _console_handler(app.exception_handlers.get(kind)))
    for kind in (LoginRequired, CsrfRefused):
        app.add_exception_handler(kind, _console_handler(None))
