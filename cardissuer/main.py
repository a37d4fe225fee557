"""The issuer service: ``create_app()`` builds the FastAPI application.

Start-up opens the database (SQLite by default, PostgreSQL by URL), checks that its schema is
at the newest migration (development databases are upgraded automatically), loads the signing
key (key ring or HSM) and prepares the publisher. The service keeps no state of its own
besides the database, so several instances can share one PostgreSQL behind a load balancer.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI, Request, Response
from starlette.responses import JSONResponse

from cardissuer.api import problems
from cardissuer.api.routes import admin, auth, cards, health, persons, publish
from cardissuer.core import logging as structured_logging
from cardissuer.core.config import Environment, Settings, get_settings
from cardissuer.core.db import make_engine
from cardissuer.core.migrations import ensure_schema
from cardissuer.core.signing import load_key_material
from cardissuer.services.publishing import Publisher
from keys.jwk import jwks

log = logging.getLogger("fmcard.http")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    structured_logging.configure()
    app = FastAPI(
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
    ensure_schema(app.state.engine, upgrade=settings.environment is Environment.DEVELOPMENT)
    keys = load_key_material(settings)
    app.state.keys = keys
    app.state.public_keys = keys.keyring.public_keys(keys.passphrase)
    if all(kid != keys.signer.kid for _, kid in app.state.public_keys):
        app.state.public_keys.append((keys.signer.public_key, keys.signer.kid))
    app.state.jwks = jwks(app.state.public_keys)
    app.state.started_at = datetime.now(UTC).replace(microsecond=0)
    app.state.publisher = Publisher(
        signer=keys.signer,
        status_uri_prefix=settings.status_uri_prefix,
        validity=timedelta(hours=settings.status_list_validity_hours),
        published_dir=settings.workspace / "published",
    )
    problems.install(app)
    for router in (
        auth.router,
        persons.router,
        cards.router,
        admin.router,
        publish.router,
        health.router,
    ):
        app.include_router(router)
    _install_console(app)
    _install_middleware(app, settings)
    return app


def _install_console(app: FastAPI) -> None:
    try:
        from cardissuer.web import routes as console  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # the console arrives with its own module
        return
    console.install(app)


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    @app.middleware("http")
    async def limits_and_logging(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = secrets.token_hex(6)
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            response: Response = JSONResponse(
                {
                    "type": problems.PROBLEM_TYPE_BASE + "too-large",
                    "title": "Request too large",
                    "status": 413,
                    "detail": f"the body may have at most {settings.max_body_bytes} bytes",
                    "instance": request.url.path,
                },
                status_code=413,
                media_type="application/problem+json",
            )
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method,
                "route": getattr(route, "path", "?"),
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        response.headers["X-Request-ID"] = request_id
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response
