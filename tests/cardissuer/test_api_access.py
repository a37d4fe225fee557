"""Officers, offices and roles: deny by default, audited refusals, sessions, the login limit."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from PIL import Image
from sqlalchemy import update
from sqlmodel import Session, col

from cardissuer.core.config import DEVELOPMENT_SESSION_SECRET
from cardissuer.core.security import SESSION_AUDIENCE, issue_session
from cardissuer.models import LoginAttemptRecord, OfficerRecord, Role
from cardissuer.seed import DEMO_PASSWORD
from cardissuer.services import access
from keys.jwk import generate, public_jwk
from schemas import code as foreigner_code
from tests.cardissuer.test_api_helpers import (
    BACKENDS,
    OTHER_OFFICE,
    Service,
    assert_problem,
    login,
    new_passport,
    shared_service,
)


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 150), (128, 90, 60)).save(buffer, "JPEG")
    return buffer.getvalue()


# What each write looks like: method, path (with {code}, {serial}, {number}), body.
ACTIONS: dict[str, tuple[str, str, Any]] = {
    "read": ("GET", "/api/persons/{code}", None),
    "register": ("POST", "/api/persons", "person"),
    "change-passport": ("POST", "/api/persons/{code}/passports", "passport-change"),
    "link-passport": ("POST", "/api/persons/{code}/passports/link", "passport"),
    "mark-lost": ("POST", "/api/passports/FRA/{number}/lost", None),
    "portrait": ("PUT", "/api/persons/{code}/portrait", "photo"),
    "grant": ("POST", "/api/persons/{code}/grants", {"service": "ed"}),
    "withdraw": ("DELETE", "/api/persons/{code}/grants/{grant}", None),
    "issue": ("POST", "/api/persons/{code}/cards", None),
    "suspend": ("POST", "/api/cards/{serial}/suspend", {"reason": "x"}),
    "revoke": ("POST", "/api/cards/{serial}/revoke", {"reason": "x"}),
    "create-officer": (
        "POST",
        "/api/officers",
        {"username": "{fresh}", "display_name": "X", "role": "registrar", "password": "p" * 12},
    ),
    "create-admin": (
        "POST",
        "/api/officers",
        {"username": "{fresh}", "display_name": "X", "role": "admin", "password": "p" * 12},
    ),
    "create-office": ("POST", "/api/offices", {"code": "{FRESH}", "name_en": "X", "name_zh": "X"}),
    "read-audit": ("GET", "/api/audit", None),
    "list-officers": ("GET", "/api/officers", None),
}

DENIED_IN_OWN_OFFICE = [
    ("registrar", "suspend"),
    ("registrar", "revoke"),
    ("registrar", "create-officer"),
    ("registrar", "create-office"),
    ("registrar", "read-audit"),
    ("registrar", "list-officers"),
    ("auditor", "register"),
    ("auditor", "change-passport"),
    ("auditor", "link-passport"),
    ("auditor", "mark-lost"),
    ("auditor", "portrait"),
    ("auditor", "grant"),
    ("auditor", "withdraw"),
    ("auditor", "issue"),
    ("auditor", "revoke"),
    ("auditor", "create-officer"),
    ("admin", "register"),
    ("admin", "grant"),
    ("admin", "issue"),
    ("admin", "revoke"),
    ("supervisor", "create-office"),
    ("supervisor", "create-admin"),
    ("supervisor", "read-audit"),
]


def target_of(service: Service, code: str) -> dict[str, Any]:
    """The person ``code``, their card, passport and first grant, as path values."""
    person = service.person(code)
    return {
        "code": code,
        "serial": person["cards"][0]["serial"],
        "number": person["passports"][-1]["number"],
        "grant": person["grants"][0]["id"],
    }


@pytest.fixture(scope="module")
def target(service: Service) -> dict[str, Any]:
    """A person with a card in the first office, for refusals (they change nothing)."""
    code, _ = service.with_card(("hc", "bk"))
    return target_of(service, code)


def attempt(service: Service, headers: dict[str, str], action: str, values: dict[str, Any]) -> Any:
    """Send ``action`` against a person (and their card, passport and grant)."""
    method, path, body = ACTIONS[action]
    fresh = new_passport().lower()
    passport = {"number": new_passport(), "issuing_country": "FRA"}
    if body == "person":
        body = service.person_body()
    elif body == "passport":
        body = passport
    elif body == "passport-change":
        body = {"passport": passport}
    elif isinstance(body, dict):
        body = {k: v.format(fresh=fresh, FRESH=fresh.upper()) if isinstance(v, str) else v
                for k, v in body.items()}  # fmt: skip
    if body == "photo":
        return service.client.request(
            method,
            path.format(**values),
            headers=headers,
            files={"photo": ("me.jpg", jpeg(), "image/jpeg")},
        )
    return service.client.request(method, path.format(**values), headers=headers, json=body)


@pytest.mark.parametrize(
    ("role", "action"), DENIED_IN_OWN_OFFICE, ids=[f"{r}-{a}" for r, a in DENIED_IN_OWN_OFFICE]
)
def test_roles_are_refused_what_access_does_not_grant_and_refusals_are_audited(
    service: Service, target: dict[str, Any], role: str, action: str
) -> None:
    headers = service.headers(role)
    before, seq = service.snapshot(), service.audit_seq()
    response = attempt(service, headers, action, target)
    assert_problem(response, 403, "access-denied")
    assert service.snapshot() == before
    [entry] = service.audit_after(seq)
    assert (entry.outcome, entry.officer_id, entry.record_type) == (
        "denied",
        service.actor(role).officer_id,
        "request",
    )
    assert target["code"] not in entry.record_id  # only a digest of the target is kept


@pytest.mark.parametrize(
    ("role", "action", "status"),
    [("auditor", "read", 200), ("auditor", "read-audit", 200), ("admin", "read", 200),
     ("admin", "read-audit", 200), ("admin", "create-office", 201),
     ("admin", "create-admin", 201), ("supervisor", "create-officer", 201),
     ("supervisor", "list-officers", 200), ("registrar", "portrait", 200)],
    ids=lambda value: str(value),
)  # fmt: skip
def test_roles_may_do_what_access_grants(
    service: Service, role: str, action: str, status: int
) -> None:
    code, _ = service.with_card(("hc", "bk"))
    seq = service.audit_seq()
    response = attempt(service, service.headers(role), action, target_of(service, code))
    assert response.status_code == status, response.text
    assert all(entry.outcome == "ok" for entry in service.audit_after(seq))


# --- offices ---------------------------------------------------------------------------------

OTHER_OFFICE_ACTIONS = [
    "read",
    "change-passport",
    "link-passport",
    "mark-lost",
    "portrait",
    "grant",
    "withdraw",
    "issue",
    "suspend",
    "revoke",
]


@pytest.mark.parametrize("action", OTHER_OFFICE_ACTIONS)
@pytest.mark.parametrize("role", [Role.REGISTRAR, Role.SUPERVISOR])
def test_another_offices_records_are_not_found_and_nothing_changes(
    service: Service, target: dict[str, Any], role: Role, action: str
) -> None:
    outsider = service.officer(f"{role.value}-b", role, OTHER_OFFICE)
    before, seq = service.snapshot(), service.audit_seq()
    response = attempt(service, outsider, action, target)
    problem = assert_problem(response, 404, "not-found")
    assert service.snapshot() == before
    [entry] = service.audit_after(seq)
    assert (entry.outcome, entry.officer_id) == (
        "denied",
        service.actor(f"{role.value}-b").officer_id,
    )
    # Exactly the answer for a code, serial or passport that does not exist.
    unknown = service.client.request(
        response.request.method,
        str(response.request.url)
        .replace(target["code"], foreigner_code.generate())
        .replace(target["serial"], "ZZZZZZZZZZ")
        .replace(target["number"], "NOSUCH1"),
        headers=outsider,
        content=response.request.content,
        params=None,
    )
    if unknown.status_code == 404:
        assert {k: v for k, v in unknown.json().items() if k != "instance"} == {
            k: v for k, v in problem.items() if k != "instance"
        }


PERSON_PARAMETERS = {"code", "serial", "number"}
"""Path parameters naming a person or one of their cards or passports."""


def person_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, template) of every /api route, as routed, with a parameter naming a person or
    their card or passport (:data:`PERSON_PARAMETERS`)."""
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.router.routes):
        path = context.path_format or ""
        if path.startswith("/api/") and PERSON_PARAMETERS & set(re.findall(r"\{(\w+)", path)):
            found.update((method, path) for method in context.methods or ())
    return sorted(found - {("HEAD", path) for _, path in found})


