"""The console's session cookie never authenticates a change through the JSON API.

A browser sends the cookie with any request to the service, also one that another site makes
it send (a form posting ``text/plain``, a ``fetch`` without credentials checks). So every
route of the API with a method other than GET or HEAD, enumerated from the application
itself, is sent with only a logged-in officer's cookie, a foreign ``Origin`` and a
``text/plain`` or JSON body: each answers 401 and nothing changes. Reading with the cookie
(the console's images and downloads) and the console's own forms, which carry its CSRF
token, keep working. Every route outside the API that changes something (the console's,
the portal's and the holder page's forms), enumerated the same way, refuses a post from
another site that carries every cookie but not the form's CSRF token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from cardissuer.portal import codes
from cardissuer.portal import session as portal_cookies
from cardissuer.web.holder import DEVICE_COOKIE
from tests.cardissuer import applications
from tests.cardissuer.test_api_helpers import (
    BACKENDS,
    Service,
    assert_problem,
    new_passport,
    shared_service,
)

SAFE = {"GET", "HEAD", "OPTIONS"}
FOREIGN = "https://attacker.example"


def unsafe_api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every /api route that changes something, as routed."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)  # included routers
        entries = [(c.path, c.original_route) for c in contexts()] if contexts else []
        entries.append((getattr(route, "path", ""), route))
        for path, original in entries:
            methods = getattr(original, "methods", None) or set()
            if path.startswith("/api/"):
                found.update((method, path) for method in methods - SAFE)
    # Whatever the router's internals, every documented write is among them.
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path.startswith("/api/") and method.upper() not in SAFE
    }
    assert documented <= found, documented - found
    return sorted(found)


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def token_of(service: Service, username: str) -> str:
    return service.headers(username)["Authorization"].removeprefix("Bearer ")


def victim(service: Service) -> dict[str, str]:
    """Path values of a fresh person with a card, a grant and a passport, and an application."""
    code, card = service.with_card(("hc", "bk"))
    person = service.person(code)
    return {
        "code": code,
        "serial": card["serial"],
        "grant_id": str(person["grants"][0]["id"]),
        "country": "FRA",
        "number": person["passports"][-1]["number"],
        "state": "lost",
        "username": "registrar",
        "reference": applications.submit(service.app.state.engine),
    }


def body_for(service: Service, path: str) -> Any:
    """A body the route would accept from a logged-in officer."""
    passport = {"number": new_passport(), "issuing_country": "FRA"}
    bodies: dict[str, Any] = {
        "/api/persons": service.person_body(),
        "/api/persons/{code}/passports": {"passport": passport, "reason": "renewed"},
        "/api/persons/{code}/passports/link": passport,
        "/api/persons/{code}/grants": {"service": "ed"},
        "/api/cards/{serial}/revoke": {"reason": "forged"},
        "/api/cards/{serial}/suspend": {"reason": "forged"},
        "/api/offices": {"code": "YW-FORGED", "name_en": "Forged", "name_zh": "Forged"},
        "/api/officers": {
            "username": "forged.officer",
            "display_name": "Forged",
            "role": "supervisor",
            "password": "long-enough-password",
        },
        "/api/officers/{username}": {"active": False},
        "/api/auth/login": {"username": "supervisor", "password": "wrong"},
        "/api/applications/{reference}/ask": {"question": "Forged?"},
        "/api/applications/{reference}/reject": {"reason": "other"},
        "/api/applications/{reference}/dispatch": {"courier": "X", "tracking_number": "1"},
    }
    return bodies.get(path, {})


@pytest.mark.parametrize("username", ["supervisor", "admin"])
def test_every_change_refuses_the_cookie_alone(service: Service, username: str) -> None:
    token = token_of(service, username)
    routes = unsafe_api_routes(service.app)
    assert len(routes) >= 15
    for method, template in routes:
        if template == "/api/auth/login":
            continue  # takes no session; see test_login_cannot_be_forged_by_another_site
        values = victim(service) if "{" in template else {}
        path = template.format(**values)
        body = json.dumps(body_for(service, template))
        for content_type in ("text/plain", "application/json"):
            before = service.snapshot()
            response = service.client.request(
                method,
                path,
                content=body,
                headers={
                    "Cookie": f"fmcard_session={token}",
                    "Origin": FOREIGN,
                    "Content-Type": content_type,
                },
            )
            where = f"{method} {template} ({content_type})"
            assert service.snapshot() == before, f"{where} changed the records"
            if template == "/api/auth/logout":  # nothing to end: the session goes on
                assert response.status_code == 200, where
                assert "set-cookie" not in response.headers, where
                continue
            problem = assert_problem(response, 401, "authentication-failed")
            assert "Authorization: Bearer" in problem["detail"], where
    # The cookie still reads, and its session was never ended.
    code = victim(service)["code"]
    me = service.client.get("/api/auth/me", headers={"Cookie": f"fmcard_session={token}"})
    assert me.status_code == 200
    assert me.json()["username"] == username
    person = service.client.get(
        f"/api/persons/{code}", headers={"Cookie": f"fmcard_session={token}"}
    )
    assert person.status_code == 200


def test_the_attacks_that_worked_need_the_bearer_token(service: Service) -> None:
    """Suspend, reinstate, issue and report a passport lost: refused with the cookie, done
    with the same session's bearer token (the requests themselves are sound)."""
    headers = service.headers("supervisor")
    token = headers["Authorization"].removeprefix("Bearer ")
    values = victim(service)
    attacks = [
        ("POST", "/api/cards/{serial}/suspend", 200),
        ("POST", "/api/cards/{serial}/reinstate", 200),
        ("POST", "/api/persons/{code}/cards", 201),
        ("POST", "/api/passports/{country}/{number}/{state}", 200),
    ]
    for method, template, done in attacks:
        path = template.format(**values)
        forged = service.client.request(
            method,
            path,
            content="{}",
            headers={
                "Cookie": f"fmcard_session={token}",
                "Origin": FOREIGN,
                "Content-Type": "text/plain",
            },
        )
        assert_problem(forged, 401, "authentication-failed")
        sound = service.client.request(method, path, headers=headers)
        assert sound.status_code == done, (template, sound.text)


