"""The holder portal's pages, under ``/portal/``: prove an address, apply, track, and what a
card holder can ask for.

Pages are plain HTML forms (POST/redirect/GET) that work without JavaScript; the one script
(``/static/portal.js``) only keeps a draft of the text fields in the browser. Every page is in
the holder's language (``?lang=``, the ``lang`` cookie, ``Accept-Language``) with the catalog
``fmcard``, laid out right to left for Arabic, Persian and Urdu.

Safety (docs/SECURITY.md, "The holder portal"): every POST carries a CSRF token bound to
the holder's session (or, before it, to the pending address or a pre-session nonce); the
answer to "send me a code" is the same page whatever the address (registered or not,
rate-limited or not), and the same work (a mail goes out unless the address's hourly
limit is reached); an application is found only with the signed-in address's keyed hash, so
another's is a 404 like a reference that does not exist; uploads are re-encoded and never
served back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardissuer.api.deps import get_engine
from cardissuer.core.config import Settings
from cardissuer.core.db import read_snapshot, session_scope
from cardissuer.email_address import check_email
from cardissuer.i18n import (
    HTML_LANG,
    LANGUAGE_NAMES,
    LANGUAGES,
    N_,
    RTL_LANGUAGES,
    holder_language,
    translations,
)
from cardissuer.mail import EmailCodeSender, Mail, MailError, mailer_for
from cardissuer.models import PersonRecord
from cardissuer.portal import applications as service
from cardissuer.portal import codes, forms
from cardissuer.portal import session as cookies
from cardissuer.portal.catalogue import (
    KIND_NAMES,
    REJECT_REASONS,
    STATE_NAMES,
    ServiceForm,
)
from cardissuer.portal.models import (
    OPEN_STATES,
    ApplicationKind,
    ApplicationRecord,
    ApplicationState,
)
from cardissuer.portal.uploads import UploadKind, UploadProblem
from cardissuer.web import cookies as web_cookies
from cardissuer.web.i18n import LANG_COOKIE
from cardissuer.web.rendering import CONTENT_SECURITY_POLICY, TEMPLATE_DIR
from schemas.card import BirthDate
from schemas.services import SERVICES_BY_CODE

log = logging.getLogger("fmcard.portal")

TEMPLATES = Environment(
    # The portal's own templates, then the holder page's (the language menu they share).
    loader=FileSystemLoader([__file__.rsplit("/", 1)[0] + "/templates", TEMPLATE_DIR]),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
CHINA_TIME = timezone(timedelta(hours=8), "UTC+8")
NEXT_PAGES = {
    "apply": "/portal/apply",
    "applications": "/portal/applications",
    "card": "/portal/card",
}
LANG_COOKIE_SECONDS = 365 * 24 * 3600
SIGN_IN_FLOOR_S = 0.5
"""The shortest answer to "send me a code" (a relay usually takes less to accept a message;
a slower one shows as a longer answer for every address alike)."""
DOCUMENT_SERVICES = frozenset({"ed"})
"""Services that need a supporting document (a school place for education)."""


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _key(request: Request) -> bytes:
    return codes.portal_key(_settings(request).session_secret.get_secret_value())


def _language(request: Request) -> str:
    return holder_language(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )


def _session(request: Request) -> cookies.PortalSession | None:
    """The request's portal session: its cookie genuine, not over, and not signed out. The
    last takes one primary-key read of ``revoked_session`` (only when the cookie is a genuine
    session), done once per request and kept in the request's state, which every
    :class:`Request` of the same request shares; :func:`_read_session`, a dependency of every
    portal route, does it off the event loop."""
    state = request.state
    known: tuple[cookies.PortalSession | None] | None = getattr(state, "portal_session", None)
    if known is None:
        found = cookies.read_session(
            _key(request), web_cookies.read(request, cookies.SESSION_COOKIE), at=_now()
        )
        if found is not None:
            with read_snapshot(get_engine(request)) as db:  # never waits for SQLite writers
                if cookies.session_signed_out(db, found):
                    found = None
        known = (found,)
        state.portal_session = known
    return known[0]


def _read_session(request: Request) -> None:
    """Every portal route's dependency (sync, so run in the thread pool): the session read
    before the route runs."""
    _session(request)


router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=[Depends(_read_session)])


def _address(request: Request) -> str | None:
    """The signed-in holder's proved address, if any (see :func:`_session`)."""
    found = _session(request)
    return found.address if found is not None else None


