"""RFC 9457 problem details: one place maps every error to an HTTP answer.

Each domain error has a stable ``type`` URI (``<base>/problems/<code>``). Validation errors
list the fields at fault but never echo the submitted values (they may be personal data).
Anything unexpected becomes a plain 500 problem; the traceback goes to the log, never to the
client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardissuer.errors import (
    AccessDeniedError,
    AuditChainError,
    AuthenticationError,
    ConflictError,
    DuplicateSuspectedError,
    IssuerError,
    NotFoundError,
    PortraitError,
    RateLimitedError,
)
from cardissuer.services import audit
from schemas.errors import SchemaError

log = logging.getLogger("fmcard.api")
PROBLEM_TYPE_BASE = "https://fmcard.example/problems/"

STATUS_BY_ERROR: list[tuple[type[Exception], int]] = [
    (RateLimitedError, 429),
    (AuthenticationError, 401),
    (AccessDeniedError, 403),
    (NotFoundError, 404),
    (DuplicateSuspectedError, 409),
    (ConflictError, 409),
    (PortraitError, 422),
    (AuditChainError, 409),
    (IssuerError, 400),
]


def problem(
    status: int, code: str, title: str, detail: str, instance: str, **extra: Any
) -> JSONResponse:
    body = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(IssuerError)
    async def issuer_error(request: Request, exc: IssuerError) -> JSONResponse:
        status = next(code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind))
        extra: dict[str, Any] = {}
        if isinstance(exc, DuplicateSuspectedError):
            extra["candidates"] = exc.candidates
        if isinstance(exc, AccessDeniedError):
            _audit_denied(request, str(exc))
        return problem(status, exc.code, _title(exc), str(exc), request.url.path, **extra)

    @app.exception_handler(SchemaError)
    async def schema_error(request: Request, exc: SchemaError) -> JSONResponse:
        return problem(422, "invalid-field", "Invalid field", str(exc), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(part) for part in error.get("loc", ())[1:]) or "body",
                "message": error.get("msg", "invalid"),
            }
            for error in exc.errors()
        ]
        return problem(
            422,
            "validation-failed",
            "Request is not valid",
            "one or more fields are invalid",
            request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not-found",
            405: "method-not-allowed",
            413: "too-large",
            401: "authentication-failed",
        }.get(exc.status_code, "http-error")
        return problem(exc.status_code, code, str(exc.detail), str(exc.detail), request.url.path)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unexpected error on %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
            exc_info=exc,
        )
        return problem(
            500,
            "internal-error",
            "Internal error",
            "the request failed; nothing was changed",
            request.url.path,
        )


def _title(exc: IssuerError) -> str:
    return exc.code.replace("-", " ").capitalize()


def _audit_denied(request: Request, message: str) -> None:
    actor = getattr(request.state, "actor", None)
    engine = getattr(request.app.state, "engine", None)
    if actor is None or engine is None:
        return
    route = request.scope.get("route")
    action = getattr(route, "name", request.url.path)
    # Path parameters may be codes or passport numbers: keep only a digest of them.
    target = next(iter(request.path_params.values()), "")
    record_id = audit.digest({"target": str(target)})[:16] if target else ""  # type: ignore[index]
    try:
        audit.record_denied(
            engine,
            actor=actor,
            action=str(action),
            record_type="request",
            record_id=str(record_id)[:64],
            detail=message,
        )
    except Exception:  # the refusal stands even if auditing it failed; say so in the log
        log.exception("could not audit a denied request")
