"""No personal data or secrets in the application logs or in the audit log's free fields.

A person is registered, looked up, given a card that is then revoked, officers log in (once
with a wrong password) and a registrar is refused: every line the ``fmcard`` loggers write,
and the ``detail`` and ``record_id`` of every audit entry, must be free of the person's names,
birth date, passport number, phone, e-mail, foreigner code, card and of every password and
session token used.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import select

from cardissuer.core.db import read_snapshot
from cardissuer.core.logging import JsonFormatter
from cardissuer.models import AuditRecord
from cardissuer.seed import DEMO_PASSWORD
from schemas import code as foreigner_code

PERSON = {
    "family_name": "KOVALENKO",
    "given_names": "OLENA MYKOLAIVNA",
    "native_name": "Коваленко Олена",
    "chinese_name": "科瓦连科",
    "nationality": "UKR",
    "birth_date": "1992-05-17",
    "sex": "F",
    "phone": "+380501234567",
    "email": "olena.k@example.org",
    "passport": {"number": "FE123456", "issuing_country": "UKR"},
}
WRONG_PASSWORD = "Tr0ub4dor&3-wrong-guess"


@pytest.fixture
def log_lines(app: FastAPI) -> Iterator[io.StringIO]:
    """Everything the ``fmcard`` loggers write, at every level, in the service's format.

    Depends on ``app`` so that it is installed after the service configured its logging.
    """
    del app
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("fmcard")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield buffer
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_logs_and_audit_fields_carry_no_personal_data_or_secrets(
    app: FastAPI,
    client: TestClient,
    log_lines: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    failed = client.post(
        "/api/auth/login", json={"username": "registrar", "password": WRONG_PASSWORD}
    )
    assert failed.status_code == 401
    tokens = {}
    for officer in ("registrar", "supervisor", "auditor"):
        response = client.post(
            "/api/auth/login", json={"username": officer, "password": DEMO_PASSWORD}
        )
        assert response.status_code == 200, response.text
        tokens[officer] = response.json()["token"]
    registrar, supervisor, auditor = (
        {"Authorization": f"Bearer {tokens[name]}"}
        for name in ("registrar", "supervisor", "auditor")
    )

    person = client.post("/api/persons", headers=registrar, json=PERSON)
    assert person.status_code == 201, person.text
    code = person.json()["code"]
    again = client.post("/api/persons", headers=registrar, json=PERSON)
    assert again.status_code == 409  # the passport is known
    assert client.get(f"/api/persons?q={PERSON['family_name']}", headers=registrar).json()["total"]
    assert client.get("/api/passports/FE123456", headers=registrar).json()["code"] == code
    assert client.get("/api/passports/ZZ999999", headers=registrar).status_code == 404
    grant = client.post(f"/api/persons/{code}/grants", headers=registrar, json={"service": "hc"})
    assert grant.status_code == 201, grant.text
    card = client.post(f"/api/persons/{code}/cards", headers=registrar)
    assert card.status_code == 201, card.text
    serial, qr_text = card.json()["serial"], card.json()["qr_text"]
    assert client.get(f"/api/cards/{serial}/qr.png", headers=registrar).status_code == 200
    refused = client.post(f"/api/cards/{serial}/revoke", headers=registrar)
    assert refused.status_code == 403
    revoked = client.post(
        f"/api/cards/{serial}/revoke", headers=supervisor, json={"reason": "reported stolen"}
    )
    assert revoked.status_code == 200, revoked.text
    assert client.get("/api/audit?limit=200", headers=auditor).status_code == 200

    secrets = {
        "family name": PERSON["family_name"],
        "given names": "MYKOLAIVNA",
        "native name": "Коваленко",
        "chinese name": PERSON["chinese_name"],
        "birth date": "1992-05-17",
        "birth date (stored)": "19920517",
        "phone": "380501234567",
        "e-mail": "olena.k@example.org",
        "passport number": "FE123456",
        "unknown passport number": "ZZ999999",
        "code": code,
        "code as printed": foreigner_code.format_for_reading(code),
        "card serial": serial,
        "card": qr_text[:40],
        "wrong password": WRONG_PASSWORD,
        "password": DEMO_PASSWORD,
        **{f"{name}'s token": token for name, token in tokens.items()},
        **{f"{name}'s token signature": token.rsplit(".", 1)[1] for name, token in tokens.items()},
    }

    logged = log_lines.getvalue() + capsys.readouterr().err
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    routes = {(line.get("route"), line.get("status")) for line in lines}
    # The capture works: the requests above are all there, by route template.
    assert ("/api/auth/login", 401) in routes
    assert ("/api/persons/{code}/cards", 201) in routes
    assert ("/api/cards/{serial}/revoke", 403) in routes
    assert ("/api/passports/{number}", 404) in routes
    with read_snapshot(app.state.engine) as session:
        entries = session.exec(select(AuditRecord)).all()
    audit_fields = "\n".join(f"{e.record_id}\t{e.detail}" for e in entries)
    assert any(e.outcome == "denied" for e in entries)
    for what, value in secrets.items():
        for where, text in (("the logs", logged), ("the audit log", audit_fields)):
            assert value.casefold() not in text.casefold(), f"{what} appears in {where}"