def person_request(
    service: Service, headers: dict[str, str], method: str, template: str, values: dict[str, str]
) -> Any:
    """``method`` on ``template`` for the person ``values``, with a body the route accepts."""
    path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)
    if template.endswith("/portrait") and method == "PUT":
        files = {"photo": ("me.jpg", jpeg(), "image/jpeg")}
        return service.client.request(method, path, headers=headers, files=files)
    passport = {"number": new_passport(), "issuing_country": "FRA"}
    bodies: dict[str, Any] = {
        "/api/persons/{code}/passports": {"passport": passport},
        "/api/persons/{code}/passports/link": passport,
        "/api/persons/{code}/grants": {"service": "ed"},
        "/api/persons/{code}/phone-cards": {"device_jwk": public_jwk(generate().public_key())},
        "/api/cards/{serial}/suspend": {"reason": "x"},
        "/api/cards/{serial}/reinstate": {"reason": "x"},
        "/api/cards/{serial}/revoke": {"reason": "x"},
    }
    return service.client.request(method, path, headers=headers, json=bodies.get(template))


def test_the_person_routes_are_every_route_on_a_person_card_or_passport(service: Service) -> None:
    routes = person_routes(service.app)
    assert {
        ("POST", "/api/persons/{code}/phone-cards"),
        ("POST", "/api/cards/{serial}/holder-link"),
        ("POST", "/api/persons/{code}/cards"),
        ("GET", "/api/persons/{code}"),
    } <= set(routes)
    assert len(routes) >= 20


