"""The holder page's phone side: the device key, the phone card, the service worker, the
manifest (``/h/{token}/...``).

The page's script (``static/holder-phone.js``) makes a non-extractable P-256 key with
WebCrypto, registers its public JWK with ``POST /h/{token}/device-key`` and stores the phone
card it gets back; from then on it shows live presentations (``docs/FORMAT.md`` section 11)
with no network. The rules for keys are in :mod:`cardissuer.wallet.phone`.

Cross-site requests cannot register a key: the request must be JSON (a form cannot send
that without a CORS preflight, which this server never grants), come from the page's own
origin (``Origin``, else ``Sec-Fetch-Site: same-origin``) and carry the device cookie of the
link (``SameSite=Lax``, path ``/h/{token}``), and the link must already know the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cardissuer.api import problems
from cardissuer.api.deps import get_engine, now
from cardissuer.api.routes.common import issuing_context
from cardissuer.core.db import session_scope
from cardissuer.errors import IssuerError
from cardissuer.services.cards import DeviceKeyError
from cardissuer.wallet import links
from cardissuer.wallet import phone as phones
from cardissuer.web.holder import DEVICE_COOKIE, page_translations
from cardissuer.web.rendering import STATIC_DIR
from schemas import strictjson
from schemas.errors import SchemaError

MAX_BODY = 1024
"""A device-key request is a JWK of four short members; anything longer is refused."""

JSON_HEADERS = {"Cache-Control": "private, no-store"}
REFUSAL_STATUS = {
    links.Refusal.UNKNOWN: 404,
    links.Refusal.EXPIRED: 410,
    links.Refusal.NO_LONGER_VALID: 410,
    links.Refusal.OTHER_DEVICE: 403,
}

router = APIRouter(include_in_schema=False)


class CrossSiteRefusedError(IssuerError):
    """A holder-page request that did not come from the holder page itself."""

    code = "cross-site-refused"
    http_status = 403


def _device(request: Request) -> str | None:
    return request.cookies.get(DEVICE_COOKIE)


def _refusal(request: Request, refusal: links.Refusal) -> JSONResponse:
    return problems.problem(
        REFUSAL_STATUS[refusal],
        "holder-link-refused",
        "This link does not show the card here",
        f"the holder link refused this request ({refusal.value})",
        request.url.path,
        reason=refusal.value,
    )


def _same_origin(request: Request) -> None:
    """Refuse a request that is not the page's own script's JSON (see the module docstring)."""
    public = urlsplit(request.app.state.settings.public_base_url)
    own = {f"{request.url.scheme}://{request.url.netloc}", f"{public.scheme}://{public.netloc}"}
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    if origin is not None and origin not in own:
        raise CrossSiteRefusedError("the request did not come from the holder page")
    if origin is None and site != "same-origin":
        raise CrossSiteRefusedError("the request did not come from the holder page")
    if site is not None and site != "same-origin":
        raise CrossSiteRefusedError("the request did not come from the holder page")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise CrossSiteRefusedError("the device key is sent as application/json")


def _opened(request: Request, token: str, session: Any) -> links.Opened | links.Refusal:
    opened = links.open_link(session, token, _device(request), at=now())
    # Only the page registers a device (and sets its cookie); never a script's request.
    if isinstance(opened, links.Opened) and opened.new_device_secret:
        session.rollback()
        return links.Refusal.OTHER_DEVICE
    return opened


def _document(request: Request, session: Any, record: Any) -> dict[str, Any]:
    services = tuple(request.app.state.settings.services)
    return phones.phone_card_document(session, record, services=services, at=now())


@router.post("/h/{token}/device-key")
async def register_device_key(token: str, request: Request) -> Response:
    """Register the phone's public key and answer with its phone card (201 when this request
    issued it, 200 when the same key was registered before)."""
    _same_origin(request)
    body = await request.body()
    if len(body) > MAX_BODY:
        raise DeviceKeyError("the device key request is too long")
    try:
        sent = strictjson.loads(body)
    except (SchemaError, ValueError):
        raise DeviceKeyError("the body is not a JSON object with a jwk") from None
    if set(sent) != {"jwk"}:
        raise DeviceKeyError("the body is a JSON object with one member, jwk")
    return await run_in_threadpool(_register, request, token, sent["jwk"])


def _register(request: Request, token: str, jwk: object) -> Response:
    engine = get_engine(request)
    with session_scope(engine) as session:
        opened = _opened(request, token, session)
        if isinstance(opened, links.Refusal):
            return _refusal(request, opened)
        phones.count_try(session, opened.link)
        session.commit()  # a refused request still counts
    with session_scope(engine) as session:
        opened = _opened(request, token, session)
        if isinstance(opened, links.Refusal):
            return _refusal(request, opened)
        record, issued = phones.register_device_key(
            session, opened, jwk, at=now(), context=issuing_context(request)
        )
        session.commit()
        document = _document(request, session, record)
    return JSONResponse(document, status_code=201 if issued else 200, headers=JSON_HEADERS)


@router.get("/h/{token}/phone-card")
def phone_card(token: str, request: Request) -> Response:
    """The current phone card of the link's device key (after a data change, the re-issued
    one), with the server's time; 404 ``not-found`` before a key is registered."""
    with session_scope(get_engine(request)) as session:
        opened = _opened(request, token, session)
        if isinstance(opened, links.Refusal):
            return _refusal(request, opened)
        record = phones.current_phone_card(session, opened)
        document = _document(request, session, record)
    return JSONResponse(document, headers=JSON_HEADERS)


SERVICE_WORKER = STATIC_DIR / "holder-sw.js"


@router.get("/h/{token}/sw.js")
def service_worker(token: str) -> Response:
    """The page's service worker, served under the link so that it may control the page
    (scope ``/h/{token}``, allowed by ``Service-Worker-Allowed``). It holds no personal data:
    the link's token is in its address only."""
    return Response(
        Path(SERVICE_WORKER).read_bytes(),
        media_type="text/javascript",
        headers={
            "Cache-Control": "private, no-store",
            "Service-Worker-Allowed": f"/h/{token}",
        },
    )


@router.get("/h/{token}/manifest.webmanifest")
def manifest(token: str, request: Request) -> Response:
    """The web app manifest: the card page installs as an app that opens this link."""
    _ = page_translations(request).gettext
    body = {
        "name": _("Foreign Merchant Card"),
        "short_name": _("Merchant Card"),
        "start_url": f"/h/{token}",
        "scope": f"/h/{token}",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#123456",
        "icons": [
            {"src": "/static/holder-icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/static/holder-icon-512.png", "sizes": "512x512", "type": "image/png"},
        ],
    }
    return JSONResponse(body, media_type="application/manifest+json", headers=JSON_HEADERS)
