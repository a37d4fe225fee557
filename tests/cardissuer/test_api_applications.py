"""The review queue's API on both databases: the list and one application beside its
candidates, each decision and its refusals as problems, the holder link mailed over SMTP."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cardissuer.api import problems
from cardissuer.portal.models import ApplicationState
from cardissuer.seed import DEMO_PASSWORD
from tests.cardissuer import applications as factory
from tests.cardissuer.conftest import login_headers
from tests.cardissuer.test_decisions import _okonkwo_again
from tests.mail_sink import MailSink, body_of, mail_sink


@pytest.fixture
def sink(app: FastAPI) -> Iterator[MailSink]:
    with mail_sink() as running:
        app.state.settings.mail_url = running.url
        yield running


def _problem(response: object, status: int, code: str) -> None:
    assert getattr(response, "status_code", None) == status, getattr(response, "text", "")
    body = response.json()  # type: ignore[attr-defined]
    assert body["type"] == problems.PROBLEM_TYPE_BASE + code, body


def test_the_queue_and_an_application_beside_its_candidates(
    app: FastAPI, client: TestClient
) -> None:
    engine = app.state.engine
    first = factory.submit(engine)
    second = factory.submit(engine, form=_okonkwo_again())
    elsewhere = factory.submit(engine, office="YW-CHOUCHENG")
    registrar = login_headers(client, "registrar")

    page = client.get("/api/applications", headers=registrar)
    assert page.status_code == 200, page.text
    assert [item["reference"] for item in page.json()["items"]] == [first, second]
    one = client.get("/api/applications?limit=1", headers=registrar).json()
    assert [item["reference"] for item in one["items"]] == [first]
    rest = client.get(
        f"/api/applications?limit=1&cursor={one['next_cursor']}", headers=registrar
    ).json()
    assert [item["reference"] for item in rest["items"]] == [second]
    assert rest["next_cursor"] is None
    only = client.get("/api/applications?nationality=NGA", headers=registrar).json()
    assert [item["reference"] for item in only["items"]] == [second]

    view = client.get(f"/api/applications/{second}", headers=registrar)
    assert view.status_code == 200, view.text
    body = view.json()
    assert body["form"]["person"]["family_name"] == "OKONKWO"
    assert [c["family_name"] for c in body["duplicates"]] == ["OKONKWO"]
    assert {f["kind"] for f in body["files"]} == {"portrait", "passport_page"}
    _problem(client.get(f"/api/applications/{elsewhere}", headers=registrar), 404, "not-found")
    auditor = login_headers(client, "auditor")
    assert client.get(f"/api/applications/{elsewhere}", headers=auditor).status_code == 200


def test_decisions_and_their_refusals(app: FastAPI, client: TestClient, sink: MailSink) -> None:
    engine = app.state.engine
    reference = factory.submit(engine)
    twin = factory.submit(engine, form=_okonkwo_again())
    registrar = login_headers(client, "registrar")
    auditor = login_headers(client, "auditor")
    url = f"/api/applications/{reference}"

    _problem(client.post(url + "/take", headers=auditor), 403, "access-denied")
    taken = client.post(url + "/take", headers=registrar)
    assert taken.json() == {"reference": reference, "state": "under_review", "mailed": None}
    _problem(client.post(url + "/take", headers=registrar), 409, "application-state")
    _problem(
        client.post(url + "/reject", headers=registrar, json={"reason": "because"}),
        422,
        "invalid-decision",
    )
    _problem(client.post(url + "/ask", headers=registrar, json={}), 422, "validation-failed")

    approved = client.post(url + "/approve", headers=registrar)
    assert approved.status_code == 200, approved.text
    assert approved.json() == {"reference": reference, "state": "approved", "mailed": True}
    (mail,) = sink.wait_for("applicant@example.org")
    assert re.search(r"/h/[A-Za-z0-9_-]+", body_of(mail))
    person = client.get(url, headers=registrar).json()["person_code"]
    assert client.get(f"/api/persons/{person}", headers=registrar).status_code == 200

    sent = client.post(
        url + "/dispatch",
        headers=registrar,
        json={"courier": "SF Express", "tracking_number": "SF1234567890"},
    )
    assert sent.status_code == 200, sent.text
    assert client.get(url, headers=registrar).json()["tracking_number"] == "SF1234567890"

    twin_url = f"/api/applications/{twin}/approve"
    _problem(client.post(twin_url, headers=registrar), 409, "duplicate-suspected")
    _problem(
        client.post(twin_url, headers=registrar, json={"confirm_new_person": True}),
        403,
        "access-denied",
    )
    supervisor = login_headers(client, "supervisor")
    confirmed = client.post(twin_url, headers=supervisor, json={"confirm_new_person": True})
    assert confirmed.status_code == 200, confirmed.text
    assert factory.application(engine, twin).state == ApplicationState.APPROVED


DECISION_BODIES: dict[str, dict[str, str] | None] = {
    "take": None,
    "ask": {"question": "Which market?"},
    "reject": {"reason": "other"},
    "approve": None,
    "dispatch": {"courier": "SF", "tracking_number": "1"},
    "resend": None,
}


@pytest.mark.parametrize("role", ["registrar", "supervisor", "auditor", "admin"])
@pytest.mark.parametrize("office", ["own", "other"])
def test_who_may_decide_and_see_whose_applications(
    app: FastAPI, client: TestClient, role: str, office: str
) -> None:
    """Every decision by every role on its own office's and another office's application:
    registrars and supervisors decide their own office's only (another's is not found),
    auditors and admins read but never decide; the photos follow the reading rule. A refused
    decision changes nothing."""
    engine = app.state.engine
    code = "YW-FUTIAN" if office == "own" else "YW-CHOUCHENG"
    headers = login_headers(client, role)
    deciders = role in ("registrar", "supervisor")
    reads = (deciders and office == "own") or role in ("auditor", "admin")
    for decision, body in DECISION_BODIES.items():
        reference = factory.submit(engine, office=code)
        url = f"/api/applications/{reference}"
        answer = client.post(f"{url}/{decision}", headers=headers, json=body)
        if deciders and office == "own":
            assert answer.status_code in (200, 409), (decision, answer.text)  # 409: its state
        elif not reads:
            _problem(answer, 404, "not-found")
        else:
            _problem(answer, 403, "access-denied")
        if answer.status_code != 200:
            assert factory.application(engine, reference).state == ApplicationState.SUBMITTED
    reference = factory.submit(engine, office=code)
    file_id = factory.file_ids(engine, reference)[0]
    with TestClient(app) as console:
        console.post("/api/auth/login", json={"username": role, "password": DEMO_PASSWORD})
        photo = console.get(f"/console/applications/{reference}/files/{file_id}")
    assert photo.status_code == (200 if reads else 404), photo.status_code
    listed = client.get("/api/applications?limit=100", headers=headers)
    assert listed.status_code == 200
    assert (reference in {i["reference"] for i in listed.json()["items"]}) == reads
