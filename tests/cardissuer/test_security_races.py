"""Security checks that must hold when requests arrive at once, on SQLite and PostgreSQL.

Real threads send requests through one TestClient (released together by a barrier, as in
``test_concurrency``): parallel password guesses for one account, and parallel
registrations of one person.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session, col, select

from cardissuer.core import security
from cardissuer.core.security import hash_password
from cardissuer.models import (
    DuplicateReviewRecord,
    OfficeRecord,
    OfficerRecord,
    PassportRecord,
    PersonCreate,
    PersonRecord,
    Role,
)
from cardissuer.portal.catalogue import ApplicationForm
from cardissuer.seed import DEMO_PASSWORD
from tests.cardissuer import applications
from tests.cardissuer.test_api_helpers import (
    BACKENDS,
    Service,
    assert_problem,
    new_passport,
    shared_service,
)
from tests.cardissuer.test_concurrency import at_once, only

GUESSES = 30
NAMES = itertools.count(1)


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password that reached the password check (counted across threads)."""
    seen: list[str] = []
    lock = threading.Lock()
    real = security.verify_password

    def counting(password: str, stored: str) -> bool:
        with lock:
            seen.append(password)
        return real(password, stored)

    monkeypatch.setattr("cardissuer.services.officers.verify_password", counting)
    return seen


def target_officer(service: Service) -> str:
    """An officer with the service's real password hash cost (a check takes its full time)."""
    username = f"guessed.{next(NAMES)}"
    with Session(service.engine) as session:
        office_id = session.exec(select(OfficeRecord.id)).first()
        assert office_id is not None
        session.add(
            OfficerRecord(
                office_id=office_id,
                username=username,
                display_name=username,
                role=Role.SUPERVISOR,
                password_hash=hash_password(DEMO_PASSWORD),
            )
        )
        session.commit()
    return username


def guess(service: Service, username: str, password: str) -> int:
    response = service.client.post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    return int(response.status_code)


def test_parallel_wrong_guesses_reach_the_password_check_at_most_the_limit(
    service: Service, checked: list[str]
) -> None:
    limit = service.app.state.settings.login_attempts_per_window
    username = target_officer(service)
    statuses = Counter(
        only(at_once(GUESSES, lambda n: guess(service, username, f"wrong guess {n:02}")))
    )
    assert len(checked) == limit, f"{len(checked)} passwords checked, limit {limit}"
    assert statuses == {401: limit, 429: GUESSES - limit}
    # The right password after the limit is refused, and not even checked.
    assert guess(service, username, DEMO_PASSWORD) == 429
    assert len(checked) == limit
    assert service.failed_logins(username) == limit


def test_the_right_password_among_parallel_guesses_gets_no_extra_chances(
    service: Service, checked: list[str]
) -> None:
    limit = service.app.state.settings.login_attempts_per_window
    username = target_officer(service)
    passwords = [f"wrong guess {n:02}" for n in range(GUESSES - 1)] + [DEMO_PASSWORD]
    statuses = Counter(only(at_once(GUESSES, lambda n: guess(service, username, passwords[n]))))
    if DEMO_PASSWORD not in checked:  # counted out before its turn: refused from now on too
        assert len(checked) <= limit, f"{len(checked)} passwords checked, limit {limit}"
        assert statuses[200] == 0
        assert guess(service, username, DEMO_PASSWORD) == 429
        return
    # The right password was among the first `limit` admitted; its success clears the count
    # (docs/ISSUER.md), after which the guesses still arriving are counted from zero: at most
    # `limit` admitted before the success and `limit` after it, however the threads run.
    before = checked.index(DEMO_PASSWORD) + 1
    assert before <= limit, f"the right password was check number {before}, limit {limit}"
    assert len(checked) <= 2 * limit, f"{len(checked)} passwords checked, limit {limit} twice"
    assert statuses[200] == 1
    assert statuses[401] == len(checked) - 1
    assert statuses[429] == GUESSES - len(checked)


def test_guesses_at_one_account_leave_other_logins_alone(service: Service) -> None:
    """The count is per username: another officer logs in while one account is guessed at."""
    username = target_officer(service)
    statuses = only(
        at_once(
            10,
            lambda n: (
                guess(service, username, "wrong")
                if n < 6
                else guess(service, "auditor", DEMO_PASSWORD)
            ),
        )
    )
    assert sorted(statuses[:6]) == [401] * 5 + [429]
    assert statuses[6:] == [200] * 4


# --- duplicate persons ------------------------------------------------------------------------

REGISTRATIONS = 20


def one_person(service: Service, **overrides: Any) -> list[dict[str, Any]]:
    """The same person (name, birth date, nationality) with a different passport each."""
    base = service.person_body(**overrides)
    return [
        {**base, "passport": {"number": new_passport(), "issuing_country": "FRA"}}
        for _ in range(REGISTRATIONS)
    ]


def persons_born(service: Service, birth_date: str) -> list[str]:
    wire = int(birth_date.replace("-", ""))
    with Session(service.engine) as session:
        return list(
            session.exec(select(PersonRecord.code).where(PersonRecord.birth_date == wire)).all()
        )


