"""Rules every route keeps, checked by enumerating the app's routes (API, console, holder and
publishing alike), so a route added later is checked without being listed here:

* a 405 names the methods its path accepts (``Allow``, RFC 9110);
* a body the service cannot read is a documented RFC 9457 problem, never a 500 or an
  undocumented type, and every problem type the code can answer with is in docs/ISSUER.md;
* the OpenAPI document states each answer's real media type;
* nothing with personal data may be stored by a cache (``Cache-Control: no-store``); only the
  publishing routes are public.
"""

from __future__ import annotations

import importlib
import io
import json
import pkgutil
import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, params
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from PIL import Image

import cardissuer
from cardissuer.api import problems
from cardissuer.errors import IssuerError
from cardissuer.seed import DEMO_PASSWORD
from keys.jwk import generate, public_jwk
from tests.cardissuer import applications
from tests.cardissuer.test_api_helpers import BACKENDS, Service, shared_service

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = frozenset({"/trust-list.jwt", "/jwks.json", "/status/{list_id}", "/bundle.json"})
"""What counters download: public, cacheable, no personal data."""
STATIC = "/static/{path}"


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


# --- the routes and the documented problem types -------------------------------------------


@dataclass(frozen=True)
class RouteInfo:
    path: str
    methods: frozenset[str]
    regex: re.Pattern[str]
    route: Any


def routes(app: FastAPI) -> list[RouteInfo]:
    """Every route of the app, included routers flattened (the static files are a mount)."""
    found = []
    for context in iter_route_contexts(app.router.routes):
        path = context.path_format
        assert path is not None
        methods = frozenset(context.methods or ({"GET", "HEAD"} if path == STATIC else set()))
        found.append(RouteInfo(path, methods, context.path_regex, context.original_route))
    return found


def concrete(path: str, values: dict[str, str] | None = None) -> str:
    """The template with its parameters filled in (``X1`` unless ``values`` has one)."""
    values = values or {}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "X1"), path)


def documented_codes() -> set[str]:
    """The problem codes of the "Errors" table of docs/ISSUER.md."""
    text = (ROOT / "docs" / "ISSUER.md").read_text(encoding="utf-8")
    section = text.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    row = r"^\| `([a-z0-9-]+)` \| \d{3}(?:, \d{3})* \|"  # a code, its status(es)
    codes = set(re.findall(row, section, flags=re.MULTILINE))
    assert len(codes) > 20, "the Errors table was not found"
    return codes


