"""The registry through the API: registration, passport history, lost passports, duplicates."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from cardissuer.errors import DuplicateSuspectedError
from cardissuer.models import DuplicateReviewRecord, PersonCreate, PersonRecord, Role
from cardissuer.services import registry
from schemas import code as foreigner_code
from schemas.card import BirthDate
from tests.cardissuer.test_api_helpers import (
    BACKENDS,
    OTHER_OFFICE,
    Service,
    assert_problem,
    new_passport,
    shared_service,
)


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def test_registration_keeps_every_field_and_assigns_a_valid_code(service: Service) -> None:
    body = service.person_body(
        family_name="AL-HASHIMI",
        given_names="MOHAMMED ABDULLAH",
        native_name="محمد عبدالله الهاشمي",
        chinese_name="穆罕默德",
        nationality="sau",
        sex="M",
        phone="+86 579 8555 0100",
        email="m.hashimi@example.com",
        passport={"number": "k" + new_passport()[1:], "issuing_country": "sau"},
    )
    response = service.client.post("/api/persons", headers=service.headers("registrar"), json=body)
    assert response.status_code == 201, response.text
    person = response.json()
    assert foreigner_code.is_valid(person["code"])
    assert person["office_code"] == "YW-FUTIAN"
    for key in ("family_name", "given_names", "native_name", "chinese_name", "phone", "email"):
        assert person[key] == body[key]
    assert (person["nationality"], person["sex"]) == ("SAU", "M")
    assert person["birth_date"] == body["birth_date"]
    assert person["passports"] == [
        {
            "number": body["passport"]["number"].upper(),
            "issuing_country": "SAU",
            "state": "current",
            "expires_on": None,
            "recorded_at": person["passports"][0]["recorded_at"],
        }
    ]
    assert (person["grants"], person["cards"], person["has_portrait"]) == ([], [], False)
    assert not {"id", "office_id", "created_by", "portrait", "name_key"} & set(person)


@pytest.mark.parametrize(
    ("birth_date", "shown"),
    [("1980-07", "1980-07-XX"), ("1980", "1980-XX-XX")],
    ids=["no-day", "no-month"],
)
def test_a_passport_without_day_or_month_of_birth_registers(
    service: Service, birth_date: str, shown: str
) -> None:
    code = service.register(birth_date=birth_date, family_name="PARTIALDATE")
    assert service.person(code)["birth_date"] == shown


def test_a_passport_change_keeps_the_code_and_every_passport_finds_the_person(
    service: Service,
) -> None:
    headers = service.headers("registrar")
    first = new_passport()
    code = service.register(passport={"number": first, "issuing_country": "FRA"})
    numbers = [first]
    for reason in ("renewed", "lost"):
        numbers.append(new_passport())
        changed = service.client.post(
            f"/api/persons/{code}/passports",
            headers=headers,
            json={"passport": {"number": numbers[-1], "issuing_country": "FRA"}, "reason": reason},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["code"] == code
    person = service.person(code)
    assert [(p["number"], p["state"]) for p in person["passports"]] == [
        (numbers[0], "replaced"),
        (numbers[1], "lost"),
        (numbers[2], "current"),
    ]
    for number in numbers:
        found = service.client.get(f"/api/passports/{number.lower()}", headers=headers)
        assert found.status_code == 200, found.text
        assert found.json()["code"] == code
        search = service.client.get("/api/persons", headers=headers, params={"q": number})
        assert [p["code"] for p in search.json()["items"]] == [code]
    by_code = service.client.get("/api/persons", headers=headers, params={"q": code.lower()})
    assert [p["code"] for p in by_code.json()["items"]] == [code]


@pytest.mark.parametrize("state", ["lost", "stolen"])
def test_a_lost_or_stolen_passport_can_never_be_used_again(service: Service, state: str) -> None:
    registrar = service.headers("registrar")
    number = new_passport()
    holder = service.register(passport={"number": number, "issuing_country": "FRA"})
    marked = service.client.post(f"/api/passports/FRA/{number}/{state}", headers=registrar)
    assert marked.status_code == 200, marked.text
    assert marked.json() == {"state": state}
    passport = {"number": number, "issuing_country": "FRA"}
    attempts = [
        ("/api/persons", service.person_body(passport=passport)),
        (f"/api/persons/{service.register()}/passports", {"passport": passport}),
        (f"/api/persons/{service.register()}/passports/link", passport),
        (f"/api/persons/{holder}/passports", {"passport": passport}),
    ]
    before = service.snapshot()
    for path, body in attempts:
        refused = service.client.post(path, headers=registrar, json=body)
        assert_problem(refused, 409, "passport-blocked")
    assert service.snapshot() == before
    # Still found by it: the history keeps every passport.
    assert service.client.get(f"/api/passports/{number}", headers=registrar).json()["code"] == (
        holder
    )


@pytest.mark.parametrize("state", ["current", "replaced", "expired", "LOST", "x"])
def test_a_passport_can_only_be_marked_lost_or_stolen(service: Service, state: str) -> None:
    number = new_passport()
    service.register(passport={"number": number, "issuing_country": "FRA"})
    response = service.client.post(
        f"/api/passports/FRA/{number}/{state}", headers=service.headers("registrar")
    )
    assert_problem(response, 422, "validation-failed")


def test_one_passport_never_gets_two_codes(service: Service) -> None:
    registrar = service.headers("registrar")
    number = new_passport()
    first = service.register(passport={"number": number, "issuing_country": "FRA"})
    other = service.register()
    passport = {"number": number, "issuing_country": "FRA"}
    before = service.snapshot()
    attempts = [
        ("/api/persons", service.person_body(passport=passport)),
        ("/api/persons", service.person_body(passport=passport, confirm_new_person=True)),
        (f"/api/persons/{other}/passports", {"passport": passport}),
        (f"/api/persons/{other}/passports/link", passport),
    ]
    for path, body in attempts:
        assert_problem(
            service.client.post(path, headers=registrar, json=body), 409, "passport-registered"
        )
    assert service.snapshot() == before
    # The same number issued by another country is another passport.
    service.register(passport={"number": number, "issuing_country": "DEU"})
    assert service.client.get(f"/api/passports/{number}", headers=registrar).json()["code"] == (
        first
    )


DUPLICATES = [
    # (registered family, given), (new family, given), same nationality, same birth, duplicate?
    (("AL-HASHIMI", "MOHAMMED"), ("AL-HASHIMI", "MUHAMMAD"), True, True, True),
    (("AL-HASHIMI", "MOHAMMED"), ("ALHASHIMI", "MOHAMAD"), True, True, True),
    (("AL-HASHIMI", "MOHAMMED"), ("MOHAMMED", "AL-HASHIMI"), True, True, True),
    (("SMITH", "JOHN"), ("SMYTHE", "JON"), True, True, True),
    (("OKONKWO", "CHIDI EMEKA"), ("OKONKWO", "CHIDI"), True, True, True),
    (("IVANOVA", "ANNA"), ("PETROVA", "ANNA"), True, True, False),
    (("AL-HASHIMI", "MOHAMMED"), ("AL-HASHIMI", "MUHAMMAD"), False, True, False),
    (("AL-HASHIMI", "MOHAMMED"), ("AL-HASHIMI", "MUHAMMAD"), True, False, False),
]


@pytest.mark.parametrize(
    ("registered", "new", "same_nationality", "same_birth", "duplicate"),
    DUPLICATES,
    ids=[
        "MOHAMMED-MUHAMMAD",
        "no-hyphen-MOHAMAD",
        "swapped-order",
        "SMITH-SMYTHE",
        "fewer-given-names",
        "other-family-name",
        "other-nationality",
        "other-birth-date",
    ],
)
def test_likely_duplicates_are_found(
    service: Service,
    registered: tuple[str, str],
    new: tuple[str, str],
    same_nationality: bool,
    same_birth: bool,
    duplicate: bool,
) -> None:
    first = service.person_body(family_name=registered[0], given_names=registered[1])
    code = service.register(**{k: v for k, v in first.items() if k != "passport"})
    second = service.person_body(family_name=new[0], given_names=new[1])
    if same_nationality:
        second["passport"]["issuing_country"] = "FRA"
    else:
        second["nationality"] = "BEL"
    if same_birth:
        second["birth_date"] = first["birth_date"]
    before = service.snapshot()
    response = service.client.post(
        "/api/persons", headers=service.headers("registrar"), json=second
    )
    if not duplicate:
        assert response.status_code == 201, response.text
        return
    problem = assert_problem(response, 409, "duplicate-suspected")
    assert [c["code"] for c in problem["candidates"]] == [code]
    assert set(problem["candidates"][0]) == {
        "code",
        "office_code",
        "readable",
        "family_name",
        "given_names",
        "nationality",
        "birth_date",
        "score",
    }
    assert second["passport"]["number"] not in response.text
    assert service.snapshot() == before


def test_only_a_supervisor_confirms_a_new_person_over_duplicates_and_it_is_audited(
    service: Service,
) -> None:
    existing = service.person_body(family_name="NGUYEN", given_names="THI MAI")
    code = service.register(**{k: v for k, v in existing.items() if k != "passport"})
    body = {**existing, "passport": {"number": new_passport(), "issuing_country": "FRA"}}
    body["confirm_new_person"] = True
    seq, before = service.audit_seq(), service.snapshot()

    refused = service.client.post("/api/persons", headers=service.headers("registrar"), json=body)
    assert_problem(refused, 403, "access-denied")
    assert service.snapshot() == before
    [denied] = service.audit_after(seq)
    assert (denied.outcome, denied.action) == ("denied", "register")

    seq = service.audit_seq()
    confirmed = service.client.post(
        "/api/persons", headers=service.headers("supervisor"), json=body
    )
    assert confirmed.status_code == 201, confirmed.text
    new_code = confirmed.json()["code"]
    assert new_code != code
    supervisor = service.actor("supervisor")
    entries = service.audit_after(seq)
    assert [(e.action, e.outcome, e.officer_id) for e in entries] == [
        ("person.register", "ok", supervisor.officer_id),
        ("duplicate.confirm_new", "ok", supervisor.officer_id),
    ]
    with Session(service.engine) as session:
        person = session.exec(select(PersonRecord).where(PersonRecord.code == new_code)).one()
        review = session.exec(
            select(DuplicateReviewRecord).where(DuplicateReviewRecord.person_id == person.id)
        ).one()
    assert (review.decision, review.decided_by, review.candidate_ids) == (
        "new",
        supervisor.officer_id,
        code,
    )


def test_linking_a_suspected_duplicate_adds_the_passport_to_the_existing_person(
    service: Service,
) -> None:
    registrar = service.headers("registrar")
    existing = service.person_body(family_name="OKAFOR", given_names="NGOZI")
    code = service.register(**{k: v for k, v in existing.items() if k != "passport"})
    old_number = service.person(code)["passports"][0]["number"]
    passport = {"number": new_passport(), "issuing_country": "FRA"}
    attempt = service.client.post(
        "/api/persons", headers=registrar, json={**existing, "passport": passport}
    )
    candidates = assert_problem(attempt, 409, "duplicate-suspected")["candidates"]
    seq = service.audit_seq()

    linked = service.client.post(
        f"/api/persons/{candidates[0]['code']}/passports/link", headers=registrar, json=passport
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["code"] == code
    assert [(p["number"], p["state"]) for p in linked.json()["passports"]] == [
        (old_number, "replaced"),
        (passport["number"], "current"),
    ]
    assert (
        service.client.get(f"/api/passports/{passport['number']}", headers=registrar).json()["code"]
        == code
    )
    assert "duplicate.link" in [e.action for e in service.audit_after(seq)]
    with Session(service.engine) as session:
        person = session.exec(select(PersonRecord).where(PersonRecord.code == code)).one()
        decisions = session.exec(
            select(DuplicateReviewRecord.decision).where(
                DuplicateReviewRecord.person_id == person.id
            )
        ).all()
    assert decisions == ["linked"]
    # The passport now belongs to the person: registering with it again is refused.
    again = service.client.post(
        "/api/persons",
        headers=registrar,
        json={**existing, "passport": passport, "confirm_new_person": True},
    )
    assert_problem(again, 409, "passport-registered")


INVALID_PERSONS: list[tuple[dict[str, Any], str]] = [
    ({"birth_date": "1990-02-30"}, "invalid-person"),
    ({"birth_date": "1890-01-01"}, "invalid-person"),
    ({"birth_date": "2090-01-01"}, "invalid-person"),
    ({"birth_date": "1990-00-05"}, "invalid-person"),
    ({"birth_date": "90-01-01"}, "validation-failed"),
    ({"nationality": "ZZZ"}, "validation-failed"),
    ({"nationality": "12"}, "validation-failed"),
    ({"passport": {"number": "AB1234567", "issuing_country": "123"}}, "validation-failed"),
    ({"passport": {"number": "AB 12", "issuing_country": "FRA"}}, "validation-failed"),
    ({"family_name": "SMITH2"}, "invalid-person"),
    ({"family_name": "   "}, "validation-failed"),
    ({"given_names": "ИВАН"}, "invalid-person"),
    (
        {"native_name": "\u0418\u0432\u0430\u043d\u202e\u0438\u0432\u0430\u043d"},
        "validation-failed",
    ),
    ({"sex": "male"}, "validation-failed"),
]


@pytest.mark.parametrize(
    ("change", "code"),
    INVALID_PERSONS,
    ids=[
        "30-february",
        "born-1890",
        "born-in-future",
        "month-00-with-day",
        "two-digit-year",
        "unknown-nationality",
        "short-nationality",
        "numeric-passport-country",
        "space-in-passport-number",
        "digit-in-family-name",
        "blank-family-name",
        "cyrillic-latin-name",
        "bidi-override-native-name",
        "sex-word",
    ],
)
def test_invalid_person_fields_are_refused_with_422(
    service: Service, change: dict[str, Any], code: str
) -> None:
    before = service.snapshot()
    response = service.client.post(
        "/api/persons", headers=service.headers("registrar"), json=service.person_body(**change)
    )
    assert_problem(response, 422, code)
    assert service.snapshot() == before


@pytest.mark.parametrize(
    "at",
    [datetime(2028, 2, 29, 12, tzinfo=UTC), datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC)],
    ids=["leap-day", "new-years-eve"],
)
def test_person_fields_validate_on_any_day(at: datetime) -> None:
    data = PersonCreate.model_validate(
        {
            "family_name": "LEAP",
            "nationality": "FRA",
            "birth_date": "1990-01-01",
            "passport": {"number": "AB123", "issuing_country": "FRA"},
        }
    )
    registry.validate_person_fields(data, BirthDate(1990, 1, 1), at=at)


def test_duplicate_search_ignores_other_nationalities_and_birth_dates(service: Service) -> None:
    body = service.person_body(family_name="HUSSEIN", given_names="ALI")
    service.register(**{k: v for k, v in body.items() if k != "passport"})
    registrar = service.actor("registrar")
    with Session(service.engine) as session:
        same = PersonCreate.model_validate(body)
        found = registry.find_duplicates(session, registrar, same)
        assert [c["family_name"] for c in found] == ["HUSSEIN"]
        other = PersonCreate.model_validate({**body, "nationality": "IRQ"})
        assert registry.find_duplicates(session, registrar, other) == []
    with pytest.raises(DuplicateSuspectedError), Session(service.engine) as session:
        registry.register(
            session,
            service.actor("registrar"),
            PersonCreate.model_validate(
                {**body, "passport": {"number": new_passport(), "issuing_country": "FRA"}}
            ),
            at=datetime.now(UTC),
        )


def test_another_offices_candidate_shows_its_code_and_office_not_its_names(
    service: Service,
) -> None:
    body = service.person_body(family_name="QUISPEHUAMAN", given_names="ROSARIO")
    code = service.register(**{k: v for k, v in body.items() if k != "passport"})
    other = service.officer("registrar-choucheng", Role.REGISTRAR, office=OTHER_OFFICE)
    again = {**body, "passport": {"number": new_passport(), "issuing_country": "FRA"}}

    attempt = service.client.post("/api/persons", headers=other, json=again)

    [candidate] = assert_problem(attempt, 409, "duplicate-suspected")["candidates"]
    assert candidate == {
        "code": code,
        "office_code": "YW-FUTIAN",
        "readable": False,
        "family_name": None,
        "given_names": None,
        "nationality": body["nationality"],
        "birth_date": body["birth_date"],
        "score": 1.0,
    }
    assert "QUISPEHUAMAN" not in attempt.text
    # Linking to it is another office's change: "not found", as for any hidden record.
    linked = service.client.post(
        f"/api/persons/{code}/passports/link", headers=other, json=again["passport"]
    )
    assert_problem(linked, 404, "not-found")


# --- passport expiry and e-mail addresses ---------------------------------------------------


def _today() -> date:
    return datetime.now(UTC).date()


@pytest.mark.parametrize("route", ["register", "change", "link"])
def test_an_expired_passport_cannot_become_the_current_one(service: Service, route: str) -> None:
    registrar = service.headers("registrar")
    expired = {
        "number": new_passport(),
        "issuing_country": "FRA",
        "expires_on": (_today() - timedelta(days=1)).isoformat(),
    }
    url, body = {
        "register": ("/api/persons", service.person_body(passport=expired)),
        "change": (f"/api/persons/{service.register()}/passports", {"passport": expired}),
        "link": (f"/api/persons/{service.register()}/passports/link", expired),
    }[route]
    before = service.snapshot()
    refused = service.client.post(url, headers=registrar, json=body)
    problem = assert_problem(refused, 422, "passport-expired")
    assert problem["errors"] == [
        {
            "field": "passport.expires_on",
            "message": "the passport has expired; record a passport that is valid today",
        }
    ]
    assert service.snapshot() == before


@pytest.mark.parametrize("days", [0, 1, 3650])
def test_a_passport_valid_today_is_recorded(service: Service, days: int) -> None:
    expires = (_today() + timedelta(days=days)).isoformat()
    body = service.person_body()
    body["passport"]["expires_on"] = expires
    registered = service.client.post(
        "/api/persons", headers=service.headers("registrar"), json=body
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["passports"][0]["expires_on"] == expires


BAD_EMAILS = [
    "MARKER",
    "MARKER@",
    "@MARKER.example",
    "MARKER@example",
    "MARKER@@example.com",
    "MARKER@a@example.com",
    "MARKER @example.com",
    "MARKER@example .com",
    "MARKER\t@example.com",
    "MARKER\u00a0@example.com",
    "MARKER..x@example.com",
    ".MARKER@example.com",
    "MARKER.@example.com",
    '"MARKER"@example.com',
    "MARKER(comment)@example.com",
    "MARKER@[192.0.2.1]",
    "MARKER@192.0.2.1",
    "MARKER@-example.com",
    "MARKER@example-.com",
    "MARKER@exa_mple.com",
    "MARKER@example..com",
    "MARKER@example.com.",
    "MARKER@" + "x" * 64 + ".com",
    "M" * 65 + "MARKER@example.com",
]


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_a_malformed_email_is_refused_without_echoing_it(service: Service, email: str) -> None:
    email = email.replace("MARKER", "S3CR3T4711")
    before = service.snapshot()
    refused = service.client.post(
        "/api/persons",
        headers=service.headers("registrar"),
        json=service.person_body(email=email),
    )
    problem = assert_problem(refused, 422, "validation-failed")
    assert [error["field"] for error in problem["errors"]] == ["email"]
    assert "S3CR3T4711" not in refused.text
    assert service.snapshot() == before


@pytest.mark.parametrize(
    "email",
    [
        "olena.k@example.org",
        "first.last+tag@sub.example.co.uk",
        "o'brien@example.ie",
        "merchant@xn--bcher-kva.example",
        "merchant@bücher.example",
        "用户@例子.广告",
        "a@b.cn",
    ],
)
def test_a_plausible_email_is_kept(service: Service, email: str) -> None:
    registered = service.client.post(
        "/api/persons",
        headers=service.headers("registrar"),
        json=service.person_body(email=email),
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["email"] == email