def test_parallel_registrations_of_one_person_make_one_person(service: Service) -> None:
    bodies = one_person(service)
    headers = service.headers("registrar")
    responses = only(
        at_once(
            REGISTRATIONS,
            lambda n: service.client.post("/api/persons", headers=headers, json=bodies[n]),
        )
    )
    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 1, Counter(r.status_code for r in responses)
    code = created[0].json()["code"]
    for response in responses:
        if response.status_code != 201:
            problem = assert_problem(response, 409, "duplicate-suspected")
            assert [c["code"] for c in problem["candidates"]] == [code]
    assert persons_born(service, bodies[0]["birth_date"]) == [code]


def test_parallel_registrations_with_a_similar_name_make_one_person(service: Service) -> None:
    """Spellings of one name (MOHAMMED, MUHAMMAD, ...) race each other just the same."""
    bodies = one_person(service, family_name="MOHAMMED", given_names="ALI")
    spellings = ["MOHAMMED", "MUHAMMAD", "MOHAMAD", "MOHAMMAD"]
    for n, body in enumerate(bodies):
        body["family_name"] = spellings[n % len(spellings)]
    headers = service.headers("supervisor")
    responses = only(
        at_once(
            REGISTRATIONS,
            lambda n: service.client.post("/api/persons", headers=headers, json=bodies[n]),
        )
    )
    assert Counter(r.status_code for r in responses) == {201: 1, 409: REGISTRATIONS - 1}
    assert len(persons_born(service, bodies[0]["birth_date"])) == 1


def test_parallel_confirmed_new_persons_each_record_every_earlier_candidate(
    service: Service,
) -> None:
    """A supervisor's confirmation is a decision per registration; each is taken knowing
    every person made before it (the review lists them all), never beside an unseen twin."""
    confirmations = 8
    bodies = one_person(service)[: confirmations + 1]
    first = service.client.post(
        "/api/persons", headers=service.headers("registrar"), json=bodies[0]
    )
    assert first.status_code == 201, first.text
    headers = service.headers("supervisor")
    responses = only(
        at_once(
            confirmations,
            lambda n: service.client.post(
                "/api/persons",
                headers=headers,
                json={**bodies[n + 1], "confirm_new_person": True},
            ),
        )
    )
    assert [r.status_code for r in responses] == [201] * confirmations
    codes = [r.json()["code"] for r in responses]
    with Session(service.engine) as session:
        reviews = session.exec(
            select(DuplicateReviewRecord.candidate_ids)
            .join(PersonRecord, col(PersonRecord.id) == DuplicateReviewRecord.person_id)
            .where(col(PersonRecord.code).in_(codes))
        ).all()
    assert sorted(len(ids.split(",")) for ids in reviews) == list(range(1, confirmations + 1))


def test_one_passport_registered_and_linked_at_once_is_recorded_once(service: Service) -> None:
    existing = service.register()
    number = new_passport()
    headers = service.headers("registrar")

    def record(n: int) -> Any:
        passport = {"number": number, "issuing_country": "FRA"}
        if n % 2:
            return service.client.post(
                f"/api/persons/{existing}/passports/link", headers=headers, json=passport
            )
        return service.client.post(
            "/api/persons", headers=headers, json=service.person_body(passport=passport)
        )

    responses = only(at_once(10, record))
    assert sum(r.status_code in (200, 201) for r in responses) == 1
    for response in responses:
        if response.status_code not in (200, 201):
            assert_problem(response, 409, "passport-registered")
    with Session(service.engine) as session:
        holders = session.exec(
            select(PassportRecord.person_id).where(PassportRecord.number == number)
        ).all()
    assert len(holders) == 1


# --- the review queue: approvals that register persons ----------------------------------------

APPROVALS = 10


def first_card_application(service: Service, body: dict[str, Any]) -> str:
    """A submitted first-card application of the person ``body`` describes."""
    form = ApplicationForm(person=PersonCreate.model_validate(body), services=["hc"])
    return applications.submit(service.app.state.engine, form=form)


def test_one_application_approved_twice_at_once_makes_one_person_and_one_card(
    service: Service,
) -> None:
    body = service.person_body()
    reference = first_card_application(service, body)
    headers = service.headers("registrar")
    responses = only(
        at_once(
            APPROVALS,
            lambda _: service.client.post(
                f"/api/applications/{reference}/approve", headers=headers
            ),
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: APPROVALS - 1}, statuses
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "application-state")
    [code] = persons_born(service, body["birth_date"])
    assert len(service.cards_of(code)) == 1


def test_applications_of_one_person_approved_at_once_make_one_person(service: Service) -> None:
    """Each holder applied with another passport; 'register as new person' on each, at once:
    the registry's duplicate rule holds for approvals as for the desk."""
    bodies = one_person(service)[:APPROVALS]
    references = [first_card_application(service, body) for body in bodies]
    headers = service.headers("registrar")
    responses = only(
        at_once(
            APPROVALS,
            lambda n: service.client.post(
                f"/api/applications/{references[n]}/approve", headers=headers
            ),
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: APPROVALS - 1}, statuses
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "duplicate-suspected")
    assert len(persons_born(service, bodies[0]["birth_date"])) == 1
