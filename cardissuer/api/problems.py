"""RFC 9457 problem details: one place maps every error to an HTTP answer.

Each domain error has a stable ``type`` URI (``<base>/problems/<code>``); an error class may
name its own HTTP status (``http_status``), otherwise :data:`STATUS_BY_ERROR` decides.
Validation errors list the fields at fault but never echo the submitted values (they may be
personal data). Anything unexpected becomes a plain 500 problem; the traceback goes to the
log, never to the client. :func:`responses` documents the problems in the OpenAPI schema.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from cardissuer.card_request import claim_message, claim_problem
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


class Problem(BaseModel):
    """An RFC 9457 problem detail (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str


_EXAMPLES: dict[int, tuple[str, str, str]] = {
    400: ("malformed-body", "Malformed body", "the body is not UTF-8"),
    401: ("authentication-failed", "Authentication failed", "not logged in"),
    403: ("access-denied", "Access denied", "role registrar may not card.revoke"),
    404: ("not-found", "Not found", "no person with that code"),
    409: ("conflict", "Conflict", "a revoked card cannot become suspended"),
    413: ("too-large", "Request too large", "the body may have at most 2097152 bytes"),
    422: ("validation-failed", "Request is not valid", "one or more fields are invalid"),
    429: ("rate-limited", "Rate limited", "too many failed logins for this account"),
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problems a route may answer with, with examples."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, title, detail = _EXAMPLES[status]
        example: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + code,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": "/api/persons/7K2M9QXR4T",
        }
        if status == 422:
            example["errors"] = [{"field": "id", "message": "Extra inputs are not permitted"}]
        out[status] = {
            "model": Problem,
            "description": title,
            "content": {"application/problem+json": {"example": example}},
        }
    return out


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


def status_of(exc: IssuerError) -> int:
    own: int | None = getattr(type(exc), "http_status", None)
    if own is not None:
        return own
    return next(code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind))


def install(app: FastAPI) -> None:
    @app.exception_handler(IssuerError)
    async def issuer_error(request: Request, exc: IssuerError) -> JSONResponse:
        status = status_of(exc)
        extra: dict[str, Any] = {}
        if isinstance(exc, DuplicateSuspectedError):
            extra["candidates"] = exc.candidates
        field = getattr(exc, "field", None)
        if field:  # the same shape as a validation problem: which field, and why
            extra["errors"] = [field_error(field, str(exc).removeprefix(f"{field}: "))]
        extra.update(getattr(exc, "problem_extra", {}))  # e.g. the fields at fault
        if isinstance(exc, AccessDeniedError):  # a database write: not on the event loop
            await run_in_threadpool(_audit_denied, request, getattr(exc, "audit_detail", str(exc)))
        response = problem(status, exc.code, _title(exc), str(exc), request.url.path, **extra)
        if isinstance(exc, RateLimitedError):
            retry_after = exc.retry_after
            if retry_after is None:
                settings = getattr(request.app.state, "settings", None)
                retry_after = getattr(settings, "login_window_seconds", 300)
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.exception_handler(SchemaError)
    async def schema_error(request: Request, exc: SchemaError) -> JSONResponse:
        field, message = claim_problem(exc)  # the request's field, never a wire claim's name
        extra = {"errors": [field_error(field, message)]} if field else {}
        detail = claim_message(exc)
        return problem(422, "invalid-field", "Invalid field", detail, request.url.path, **extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        whole_body = any(tuple(error.get("loc", ())) == ("body",) for error in exc.errors())
        if whole_body and media_type and not _is_json(media_type):
            # A JSON body sent as something else is not read as JSON at all: say so.
            return problem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "the body must be JSON, sent with Content-Type: application/json",
                request.url.path,
            )
        errors = [
            {"field": "body", "message": "the body is not valid JSON"}
            if error.get("type") == "json_invalid"  # its location is a byte offset, not a field
            else field_error(
                ".".join(str(part) for part in error.get("loc", ())[1:]) or "body",
                _pydantic_message(error),
            )
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
        code, title = HTTP_PROBLEMS.get(exc.status_code) or _fallback(exc.status_code)
        unreadable = exc.status_code == 400 and exc.__cause__ is not None
        detail = _unreadable_body(exc.__cause__) if unreadable else str(exc.detail)
        return problem(exc.status_code, code, title, detail, request.url.path)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(
            "unexpected error on %s %s: %s",
            request.method,
            getattr(request.scope.get("route"), "path", "?"),  # the template: no codes or numbers
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


HTTP_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("malformed-body", "Malformed body"),
    401: ("authentication-failed", "Authentication failed"),
    403: ("access-denied", "Access denied"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-failed", "Request is not valid"),
    429: ("rate-limited", "Rate limited"),
    503: ("unavailable", "Unavailable"),
}
"""The documented problem of each status the HTTP layer (Starlette, FastAPI) refuses with.
FastAPI answers 400 when it cannot read a body at all (not UTF-8, nested past the recursion
limit, an integer over Python's digit limit, a broken multipart form)."""


def field_error(field: str, message: str) -> dict[str, str]:
    """One entry of a problem's ``errors``: every field-level message of the API passes
    here, whichever layer refused (pydantic, the card model, the registry), so that none
    shows a library's prefix or an internal name."""
    return {"field": field, "message": message.removeprefix("Value error, ")}


def _pydantic_message(error: Mapping[str, Any]) -> str:
    """Pydantic's message, except where its wording misleads: the API strips surrounding
    blanks before lengths are checked, so a blank reason is refused as "at least 1
    character" although the client sent three spaces."""
    context = error.get("ctx") or {}
    if error.get("type") == "string_too_short" and context.get("min_length") == 1:
        return "must not be blank"
    return str(error.get("msg", "invalid"))


def _fallback(status: int) -> tuple[str, str]:
    """Any other status still gets a documented type: the generic one of its class."""
    return (
        ("issuer-error", "Request refused")
        if status < 500
        else ("internal-error", "Internal error")
    )


def _unreadable_body(cause: BaseException | None) -> str:
    """Why a body could not be read, from the parser's exception; never the body itself."""
    if isinstance(cause, UnicodeDecodeError):
        return "the body is not UTF-8"
    if isinstance(cause, RecursionError):
        return "the body is nested too deeply"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return "a number in the body has too many digits"
    return "the body could not be read"


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


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
