"""The API's edges: mass assignment, problem details, pagination, input limits, junk input,
and the OpenAPI document."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.cardissuer.test_api_helpers import (
    BACKENDS,
    Service,
    assert_problem,
    new_passport,
    shared_service,
)

MARKER = "S3CR3T-4711"
"""A value the answers must never repeat."""


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


@pytest.fixture(scope="module")
def target(service: Service) -> dict[str, Any]:
    """A person with a card that the write endpoints aim at."""
    code, card = service.with_card(("hc", "bk"))
    return {"code": code, "serial": card["serial"], "grant": service.person(code)["grants"][0]}


def image(kind: str, size: tuple[int, int] = (120, 150)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 100, 80)).save(buffer, kind)
    return buffer.getvalue()


# --- mass assignment -------------------------------------------------------------------------

FORBIDDEN_PERSON_FIELDS = [
    "id",
    "code",
    "status",
    "state",
    "office_id",
    "office_code",
    "created_at",
    "created_by",
    "updated_at",
    "name_key",
    "portrait",
    "passports",
    "cards",
]


@pytest.mark.parametrize("name", FORBIDDEN_PERSON_FIELDS)
def test_a_registration_cannot_set_assigned_fields(service: Service, name: str) -> None:
    before = service.snapshot()
    response = service.client.post(
        "/api/persons",
        headers=service.headers("registrar"),
        json=service.person_body(**{name: MARKER}),
    )
    problem = assert_problem(response, 422, "validation-failed")
    assert problem["errors"] == [{"field": name, "message": "Extra inputs are not permitted"}]
    assert MARKER not in response.text
    assert service.snapshot() == before


# Every write endpoint, with a body that would be valid but for the fields a client may never set.
MASS_ASSIGNMENT: list[tuple[str, str, str, dict[str, Any], list[str]]] = [
    ("supervisor", "POST", "/api/persons/{code}/passports",
     {"passport": {"number": "{passport}", "issuing_country": "FRA", "state": "current",
                   "person_id": 1}, "recorded_by": 1},
     ["passport.state", "passport.person_id", "recorded_by"]),
    ("supervisor", "POST", "/api/persons/{code}/passports/link",
     {"number": "{passport}", "issuing_country": "FRA", "id": 1, "state": "current"},
     ["id", "state"]),
    ("supervisor", "POST", "/api/persons/{code}/grants",
     {"service": "ed", "id": 1, "granted_by": 1, "granted_at": "2026-01-01T00:00:00Z",
      "withdrawn_at": None, "person_id": 1}, ["id", "granted_by", "granted_at",
                                               "withdrawn_at", "person_id"]),
    ("supervisor", "POST", "/api/persons/{code}/cards",
     {"serial": "AAAAAAAAAA", "state": "active", "status": 0, "issued_by": 1, "office_id": 2,
      "status_index": 7, "list_id": "1", "expires_at": "2099-01-01T00:00:00Z"},
     ["serial", "state", "status", "issued_by", "office_id", "status_index", "list_id",
      "expires_at"]),
    ("supervisor", "POST", "/api/cards/{serial}/suspend",
     {"reason": "x", "state": "active", "state_changed_at": "2026-01-01T00:00:00Z"},
     ["state", "state_changed_at"]),
    ("supervisor", "POST", "/api/cards/{serial}/revoke",
     {"reason": "x", "revoked_reason": "other", "superseded_by": 3},
     ["revoked_reason", "superseded_by"]),
    ("admin", "POST", "/api/officers",
     {"username": "mass.assign", "display_name": "M", "role": "registrar",
      "password": "long-enough-password", "id": 1, "active": True, "office_id": 2,
      "password_hash": "scrypt$1$1$1$a$b", "created_at": "2026-01-01T00:00:00Z"},
     ["id", "active", "office_id", "password_hash", "created_at"]),
    ("admin", "POST", "/api/offices",
     {"code": "MASS-ASSIGN", "name_en": "M", "name_zh": "M", "id": 9, "created_at": "x"},
     ["id", "created_at"]),
    ("", "POST", "/api/auth/login",
     {"username": "registrar", "password": "x", "role": "admin", "office_id": 1},
     ["role", "office_id"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("role", "method", "path", "body", "fields"),
    MASS_ASSIGNMENT,
    ids=[f"{method}-{path}" for _, method, path, _, _ in MASS_ASSIGNMENT],
)
def test_write_endpoints_refuse_unknown_fields_and_list_them(
    service: Service,
    target: dict[str, Any],
    role: str,
    method: str,
    path: str,
    body: dict[str, Any],
    fields: list[str],
) -> None:
    text = json.dumps(body).replace("{passport}", new_passport())
    headers = {"Content-Type": "application/json", **(service.headers(role) if role else {})}
    before = service.snapshot()
    response = service.client.request(
        method, path.format(**target), headers=headers, content=text.encode()
    )
    problem = assert_problem(response, 422, "validation-failed")
    assert sorted(e["field"] for e in problem["errors"]) == sorted(fields)
    assert {e["message"] for e in problem["errors"]} == {"Extra inputs are not permitted"}
    assert service.snapshot() == before


NOT_ECHOED: list[tuple[str, Any]] = [
    ("family_name", MARKER * 10),
    ("family_name", [MARKER]),
    ("sex", MARKER),
    ("birth_date", MARKER),
    ("nationality", MARKER),
    ("confirm_new_person", MARKER),
    ("passport", {"number": MARKER + "!", "issuing_country": "FRA"}),
    ("passport", {"number": "AB123", "issuing_country": MARKER}),
    ("phone", MARKER + "\x00"),
    ("email", {"nested": MARKER}),
]


@pytest.mark.parametrize(
    ("name", "value"),
    NOT_ECHOED,
    ids=["too-long", "list", "pattern", "date", "country", "bool", "passport-number",
         "passport-country", "control-character", "object"],
)  # fmt: skip
def test_validation_errors_name_the_field_but_never_echo_the_value(
    service: Service, name: str, value: Any
) -> None:
    response = service.client.post(
        "/api/persons",
        headers=service.headers("registrar"),
        json=service.person_body(**{name: value}),
    )
    problem = assert_problem(response, 422, "validation-failed")
    assert all(error["field"].split(".")[0] == name for error in problem["errors"])
    assert MARKER not in response.text


PLAIN_MESSAGES: list[tuple[str, Any, str]] = [
    ("nationality", "QQQ", "not an ISO 3166-1 alpha-3 or ICAO country code"),
    ("family_name", "   ", "must not be blank"),
    ("birth_date", "1990-02-30", "no such calendar date"),
    ("birth_date", "2990-02-01", "year or month out of range"),
    ("birth_date", "2099-01-01", "birth date is after the issue date"),
]


@pytest.mark.parametrize(("name", "value", "message"), PLAIN_MESSAGES)
def test_field_messages_name_the_api_field_once_without_internals(
    service: Service, name: str, value: Any, message: str
) -> None:
    """Whichever layer refuses (pydantic, the card model, the registry), the field is the
    API's, named once, and the message carries no library prefix or wire claim name."""
    response = service.client.post(
        "/api/persons",
        headers=service.headers("registrar"),
        json=service.person_body(**{name: value}),
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["errors"] == [{"field": name, "message": message}]
    assert "Value error" not in response.text
    assert f"{name}: {name}" not in response.text
    assert not any(f'"{claim}:' in response.text or f" {claim}:" in response.text
                   for claim in ("bd", "fn", "na", "gn"))  # fmt: skip


@pytest.mark.parametrize("reason", ["", "   ", "\t \n"])
def test_a_blank_revocation_reason_is_called_blank(
    service: Service, target: dict[str, Any], reason: str
) -> None:
    response = service.client.post(
        f"/api/cards/{target['serial']}/revoke",
        headers=service.headers("supervisor"),
        json={"reason": reason},
    )
    problem = assert_problem(response, 422, "validation-failed")
    assert problem["errors"] == [{"field": "reason", "message": "must not be blank"}]


def test_broken_json_is_a_problem_without_the_body(service: Service) -> None:
    response = service.client.post(
        "/api/persons",
        headers={**service.headers("registrar"), "Content-Type": "application/json"},
        content=('{"family_name": "' + MARKER + '", ').encode(),
    )
    assert_problem(response, 422, "validation-failed")
    assert MARKER not in response.text
    assert response.json()["errors"] == [{"field": "body", "message": "the body is not valid JSON"}]


@pytest.mark.parametrize(
    "media_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_a_json_body_sent_as_something_else_is_415(service: Service, media_type: str) -> None:
    before = service.snapshot()
    response = service.client.post(
        "/api/persons",
        headers={**service.headers("registrar"), "Content-Type": media_type},
        content=b'{"family_name": "' + MARKER.encode() + b'"}',
    )
    assert_problem(response, 415, "unsupported-media-type")
    assert MARKER not in response.text
    assert service.snapshot() == before


# --- problem details -------------------------------------------------------------------------


def test_every_error_is_a_problem_with_a_stable_type(service: Service) -> None:
    registrar = service.headers("registrar")
    cases: list[tuple[Any, int, str]] = [
        (service.client.get("/api/nowhere", headers=registrar), 404, "not-found"),
        (service.client.patch("/api/persons", headers=registrar), 405, "method-not-allowed"),
        (service.client.get("/api/persons"), 401, "authentication-failed"),
        (service.client.get("/api/audit", headers=registrar), 403, "access-denied"),
        (service.client.get("/api/persons/7K2M9QXR4T", headers=registrar), 404, "not-found"),
        (service.client.get("/api/cards/NOSUCHCARD", headers=registrar), 404, "not-found"),
        (service.client.get("/status/999"), 404, "not-found"),
        (service.client.post("/api/persons", headers=registrar, json={}), 422,
         "validation-failed"),
        (service.client.post("/api/persons", headers=registrar, content=b"\xff\xfe",
                             ), 422, "validation-failed"),
    ]  # fmt: skip
    for response, status, code in cases:
        problem = assert_problem(response, status, code)
        assert problem["title"] == problem["title"].capitalize()  # sentence case, as all titles


# --- pagination ----------------------------------------------------------------------------

LISTS = [("/api/persons", "registrar", 100), ("/api/officers", "admin", 100),
         ("/api/audit", "auditor", 200)]  # fmt: skip
BAD_PAGES = [
    {"offset": "-1"},
    {"offset": "99999999999999999999"},
    {"offset": str(10**6 + 1)},
    {"offset": "1.5"},
    {"limit": "0"},
    {"limit": "-5"},
    {"limit": "abc"},
    {"limit": "1000"},
]


@pytest.mark.parametrize(
    "params", BAD_PAGES, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items())
)
@pytest.mark.parametrize(("path", "role", "largest"), LISTS, ids=[p for p, _, _ in LISTS])
def test_pages_out_of_bounds_are_refused(
    service: Service, path: str, role: str, largest: int, params: dict[str, str]
) -> None:
    response = service.client.get(path, headers=service.headers(role), params=params)
    problem = assert_problem(response, 422, "validation-failed")
    assert [e["field"] for e in problem["errors"]] == list(params)
    assert service.client.get(
        path, headers=service.headers(role), params={"limit": largest}
    ).is_success


def test_pages_cover_the_list_without_overlap(service: Service) -> None:
    registrar = service.headers("registrar")
    codes = {service.register(family_name="PAGINATION") for _ in range(5)}
    seen: list[str] = []
    for offset in range(0, 6, 2):
        page = service.client.get(
            "/api/persons",
            headers=registrar,
            params={"q": "PAGINATION", "offset": offset, "limit": 2},
        ).json()
        assert (page["total"], page["offset"], page["limit"]) == (5, offset, 2)
        seen += [p["code"] for p in page["items"]]
    assert sorted(seen) == sorted(codes)


@pytest.mark.parametrize("q", ["%", "_", "\\", "%%", "P_GINATION"])
def test_search_text_is_literal(service: Service, q: str) -> None:
    service.register(family_name="LITERALSEARCH")
    response = service.client.get(
        "/api/persons", headers=service.headers("registrar"), params={"q": q}
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


# --- input limits ----------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_with_413(service: Service) -> None:
    limit = service.app.state.settings.max_body_bytes
    registrar = service.headers("registrar")
    body = json.dumps(service.person_body(phone="1" * limit)).encode()
    declared = service.client.post(
        "/api/persons", headers={**registrar, "Content-Type": "application/json"}, content=body
    )
    assert_problem(declared, 413, "too-large")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    chunked = service.client.post(
        "/api/persons", headers={**registrar, "Content-Type": "application/json"}, content=chunks()
    )
    assert_problem(chunked, 413, "too-large")


PHOTOS: list[tuple[str, bytes, str, int]] = [
    ("jpeg", image("JPEG"), "image/jpeg", 200),
    ("png", image("PNG"), "image/png", 200),
    ("webp", image("WEBP"), "image/webp", 200),
    ("gif", image("GIF"), "image/gif", 422),
    ("1x1", image("PNG", (1, 1)), "image/png", 422),
    ("smaller-than-the-portrait", image("JPEG", (95, 119)), "image/jpeg", 422),
    ("text", b"hello, this is not a photo", "image/jpeg", 422),
    ("truncated-jpeg", image("JPEG")[:200], "image/jpeg", 422),
    ("empty", b"", "image/jpeg", 422),
    ("over-the-limit", b"\xff\xd8\xff" + b"\0" * (1024 * 1024), "image/jpeg", 422),
]


@pytest.mark.parametrize(
    ("name", "data", "media_type", "status"), PHOTOS, ids=[p[0] for p in PHOTOS]
)
def test_photos_are_checked(
    service: Service, name: str, data: bytes, media_type: str, status: int
) -> None:
    code = service.register()
    before = service.snapshot()
    response = service.client.put(
        f"/api/persons/{code}/portrait",
        headers=service.headers("registrar"),
        files={"photo": (f"{name}.bin", data, media_type)},
    )
    if status != 200:
        problem = assert_problem(response, status, "invalid-photo")
        if name in ("1x1", "smaller-than-the-portrait"):
            assert "at least 96x120" in problem["detail"]
        assert service.snapshot() == before
        return
    assert response.status_code == 200, response.text
    assert response.json()["has_portrait"] is True
    portrait = service.client.get(
        f"/api/persons/{code}/portrait", headers=service.headers("registrar")
    )
    assert portrait.headers["content-type"] == "image/avif"
    assert len(portrait.content) < 4096


def test_a_portrait_upload_without_a_file_is_refused(service: Service) -> None:
    code = service.register()
    for kwargs in ({"data": {"photo": "abc"}}, {"json": {"photo": "abc"}}, {}):
        response = service.client.put(
            f"/api/persons/{code}/portrait", headers=service.headers("registrar"), **kwargs
        )
        assert_problem(response, 422, "validation-failed")


TOO_LONG: list[tuple[str, str, dict[str, Any], str]] = [
    ("/api/persons", "registrar", {"family_name": "A" * 65}, "family_name"),
    ("/api/persons", "registrar", {"given_names": "A" * 65}, "given_names"),
    ("/api/persons", "registrar", {"native_name": "ж" * 65}, "native_name"),
    ("/api/persons", "registrar", {"chinese_name": "中" * 65}, "chinese_name"),
    ("/api/persons", "registrar", {"phone": "1" * 33}, "phone"),
    ("/api/persons", "registrar", {"phone": "\"><img src=x onerror=alert(1)>"}, "phone"),
    ("/api/persons", "registrar", {"phone": "+86 579 ext. 12"}, "phone"),
    ("/api/persons", "registrar", {"email": "a" * 129}, "email"),
    ("/api/persons", "registrar", {"passport": {"number": "A" * 21, "issuing_country": "FRA"}},
     "passport.number"),
    ("/api/cards/{serial}/suspend", "supervisor", {"reason": "r" * 257}, "reason"),
    ("/api/officers", "admin", {"username": "u" * 65, "display_name": "x", "role": "registrar",
                                "password": "p" * 12}, "username"),
    ("/api/officers", "admin", {"username": "long.name", "display_name": "x" * 129,
                                "role": "registrar", "password": "p" * 12}, "display_name"),
    ("/api/officers", "admin", {"username": "long.pass", "display_name": "x",
                                "role": "registrar", "password": "p" * 257}, "password"),
    ("/api/offices", "admin", {"code": "A" * 33, "name_en": "x", "name_zh": "x"}, "code"),
    ("/api/offices", "admin", {"code": "LONG", "name_en": "x" * 129, "name_zh": "x"}, "name_en"),
    ("/api/auth/login", "", {"username": "u" * 65, "password": "x"}, "username"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "role", "body", "field"), TOO_LONG, ids=[f"{p}-{f}" for p, _, _, f in TOO_LONG]
)
def test_too_long_strings_are_refused_with_422(
    service: Service,
    target: dict[str, Any],
    path: str,
    role: str,
    body: dict[str, Any],
    field: str,
) -> None:
    if path == "/api/persons":
        body = service.person_body(**body)
    headers = service.headers(role) if role else {}
    before = service.snapshot()
    response = service.client.post(path.format(**target), headers=headers, json=body)
    problem = assert_problem(response, 422, "validation-failed")
    assert [e["field"] for e in problem["errors"]] == [field]
    assert service.snapshot() == before


CONTROL_CHARACTERS: list[tuple[str, str, dict[str, Any], str]] = [
    ("/api/persons", "registrar", {"phone": "123\x00456"}, "phone"),
    ("/api/persons", "registrar", {"email": "a\nb@example.com"}, "email"),
    ("/api/persons", "registrar", {"chinese_name": "王\u202e伟"}, "chinese_name"),
    ("/api/cards/{serial}/suspend", "supervisor", {"reason": "lost\x00"}, "reason"),
    ("/api/officers", "admin", {"username": "nul.name", "display_name": "x\x00",
                                "role": "registrar", "password": "p" * 12}, "display_name"),
    ("/api/offices", "admin", {"code": "NUL", "name_en": "x\x00", "name_zh": "x"}, "name_en"),
    ("/api/auth/login", "", {"username": "registrar\x00", "password": "x"}, "username"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "role", "body", "field"),
    CONTROL_CHARACTERS,
    ids=[f"{p}-{f}" for p, _, _, f in CONTROL_CHARACTERS],
)
def test_control_characters_are_refused_with_422(
    service: Service,
    target: dict[str, Any],
    path: str,
    role: str,
    body: dict[str, Any],
    field: str,
) -> None:
    if path == "/api/persons":
        body = service.person_body(**body)
    headers = service.headers(role) if role else {}
    before = service.snapshot()
    response = service.client.post(path.format(**target), headers=headers, json=body)
    problem = assert_problem(response, 422, "validation-failed")
    assert [e["field"] for e in problem["errors"]] == [field]
    assert service.snapshot() == before


@pytest.mark.parametrize(
    "path",
    ["/api/cards/{junk}", "/api/cards/{junk}/qr.png", "/api/passports/{junk}",
     "/api/persons/{junk}", "/status/{junk}", "/api/persons?q={junk}"],
)  # fmt: skip
@pytest.mark.parametrize(
    "junk", ["A\x00B", "%", "\u202e", "A" * 5000, "..", "\ud7ff", "1 OR 1=1"], ids=repr
)
def test_junk_in_paths_and_queries_is_never_a_server_error(
    service: Service, path: str, junk: str
) -> None:
    response = service.client.get(
        path.format(junk=quote(junk, safe="")), headers=service.headers("auditor")
    )
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 404, 422), response.text


# --- junk everywhere ---------------------------------------------------------------------------

SPECIAL_STRINGS = st.sampled_from(
    ["", " ", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-12:00", "2026-02-30",
     "2026-01-01T00:00:00", "2026-01-01", "1e309", "NaN", "-1", "K1234567", "FRA", "D<<",
     "hc", "lost", "admin", "A" * 70, "中" * 70, "%", "_", "\\", "' OR 1=1 --"]
)  # fmt: skip
"""Strings that reached the database or the date arithmetic before they were checked."""
CONTROLS = st.sampled_from(["\x00", "\x1f", "\x7f", "\n", "\u202e", "\u2028", "\ufffe", "\ud800"])
TEXT = st.text(st.characters(codec="utf-8"), max_size=40)  # surrogates: see CONTROLS
TEXT_WITH_CONTROLS = st.builds(
    lambda before, control, after: before + control + after, TEXT, CONTROLS, TEXT
)
OFFSETS = st.none() | st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
TIMES = st.builds(
    lambda moment, zone: moment.replace(tzinfo=zone).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),  # noqa: DTZ001
    OFFSETS,
)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
FIELD_JUNK = st.one_of(
    SPECIAL_STRINGS, SPECIAL_STRINGS, TIMES, TIMES, TEXT_WITH_CONTROLS, TEXT, JSON_VALUES
)
"""What a field is set to: mostly values that look almost right."""

