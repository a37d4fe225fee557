"""The holder's card page: ``/h/{token}`` on the holder's phone, in the holder's language.

The language is the browser's (``Accept-Language``) unless the holder picks another from the
page's menu; every word comes from the ``fmcard`` catalog (:mod:`cardissuer.i18n`), and
Arabic, Persian and Urdu pages are laid out right to left.

It shows the portrait, names and a QR large enough to scan from the screen, with buttons for
the wallet passes and the printable card. Its script (``static/holder-phone.js``, see
:mod:`cardissuer.web.holder_phone`) binds the phone: a device key, the phone card, and the
live presentation that changes every ten seconds, also with no network.
Every resource is scoped to the link and its registered device (see
:mod:`cardissuer.wallet.links`); a refused visit gets a plain page saying why, never the card.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from gettext import NullTranslations
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from cardissuer.api.deps import get_engine, now
from cardissuer.api.routes.downloads import card_view
from cardissuer.api.routes.wallet import google_link, pkpass_response, wallet_signer
from cardissuer.core.db import session_scope
from cardissuer.i18n import (
    HTML_LANG,
    LANGUAGE_NAMES,
    LANGUAGES,
    N_,
    RTL_LANGUAGES,
    holder_language,
    translations,
)
from cardissuer.render.card import card_png
from cardissuer.render.pdf import card_pdf
from cardissuer.render.qr import qr_png
from cardissuer.services import blobs
from cardissuer.services.cards import PRINTED
from cardissuer.wallet import links
from cardissuer.wallet.apple import holder_name
from cardissuer.web import cookies
from cardissuer.web.i18n import LANG_COOKIE
from cardissuer.web.rendering import TEMPLATE_DIR
from schemas.code import format_for_reading
from schemas.services import SERVICES_BY_CODE
from verifier._presentation import DEFAULT_PROOF_SKEW

DEVICE_COOKIE = "fmcard_device"
DEVICE_COOKIE_SECONDS = 10 * 365 * 24 * 3600
CHINA_TIME = timezone(timedelta(hours=8), "UTC+8")
HOLDER_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data: blob:",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""The holder page's policy: the issuer's own script, service worker and manifest only; no
inline code, no other origin, no framing."""
PRIVATE = {
    "Cache-Control": "private, no-store",
    "Content-Security-Policy": HOLDER_CONTENT_SECURITY_POLICY,
}

REFUSALS: dict[links.Refusal, tuple[str, str]] = {
    links.Refusal.UNKNOWN: (N_("This card cannot be shown"), N_("This link is not valid.")),
    links.Refusal.EXPIRED: (
        N_("This card cannot be shown"),
        N_("This link has expired. Ask the issuing officer for a new one."),
    ),
    links.Refusal.OTHER_DEVICE: (
        N_("This card cannot be shown"),
        N_("This link has already been opened on another device; only that device shows the card."),
    ),
    links.Refusal.NO_LONGER_VALID: (
        N_("This card is no longer valid."),
        N_("It has been revoked, replaced or has expired. Do not show it any more."),
    ),
}
"""What a refused visit says: a heading and a sentence the holder can act on."""
LANG_COOKIE_SECONDS = 365 * 24 * 3600
COUNTER_NAMES: dict[str, str] = {
    "tr": N_("Bus and metro"),
    "hc": N_("Hospital"),
    "ed": N_("School"),
    "bk": N_("Bank"),
    "ho": N_("Housing office"),
    "bz": N_("Business licensing"),
}
"""The counter types the live card offers, by service; a service of the issuer's catalogue
not named here is offered under its catalogue name."""
CLOCK_SKEW_SECONDS = int(DEFAULT_PROOF_SKEW.total_seconds())
"""The page warns when the phone's clock is further than this from the issuer's: the
counters' allowance for proofs (docs/FORMAT.md 11.4), beyond which they say PROOF_STALE."""
NEAR_EXPIRY_DAYS = 30
"""The live card warns this many days before the card expires (time to book a renewal)."""
STALE_DAYS = 7
"""The live card warns when the card kept on the phone was last fetched longer ago than
this: a re-issue (a new entitlement) or a revocation since would make counters refuse it."""

_templates = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR), autoescape=True, undefined=StrictUndefined
)
router = APIRouter(include_in_schema=False)


def page_language(request: Request) -> str:
    """The holder's language: asked (``?lang=``), chosen before (cookie), or the browser's."""
    return holder_language(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )


def page_translations(request: Request) -> NullTranslations:
    return translations(page_language(request))


