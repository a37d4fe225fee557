"""What every console page shares: the officer of a request, the checked form, one transaction
per form, the audit of a refusal, paging, dates and the photo sent with a form.

A page reads its officer through :data:`ActorDep` (the session cookie suffices to read); a
form is taken through :data:`PostedDep`, which checks the form's CSRF token before anything is
done and audits a form without it. The two control-flow exceptions, :class:`LoginRequired`
and :class:`CsrfRefused`, are turned into pages by :mod:`cardissuer.web.console.errors`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.datastructures import FormData, UploadFile

from cardissuer.api.deps import SESSION_COOKIE, actor_of_request
from cardissuer.core.db import session_scope
from cardissuer.errors import AccessDeniedError, AuthenticationError, IssuerError
from cardissuer.services import audit
from cardissuer.services.access import Actor
from cardissuer.web import cookies
from cardissuer.web.i18n import Translator
from cardissuer.web.rendering import CHINA_TIME, FormError, secret_of, settings_of
from cardissuer.web.security import csrf_valid
from schemas.errors import SchemaError
from schemas.services import SERVICES_BY_CODE

log = logging.getLogger("fmcard.console")
T = TypeVar("T")

DATA_URL = re.compile(r"^data:image/(jpeg|png|webp);base64,")


class LoginRequired(Exception):  # noqa: N818 - control flow to the login page, not a failure
    """No valid session: the officer is sent to the login page."""


class CsrfRefused(Exception):  # noqa: N818 - control flow to a refusal page
    """A form came without this session's CSRF token."""


FORM_ERRORS: tuple[type[Exception], ...] = (IssuerError, SchemaError, ValidationError)
"""What a form can be refused with: shown on the page, never as a 500."""


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
        session_token = cookies.read(request, SESSION_COOKIE) or ""
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


# --- what the pages and forms read ---------------------------------------------------------


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


def posted_photo(request: Request, form: Posted) -> bytes | None:
    """The photo sent with a form: a camera snapshot (data URL) or an uploaded file (the
    person's portrait and the registration form both take one)."""
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
