"""A first walk through the service on both databases: the happy path end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from tests.cardissuer.conftest import login_headers
from verifier import Bundle, Reason, Verifier


def test_register_change_passport_issue_revoke_and_verify(client: TestClient) -> None:
    registrar = login_headers(client, "registrar")
    supervisor = login_headers(client, "supervisor")
    person = client.post("/api/persons", headers=registrar, json={
        "family_name": "KOVALENKO", "given_names": "OLENA", "native_name": "Коваленко Олена",
        "nationality": "UKR", "birth_date": "1992-05-17",
        "passport": {"number": "FE123456", "issuing_country": "UKR"},
    })  # fmt: skip
    assert person.status_code == 201, person.text
    code = person.json()["code"]
    changed = client.post(
        f"/api/persons/{code}/passports",
        headers=registrar,
        json={"passport": {"number": "GA654321", "issuing_country": "UKR"}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["code"] == code
    assert client.get("/api/passports/FE123456", headers=registrar).json()["code"] == code
    grant = client.post(f"/api/persons/{code}/grants", headers=registrar, json={"service": "hc"})
    assert grant.status_code == 201, grant.text
    card = client.post(f"/api/persons/{code}/cards", headers=registrar)
    assert card.status_code == 201, card.text
    serial, qr_text = card.json()["serial"], card.json()["qr_text"]
    revoked = client.post(
        f"/api/cards/{serial}/revoke", headers=supervisor, json={"reason": "card reported stolen"}
    )
    assert revoked.status_code == 200, revoked.text
    bundle = client.get("/bundle.json")
    assert bundle.status_code == 200
    now = datetime.now(UTC)
    verifier = Verifier(Bundle.from_json(json.loads(bundle.content), at=now))
    assert verifier.verify(qr_text, service="hc", at=now).reason is Reason.REVOKED


def test_registrar_may_not_revoke_and_the_refusal_is_audited(client: TestClient) -> None:
    registrar = login_headers(client, "registrar")
    person = client.get("/api/persons", headers=registrar).json()["items"][0]
    card = client.get(f"/api/persons/{person['code']}", headers=registrar).json()["cards"][0]
    refused = client.post(f"/api/cards/{card['serial']}/revoke", headers=registrar)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert client.get(f"/api/cards/{card['serial']}", headers=registrar).json()["state"] == "active"
    auditor = login_headers(client, "auditor")
    entries = client.get("/api/audit", headers=auditor).json()["items"]
    assert entries[0]["outcome"] == "denied"
    assert client.get("/api/audit/verify", headers=auditor).json()["entries"] >= 1
