"""What counters download, at stable URLs with HTTP caching (ETag, Last-Modified, max-age).

Status lists and the bundle are read in a read-only transaction first: the held documents
are served from it, and on SQLite a deferred transaction neither waits for nor blocks the
writers (issuance), however many counters sync. Only when a list must be signed (a change
is waiting, or the list is old) is the request repeated in a writing transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from cardissuer.api import problems
from cardissuer.api.deps import now
from cardissuer.core.db import read_snapshot, session_scope
from cardissuer.services.publishing import Published, SigningNeededError

router = APIRouter(tags=["publishing"])


def _documented(media_type: str, example: Any, *, not_found: bool = False) -> dict[str, Any]:
    responses: dict[int | str, dict[str, Any]] = {
        200: {"content": {media_type: {"example": example}}, "description": "The document"},
        304: {"description": "Not modified: the If-None-Match ETag is still current"},
    }
    if not_found:
        responses.update(problems.responses(404, 422))
    return {"responses": responses, "response_class": Response}


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison against a list of entity tags (or ``*``)."""
    if not if_none_match:
        return False
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


def _respond(request: Request, published: Published, filename: str | None = None) -> Response:
    headers = {
        "ETag": published.etag,
        "Last-Modified": format_datetime(published.last_modified, usegmt=True),
        "Cache-Control": f"public, max-age={published.max_age}",
    }
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    if _matches(request.headers.get("if-none-match"), published.etag):
        return Response(status_code=304, headers=headers)
    return Response(published.body, media_type=published.media_type, headers=headers)


@router.get(
    "/trust-list.jwt",
    summary="The trust list signed by the trust anchor",
    **_documented("application/jwt", "eyJhbGciOiJFUzI1NiIs...", not_found=True),
)
def trust_list(request: Request) -> Response:
    return _respond(request, request.app.state.publisher.trust_list())


@router.get(
    "/jwks.json",
    summary="The issuing keys as a JWK Set",
    **_documented(
        "application/jwk-set+json",
        {"keys": [{"kty": "EC", "crv": "P-256", "kid": "cE_a5qDZ", "x": "...", "y": "..."}]},
    ),
)
def jwks(request: Request) -> Response:
    state = request.app.state
    return _respond(request, state.publisher.jwks(state.jwks, at=state.started_at))


@router.get(
    "/status/{list_id}",
    summary="A signed status list (statuslist+jwt)",
    **_documented("application/statuslist+jwt", "eyJhbGciOiJFUzI1NiIs...", not_found=True),
)
def status_list(list_id: str, request: Request) -> Response:
    publisher, at = request.app.state.publisher, now()
    return _respond(
        request,
        _read_or_sign(
            request, lambda session, sign: publisher.status_list(session, list_id, at=at, sign=sign)
        ),
    )


def _read_or_sign(request: Request, build: Callable[[Session, bool], Published]) -> Published:
    """``build`` in a read-only transaction; again in a writing one if it must sign."""
    engine = request.app.state.engine
    try:
        with read_snapshot(engine) as session:
            return build(session, False)
    except SigningNeededError:
        with session_scope(engine) as session:
            return build(session, True)


@router.get(
    "/bundle.json",
    summary="Everything a counter needs, in one file",
    **_documented(
        "application/json",
        {
            "format": "fmcard-bundle/1",
            "anchors": [],
            "trust_list": "eyJ...",
            "status_lists": ["eyJ..."],
            "policies": [],
        },
        not_found=True,
    ),
)
def bundle(request: Request) -> Response:
    state, at = request.app.state, now()
    published = _read_or_sign(
        request,
        lambda session, sign: state.publisher.bundle(
            session, anchors=[state.keys.anchor], at=at, sign=sign
        ),
    )
    return _respond(request, published, filename="fmcard-bundle.json")