def _issuer_errors() -> Iterator[type[IssuerError]]:
    for module in pkgutil.walk_packages(cardissuer.__path__, "cardissuer."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    pending: list[type[IssuerError]] = [IssuerError]
    while pending:
        kind = pending.pop()
        yield kind
        pending.extend(kind.__subclasses__())


def test_every_problem_type_the_service_answers_with_is_documented() -> None:
    codes = documented_codes()
    answered = {kind.code for kind in _issuer_errors()}
    answered |= {code for code, _ in problems.HTTP_PROBLEMS.values()}
    answered |= {code for code, _, _ in problems._EXAMPLES.values()}
    source = (ROOT / "cardissuer" / "api" / "problems.py").read_text(encoding="utf-8")
    source += (ROOT / "cardissuer" / "main.py").read_text(encoding="utf-8")
    answered |= set(re.findall(r'"([a-z]+(?:-[a-z]+)+)",\n?\s*"[A-Z]', source))  # problem(...)
    answered |= set(re.findall(r'PROBLEM_TYPE_BASE \+ "([a-z-]+)"', source))
    assert answered - codes == set()
    assert "http-error" not in codes


# --- a. 405 and Allow ------------------------------------------------------------------------


def test_every_405_lists_every_method_its_path_accepts(service: Service) -> None:
    table = routes(service.app)
    checked = set()
    for info in table:
        url = concrete(info.path, {"path": "console.css"})
        accepted = set().union(*(other.methods for other in table if other.regex.match(url)))
        wrong = next(m for m in ("PATCH", "DELETE", "PUT", "POST", "GET") if m not in accepted)
        response = service.client.request(wrong, url)
        assert response.status_code == 405, (wrong, url, response.status_code)
        allow = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
        assert allow == accepted, (url, allow, accepted)
        if info.path.startswith("/api/") or info.path in PUBLISHED:
            assert response.headers["content-type"] == "application/problem+json", url
            assert response.json()["type"].endswith("/method-not-allowed")
        checked.add(info.path)
    assert {"/api/persons", "/console/login", "/bundle.json", "/h/{token}", STATIC} <= checked


# --- b. bodies the service cannot read -------------------------------------------------------

BAD_BODIES: list[tuple[str, bytes]] = [
    ("latin-1", '{"family_name": "MÜLLER"}'.encode("latin-1")),
    ("lone-continuation-byte", b'{"reason": "\x80"}'),
    ("utf-16", '{"reason": "x"}'.encode("utf-16")),
    ("utf-8-bom", b'\xef\xbb\xbf{"reason": "x"}'),
    ("nul", b"\x00"),
    ("10000-brackets", b"[" * 10_000),
    ("10000-nested-lists", b"[" * 10_000 + b"]" * 10_000),
    ("nested-objects", b'{"a":' * 5_000 + b"1" + b"}" * 5_000),
    ("nested-in-a-field", b'{"reason": ' + b"[" * 3_000 + b"]" * 3_000 + b"}"),
    ("5000-digits", b"1" * 5_000),
    ("5000-digit-field", b'{"valid_days": ' + b"9" * 5_000 + b', "reason": "x"}'),
    ("5000-digit-list", b"[" + b"7" * 5_000 + b"]"),
    ("huge-exponent", b'{"valid_days": 1e999999}'),
    ("nan", b'{"valid_days": NaN, "service": NaN}'),
    ("lone-surrogate", b'{"reason": "\\ud800", "family_name": "\\udfff"}'),
    ("truncated", b'{"reason": "x'),
    ("empty-object", b"{}"),
    ("null", b"null"),
    ("duplicate-keys", b'{"reason": "a", "reason": "b"}'),
]


def json_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route that reads a JSON body."""
    found: list[tuple[str, str]] = []
    for info in routes(app):
        route = info.route
        if not isinstance(route, APIRoute):
            continue
        bodies = route.dependant.body_params
        if bodies and not any(isinstance(b.field_info, params.Form) for b in bodies):
            found.extend((method, info.path) for method in sorted(info.methods))
    return found


def test_bad_bodies_at_every_json_route_are_documented_problems(service: Service) -> None:
    codes = documented_codes()
    targets = json_routes(service.app)
    assert len(targets) >= 12
    code, card = service.with_card()
    values = {"code": code, "serial": card["serial"]}
    officers = [{}, service.headers("supervisor"), service.headers("admin")]
    for (method, path), (name, body), headers in (
        (target, bad, who) for target in targets for bad in BAD_BODIES for who in officers
    ):
        for media_type in ("application/json", None):
            sent = {**headers, **({"Content-Type": media_type} if media_type else {})}
            response = service.client.request(
                method, concrete(path, values), headers=sent, content=body
            )
            where = (method, path, name, media_type, response.status_code)
            assert response.status_code < 500, (where, response.text)
            if response.status_code < 400:
                continue
            assert response.headers["content-type"] == "application/problem+json", where
            problem = response.json()
            assert problem["type"].startswith(problems.PROBLEM_TYPE_BASE), where
            assert problem["type"].removeprefix(problems.PROBLEM_TYPE_BASE) in codes, where
            assert problem["status"] == response.status_code


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"reason": "Ä"}'.encode("latin-1"), "the body is not UTF-8"),
        (b"[" * 10_000, "the body is nested too deeply"),
        (b"1" * 5_000, "a number in the body has too many digits"),
    ],
    ids=["latin-1", "deep", "digits"],
)
def test_an_unreadable_body_is_a_malformed_body_problem_that_says_why(
    service: Service, body: bytes, detail: str
) -> None:
    response = service.client.post(
        "/api/persons",
        headers={**service.headers("registrar"), "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == problems.PROBLEM_TYPE_BASE + "malformed-body"
    assert (problem["title"], problem["detail"]) == ("Malformed body", detail)


def test_a_broken_multipart_body_is_a_documented_problem(service: Service) -> None:
    code = service.register()
    for content_type, body in [
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\n"),
        ("multipart/form-data; boundary=x", b"\xff" * 100),
    ]:
        response = service.client.put(
            f"/api/persons/{code}/portrait",
            headers={**service.headers("registrar"), "Content-Type": content_type},
            content=body,
        )
        assert 400 <= response.status_code < 500, response.text
        problem = response.json()
        assert problem["type"].removeprefix(problems.PROBLEM_TYPE_BASE) in documented_codes()


# --- c and d: what every GET answers, its media type and its caching -------------------------


@dataclass(frozen=True)
class Answer:
    method: str
    path: str
    status: int
    media_type: str
    cache_control: str


def _portrait() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 150), (120, 100, 80)).save(buffer, "JPEG")
    return buffer.getvalue()


def _console(app: FastAPI, username: str) -> TestClient:
    """A client logged in through the console's cookie."""
    client = TestClient(app)
    login = client.post("/api/auth/login", json={"username": username, "password": DEMO_PASSWORD})
    assert login.status_code == 200, login.text
    return client


@pytest.fixture(scope="module")
def answers(service: Service) -> list[Answer]:
    """One real answer of every GET route (and the POST routes that answer with a document),
    each asked with parameters of a real person, card, status list and holder link, by the
    first officer who may read it."""
    code = service.with_card(("hc",))[0]
    registrar = service.headers("registrar")
    photo = {"photo": ("face.jpg", _portrait(), "image/jpeg")}
    set_portrait = service.client.put(
        f"/api/persons/{code}/portrait", headers=registrar, files=photo
    )
    assert set_portrait.status_code == 200, set_portrait.text
    person = service.person(code)
    serial = person["cards"][0]["serial"]
    list_id = service.cards_of(code)[-1].list_id
    values = {
        "code": code,
        "serial": serial,
        "number": person["passports"][0]["number"],
        "list_id": list_id,
        "path": "console.css",
    }
    # An online application of the supervisor's office, with its photos (the review queue).
    values["reference"] = applications.submit(service.app.state.engine)
    values["file_id"] = str(applications.file_ids(service.app.state.engine, values["reference"])[0])
    link = service.client.post(f"/api/cards/{serial}/holder-link", headers=registrar)
    assert link.status_code == 201, link.text
    values["token"] = link.json()["url"].rsplit("/", 1)[1]
    holder = TestClient(service.app)  # the holder's phone: its page registers the device
    assert holder.get(concrete("/h/{token}", values)).status_code == 200
    device_key = holder.post(  # the page's script binds the phone: the phone card exists
        concrete("/h/{token}/device-key", values),
        json={"jwk": public_jwk(generate())},
        headers={"Origin": "http://testserver"},
    )
    assert device_key.status_code == 201, device_key.text
    roles = ["supervisor", "auditor", "admin"]
    bearer = [service.headers(role) for role in roles]
    consoles = [_console(service.app, role) for role in roles]
    found = []
    for info in routes(service.app):
        for method in sorted(info.methods - {"HEAD"}):
            if method != "GET" and info.path != "/api/cards/sheet.pdf":
                continue
            url = concrete(info.path, values)
            response = None
            for index in range(len(roles)):
                if info.path.startswith("/h/"):
                    response = holder.get(url, follow_redirects=False)
                elif info.path.startswith("/console"):
                    response = consoles[index].get(url, follow_redirects=False)
                elif method == "POST":
                    response = service.client.post(url, headers=bearer[index], json=[serial])
                else:
                    response = service.client.get(url, headers=bearer[index])
                if response.status_code not in (401, 403):
                    break
            assert response is not None
            found.append(
                Answer(
                    method,
                    info.path,
                    response.status_code,
                    response.headers.get("content-type", "").split(";")[0],
                    response.headers.get("cache-control", ""),
                )
            )
    for client in [*consoles, holder]:
        client.close()
    return found


def test_every_route_answers_and_the_checks_below_are_not_vacuous(answers: list[Answer]) -> None:
    failed = [a for a in answers if a.status >= 400]
    assert failed == [], f"give these routes real parameters in `answers`: {failed}"
    assert len(answers) >= 40


def _directives(cache_control: str) -> set[str]:
    return {part.strip().lower() for part in cache_control.split(",") if part.strip()}


def test_nothing_but_the_published_documents_may_be_cached(answers: list[Answer]) -> None:
    for answer in answers:
        directives = _directives(answer.cache_control)
        if answer.path in PUBLISHED:
            assert "public" in directives, answer
            assert any(d.startswith("max-age=") for d in directives), answer
        elif answer.path == STATIC:
            assert "no-cache" in directives, answer  # no personal data; revalidated by ETag
        else:
            assert "no-store" in directives, answer
            assert "public" not in directives, answer


def test_errors_on_personal_routes_are_not_stored_either(service: Service) -> None:
    registrar = service.headers("registrar")
    for url in ["/api/persons/7K2M9QXR4T", "/api/cards/NOSUCHCARD/card.pdf", "/h/nosuchtoken"]:
        response = service.client.get(url, headers=registrar)
        assert response.status_code == 404, url
        assert "no-store" in _directives(response.headers["cache-control"]), url


def test_openapi_states_the_real_media_type_of_every_answer(
    service: Service, answers: list[Answer]
) -> None:
    paths = service.client.get("/openapi.json").json()["paths"]
    checked = set()
    for answer in answers:
        operation = paths.get(answer.path, {}).get(answer.method.lower())
        if operation is None:  # the console, the holder's pages, the docs: not the API
            continue
        success = next(status for status in operation["responses"] if status.startswith("2"))
        documented = set(operation["responses"][success].get("content", {}))
        assert answer.media_type in documented, (answer, documented)
        if answer.media_type != "application/json":
            assert "application/json" not in documented, (answer, documented)
        checked.add(answer.media_type)
    assert {
        "image/png",
        "image/avif",
        "application/pdf",
        "application/vnd.apple.pkpass",
        "application/json",
        "application/statuslist+jwt",
    } <= checked


def test_openapi_states_that_revoking_needs_a_reason(service: Service) -> None:
    document = service.client.get("/openapi.json").json()
    body = document["paths"]["/api/cards/{serial}/revoke"]["post"]["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[1]
    component = document["components"]["schemas"][name]
    assert "reason" in component["required"]
    assert component["properties"]["reason"]["minLength"] == 1


def test_a_revocation_without_a_reason_is_refused_as_documented(service: Service) -> None:
    _, card = service.with_card(("hc",))
    for body in (None, {}, {"reason": " "}):
        refused = service.client.post(
            f"/api/cards/{card['serial']}/revoke",
            headers=service.headers("supervisor"),
            content=json.dumps(body).encode() if body is not None else None,
        )
        assert refused.status_code == 422, refused.text
    assert service.card(card["serial"])["state"] == "active"


# --- b and mass assignment: each JSON route with its own fields, and with fields it has not ---

HUGE = 10**400
"""An integer JSON reads exactly (401 digits, below Python's 4300-digit limit) that no
database column holds: an integer field that reaches the database unchecked answers 500."""

FOREIGN_FIELDS = {
    "office": "YW-OTHER",
    "office_id": 2,
    "state": "approved",
    "status": "revoked",
    "role": "admin",
    "code": "7K2M9QXR4T",
    "serial": "FORGED",
    "person_id": 1,
    "id": 1,
}
"""What a client must never set through a body: where it is, what it is, whose it is."""

WRONG_MEDIA_TYPES = ("text/plain", "application/xml", "application/x-www-form-urlencoded")


def _body_model(route: APIRoute) -> Any:
    """The pydantic model of the route's body (``Model | None`` for an optional body)."""
    [body] = route.dependant.body_params
    annotation = body.field_info.annotation
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
            return candidate
    return annotation


def _integer_fields(model: Any) -> list[str]:
    return [
        name
        for name, field in model.model_fields.items()
        if "int" in re.findall(r"\w+", str(field.annotation)) and field.annotation is not bool
    ]


def test_every_json_body_refuses_fields_it_does_not_have(service: Service) -> None:
    """Mass assignment, by construction: every body model of the API forbids unknown
    members, so an office, a state, a role or an id sent along is refused, never applied."""
    app = service.app
    checked = []
    for info in routes(app):
        route = info.route
        bodies = route.dependant.body_params if isinstance(route, APIRoute) else []
        if bodies and not any(isinstance(b.field_info, params.Form) for b in bodies):
            model = _body_model(route)
            if model == list[str]:  # a list of serials: no member to add
                continue
            assert isinstance(model, type), route.path
            assert hasattr(model, "model_config"), route.path
            assert model.model_config.get("extra") == "forbid", (route.path, model)
            checked.append(route.path)
    assert {"/api/persons/{code}/phone-cards", "/api/applications/{reference}/approve"} <= set(
        checked
    )


def test_bodies_that_overflow_or_overreach_are_documented_problems(service: Service) -> None:
    """Every JSON route with real references (an application of the officer's office, a
    person, a card, an officer): each integer field at 10^400, the foreign fields above, the
    right JSON under the wrong media type, and a body over the limit. Each is a documented
    4xx problem, never a 500, and never changes a record it must not."""
    codes = documented_codes()
    engine = service.app.state.engine
    code, card = service.with_card()
    values = {
        "code": code,
        "serial": card["serial"],
        "reference": applications.submit(engine),
        "username": "registrar",
    }
    limit = service.app.state.settings.max_body_bytes
    headers = service.headers("admin")
    sent: list[tuple[str, str, str, bytes, str]] = []
    for info in routes(service.app):
        route = info.route
        if not isinstance(route, APIRoute) or not route.dependant.body_params:
            continue
        model = _body_model(route)
        if not hasattr(model, "model_fields"):
            continue
        for method in sorted(info.methods):
            url = concrete(info.path, values)
            for name in _integer_fields(model):
                body = json.dumps({name: HUGE}).encode()
                sent.append((method, url, f"huge {name}", body, "application/json"))
            body = json.dumps(FOREIGN_FIELDS).encode()
            sent.append((method, url, "foreign fields", body, "application/json"))
            for media_type in (
                "text/plain",
                "application/xml",
                "application/x-www-form-urlencoded",
            ):
                sent.append((method, url, media_type, b'{"reason": "x"}', media_type))
            big = b'{"reason": "' + b"x" * limit + b'"}'
            sent.append((method, url, "over the limit", big, "application/json"))
    assert len({(m, u) for m, u, *_ in sent}) >= 17
    for method, url, name, body, media_type in sent:
        before = service.snapshot()
        response = service.client.request(
            method, url, headers={**headers, "Content-Type": media_type}, content=body
        )
        where = (method, url, name, response.status_code, response.text[:200])
        assert 400 <= response.status_code < 500, where
        assert response.headers["content-type"] == "application/problem+json", where
        problem = response.json()
        assert problem["type"].removeprefix(problems.PROBLEM_TYPE_BASE) in codes, where
        if name in ("foreign fields", "over the limit") or name.startswith("huge"):
            assert service.snapshot() == before, where