def test_login_cannot_be_forged_by_another_site(service: Service) -> None:
    """A form on another site can post text/plain only: no session cookie comes back."""
    body = json.dumps({"username": "registrar", "password": "fmcard-demo-2026"})
    forged = service.client.post(
        "/api/auth/login",
        content=body,
        headers={"Origin": FOREIGN, "Content-Type": "text/plain"},
    )
    assert forged.status_code == 415
    assert "set-cookie" not in forged.headers


def test_the_console_reads_and_logs_out_with_its_cookie(service: Service) -> None:
    code = victim(service)["code"]
    client = service.client
    client.cookies.clear()
    login = client.get("/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', login.text)
    assert nonce is not None
    logged_in = client.post(
        "/console/login",
        data={"username": "registrar", "password": "fmcard-demo-2026", "nonce": nonce.group(1)},
        follow_redirects=False,
    )
    assert logged_in.status_code == 303, logged_in.text
    cookie = client.cookies.get("fmcard_session")
    assert cookie
    try:
        page = client.get(f"/console/persons/{code}")
        assert page.status_code == 200
        assert client.get(f"/api/persons/{code}").status_code == 200  # cookie reads the API
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
        assert csrf is not None
        out = client.post("/console/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
        assert out.status_code == 303
    finally:
        client.cookies.clear()
    ended = client.get("/api/auth/me", headers={"Cookie": f"fmcard_session={cookie}"})
    assert_problem(ended, 401, "authentication-failed")


# --- every form outside the API: the console, the portal and the holder page ------------------


def unsafe_page_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route outside /api that changes something."""
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.router.routes):
        path = context.path_format or ""
        if not path.startswith("/api/"):
            found.update((method, path) for method in set(context.methods or ()) - SAFE)
    return sorted(found)


def test_every_form_outside_the_api_refuses_a_cross_site_post(service: Service) -> None:
    """Each console, portal and holder-page route that changes something, sent every cookie a
    victim's browser would hold (the officer's session, the holder's portal session, a CSRF
    nonce cookie tossed in with the forged token's value, the phone's device cookie) from
    another site: as text/plain, and as a form without the CSRF token or with a forged one.
    Each is refused (403) and nothing changes."""
    values = victim(service)
    values.update({"decision": "approve", "action": "suspend"})
    link = service.client.post(
        f"/api/cards/{values['serial']}/holder-link", headers=service.headers("supervisor")
    )
    assert link.status_code == 201, link.text
    values["token"] = link.json()["url"].rsplit("/", 1)[1]
    phone = TestClient(service.app)
    assert phone.get(f"/h/{values['token']}").status_code == 200  # registers the device
    device = phone.cookies.get(DEVICE_COOKIE)
    assert device
    settings = service.app.state.settings
    key = codes.portal_key(settings.session_secret.get_secret_value())
    until = datetime.now(UTC) + timedelta(hours=1)
    cookies = "; ".join(
        [
            f"fmcard_session={token_of(service, 'supervisor')}",
            f"{portal_cookies.SESSION_COOKIE}="
            + portal_cookies.sign_session(
                key, "applicant@example.org", jti=portal_cookies.new_session_id(), until=until
            ),
            # A nonce cookie tossed in from a sibling subdomain, equal to the forged field:
            # the portal's token is bound to the session, so double-submit is not enough.
            f"{portal_cookies.NONCE_COOKIE}=forged",
            f"{DEVICE_COOKIE}={device}",
        ]
    )
    fields = {
        "email": "applicant@example.org",
        "code": "123456",
        "username": "supervisor",
        "password": "fmcard-demo-2026",
        "reason": "forged",
        "question": "Forged?",
        "answer": "Forged",
        "service": "ed",
        "services": "ed",
        "jwk": "{}",
    }
    routes = unsafe_page_routes(service.app)
    assert {"/console/logout", "/portal/apply", "/h/{token}/device-key"} <= {p for _, p in routes}
    for method, template in routes:
        path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)
        attempts: list[tuple[str, dict[str, str], str | None]] = [
            ("text/plain", {}, json.dumps(fields)),
            ("form", fields, None),
            ("form", {**fields, "csrf": "forged", "nonce": "forged"}, None),
        ]
        for kind, data, content in attempts:
            before = service.snapshot()
            headers = {"Cookie": cookies, "Origin": FOREIGN, "Sec-Fetch-Site": "cross-site"}
            if content is not None:
                headers["Content-Type"] = "text/plain"
            response = service.client.request(
                method,
                path,
                content=content,
                data=data or None,
                headers=headers,
                follow_redirects=False,
            )
            where = f"{method} {template} ({kind}, {sorted(data)[:1]})"
            assert service.snapshot() == before, f"{where} changed the records"
            assert response.status_code == 403, f"{where}: {response.status_code}"
    phone.close()
