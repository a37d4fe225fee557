"""Every cookie the service sets, and the portal's CSRF token bound to the portal session.

Two rules of docs/SECURITY.md ("Cookies"): every cookie is HttpOnly with an explicit
SameSite, Secure whenever the browser reaches the service over https (always in production
with an https public URL, also behind a proxy speaking plain http), and a cookie that carries
a session, a nonce or a message is named ``__Host-`` then (``Path=/``, no ``Domain``), so a
sibling subdomain cannot toss in a value of its own. And a portal form's token is the HMAC
of the portal session (before it, of the pending address, before that of a nonce): a token
minted for one session, or a cookie tossed in by another site, is refused in another.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.config import Environment, Settings
from cardissuer.main import create_app
from cardissuer.portal import session as portal_session
from cardissuer.seed import DEMO_PASSWORD, seed_demo
from tests.cardissuer.portal_helpers import (
    SESSION_COOKIE,
    ask_code,
    code_in,
    csrf_of,
    enter_code,
    sign_in,
)
from tests.mail_sink import MailSink, mail_sink

HTTPS = "https://testserver"
ENGLISH = {"Accept-Language": "en"}
PLAIN_NAMES = frozenset({"lang", "fmcard_device"})
"""The cookies that keep their name under https: the language (nothing secret, nothing to
toss) and the holder page's device cookie, scoped to one link's path (see web/cookies.py)."""


@pytest.fixture
def sink() -> Iterator[MailSink]:
    with mail_sink() as running:
        yield running


def _app(tmp_path: Path, database_url: str, **settings: object) -> FastAPI:
    app = create_app(
        Settings(workspace=tmp_path / "workspace", database_url=database_url, **settings)  # type: ignore[arg-type]
    )
    seed_demo(app.state.engine, issuing_context_of(app), environment=app.state.settings.environment)
    return app


@pytest.fixture
def portal_app(tmp_path: Path, database_url: str, sink: MailSink) -> Iterator[FastAPI]:
    app = _app(tmp_path, database_url, mail_url=sink.url)
    yield app
    app.state.engine.dispose()


def _recording(client: TestClient) -> list[str]:
    """Every Set-Cookie header the client receives from now on (redirects included)."""
    seen: list[str] = []

    def hook(response: httpx.Response) -> None:
        seen.extend(response.headers.get_list("set-cookie"))

    client.event_hooks = {"request": [], "response": [hook]}
    return seen


def _console_and_api(client: TestClient) -> None:
    """Log in through the console (login nonce, session, flash) and the API, log out."""
    client.get("/console/login?lang=en")
    login = client.get("/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', login.text)
    assert nonce, login.text
    done = client.post(
        "/console/login",
        data={"username": "registrar", "password": DEMO_PASSWORD, "nonce": nonce.group(1)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    search = client.get("/console/search")
    csrf = re.search(r'name="csrf" value="([^"]+)"', search.text)
    assert csrf, search.text
    client.post("/console/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
    api = client.post("/api/auth/login", json={"username": "registrar", "password": DEMO_PASSWORD})
    assert api.status_code == 200, api.text
    token = api.json()["token"]
    client.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})


def _holder_page(client: TestClient) -> None:
    """Open a holder link (the device cookie) and choose its language."""
    api = client.post("/api/auth/login", json={"username": "registrar", "password": DEMO_PASSWORD})
    headers = {"Authorization": f"Bearer {api.json()['token']}"}
    client.cookies.clear()
    person = client.get("/api/persons", headers=headers).json()["items"][0]
    card = client.get(f"/api/persons/{person['code']}", headers=headers).json()["cards"][0]
    link = client.post(f"/api/cards/{card['serial']}/holder-link", headers=headers)
    assert link.status_code == 201, link.text
    path = httpx.URL(link.json()["url"]).path
    assert client.get(path + "?lang=ar").status_code == 200


def _check(headers: list[str], *, https: bool) -> set[str]:
    """Assert the rule on every Set-Cookie header; the names seen."""
    names: set[str] = set()
    for header in headers:
        parsed = SimpleCookie()
        parsed.load(header)
        [(name, morsel)] = parsed.items()
        names.add(name)
        where = f"{name}: {header}"
        assert morsel["httponly"], where
        assert morsel["samesite"].lower() in ("strict", "lax"), where
        assert not morsel["domain"], where
        assert bool(morsel["secure"]) is https, where
        if name in PLAIN_NAMES:
            continue
        assert name.startswith("__Host-") is https, where
        assert morsel["path"] == "/", where
    return names


def test_every_cookie_over_https_is_secure_httponly_and_host_prefixed(
    portal_app: FastAPI, sink: MailSink
) -> None:
    with TestClient(portal_app, base_url=HTTPS, headers=ENGLISH) as client:
        seen = _recording(client)
        _console_and_api(client)
        client.cookies.clear()
        client.get("/portal/?lang=en")
        sign_in(client, sink, "cookies@example.org")
        client.post("/portal/sign-out", data={"csrf": csrf_of(client)})
        _holder_page(client)
    names = _check(seen, https=True)
    assert {
        "__Host-fmcard_session",
        "__Host-fmcard_login_csrf",
        "__Host-fmcard_flash",
        "__Host-fmcard_portal",
        "__Host-fmcard_portal_pending",
        "__Host-fmcard_portal_csrf",
        "fmcard_device",
        "lang",
    } <= names


def test_a_development_server_over_plain_http_sets_cookies_it_gets_back(
    portal_app: FastAPI, sink: MailSink
) -> None:
    with TestClient(portal_app, base_url="http://127.0.0.1:8000", headers=ENGLISH) as client:
        seen = _recording(client)
        _console_and_api(client)
        client.cookies.clear()
        client.get("/portal/")
        assert ask_code(client, "plain@example.org").status_code == 303
        assert enter_code(client, code_in(sink, "plain@example.org")).status_code == 303
        assert client.cookies.get("fmcard_portal")
    assert "fmcard_session" in _check(seen, https=False)


def test_production_cookies_are_secure_behind_a_proxy_speaking_plain_http(
    portal_app: FastAPI,
) -> None:
    """A TLS-terminating proxy on the same host may pass the request on as plain http to
    127.0.0.1: the browser still speaks https, and its cookies must be Secure. (The settings
    are swapped in place: a production start needs real keys, and only these two settings
    decide the rule.)"""
    portal_app.state.settings = portal_app.state.settings.model_copy(
        update={"environment": Environment.PRODUCTION, "public_base_url": "https://cards.example"}
    )
    with TestClient(portal_app, base_url="http://127.0.0.1:8000", headers=ENGLISH) as client:
        seen = _recording(client)
        client.get("/console/login")
        client.get("/portal/sign-in?lang=en")
    names = _check(seen, https=True)
    assert {"__Host-fmcard_login_csrf", "__Host-fmcard_portal_csrf", "lang"} <= names


# --- the portal's CSRF token is bound to the portal session --------------------------------


def _signed_in(app: FastAPI, sink: MailSink, address: str) -> TestClient:
    client = TestClient(app, base_url=HTTPS, headers=ENGLISH)
    sign_in(client, sink, address)
    return client


def _signed_out(response: httpx.Response) -> bool:
    return response.status_code == 303 and response.headers["location"] == "/portal/"


def test_a_token_of_one_portal_session_is_refused_in_another(
    portal_app: FastAPI, sink: MailSink
) -> None:
    owner = _signed_in(portal_app, sink, "owner@example.org")
    other = _signed_in(portal_app, sink, "other@example.org")
    foreign = csrf_of(owner)
    assert foreign != csrf_of(other)
    refused = other.post("/portal/sign-out", data={"csrf": foreign}, follow_redirects=False)
    assert refused.status_code == 403
    assert "This form has expired" in refused.text
    assert other.cookies.get(SESSION_COOKIE)  # still signed in
    # Nor does a token made before the session (the nonce's) act for it.
    fresh = TestClient(portal_app, base_url=HTTPS, headers=ENGLISH)
    early = csrf_of(fresh)
    sign_in(fresh, sink, "fresh@example.org")
    stale = fresh.post("/portal/sign-out", data={"csrf": early}, follow_redirects=False)
    assert stale.status_code == 403
    own = other.post("/portal/sign-out", data={"csrf": csrf_of(other)}, follow_redirects=False)
    assert _signed_out(own)


def test_a_tossed_csrf_cookie_does_not_let_another_site_post_as_the_holder(
    portal_app: FastAPI, sink: MailSink
) -> None:
    """Cookie tossing: a sibling subdomain sets a CSRF cookie it knows (it cannot name it
    ``__Host-``) and posts the same value. Double-submit alone would accept it."""
    victim = _signed_in(portal_app, sink, "victim@example.org")
    for name in ("fmcard_portal_csrf", "__Host-fmcard_portal_csrf"):
        victim.cookies.set(name, "attacker-chosen")
    forged = victim.post(
        "/portal/sign-out", data={"csrf": "attacker-chosen"}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert victim.cookies.get(SESSION_COOKIE)


def test_send_me_a_code_needs_the_token_of_its_own_nonce(
    portal_app: FastAPI, sink: MailSink
) -> None:
    """The one form without any address yet: its token is bound to a pre-session nonce
    cookie set with the page; a value chosen by another site, or another browser's token,
    sends no code."""
    first = TestClient(portal_app, base_url=HTTPS, headers=ENGLISH)
    second = TestClient(portal_app, base_url=HTTPS, headers=ENGLISH)
    tossed: Callable[[TestClient], httpx.Response] = lambda client: client.post(  # noqa: E731
        "/portal/sign-in",
        data={"email": "target@example.org", "next": "apply", "csrf": "attacker-chosen"},
        follow_redirects=False,
    )
    second.cookies.set("fmcard_portal_csrf", "attacker-chosen")
    assert tossed(second).status_code == 403
    borrowed = second.post(
        "/portal/sign-in",
        data={"email": "target@example.org", "next": "apply", "csrf": csrf_of(first)},
        follow_redirects=False,
    )
    assert borrowed.status_code == 403
    assert sink.to("target@example.org") == []
    assert ask_code(second, "target@example.org").status_code == 303


def test_two_pending_cookies_of_one_address_in_one_second_differ() -> None:
    """The code-awaiting cookie anchors the code page's CSRF tokens: made from the address and
    its end time alone, anyone asking a code for the holder's address in the same second got
    the holder's very cookie, and so valid tokens for the holder's forms."""
    key, until = b"k" * 32, datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    first = portal_session.sign_address(key, "pending", "holder@example.org", until=until)
    second = portal_session.sign_address(key, "pending", "holder@example.org", until=until)
    assert first != second
    for value in (first, second):
        read = portal_session.read_address(key, "pending", value, at=until - timedelta(minutes=1))
        assert read == "holder@example.org"