# Write endpoints: who calls them, and a valid body that junk is mixed into.
WRITES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("", "POST", "/api/auth/login", {"username": "fuzz.nobody", "password": "x"}),
    ("supervisor", "POST", "/api/persons",
     {"family_name": "FUZZ", "given_names": "ONE", "nationality": "FRA",
      "birth_date": "1977-07-07", "passport": {"number": "F0", "issuing_country": "FRA"}}),
    ("supervisor", "POST", "/api/persons/{code}/passports",
     {"passport": {"number": "F1", "issuing_country": "FRA"}, "reason": "renewed"}),
    ("supervisor", "POST", "/api/persons/{code}/passports/link",
     {"number": "F2", "issuing_country": "FRA", "expires_on": "2030-01-01"}),
    ("supervisor", "POST", "/api/persons/{code}/grants",
     {"service": "ed", "valid_from": "2026-01-01T00:00:00Z",
      "valid_until": "2027-01-01T00:00:00Z"}),
    ("supervisor", "POST", "/api/persons/{code}/cards", {"valid_days": 30}),
    ("supervisor", "POST", "/api/cards/{serial}/suspend", {"reason": "fuzz"}),
    ("supervisor", "POST", "/api/cards/{serial}/reinstate", {"reason": "fuzz"}),
    ("supervisor", "POST", "/api/cards/{serial}/revoke", {"reason": "fuzz"}),
    ("admin", "POST", "/api/officers",
     {"username": "fuzz", "display_name": "F", "role": "registrar", "password": "short"}),
    ("admin", "POST", "/api/offices", {"code": "FUZZ", "name_en": "F", "name_zh": "F"}),
]  # fmt: skip