def _pending(request: Request, at: datetime) -> str | None:
    """The address waiting for its code, if any."""
    return cookies.read_address(
        _key(request), "pending", web_cookies.read(request, cookies.PENDING_COOKIE), at=at
    )


def _anchor(request: Request) -> cookies.Anchor | None:
    """The cookie this request's forms act for (:mod:`cardissuer.portal.session`): the
    session if valid (not signed out either), else the pending address if valid, else the
    pre-session nonce."""
    if _session(request) is not None:
        value = web_cookies.read(request, cookies.SESSION_COOKIE)
        assert value is not None  # noqa: S101 - it read as a session
        return cookies.Anchor("session", value)
    value = web_cookies.read(request, cookies.PENDING_COOKIE)
    if cookies.read_address(_key(request), "pending", value, at=_now()) is not None:
        assert value is not None  # noqa: S101 - it read as an address
        return cookies.Anchor("pending", value)
    nonce = web_cookies.read(request, cookies.NONCE_COOKIE)
    return cookies.Anchor("nonce", nonce) if nonce else None


def _secret(request: Request) -> str:
    return _settings(request).session_secret.get_secret_value()


def _local_date(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(CHINA_TIME).strftime("%Y-%m-%d")


def _page(
    request: Request, template: str, values: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    """A portal page in the holder's language, with a CSRF token for its forms."""
    language = _language(request)
    catalog = translations(language)
    anchor = _anchor(request)
    new_nonce = None
    if anchor is None:
        new_nonce = cookies.new_nonce()
        anchor = cookies.Anchor("nonce", new_nonce)
    csrf = cookies.csrf_token(anchor, _secret(request))
    html = TEMPLATES.get_template(template).render(
        _=catalog.gettext,
        ngettext=catalog.ngettext,
        lang=language,
        html_lang=HTML_LANG.get(language, language),
        rtl=language in RTL_LANGUAGES,
        languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        lang_name=LANGUAGE_NAMES[language],
        csrf=csrf,
        signed_in=_address(request) is not None,
        **(values or {}),
    )
    response = HTMLResponse(html, status_code=status)
    _headers(response)
    response.headers["Vary"] = "Accept-Language, Cookie"
    if new_nonce is not None:
        web_cookies.put(response, request, cookies.NONCE_COOKIE, new_nonce, samesite="strict")
    if request.query_params.get("lang") == language:
        web_cookies.put_plain(
            response, request, LANG_COOKIE, language, max_age=LANG_COOKIE_SECONDS, samesite="lax"
        )
    return response


def _set_address_cookie(
    response: Response,
    request: Request,
    name: str,
    purpose: str,
    address: str,
    lifetime: timedelta,
    at: datetime,
) -> None:
    """A signed cookie naming a proved (``session``, with a new session id) or code-awaiting
    (``pending``) address, ending with its signature's lifetime
    (:func:`cardissuer.web.cookies.put`)."""
    until = at + lifetime
    value = (
        cookies.sign_session(_key(request), address, jti=cookies.new_session_id(), until=until)
        if purpose == "session"
        else cookies.sign_address(_key(request), purpose, address, until=until)
    )
    web_cookies.put(
        response,
        request,
        name,
        value,
        samesite="lax",
        max_age=int(lifetime.total_seconds()),
    )


def _headers(response: Response) -> None:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "private, no-store"


def _redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    _headers(response)
    return response


def _to_sign_in(next_page: str) -> RedirectResponse:
    return _redirect(f"/portal/sign-in?next={quote(next_page)}")


async def _form(request: Request) -> forms.Posted | Response:
    """The posted form, or a refusal page when its CSRF token is not the one of the cookie
    the request acts for (its session, pending address or pre-session nonce)."""
    form = await forms.read_posted(
        await request.form(max_files=4, max_fields=64),
        limit=_settings(request).max_photo_bytes,
    )
    if not cookies.csrf_valid(form.get("csrf"), _anchor(request), _secret(request)):
        return _message(
            request,
            403,
            "csrf",
            N_("This form has expired. Go back, reload the page and send it again."),
        )
    return form


def _message(request: Request, status: int, reason: str, text: str) -> HTMLResponse:
    """A page that says one thing (``text`` is a message id of the catalog)."""
    values = {"reason": reason, "text": text, "values": {}}
    return _page(request, "portal_message.html", values, status=status)


# --- the address: a one-time code ---------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def landing(request: Request) -> Response:
    return _page(request, "portal_landing.html")


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request) -> Response:
    next_page = request.query_params.get("next", "applications")
    return _page(
        request,
        "portal_sign_in.html",
        {
            "next": next_page if next_page in NEXT_PAGES else "applications",
            "error": None,
            "email": "",
        },
    )


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    """Send a code. The answer never comes sooner than :data:`SIGN_IN_FLOOR_S`, so that an
    address whose hourly limit is reached (no mail sent) answers as slowly as one that is
    mailed: the time tells nothing about an address either."""
    started = time.monotonic()
    form = await _form(request)
    if isinstance(form, Response):
        return form

    def work() -> Response:  # off the event loop: database, SMTP, Pillow
        raw_next = form.get("next")
        next_page = (
            raw_next if isinstance(raw_next, str) and raw_next in NEXT_PAGES else "applications"
        )
        raw_email = form.get("email")
        email = raw_email.strip()[:200] if isinstance(raw_email, str) else ""
        try:
            check_email(email)
        except ValueError:
            return _page(
                request,
                "portal_sign_in.html",
                {
                    "next": next_page,
                    "email": email,
                    "error": N_("This is not an e-mail address (name@example.com)."),
                },
                status=422,
            )
        settings, language, at = _settings(request), _language(request), _now()
        client = request.client.host if request.client else "unknown"
        with session_scope(get_engine(request)) as session:
            issued = codes.issue(
                session,
                key=_key(request),
                address=email,
                client=client,
                at=at,
                minutes=settings.one_time_code_minutes,
                per_address=settings.one_time_codes_per_address_per_hour,
                per_client=settings.one_time_codes_per_client_per_hour,
            )
            if issued is codes.Refusal.CLIENT_LIMIT:
                session.rollback()
                return _message(
                    request,
                    429,
                    "client-limit",
                    N_("Too many codes were asked for from this connection. Try again in an hour."),
                )
            if isinstance(issued, codes.Issued):
                # Counted and stored, then the locks are let go: the mail (up to the SMTP
                # timeout) is sent outside the transaction, so parallel requests do not hold
                # database connections while they wait for the client's lock.
                session.commit()
                try:
                    _send_code(settings, email, issued.code, language)
                except MailError:
                    codes.withdraw(session, issued.record)  # nothing kept: ask again later
                    return _message(
                        request,
                        503,
                        "mail-failed",
                        N_(
                            "The e-mail could not be sent just now. Nothing was kept; please try "
                            "again in a few minutes."
                        ),
                    )
        # The same answer whether a code went out or the address's limit was reached.
        response = _redirect(f"/portal/code?next={next_page}")
        _set_address_cookie(
            response,
            request,
            cookies.PENDING_COOKIE,
            "pending",
            email,
            cookies.PENDING_LIFETIME,
            at,
        )
        return response

    response = await run_in_threadpool(work)
    await asyncio.sleep(max(0.0, SIGN_IN_FLOOR_S - (time.monotonic() - started)))
    return response


def _send_code(settings: Settings, address: str, code: str, language: str) -> None:
    _ = translations(language).gettext
    subject = _("Your code for the Foreign Merchant Card: {code}").format(code=code)
    body = _(
        "Your code is {code}.\n\n"
        "Enter it on the page where you asked for it. It is valid for {minutes} minutes.\n\n"
        "If you did not ask for a code, ignore this message: nothing happens without it."
    ).format(code=code, minutes=settings.one_time_code_minutes)
    EmailCodeSender(mailer_for(settings)).send_code(address, subject, body, language)


@router.get("/code", response_class=HTMLResponse)
def code_page(request: Request) -> Response:
    next_page = request.query_params.get("next", "applications")
    pending = _pending(request, _now())
    if pending is None:
        return _to_sign_in(next_page)
    return _page(
        request,
        "portal_code.html",
        {
            "next": next_page if next_page in NEXT_PAGES else "applications",
            "minutes": _settings(request).one_time_code_minutes,
            "error": None,
        },
    )


@router.post("/code", response_class=HTMLResponse)
async def enter_code(request: Request) -> Response:
    form = await _form(request)
    if isinstance(form, Response):
        return form

    def work() -> Response:  # off the event loop: database, SMTP, Pillow
        raw_next = form.get("next")
        next_page = (
            raw_next if isinstance(raw_next, str) and raw_next in NEXT_PAGES else "applications"
        )
        at = _now()
        pending = _pending(request, at)
        if pending is None:
            return _to_sign_in(next_page)
        raw_code = form.get("code")
        code = "".join(raw_code.split())[:12] if isinstance(raw_code, str) else ""
        with session_scope(get_engine(request)) as session:
            outcome = codes.verify(session, key=_key(request), address=pending, code=code, at=at)
        if outcome is not codes.Outcome.ACCEPTED:
            error = (
                N_("This code is not right. Check the e-mail and try again.")
                if outcome is codes.Outcome.WRONG
                else N_(
                    "This code is no longer valid (expired, used or tried too often). "
                    "Ask for a new one."
                )
            )
            values = {"next": next_page, "minutes": _settings(request).one_time_code_minutes}
            return _page(request, "portal_code.html", {**values, "error": error}, status=422)
        response = _redirect(NEXT_PAGES[next_page])
        web_cookies.drop(response, request, cookies.PENDING_COOKIE, samesite="lax")
        _set_address_cookie(
            response,
            request,
            cookies.SESSION_COOKIE,
            "session",
            pending,
            cookies.SESSION_LIFETIME,
            at,
        )
        return response

    return await run_in_threadpool(work)


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    form = await _form(request)
    if isinstance(form, Response):
        return form
    signed_in = _session(request)
    if signed_in is not None:  # ended on the server: a copy of the cookie is refused too

        def end() -> None:
            with session_scope(get_engine(request)) as db:
                cookies.sign_out(db, signed_in, at=_now())

        await run_in_threadpool(end)
    response = _redirect("/portal/")
    web_cookies.drop(response, request, cookies.SESSION_COOKIE, samesite="lax")
    return response


# --- applying for a first card ------------------------------------------------------------


def _service_choices(request: Request) -> list[tuple[str, str]]:
    gettext = translations(_language(request)).gettext
    choices = []
    for code in _settings(request).services:
        service = SERVICES_BY_CODE.get(code)
        choices.append((code, gettext(service.name_en) if service else code))
    return choices


def _apply_page(
    request: Request,
    address: str,
    *,
    values: dict[str, str] | None = None,
    services: list[str] | None = None,
    errors: forms.Errors | None = None,
    status: int = 200,
) -> HTMLResponse:
    settings = _settings(request)
    return _page(
        request,
        "portal_apply.html",
        {
            "email": address,
            "values": values or dict.fromkeys(forms.TEXT_FIELDS, ""),
            "chosen": services or [],
            "services": _service_choices(request),
            "document_services": sorted(DOCUMENT_SERVICES),
            "errors": errors or {},
            "max_kb": settings.max_photo_bytes // 1024,
        },
        status=status,
    )


@router.get("/apply", response_class=HTMLResponse)
def apply_page(request: Request) -> Response:
    address = _address(request)
    if address is None:
        return _to_sign_in("apply")
    return _apply_page(request, address)


@router.post("/apply", response_class=HTMLResponse)
async def apply(request: Request) -> Response:
    address = _address(request)
    if address is None:
        return _to_sign_in("apply")
    form = await _form(request)
    if isinstance(form, Response):
        return form

    def work() -> Response:  # off the event loop: database, SMTP, Pillow
        settings, at = _settings(request), _now()
        errors: forms.Errors = {}
        values = forms.texts(form)
        services = forms.services_of(form, settings.services, errors)
        limit = settings.max_photo_bytes
        page = forms.upload_of(
            form, "passport_page", UploadKind.PASSPORT_PAGE, max_bytes=limit, errors=errors
        )
        portrait = forms.upload_of(
            form, "portrait", UploadKind.PORTRAIT, max_bytes=limit, errors=errors
        )
        document = None
        if DOCUMENT_SERVICES & set(services):
            document = forms.upload_of(
                form, "document", UploadKind.DOCUMENT, max_bytes=limit, errors=errors
            )
            if (
                "document" in errors
                and errors["document"].message == forms.UPLOAD_MESSAGES[UploadProblem.MISSING]
            ):
                errors["document"] = forms.FieldError(forms.DOCUMENT_NEEDED)
        application = forms.application_form(
            values, email=address, services=services, errors=errors, at=at
        )
        if application is None or page is None or portrait is None or errors:
            return _apply_page(
                request, address, values=values, services=services, errors=errors, status=422
            )
        uploads = [
            service.Upload("passport_page", page),
            service.Upload("portrait", portrait),
            *([service.Upload("document", document)] if document is not None else []),
        ]
        return _submit(
            request,
            address,
            ApplicationKind.FIRST_CARD,
            application,
            uploads=uploads,
            phone=application.person.phone,
        )

    return await run_in_threadpool(work)


def _submit(
    request: Request,
    address: str,
    kind: ApplicationKind,
    form: Any,
    *,
    uploads: list[service.Upload],
    phone: str | None = None,
    person: PersonRecord | None = None,
    before: Callable[[Any], None] | None = None,
) -> Response:
    """Store the application, then mail the holder its reference (a mail that fails does
    not undo it: the page shows the reference too)."""
    settings, language, at = _settings(request), _language(request), _now()
    with session_scope(get_engine(request)) as session:
        if before is not None:
            before(session)
        office = service.portal_office(session, settings.portal_office)
        try:
            record = service.submit(
                session,
                owner=service.owner_hash(_key(request), address),
                kind=kind,
                form=form,
                email=address,
                phone=phone,
                language=language,
                office_id=office.id or 0,
                person_id=person.id if person is not None else None,
                uploads=uploads,
                max_open=settings.portal_open_applications_per_address,
                at=at,
            )
        except service.TooManyOpenError as refused:
            session.rollback()  # nothing kept
            return _too_many_open(request, refused, settings.portal_open_applications_per_address)
        reference = record.reference
    _mail_confirmation(settings, address, reference, kind, language)
    return _redirect(f"/portal/applications/{reference}?sent=1")


def _too_many_open(request: Request, refused: service.TooManyOpenError, limit: int) -> HTMLResponse:
    """Why nothing was sent, and what the holder can do about it."""
    text = (
        N_(
            "You already have an open application for a first card. Follow it under "
            '"My applications": wait for its decision, or withdraw it there before you '
            "apply again."
        )
        if refused.first_card
        else N_(
            "You already have {count} open applications, as many as one address may have. "
            'Wait until one is decided, or withdraw one under "My applications", then '
            "send this again."
        )
    )
    values = {"reason": "too-many-open", "text": text, "values": {"count": limit}}
    return _page(request, "portal_message.html", values, status=409)


def _mail_confirmation(
    settings: Settings, address: str, reference: str, kind: ApplicationKind, language: str
) -> None:
    _ = translations(language).gettext
    subject = _("Your application {reference} was received").format(reference=reference)
    body = _(
        "We received your application ({kind}).\n\n"
        "Its reference is {reference}. Follow it at {url} (sign in with this e-mail address).\n\n"
        "An officer will review it; you will be told by e-mail when it is decided."
    ).format(
        kind=_(KIND_NAMES[kind]),
        reference=reference,
        url=settings.public_base_url.rstrip("/") + "/portal/applications",
    )
    try:
        mailer_for(settings).send(Mail(to=address, subject=subject, body=body, language=language))
    except MailError:
        log.warning("the confirmation of an application could not be mailed")


# --- tracking -----------------------------------------------------------------------------


def _view(record: ApplicationRecord) -> dict[str, Any]:
    state = ApplicationState(record.state)
    return {
        "reference": record.reference,
        "kind": KIND_NAMES[ApplicationKind(record.kind)],
        "state": state.value,
        "state_name": STATE_NAMES[state],
        "submitted": _local_date(record.submitted_at),
        # An officer's question also stamps decided_at; only a final state has a decision date.
        "decided": _local_date(record.decided_at) if state not in OPEN_STATES else "",
        "question": record.question if state is ApplicationState.INFO_NEEDED else None,
        "answer": record.answer,
        "reason": REJECT_REASONS.get(record.reject_reason or "", REJECT_REASONS["other"])
        if state is ApplicationState.REJECTED
        else None,
        "courier": record.courier,
        "tracking_number": record.tracking_number,
        "dispatched": _local_date(record.dispatched_at),
        "open": state in OPEN_STATES,
        "approved": state is ApplicationState.APPROVED,
    }


@router.get("/applications", response_class=HTMLResponse)
def applications_page(request: Request) -> Response:
    address = _address(request)
    if address is None:
        return _to_sign_in("applications")
    with session_scope(get_engine(request)) as session:
        found = service.applications_of(session, service.owner_hash(_key(request), address))
        views = [_view(record) for record in found]
    return _page(request, "portal_applications.html", {"applications": views, "email": address})


def _not_found(request: Request) -> HTMLResponse:
    return _message(request, 404, "not-found", N_("There is no such application for this address."))


@router.get("/applications/{reference}", response_class=HTMLResponse)
def application_page(reference: str, request: Request) -> Response:
    address = _address(request)
    if address is None:
        return _to_sign_in("applications")
    with session_scope(get_engine(request)) as session:
        try:
            record = service.get_application(
                session, service.owner_hash(_key(request), address), reference[:40]
            )
        except service.ApplicationNotFoundError:
            return _not_found(request)
        view = _view(record)
    return _page(
        request,
        "portal_application.html",
        {"application": view, "sent": request.query_params.get("sent") == "1"},
    )


async def _change(
    request: Request, reference: str, change: Callable[[Any, str, forms.Posted], object]
) -> Response:
    address = _address(request)
    if address is None:
        return _to_sign_in("applications")
    form = await _form(request)
    if isinstance(form, Response):
        return form

    def work() -> Response:
        with session_scope(get_engine(request)) as session:
            try:
                change(session, service.owner_hash(_key(request), address), form)
            except service.ApplicationNotFoundError:
                session.rollback()
                return _not_found(request)
            except service.ApplicationClosedError:
                session.rollback()
                return _message(
                    request,
                    409,
                    "closed",
                    N_("This application can no longer be changed this way."),
                )
        return _redirect(f"/portal/applications/{service.normalise_reference(reference)}")

    return await run_in_threadpool(work)


@router.post("/applications/{reference}/answer", response_class=HTMLResponse)
async def answer(reference: str, request: Request) -> Response:
    def give(session: Any, owner: str, form: forms.Posted) -> object:
        text = form.get("answer")
        text = text.strip()[:1000] if isinstance(text, str) else ""
        if not text:
            raise service.ApplicationClosedError("an empty answer")
        return service.answer(session, owner, reference[:40], text, at=_now())

    return await _change(request, reference, give)


@router.post("/applications/{reference}/withdraw", response_class=HTMLResponse)
async def withdraw(reference: str, request: Request) -> Response:
    def take_back(session: Any, owner: str, _form: forms.Posted) -> object:
        return service.withdraw(session, owner, reference[:40], at=_now())

    return await _change(request, reference, take_back)


# --- a card holder ------------------------------------------------------------------------


def _person_values(person: PersonRecord) -> dict[str, str]:
    birth = str(BirthDate.from_wire(person.birth_date))
    return {
        "family_name": person.family_name,
        "given_names": person.given_names,
        "nationality": person.nationality,
        "birth_date": birth,
        "sex": person.sex,
    }


def _card_page(
    request: Request,
    address: str,
    *,
    errors: forms.Errors | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    with session_scope(get_engine(request)) as session:
        person = service.person_of_address(session, address)
        name = f"{person.given_names} {person.family_name}".strip() if person else ""
    return _page(
        request,
        "portal_card.html",
        {
            "has_person": person is not None,
            "name": name,
            "email": address,
            "services": _service_choices(request),
            "document_services": sorted(DOCUMENT_SERVICES),
            "errors": errors or {},
            "values": values or dict.fromkeys(forms.TEXT_FIELDS, ""),
            "max_kb": _settings(request).max_photo_bytes // 1024,
        },
        status=status,
    )


@router.get("/card", response_class=HTMLResponse)
def card_page(request: Request) -> Response:
    address = _address(request)
    if address is None:
        return _to_sign_in("card")
    return _card_page(request, address)


def _holder(request: Request, address: str) -> PersonRecord | None:
    with session_scope(get_engine(request)) as session:
        return service.person_of_address(session, address)


async def _as_holder(
    request: Request, work: Callable[[str, forms.Posted, PersonRecord], Response]
) -> Response:
    """The start every card holder's request shares: signed in (else the sign-in page), the
    form read (else its refusal page), then ``work`` off the event loop (database, SMTP,
    Pillow) with the person the address belongs to (a 404 card page when it holds no card)."""
    address = _address(request)
    if address is None:
        return _to_sign_in("card")
    form = await _form(request)
    if isinstance(form, Response):
        return form

    def run() -> Response:
        person = _holder(request, address)
        if person is None:
            return _card_page(request, address, status=404)
        return work(address, form, person)

    return await run_in_threadpool(run)


@router.post("/card/passport", response_class=HTMLResponse)
async def report_passport(request: Request) -> Response:
    def work(address: str, form: forms.Posted, person: PersonRecord) -> Response:
        errors: forms.Errors = {}
        values = forms.texts(form)
        page = forms.upload_of(
            form,
            "passport_page",
            UploadKind.PASSPORT_PAGE,
            max_bytes=_settings(request).max_photo_bytes,
            errors=errors,
        )
        change = forms.passport_change_form(
            values, person_values=_person_values(person), errors=errors, at=_now()
        )
        if change is None or page is None or errors:
            return _card_page(request, address, errors=errors, values=values, status=422)
        return _submit(
            request,
            address,
            ApplicationKind.PASSPORT_CHANGE,
            change,
            uploads=[service.Upload("passport_page", page)],
            person=person,
        )

    return await _as_holder(request, work)


@router.post("/card/renew", response_class=HTMLResponse)
async def ask_renewal(request: Request) -> Response:
    def work(address: str, _posted: forms.Posted, person: PersonRecord) -> Response:
        return _submit(request, address, ApplicationKind.RENEWAL, None, uploads=[], person=person)

    return await _as_holder(request, work)


@router.post("/card/service", response_class=HTMLResponse)
async def ask_service(request: Request) -> Response:
    def work(address: str, form: forms.Posted, person: PersonRecord) -> Response:
        errors: forms.Errors = {}
        services = forms.services_of(form, _settings(request).services, errors)
        uploads = []
        if DOCUMENT_SERVICES & set(services):
            document = forms.upload_of(
                form,
                "document",
                UploadKind.DOCUMENT,
                max_bytes=_settings(request).max_photo_bytes,
                errors=errors,
            )
            if document is not None:
                uploads.append(service.Upload("document", document))
        if errors:
            return _card_page(request, address, errors=errors, status=422)
        return _submit(
            request,
            address,
            ApplicationKind.SERVICE,
            ServiceForm(services=services),
            uploads=uploads,
            person=person,
        )

    return await _as_holder(request, work)


@router.post("/card/lost-phone", response_class=HTMLResponse)
async def report_lost_phone(request: Request) -> Response:
    def work(address: str, _posted: forms.Posted, person: PersonRecord) -> Response:
        def suspend(session: Any) -> None:
            # In the application's transaction: the suspension and the request stand together.
            locked = session.get(PersonRecord, person.id)
            service.suspend_phone_cards(session, locked, at=_now())

        # A report while one is still open joins it: the phone cards are suspended (again, if
        # a new one was bound since), nothing new waits in the review queue, no mail is sent.
        owner = service.owner_hash(_key(request), address)
        with session_scope(get_engine(request)) as session:
            already = service.open_application_of(
                session, owner, person.id or 0, ApplicationKind.LOST_PHONE
            )
            if already is not None:
                suspend(session)
                reference = already.reference
                session.commit()
                return _redirect(f"/portal/applications/{reference}?sent=1")
        return _submit(
            request,
            address,
            ApplicationKind.LOST_PHONE,
            None,
            uploads=[],
            person=person,
            before=suspend,
        )

    return await _as_holder(request, work)


def too_large_page(request: Request, limit: int) -> Response:
    """A form over the service's body limit (``max_body_bytes``): several large photos."""
    return _page(
        request,
        "portal_message.html",
        {
            "reason": "too-large",
            "text": N_(
                "The photos are too large together (at most {kb} KB in all): go back and "
                "choose smaller ones."
            ),
            "values": {"kb": limit // 1024},
        },
        status=413,
    )


def _is_portal(request: Request) -> bool:
    return request.url.path == "/portal" or request.url.path.startswith("/portal/")


def error_page(request: Request, exc: Exception) -> HTMLResponse:
    """The portal's answer to a path it does not have or a form it cannot read (too many
    files or fields, a broken multipart body): a page in the holder's language, where the
    API would answer problem details in English."""
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 404
    if status == 405 and isinstance(exc, StarletteHTTPException):
        page = _message(request, 405, "not-found", N_("There is no such page."))
        page.headers.update(exc.headers or {})  # Allow: what the path does accept
        return page
    if status == 404 or isinstance(exc, RequestValidationError):
        return _message(request, 404, "not-found", N_("There is no such page."))
    return _message(
        request,
        status if 400 <= status < 500 else 400,
        "unreadable",
        N_("This form could not be read. Go back, reload the page and send it again."),
    )


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _portal_handler(previous: Any) -> Handler:
    """Portal paths get the portal's page; every other path keeps the handler it had."""

    async def handle(request: Request, exc: Exception) -> Response:
        if _is_portal(request):
            return error_page(request, exc)
        if previous is None:
            raise exc
        response: Response = await previous(request, exc)
        return response

    return handle


def install(app: FastAPI) -> None:
    app.include_router(router)
    for kind in (StarletteHTTPException, RequestValidationError):
        app.add_exception_handler(kind, _portal_handler(app.exception_handlers.get(kind)))


__all__ = ["install", "router"]