@pytest.mark.parametrize("role", [Role.REGISTRAR, Role.SUPERVISOR])
def test_every_person_route_answers_another_offices_person_as_not_found(
    service: Service, role: Role
) -> None:
    """Every /api route on a person, their card or passport (enumerated from the app, so a
    new route is checked too: phone cards and holder links among them) answers an officer of
    another office, whose reach is one office, exactly as it answers an unknown code, serial
    or passport: 404 and nothing changed."""
    code, _ = service.with_card(("hc", "bk"))
    person = target_of(service, code)
    values = {**person, "grant_id": str(person["grant"]), "country": "FRA", "state": "lost"}
    unknown = {
        **values,
        "code": foreigner_code.generate(),
        "serial": "ZZZZZZZZZZ",
        "number": "NOSUCH1",
    }
    outsider = service.officer(f"{role.value}-b", role, OTHER_OFFICE)
    for method, template in person_routes(service.app):
        before = service.snapshot()
        response = person_request(service, outsider, method, template, values)
        problem = assert_problem(response, 404, "not-found")
        assert service.snapshot() == before, (method, template)
        answer = person_request(service, outsider, method, template, unknown)
        assert_problem(answer, 404, "not-found")
        assert {k: v for k, v in answer.json().items() if k != "instance"} == {
            k: v for k, v in problem.items() if k != "instance"
        }, (method, template)


