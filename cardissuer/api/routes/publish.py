"""What counters download, at stable URLs with HTTP caching (ETag, Last-Modified, max-age)."""

from __future__ import annotations

from email.utils import format_datetime

from fastapi import APIRouter, Request, Response

from cardissuer.api.deps import SessionDep, now
from cardissuer.services.publishing import Published

router = APIRouter(tags=["publishing"])


def _respond(request: Request, published: Published, filename: str | None = None) -> Response:
    headers = {
        "ETag": published.etag,
        "Last-Modified": format_datetime(published.last_modified, usegmt=True),
        "Cache-Control": f"public, max-age={published.max_age}",
    }
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    if request.headers.get("if-none-match") == published.etag:
        return Response(status_code=304, headers=headers)
    return Response(published.body, media_type=published.media_type, headers=headers)


@router.get("/trust-list.jwt", summary="The trust list signed by the trust anchor")
def trust_list(request: Request) -> Response:
    return _respond(request, request.app.state.publisher.trust_list())


@router.get("/jwks.json", summary="The issuing keys as a JWK Set")
def jwks(request: Request) -> Response:
    state = request.app.state
    return _respond(request, state.publisher.jwks(state.jwks, at=state.started_at))


@router.get("/status/{list_id}", summary="A signed status list (statuslist+jwt)")
def status_list(list_id: str, request: Request, session: SessionDep) -> Response:
    return _respond(request, request.app.state.publisher.status_list(session, list_id, at=now()))


@router.get("/bundle.json", summary="Everything a counter needs, in one file")
def bundle(request: Request, session: SessionDep) -> Response:
    state = request.app.state
    published = state.publisher.bundle(session, anchors=[state.keys.anchor], at=now())
    return _respond(request, published, filename="fmcard-bundle.json")