def _page(request: Request, template: str, status: int, **values: Any) -> HTMLResponse:
    """Render a holder page in the holder's language, with the menu of the others.

    Choosing a language (``?lang=``) keeps it in a cookie holding only the language code."""
    asked = request.query_params.get("lang")
    language = page_language(request)
    catalog = translations(language)
    html = _templates.get_template(template).render(
        _=catalog.gettext,
        ngettext=catalog.ngettext,
        lang=language,
        html_lang=HTML_LANG.get(language, language),
        rtl=language in RTL_LANGUAGES,
        languages=[(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        lang_name=LANGUAGE_NAMES[language],
        **values,
    )
    response = HTMLResponse(html, status_code=status, headers=PRIVATE)
    response.headers["Vary"] = "Accept-Language, Cookie"
    if asked == language:
        cookies.put_plain(
            response, request, LANG_COOKIE, language, max_age=LANG_COOKIE_SECONDS, samesite="lax"
        )
    return response


def _counter_names(request: Request, services: tuple[str, ...]) -> list[tuple[str, str]]:
    """Each service of the catalogue with the name of its counter, in the page's language."""
    gettext = page_translations(request).gettext
    names = []
    for service in services:
        known = SERVICES_BY_CODE.get(service)
        english = COUNTER_NAMES.get(service) or (known.name_en if known else service)
        names.append((service, gettext(english)))
    return names


def _refused(request: Request, refusal: links.Refusal) -> HTMLResponse:
    status = 410 if refusal in (links.Refusal.EXPIRED, links.Refusal.NO_LONGER_VALID) else 403
    if refusal is links.Refusal.UNKNOWN:
        status = 404
    heading, sentence = REFUSALS[refusal]
    return _page(
        request, "holder_refused.html", status, reason=refusal.value, heading=heading, text=sentence
    )


def _open(request: Request, token: str, session: Any) -> links.Opened | links.Refusal:
    return links.open_link(session, token, request.cookies.get(DEVICE_COOKIE), at=now())


@router.get("/h/{token}", response_class=HTMLResponse)
def holder_page(token: str, request: Request) -> Response:
    with session_scope(get_engine(request)) as session:
        opened = _open(request, token, session)
        if isinstance(opened, links.Refusal):
            return _refused(request, opened)
        card, person = opened.card, opened.person
        expires = card.expires_at.astimezone(CHINA_TIME).date()
        response = _page(
            request,
            "holder.html",
            200,
            base=f"/h/{token}",
            name=holder_name(person),
            native_name=person.native_name,
            chinese_name=person.chinese_name,
            code=format_for_reading(person.code),
            serial=card.serial,
            expires=expires.isoformat(),
            days_left=(expires - now().astimezone(CHINA_TIME).date()).days,
            suspended=card.state.value == "suspended",
            has_portrait=blobs.has_portrait(session, person.id),
            counter_names=_counter_names(request, request.app.state.settings.services),
            clock_skew_seconds=CLOCK_SKEW_SECONDS,
            near_expiry_days=NEAR_EXPIRY_DAYS,
            stale_days=STALE_DAYS,
            # The printed card's downloads, and its static QR until the phone is bound: once
            # the live code is on the phone, a static code beside it would only invite a
            # screenshot (it verifies as "printed" wherever printed cards are accepted).
            printed=card.kind == PRINTED,
            printed_qr=card.kind == PRINTED and opened.link.device_jwk is None,
        )
        session.commit()
    if opened.new_device_secret:
        cookies.put_plain(  # one per link: a phone may hold several, so no __Host- prefix
            response,
            request,
            DEVICE_COOKIE,
            opened.new_device_secret,
            max_age=DEVICE_COOKIE_SECONDS,
            path=f"/h/{token}",
            samesite="lax",
        )
    return response


def _resource(request: Request, token: str, kind: str) -> Response:
    with session_scope(get_engine(request)) as session:
        opened = _open(request, token, session)
        # A resource never registers a device: only the page does, and sets the cookie.
        if isinstance(opened, links.Refusal) or opened.new_device_secret:
            session.rollback()
            refusal = opened if isinstance(opened, links.Refusal) else links.Refusal.OTHER_DEVICE
            return _refused(request, refusal)
        card, person = opened.card, opened.person
        settings = request.app.state.settings
        if kind != "portrait" and card.kind != PRINTED:
            # The printed card is gone (revoked, expired) and the link shows the phone card,
            # which has no static QR, wallet pass or printable form.
            session.rollback()
            return _refused(request, links.Refusal.NO_LONGER_VALID)
        if kind == "qr":
            text = blobs.qr_text_of(session, card.id)
            return Response(qr_png(text), media_type="image/png", headers=PRIVATE)
        if kind == "portrait":
            portrait = blobs.portrait_of(session, person.id)
            if portrait is None:
                return Response(status_code=404, headers=PRIVATE)
            return Response(portrait, media_type="image/avif", headers=PRIVATE)
        if kind == "pkpass":
            return pkpass_response(session, card, settings, wallet_signer(request))
        if kind == "google":
            link = google_link(session, card, settings, wallet_signer(request))
            return RedirectResponse(link.save_url, 303)
        view = card_view(session, card)
        content = card_png(view) if kind == "png" else card_pdf(view)
        media_type = "image/png" if kind == "png" else "application/pdf"
        return Response(
            content,
            media_type=media_type,
            headers={
                **PRIVATE,
                "Content-Disposition": f'attachment; filename="fmcard-{card.serial}.{kind}"',
            },
        )


@router.get("/h/{token}/qr.png")
def holder_qr(token: str, request: Request) -> Response:
    return _resource(request, token, "qr")


@router.get("/h/{token}/portrait.avif")
def holder_portrait(token: str, request: Request) -> Response:
    return _resource(request, token, "portrait")


@router.get("/h/{token}/pass.pkpass")
def holder_pkpass(token: str, request: Request) -> Response:
    return _resource(request, token, "pkpass")


@router.get("/h/{token}/google-wallet")
def holder_google(token: str, request: Request) -> Response:
    return _resource(request, token, "google")


@router.get("/h/{token}/card.png")
def holder_card_png(token: str, request: Request) -> Response:
    return _resource(request, token, "png")


@router.get("/h/{token}/card.pdf")
def holder_card_pdf(token: str, request: Request) -> Response:
    return _resource(request, token, "pdf")


def install(app: FastAPI) -> None:
    from cardissuer.web import holder_phone  # it builds on this module

    app.include_router(router)
    app.include_router(holder_phone.router)
