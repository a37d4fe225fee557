"""The issuer service: ``create_app()`` builds the FastAPI application.

Start-up opens the database (SQLite by default, PostgreSQL by URL), checks that its schema is
at the newest migration (development databases are upgraded automatically), loads the signing
key (key ring or HSM), registers that key to sign audit checkpoints and prepares the
publisher. The service keeps no state of its own besides the database, so several instances
can share one PostgreSQL behind a load balancer.

Request bodies are limited to ``max_body_bytes`` (under ``/portal/``: three photos of
``max_photo_bytes`` and the fields, :func:`portal_body_limit`) by an ASGI wrapper that counts
the bytes as they arrive, so a chunked body without Content-Length is cut off as early as a
declared one.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cardissuer.api import problems
from cardissuer.api.methods import allowed_methods
from cardissuer.api.routes import (
    admin,
    applications,
    auth,
    cards,
    health,
    persons,
    phone_cards,
    publish,
)
from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core import logging as structured_logging
from cardissuer.core.config import Environment, Settings, get_settings
from cardissuer.core.db import make_engine, optimize
from cardissuer.core.migrations import ensure_schema
from cardissuer.core.signing import load_key_material
from cardissuer.portal.retention import RetentionTimer
from cardissuer.services import audit
from cardissuer.services.expiry import ExpiryTimer
from cardissuer.services.issuing_queue import IssuingQueue
from cardissuer.services.publishing import Publisher
from keys.jwk import jwks

log = logging.getLogger("fmcard.http")
STATIC_PREFIX = "/static/"
"""The console's style sheets, scripts and images: no personal data, revalidated by ETag."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    structured_logging.configure()
    app = FastAPI(
        lifespan=_lifespan,
        title="fmcard issuer",
        version="1",
        summary="Registry of foreign merchants, card issuance and publishing for counters",
        description=(
            "Officers log in (`POST /api/auth/login`) and send the token as "
            "`Authorization: Bearer <token>`. Errors are RFC 9457 problem details with a "
            "stable `type` per error."
        ),
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    try:
        ensure_schema(app.state.engine, upgrade=settings.environment is Environment.DEVELOPMENT)
        optimize(app.state.engine)  # SQLite's planner statistics, where missing or stale
        keys = load_key_material(settings)
    except BaseException:  # refusing to start: leave no connection open behind
        app.state.engine.dispose()
        raise
    app.state.keys = keys
    app.state.public_keys = keys.keyring.public_keys(keys.passphrase)
    if all(kid != keys.signer.kid for _, kid in app.state.public_keys):
        app.state.public_keys.append((keys.signer.public_key, keys.signer.kid))
    app.state.jwks = jwks(app.state.public_keys)
    app.state.audit_checkpoints = audit.sign_checkpoints(
        app.state.engine, keys.signer, every=settings.audit_checkpoint_every
    )
    app.state.started_at = datetime.now(UTC).replace(microsecond=0)
    app.state.publisher = Publisher(
        signer=keys.signer,
        status_uri_prefix=settings.status_uri_prefix,
        validity=timedelta(hours=settings.status_list_validity_hours),
        published_dir=settings.workspace / "published",
        issuer_id=keys.issuer_id,
        batch=timedelta(seconds=settings.status_list_batch_seconds),
    )
    app.state.issuing = IssuingQueue(app.state.engine, issuing_context_of(app))
    problems.install(app)
    for router in (
        auth.router,
        persons.router,
        cards.router,
        phone_cards.router,
        admin.router,
        applications.router,
        publish.router,
        health.router,
    ):
        app.include_router(router)
    _install_console(app)
    _install_middleware(app, settings)
    return app


@functools.cache  # once per process
def _freeze_startup_objects() -> None:
    """Move everything built so far (modules, the app, SQLAlchemy's and pydantic's caches),
    which lives as long as the process, out of the garbage collector's sight: a full
    collection otherwise walks all of it, a pause of 130 ms every ~1.5 s under load (measured
    with 32 clients). Once per process: a process that builds apps again and again (tests)
    would otherwise keep every old one."""
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    _freeze_startup_objects()
    app.state.issuing.open()  # again, if this process served the app before
    settings = app.state.settings
    minutes = settings.expire_cards_every_minutes
    # The portal's retention and the expiry reminders run on the same schedule (off with it).
    timers: list[ExpiryTimer] = []
    if minutes:
        timers.append(ExpiryTimer(app.state.engine, every_s=minutes * 60))
        timers.append(
            RetentionTimer(
                app.state.engine, days=settings.application_retention_days, every_s=minutes * 60
            )
        )
        reminders = _reminder_timer(app, every_s=minutes * 60)
        if reminders is not None:
            timers.append(reminders)
    for timer in timers:
        timer.start()
    try:
        yield
    finally:
        for timer in timers:
            await asyncio.to_thread(timer.stop)
        # Answer the card requests already queued before the server stops.
        await asyncio.to_thread(app.state.issuing.close)


def _reminder_timer(app: FastAPI, *, every_s: float) -> ExpiryTimer | None:
    """The expiry reminders' timer, on the expiry timer's clock; none without reminder days,
    nor without a way to send mail (production with no FMCARD_MAIL_URL)."""
    from cardissuer.mail import RefusingMailer, mailer_for
    from cardissuer.portal.reminders import ReminderTimer

    settings: Settings = app.state.settings
    mailer = mailer_for(settings)
    if not settings.reminder_offsets or isinstance(mailer, RefusingMailer):
        return None
    return ReminderTimer(
        app.state.engine,
        mailer,
        every_s=every_s,
        offsets=settings.reminder_offsets,
        base_url=settings.public_base_url,
    )


def _install_console(app: FastAPI) -> None:
    """The officers' console, the card's downloads and wallet passes, the holder's page and
    the holder portal."""
    from cardissuer.api.routes import downloads, wallet
    from cardissuer.portal import routes as portal
    from cardissuer.web import console, holder, review

    for part in (console, review, downloads, wallet, holder, portal):
        part.install(app)


class BodyTooLarge(HTTPException):
    """A request body went over the limit (raised while the application reads it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body may have at most {limit} bytes")
        self.limit = limit


PORTAL_FIELDS_BYTES = 256 * 1024
"""What a portal form needs besides its files: the text fields and the multipart framing."""


def portal_body_limit(settings: Settings) -> int:
    """The body limit of the holder portal's forms: three photos at ``max_photo_bytes`` (a
    passport page, a portrait, a supporting document) and the fields, so that a form the
    apply page allows is never refused as a whole; never less than ``max_body_bytes``."""
    return max(settings.max_body_bytes, 3 * settings.max_photo_bytes + PORTAL_FIELDS_BYTES)


def _too_large(path: str, limit: int, scope: Scope | None = None) -> Response:
    if scope is not None and path.startswith("/portal/"):
        # The holder portal answers with a page in the holder's language.
        from cardissuer.portal.routes import too_large_page

        return too_large_page(Request(scope), limit)
    return JSONResponse(
        {
            "type": problems.PROBLEM_TYPE_BASE + "too-large",
            "title": "Request too large",
            "status": 413,
            "detail": f"the body may have at most {limit} bytes",
            "instance": path,
        },
        status_code=413,
        media_type="application/problem+json",
    )


class BodySizeLimit:
    """ASGI wrapper: refuse request bodies over ``limit`` bytes with a 413 problem
    (``portal_limit`` under ``/portal/``, whose forms carry photos).

    A declared Content-Length over the limit is refused before the application runs. Without
    one (chunked transfer), the bytes of the ``http.request`` messages are counted as the
    application reads them, and reading past the limit raises :class:`BodyTooLarge`, which the
    application's exception handling turns into the same 413 problem. So neither a lying
    client nor an endless stream can make the service buffer more than ``limit`` bytes.
    """

    def __init__(self, app: ASGIApp, limit: int, portal_limit: int | None = None) -> None:
        self.app = app
        self.default_limit = limit
        self.portal_limit = limit if portal_limit is None else portal_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.portal_limit if scope["path"].startswith("/portal/") else self.default_limit
        declared = [value for name, value in scope["headers"] if name == b"content-length"]
        if declared and (
            len(declared) > 1 or not declared[0].isdigit() or int(declared[0]) > limit
        ):
            await _too_large(scope["path"], limit, scope)(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:  # the application answered before reading on: nothing left to say
                raise
            await _too_large(scope["path"], limit, scope)(scope, receive, send)


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    async def body_too_large(request: Request, exc: Exception) -> Response:
        limit = exc.limit if isinstance(exc, BodyTooLarge) else settings.max_body_bytes
        return _too_large(request.url.path, limit, request.scope)

    app.add_exception_handler(BodyTooLarge, body_too_large)
    # Added first, so it sits inside the logging middleware: refusals are logged too.
    app.add_middleware(
        BodySizeLimit, limit=settings.max_body_bytes, portal_limit=portal_body_limit(settings)
    )

    app.add_middleware(RequestLog)


class RequestLog:
    """ASGI wrapper: one structured log line per request, and the headers every answer gets.

    A plain ASGI wrapper rather than ``@app.middleware("http")``, whose per-request task and
    streams cost more than the rest of a small request. Only the route template is logged:
    path parameters may be codes or passport numbers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Request ids: a random prefix per process and a counter (unique, and no system call
        # per request: under load each one hands the GIL to the issuing thread for a while).
        self._prefix = secrets.token_hex(3)
        self._numbers = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"{self._prefix}{next(self._numbers):06x}"
        # As asked: a mount rewrites the scope's root_path on the way in.
        path, root_path = scope["path"], scope.get("root_path", "")
        started = time.perf_counter()
        status = 500  # if the application fails before answering

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), *_headers(request_id)]
                message["headers"] = _finish_headers(
                    scope.get("app"), path, root_path, status, headers
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": getattr(route, "path", "?"),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )


def _finish_headers(
    app: FastAPI | None,
    path: str,
    root_path: str,
    status: int,
    headers: list[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """Caching and ``Allow``, decided once for every answer rather than by each route.

    An answer that names no ``Cache-Control`` may not be stored anywhere (``no-store``):
    persons, cards, passports, the audit log, console pages, the holder's page and every
    download carry personal data, and a route that forgets to say so must not leak into a
    shared cache. Routes meant to be cached (the publishing routes) say so themselves, and the
    console's static files are revalidated (``no-cache``). A 405 gets the ``Allow`` header
    with every method its path accepts.
    """
    names = {name.lower() for name, _ in headers}
    if b"cache-control" not in names:
        public = path.startswith(STATIC_PREFIX)
        headers.append((b"cache-control", b"no-cache" if public else b"no-store"))
    if status == 405:
        allow = allowed_methods(app.router.routes, path, root_path) if app is not None else []
        headers = [(name, value) for name, value in headers if name.lower() != b"allow"]
        headers.append((b"allow", ", ".join(allow).encode()))
    return headers


def _headers(request_id: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-request-id", request_id.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]