@pytest.mark.parametrize("office", [None, OTHER_OFFICE])
def test_an_auditor_issues_no_card_phone_card_or_holder_link(
    service: Service, office: str | None
) -> None:
    """Auditors read every office's persons but issue nothing, in their office or another."""
    code, card = service.with_card(("hc",))
    auditor = service.officer(f"auditor-{office or 'a'}", Role.AUDITOR, office)
    values = {"code": code, "serial": card["serial"]}
    for template in (
        "/api/persons/{code}/cards",
        "/api/persons/{code}/phone-cards",
        "/api/cards/{serial}/holder-link",
    ):
        before = service.snapshot()
        response = person_request(service, auditor, "POST", template, values)
        assert_problem(response, 403, "access-denied")
        assert service.snapshot() == before, template
    # The same requests are what an issuing officer of the person's office may send.
    registrar = service.headers("registrar")
    for template in ("/api/persons/{code}/phone-cards", "/api/cards/{serial}/holder-link"):
        done = person_request(service, registrar, "POST", template, values)
        assert done.status_code == 201, done.text


def test_another_offices_persons_are_not_listed_or_found_by_passport(service: Service) -> None:
    code = service.register(family_name="HIDDENFROMB")
    number = service.person(code)["passports"][0]["number"]
    outsider = service.officer("registrar-b", Role.REGISTRAR, OTHER_OFFICE)
    search = service.client.get("/api/persons", headers=outsider, params={"q": "HIDDENFROMB"})
    assert search.json()["items"] == []
    assert_problem(
        service.client.get(f"/api/passports/{number}", headers=outsider), 404, "not-found"
    )
    for role in ("admin", "auditor"):
        found = service.client.get(
            "/api/persons", headers=service.headers(role), params={"q": "HIDDENFROMB"}
        )
        assert [p["code"] for p in found.json()["items"]] == [code]
        by_passport = service.client.get(f"/api/passports/{number}", headers=service.headers(role))
        assert by_passport.json()["code"] == code


def test_admins_manage_every_office_and_supervisors_only_their_own(service: Service) -> None:
    body = {"display_name": "Sun Li", "role": "registrar", "password": "long-enough-password"}
    created = service.client.post(
        "/api/officers",
        headers=service.headers("admin"),
        json={**body, "username": "sun.li.b", "office_code": OTHER_OFFICE},
    )
    assert created.status_code == 201, created.text
    assert created.json()["office_code"] == OTHER_OFFICE
    before = service.snapshot()
    refused = service.client.post(
        "/api/officers",
        headers=service.headers("supervisor"),
        json={**body, "username": "sun.li.c", "office_code": OTHER_OFFICE},
    )
    assert_problem(refused, 403, "access-denied")
    assert service.snapshot() == before
    listed = service.client.get("/api/officers", headers=service.headers("supervisor"))
    assert {o["office_code"] for o in listed.json()["items"]} == {"YW-FUTIAN"}
    everyone = service.client.get(
        "/api/officers", headers=service.headers("admin"), params={"limit": 100}
    )
    assert "sun.li.b" in [o["username"] for o in everyone.json()["items"]]
    taken = service.client.post(
        "/api/officers",
        headers=service.headers("admin"),
        json={**body, "username": "sun.li.b"},
    )
    assert_problem(taken, 409, "conflict")


def test_every_permission_is_denied_unless_listed() -> None:
    actors = [access.Actor(1, 1, role, role.value) for role in Role]
    for actor in actors:
        assert not access.allowed(actor, "card.delete")
        assert not access.allowed(actor, "")
        for permission, roles in access.PERMISSIONS.items():
            assert access.allowed(actor, permission) is (actor.role in roles)
            other = access.allowed(actor, permission, office_id=2)
            assert other is (
                actor.role in roles
                and permission in access.ALL_OFFICES.get(actor.role, frozenset())
            )