def _mutations(body: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Junk JSON, or (mostly) the valid body with one or two of its fields, possibly nested,
    set to junk. (Unknown fields are refused before anything else: see the mass-assignment
    tests.)"""
    keys = list(body) + [f"passport.{k}" for k in body.get("passport", {})]

    def mutate(changes: dict[str, Any]) -> dict[str, Any]:
        copy: dict[str, Any] = json.loads(json.dumps(body))
        for key, value in changes.items():
            if key.startswith("passport.") and isinstance(copy.get("passport"), dict):
                copy["passport"][key.split(".", 1)[1]] = value
            else:
                copy[key] = value
        return copy

    changes = st.dictionaries(st.sampled_from(keys), FIELD_JUNK, min_size=1, max_size=2)
    return st.one_of(JSON_VALUES, *[st.builds(mutate, changes)] * 4)


@pytest.mark.parametrize(
    ("role", "method", "path", "body"), WRITES, ids=[f"{m}-{p}" for _, m, p, _ in WRITES]
)
def test_junk_json_at_write_endpoints_is_never_a_server_error(
    service: Service, target: dict[str, Any], role: str, method: str, path: str, body: Any
) -> None:
    headers = {"Content-Type": "application/json", **(service.headers(role) if role else {})}
    url = path.format(**target)

    @settings(
        max_examples=10 if role == "" else 25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(payload=_mutations(body))
    def check(payload: Any) -> None:
        content = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
        response = service.client.request(method, url, headers=headers, content=content)
        assert response.status_code < 500, (payload, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"

    check()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=2048), media_type=st.sampled_from(["image/jpeg", "image/png", "x/y"])
)
def test_junk_photos_are_never_a_server_error(
    service: Service, target: dict[str, Any], data: bytes, media_type: str
) -> None:
    response = service.client.put(
        f"/api/persons/{target['code']}/portrait",
        headers=service.headers("supervisor"),
        files={"photo": ("junk", data, media_type)},
    )
    assert response.status_code == 422, response.text


# --- the OpenAPI document --------------------------------------------------------------------


def _schema(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a $ref (also inside an optional ``anyOf``) to the component schema."""
    for option in schema.get("anyOf", [schema]):
        if "$ref" in option:
            resolved: dict[str, Any] = document["components"]["schemas"][
                option["$ref"].rsplit("/", 1)[1]
            ]
            return resolved
    return schema


def test_openapi_documents_every_route_with_examples(service: Service) -> None:
    response = service.client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    expected = {
        ("post", "/api/auth/login"), ("get", "/api/persons"), ("post", "/api/persons"),
        ("get", "/api/persons/{code}"), ("post", "/api/persons/{code}/passports"),
        ("post", "/api/persons/{code}/passports/link"), ("get", "/api/passports/{number}"),
        ("post", "/api/passports/{country}/{number}/{state}"),
        ("put", "/api/persons/{code}/portrait"), ("post", "/api/persons/{code}/grants"),
        ("delete", "/api/persons/{code}/grants/{grant_id}"),
        ("post", "/api/persons/{code}/cards"), ("get", "/api/cards/{serial}"),
        ("post", "/api/cards/{serial}/suspend"), ("post", "/api/cards/{serial}/reinstate"),
        ("post", "/api/cards/{serial}/revoke"), ("get", "/api/officers"),
        ("post", "/api/officers"), ("post", "/api/offices"), ("get", "/api/audit"),
        ("get", "/trust-list.jwt"), ("get", "/jwks.json"), ("get", "/status/{list_id}"),
        ("get", "/bundle.json"),
    }  # fmt: skip
    documented = {(m, p) for p, ops in paths.items() for m in ops}
    assert expected <= documented
    for method, path in sorted(expected):  # (the console's pages are not part of the API)
        operation, where = paths[path][method], f"{method.upper()} {path}"
        assert operation.get("summary"), where
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            assert _schema(document, body["schema"]).get("examples"), where
        for status, answer in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert "application/problem+json" in answer.get("content", {}), (where, status)
    duplicate = paths["/api/persons"]["post"]["responses"]["409"]
    example = duplicate["content"]["application/problem+json"]["example"]
    assert example["type"].endswith("/duplicate-suspected")
    assert example["candidates"]
    assert "Idempotency-Key" in [
        p["name"] for p in paths["/api/persons/{code}/cards"]["post"]["parameters"]
    ]
    status = paths["/status/{list_id}"]["get"]["responses"]
    assert "application/statuslist+jwt" in status["200"]["content"]
    assert "304" in status
