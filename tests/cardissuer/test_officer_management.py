"""Managing officers never hands out more than the manager holds.

Every (actor role x target role x office) pair, for creating an officer, changing their role
(up and down), disabling and re-enabling them and moving them to another office, through the
API on both databases. The expected answers are written out here, not derived from
``access.py``: a supervisor manages registrars and supervisors of their own office; an admin
manages everyone everywhere; registrars and auditors manage nobody. A refusal changes nothing
and is audited.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session, select

from cardissuer.core.security import hash_password
from cardissuer.models import OfficeRecord, OfficerRecord, Role
from cardissuer.seed import DEMO_PASSWORD
from tests.cardissuer.test_api_helpers import (
    BACKENDS,
    OTHER_OFFICE,
    Service,
    assert_problem,
    shared_service,
)

OWN_OFFICE = "YW-FUTIAN"
"""The demo officers (the actors) all belong to this office."""
ROLES = [Role.REGISTRAR, Role.SUPERVISOR, Role.AUDITOR, Role.ADMIN]
OFFICES = {"same": OWN_OFFICE, "other": OTHER_OFFICE}
CASES = list(itertools.product(ROLES, ROLES, OFFICES))
NAMES = itertools.count(1)

MAY_MANAGE = {
    (Role.SUPERVISOR, Role.REGISTRAR, "same"),
    (Role.SUPERVISOR, Role.SUPERVISOR, "same"),
} | {(Role.ADMIN, target, office) for target in ROLES for office in OFFICES}
"""(actor, target role, office): the pairs that may be created, changed or re-enabled."""


def case_id(case: tuple[Role, Role, str]) -> str:
    actor, target, office = case
    return f"{actor.value}-{target.value}-{office}"


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def make_officer(service: Service, role: Role, office: str, *, active: bool = True) -> str:
    """An officer stored directly (no manager involved); their username."""
    username = f"target.{role.value}.{next(NAMES)}"
    with Session(service.engine) as session:
        office_id = session.exec(select(OfficeRecord.id).where(OfficeRecord.code == office)).one()
        assert office_id is not None
        session.add(
            OfficerRecord(
                office_id=office_id,
                username=username,
                display_name=username,
                role=role,
                active=active,
                password_hash=hash_password(DEMO_PASSWORD, n=2**10),
            )
        )
        session.commit()
    return username


def stored(service: Service, username: str) -> tuple[Role, int, bool] | None:
    with Session(service.engine) as session:
        officer = session.exec(
            select(OfficerRecord).where(OfficerRecord.username == username)
        ).first()
        return None if officer is None else (officer.role, officer.office_id, officer.active)


def refused(service: Service, actor: Role, response: Any, seq: int, *, hidden: bool) -> None:
    """Refused as 403 (404 where the officer is of an office the actor cannot see), audited."""
    if hidden:
        assert_problem(response, 404, "not-found")
    else:
        assert_problem(response, 403, "access-denied")
    [entry] = service.audit_after(seq)
    assert (entry.outcome, entry.officer_id) == ("denied", service.actor(actor.value).officer_id)


def change(service: Service, actor: Role, username: str, body: dict[str, Any]) -> Any:
    return service.client.patch(
        f"/api/officers/{username}", headers=service.headers(actor.value), json=body
    )


def hidden_from(actor: Role, office: str) -> bool:
    """A supervisor sees only their own office's officers: others answer like unknown ones."""
    return actor is Role.SUPERVISOR and office == "other"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_create(service: Service, case: tuple[Role, Role, str]) -> None:
    actor, target, office = case
    username = f"new.{target.value}.{next(NAMES)}"
    body = {
        "username": username,
        "display_name": "New Officer",
        "role": target.value,
        "password": "long-enough-password",
        "office_code": OFFICES[office],
    }
    seq = service.audit_seq()
    response = service.client.post("/api/officers", headers=service.headers(actor.value), json=body)
    if case in MAY_MANAGE:
        assert response.status_code == 201, response.text
        assert (response.json()["role"], response.json()["office_code"]) == (
            target.value,
            OFFICES[office],
        )
    else:
        refused(service, actor, response, seq, hidden=False)
        assert stored(service, username) is None


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_promote_to_role(service: Service, case: tuple[Role, Role, str]) -> None:
    actor, target, office = case
    username = make_officer(service, Role.REGISTRAR, OFFICES[office])
    before, seq = stored(service, username), service.audit_seq()
    response = change(service, actor, username, {"role": target.value})
    allowed = case in MAY_MANAGE and (actor, Role.REGISTRAR, office) in MAY_MANAGE
    if allowed:
        assert response.status_code == 200, response.text
        assert response.json()["role"] == target.value
    else:
        refused(service, actor, response, seq, hidden=hidden_from(actor, office))
        assert stored(service, username) == before


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_demote_from_role(service: Service, case: tuple[Role, Role, str]) -> None:
    """Nobody changes an officer who reaches further than they do, not even downwards."""
    actor, target, office = case
    username = make_officer(service, target, OFFICES[office])
    before, seq = stored(service, username), service.audit_seq()
    response = change(service, actor, username, {"role": Role.REGISTRAR.value})
    if case in MAY_MANAGE:
        assert response.status_code == 200, response.text
        assert response.json()["role"] == Role.REGISTRAR.value
    else:
        refused(service, actor, response, seq, hidden=hidden_from(actor, office))
        assert stored(service, username) == before


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_disable_and_re_enable(service: Service, case: tuple[Role, Role, str]) -> None:
    actor, target, office = case
    for now_active, wanted in ((False, True), (True, False)):
        username = make_officer(service, target, OFFICES[office], active=now_active)
        before, seq = stored(service, username), service.audit_seq()
        response = change(service, actor, username, {"active": wanted})
        if case in MAY_MANAGE:
            assert response.status_code == 200, response.text
            assert response.json()["active"] is wanted
        else:
            refused(service, actor, response, seq, hidden=hidden_from(actor, office))
            assert stored(service, username) == before


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_move_to_the_other_office(service: Service, case: tuple[Role, Role, str]) -> None:
    """Only a manager of both offices, reaching as far as the officer, moves them."""
    actor, target, office = case
    username = make_officer(service, target, OFFICES[office])
    destination = OFFICES["other" if office == "same" else "same"]
    before, seq = stored(service, username), service.audit_seq()
    response = change(service, actor, username, {"office_code": destination})
    if actor is Role.ADMIN:
        assert response.status_code == 200, response.text
        assert response.json()["office_code"] == destination
    else:
        refused(service, actor, response, seq, hidden=hidden_from(actor, office))
        assert stored(service, username) == before