def test_every_api_route_needs_a_session(service: Service) -> None:
    open_routes = {"/api/auth/login", "/api/auth/logout"}
    checked = 0
    for template, operations in service.app.openapi()["paths"].items():
        if not template.startswith("/api/") or template in open_routes:
            continue
        path = (
            template.replace("{code}", "7K2M9QXR4T")
            .replace("{serial}", "ABCDEFGHJK")
            .replace("{grant_id}", "1")
            .replace("{country}", "FRA")
            .replace("{number}", "K1234567")
            .replace("{state}", "lost")
        )
        for method in operations:
            response = service.client.request(method.upper(), path, json={})
            assert_problem(response, 401, "authentication-failed")
            assert response.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 20


# --- sessions and logins ---------------------------------------------------------------------


def _token(claims: dict[str, Any], secret: str = DEVELOPMENT_SESSION_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def bad_tokens(officer_id: int) -> dict[str, str]:
    now = datetime.now(UTC)
    valid = {
        "sub": str(officer_id),
        "aud": SESSION_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": "a-session-id",
    }
    return {
        "garbage": "not-a-token",
        "empty-bearer": "",
        "expired": issue_session(
            officer_id, secret=DEVELOPMENT_SESSION_SECRET, at=now - timedelta(hours=2), minutes=30
        ),
        "other-secret": _token(valid, "another-secret-of-sufficient-length!"),
        "alg-none": jwt.encode(valid, "", algorithm="none"),
        "other-audience": _token({**valid, "aud": "someone-else"}),
        "no-expiry": _token({k: v for k, v in valid.items() if k != "exp"}),
        "unknown-officer": _token({**valid, "sub": "999999"}),
        "non-numeric-subject": _token({**valid, "sub": "admin"}),
        "no-session-id": _token({k: v for k, v in valid.items() if k != "jti"}),
        "numeric-session-id": _token({**valid, "jti": 7}),
    }


@pytest.mark.parametrize(
    "kind",
    ["garbage", "empty-bearer", "expired", "other-secret", "alg-none", "other-audience",
     "no-expiry", "unknown-officer", "non-numeric-subject", "no-session-id",
     "numeric-session-id"],
)  # fmt: skip
def test_bad_session_tokens_are_refused(service: Service, kind: str) -> None:
    token = bad_tokens(service.actor("registrar").officer_id)[kind]
    for headers in ({"Authorization": f"Bearer {token}"}, {"Cookie": f"fmcard_session={token}"}):
        response = service.client.get("/api/auth/me", headers=headers)
        assert_problem(response, 401, "authentication-failed")
        assert token not in response.text or not token


def test_logging_out_ends_the_session_everywhere(service: Service) -> None:
    code = service.register()
    assert (
        service.client.post(
            f"/api/persons/{code}/grants",
            headers=service.headers("registrar"),
            json={"service": "hc"},
        ).status_code
        == 201
    )
    ending = login(service.client, "registrar")
    staying = login(service.client, "registrar")  # another device of the same officer
    assert service.client.get("/api/auth/me", headers=ending).status_code == 200

    out = service.client.post("/api/auth/logout", headers=ending)

    assert out.status_code == 200
    for method, path in (("GET", "/api/auth/me"), ("POST", f"/api/persons/{code}/cards")):
        refused = service.client.request(method, path, headers=ending)
        assert_problem(refused, 401, "authentication-failed")
        assert "logged out" in refused.json()["detail"]
        cookie = {"Cookie": "fmcard_session=" + ending["Authorization"].removeprefix("Bearer ")}
        assert service.client.request(method, path, headers=cookie).status_code == 401
    assert service.client.get("/api/auth/me", headers=staying).status_code == 200
    assert service.client.post(f"/api/persons/{code}/cards", headers=staying).status_code == 201
    # Logging out again, or without any session, changes nothing and says the same.
    assert service.client.post("/api/auth/logout", headers=ending).status_code == 200
    assert service.client.post("/api/auth/logout").status_code == 200


def test_a_disabled_officer_is_refused_at_once(service: Service) -> None:
    headers = service.officer("soon.disabled", Role.REGISTRAR)
    assert service.client.get("/api/auth/me", headers=headers).status_code == 200
    with Session(service.engine) as session:
        session.exec(
            update(OfficerRecord)
            .where(col(OfficerRecord.username) == "soon.disabled")
            .values(active=False)
        )
        session.commit()
    assert_problem(
        service.client.get("/api/persons", headers=headers), 401, "authentication-failed"
    )
    relogin = service.client.post(
        "/api/auth/login", json={"username": "soon.disabled", "password": DEMO_PASSWORD}
    )
    assert_problem(relogin, 401, "authentication-failed")


def test_five_failed_logins_block_even_the_right_password(service: Service) -> None:
    service.officer("brute.target", Role.REGISTRAR)
    wrong = {"username": "brute.target", "password": "wrong password"}
    for _ in range(5):
        assert_problem(
            service.client.post("/api/auth/login", json=wrong), 401, "authentication-failed"
        )
    right = {"username": "brute.target", "password": DEMO_PASSWORD}
    blocked = service.client.post("/api/auth/login", json=right)
    assert_problem(blocked, 429, "rate-limited")
    assert int(blocked.headers["retry-after"]) > 0
    assert service.failed_logins("brute.target") == 5
    # Other accounts are not affected.
    login(service.client, "auditor")
    # Once the window has passed, the right password works and the count starts again.
    with Session(service.engine) as session:
        session.exec(
            update(LoginAttemptRecord)
            .where(col(LoginAttemptRecord.username) == "brute.target")
            .values(at=datetime.now(UTC) - timedelta(hours=1))
        )
        session.commit()
    assert service.client.post("/api/auth/login", json=right).status_code == 200
    assert service.failed_logins("brute.target") == 0


def test_unknown_users_fail_like_wrong_passwords(service: Service) -> None:
    unknown = service.client.post(
        "/api/auth/login", json={"username": "nobody.here", "password": "whatever"}
    )
    wrong = service.client.post(
        "/api/auth/login", json={"username": "registrar", "password": "whatever"}
    )
    assert (
        assert_problem(unknown, 401, "authentication-failed")["detail"]
        == (assert_problem(wrong, 401, "authentication-failed")["detail"])
    )
    with Session(service.engine) as session:
        session.exec(
            update(LoginAttemptRecord)
            .where(col(LoginAttemptRecord.username) == "registrar")
            .values(at=datetime.now(UTC) - timedelta(hours=1))
        )
        session.commit()


def test_retry_after_is_the_time_left_and_old_attempts_of_anyone_go(service: Service) -> None:
    from cardissuer.core.config import Environment
    from cardissuer.errors import AuthenticationError, RateLimitedError
    from cardissuer.services.officers import authenticate

    window = timedelta(minutes=5)
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with Session(service.engine) as session:  # names tried once, long ago, never again
        session.add(LoginAttemptRecord(username="ghost.one", at=start - timedelta(hours=2)))
        session.add(LoginAttemptRecord(username="ghost.two", at=start - timedelta(hours=1)))
        session.commit()
    for minute in range(5):  # five wrong guesses, a minute apart
        with pytest.raises(AuthenticationError):
            authenticate(
                service.engine, "retry.target", "wrong", at=start + timedelta(minutes=minute),
                attempts=5, window=window, environment=Environment.DEVELOPMENT,
            )  # fmt: skip
    assert service.failed_logins("ghost.one") == 0
    assert service.failed_logins("ghost.two") == 0
    with pytest.raises(RateLimitedError) as blocked:
        authenticate(
            service.engine, "retry.target", "wrong", at=start + timedelta(minutes=4, seconds=30),
            attempts=5, window=window, environment=Environment.DEVELOPMENT,
        )  # fmt: skip
    assert blocked.value.retry_after == 30  # the first guess leaves the window at 9:05:00
    assert "try again in 1 min" in str(blocked.value)