def test_a_supervisor_cannot_make_an_auditor_to_read_other_offices(service: Service) -> None:
    """The escalation this rule closes: a supervisor of the second office made an auditor
    (whose reading reaches every office) and read the first office's persons and audit log."""
    supervisor_b = service.officer("escalating.supervisor", Role.SUPERVISOR, OTHER_OFFICE)
    code = service.register(family_name="NOTFORB")
    before = service.snapshot()
    for attempt in (
        {"role": "auditor"},
        {"role": "admin"},
        {"role": "auditor", "office_code": OTHER_OFFICE},
    ):
        response = service.client.post(
            "/api/officers",
            headers=supervisor_b,
            json={
                "username": "sock.puppet",
                "display_name": "Sock Puppet",
                "password": "long-enough-password",
                **attempt,
            },
        )
        assert_problem(response, 403, "access-denied")
    own = make_officer(service, Role.REGISTRAR, OTHER_OFFICE)
    assert_problem(
        service.client.patch(
            f"/api/officers/{own}", headers=supervisor_b, json={"role": "auditor"}
        ),
        403,
        "access-denied",
    )
    assert_problem(
        service.client.patch(f"/api/officers/{own}", headers=supervisor_b, json={"role": "admin"}),
        403,
        "access-denied",
    )
    after = service.snapshot()
    new_rows = [row for row in after["officer"] if row not in before["officer"]]
    assert [row for row in new_rows if "sock.puppet" in row] == []
    assert stored(service, own) == (Role.REGISTRAR, service.actor(own).office_id, True)
    assert_problem(
        service.client.get(f"/api/persons/{code}", headers=supervisor_b), 404, "not-found"
    )
    assert_problem(service.client.get("/api/audit", headers=supervisor_b), 403, "access-denied")


def test_unknown_officers_and_offices(service: Service) -> None:
    admin = service.headers("admin")
    assert_problem(
        service.client.patch("/api/officers/nobody.at.all", headers=admin, json={"active": False}),
        404,
        "not-found",
    )
    username = make_officer(service, Role.REGISTRAR, OWN_OFFICE)
    assert_problem(
        service.client.patch(
            f"/api/officers/{username}", headers=admin, json={"office_code": "NO-SUCH"}
        ),
        404,
        "not-found",
    )
    # A registrar cannot use the officer routes to learn which office codes exist.
    assert_problem(
        service.client.post(
            "/api/officers",
            headers=service.headers("registrar"),
            json={
                "username": "probe.office",
                "display_name": "Probe",
                "role": "registrar",
                "password": "long-enough-password",
                "office_code": "NO-SUCH",
            },
        ),
        403,
        "access-denied",
    )


def test_a_disabled_officer_is_logged_out_and_re_enabled_logs_in(service: Service) -> None:
    username = make_officer(service, Role.REGISTRAR, OWN_OFFICE)
    login = {"username": username, "password": DEMO_PASSWORD}
    token = service.client.post("/api/auth/login", json=login).json()["token"]
    service.client.cookies.clear()
    headers = {"Authorization": f"Bearer {token}"}
    assert service.client.get("/api/auth/me", headers=headers).status_code == 200
    assert change(service, Role.SUPERVISOR, username, {"active": False}).status_code == 200
    assert_problem(
        service.client.get("/api/auth/me", headers=headers), 401, "authentication-failed"
    )
    assert change(service, Role.SUPERVISOR, username, {"active": True}).status_code == 200
    assert service.client.get("/api/auth/me", headers=headers).status_code == 200
