"""Entitlements and the card life cycle through the API, checked the way a counter sees them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlmodel import Session

from cardissuer.models import CardState
from cardissuer.portrait import MAX_QR_VERSION
from cardissuer.render.qr import qr_version
from cardissuer.services import cards
from tests.cardissuer.test_api_helpers import BACKENDS, Service, assert_problem, shared_service
from verifier import Reason

SAMPLE_PHOTO = Path(cards.__file__).parents[1] / "demo" / "sample-photo.jpg"


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def current_card(service: Service, code: str) -> dict[str, Any]:
    current = [c for c in service.person(code)["cards"] if c["state"] in ("active", "suspended")]
    assert len(current) == 1, current
    card: dict[str, Any] = current[0]
    return card


# --- entitlements ----------------------------------------------------------------------------


def test_granting_and_withdrawing_re_issue_the_card_with_the_window(service: Service) -> None:
    registrar = service.headers("registrar")
    code, first = service.with_card(("hc",))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    end = start + timedelta(days=90)
    granted = service.client.post(
        f"/api/persons/{code}/grants",
        headers=registrar,
        json={
            "service": "bk",
            "valid_from": start.astimezone().isoformat(),
            "valid_until": end.isoformat(),
        },
    )
    assert granted.status_code == 201, granted.text
    assert (granted.json()["valid_from"], granted.json()["valid_until"]) == (
        start.isoformat().replace("+00:00", "Z"),
        end.isoformat().replace("+00:00", "Z"),
    )
    second = current_card(service, code)
    assert second["serial"] != first["serial"]
    assert service.card(first["serial"])["state"] == "superseded"

    verifier, now = service.verifier(), datetime.now(UTC)
    assert verifier.verify(first["qr_text"], service="hc", at=now).reason is Reason.SUPERSEDED
    banking = verifier.verify(second["qr_text"], service="bk", at=now)
    assert banking.reason is Reason.VALID
    assert banking.entitlement is not None
    assert (banking.entitlement.valid_from, banking.entitlement.valid_until) == (start, end)
    assert verifier.verify(second["qr_text"], service="hc", at=now).reason is Reason.VALID

    health = next(g for g in service.person(code)["grants"] if g["service"] == "hc")
    withdrawn = service.client.delete(
        f"/api/persons/{code}/grants/{health['id']}", headers=registrar
    )
    assert withdrawn.status_code == 200, withdrawn.text
    third = current_card(service, code)
    assert third["serial"] not in (first["serial"], second["serial"])
    assert [g["service"] for g in service.person(code)["grants"]] == ["bk"]
    assert service.reasons(second["qr_text"], third["qr_text"], service="hc") == [
        Reason.SUPERSEDED,
        Reason.NOT_ENTITLED,
    ]
    assert service.reasons(third["qr_text"], service="bk") == [Reason.VALID]


def test_a_grant_without_a_card_issues_nothing(service: Service) -> None:
    code = service.register()
    granted = service.client.post(
        f"/api/persons/{code}/grants", headers=service.headers("registrar"), json={"service": "ed"}
    )
    assert granted.status_code == 201, granted.text
    assert service.person(code)["cards"] == []


GRANT_REFUSALS: list[tuple[dict[str, Any], int, str]] = [
    ({"service": "zz"}, 422, "unknown-service"),
    ({"service": "hc"}, 409, "already-granted"),
    ({"service": "HC"}, 422, "validation-failed"),
    ({"service": "bk", "valid_from": "2026-01-01T00:00:00"}, 422, "validation-failed"),
    (
        {
            "service": "bk",
            "valid_from": "2026-01-01T00:00:00",
            "valid_until": "2027-01-01T00:00:00Z",
        },
        422,
        "validation-failed",
    ),
    ({"service": "bk", "valid_from": "0001-01-01T00:00:00+01:00"}, 422, "validation-failed"),
    ({"service": "bk", "valid_until": "2300-01-01T00:00:00Z"}, 422, "validation-failed"),
    (
        {
            "service": "bk",
            "valid_from": "2027-01-01T00:00:00Z",
            "valid_until": "2026-01-01T00:00:00Z",
        },
        422,
        "validation-failed",
    ),
    ({"service": "bk", "granted_by": 1}, 422, "validation-failed"),
]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    GRANT_REFUSALS,
    ids=[
        "not-in-catalogue",
        "already-held",
        "malformed-service",
        "naive-time",
        "naive-and-aware",
        "year-1",
        "after-2100",
        "window-reversed",
        "granted_by",
    ],
)
def test_grants_outside_the_rules_are_refused(
    service: Service, body: dict[str, Any], status: int, code: str
) -> None:
    person, _ = service.with_card(("hc",))
    before = service.snapshot()
    response = service.client.post(
        f"/api/persons/{person}/grants", headers=service.headers("registrar"), json=body
    )
    assert_problem(response, status, code)
    assert service.snapshot() == before


def test_the_last_service_of_a_current_card_cannot_be_withdrawn(service: Service) -> None:
    registrar, supervisor = service.headers("registrar"), service.headers("supervisor")
    code, card = service.with_card(("hc",))
    [grant] = service.person(code)["grants"]
    before = service.snapshot()
    refused = service.client.delete(f"/api/persons/{code}/grants/{grant['id']}", headers=registrar)
    assert_problem(refused, 409, "no-entitlement")
    assert service.snapshot() == before
    assert service.reasons(card["qr_text"]) == [Reason.VALID]

    revoked = service.client.post(
        f"/api/cards/{card['serial']}/revoke", headers=supervisor, json={"reason": "left China"}
    )
    assert revoked.status_code == 200, revoked.text
    withdrawn = service.client.delete(
        f"/api/persons/{code}/grants/{grant['id']}", headers=registrar
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert service.person(code)["grants"] == []
    no_service = service.client.post(f"/api/persons/{code}/cards", headers=registrar)
    assert_problem(no_service, 409, "no-entitlement")


@pytest.mark.parametrize(
    ("grant_id", "status", "code"),
    [("0", 422, "validation-failed"), ("99999999999999999999", 422, "validation-failed"),
     ("abc", 422, "validation-failed"), ("other", 404, "not-found"),
     ("withdrawn", 404, "not-found")],
    ids=["zero", "huge", "not-a-number", "another-persons", "already-withdrawn"],
)  # fmt: skip
def test_withdrawing_an_unknown_grant(
    service: Service, grant_id: str, status: int, code: str
) -> None:
    registrar = service.headers("registrar")
    person, _ = service.with_card(("hc", "ed"))
    if grant_id == "other":
        other, _ = service.with_card(("hc",))
        grant_id = str(service.person(other)["grants"][0]["id"])
    elif grant_id == "withdrawn":
        grant = service.person(person)["grants"][1]
        path = f"/api/persons/{person}/grants/{grant['id']}"
        assert service.client.delete(path, headers=registrar).status_code == 200
        grant_id = str(grant["id"])
    before = service.snapshot()
    response = service.client.delete(f"/api/persons/{person}/grants/{grant_id}", headers=registrar)
    assert_problem(response, status, code)
    assert service.snapshot() == before


def test_a_new_portrait_re_issues_the_card_with_it(service: Service) -> None:
    code, first = service.with_card(("hc",))
    buffer = io.BytesIO()
    Image.new("RGB", (120, 150), (90, 60, 30)).save(buffer, "JPEG")
    uploaded = service.client.put(
        f"/api/persons/{code}/portrait",
        headers=service.headers("registrar"),
        files={"photo": ("me.jpg", buffer.getvalue(), "image/jpeg")},
    )
    assert uploaded.status_code == 200, uploaded.text
    second = current_card(service, code)
    assert second["serial"] != first["serial"]
    verifier, now = service.verifier(), datetime.now(UTC)
    old, new = (verifier.verify(c["qr_text"], service="hc", at=now) for c in (first, second))
    assert (old.reason, old.portrait) == (Reason.SUPERSEDED, None)
    assert new.reason is Reason.VALID
    assert new.portrait is not None


def test_a_portrait_card_with_long_names_stays_within_the_printable_version(
    service: Service,
) -> None:
    """Long names and a portrait would need version 17 (0.58 mm modules on the printed
    back, which zbar no longer reads from a distance): the card carries the same face at a
    lower quality instead, within version 16."""
    registrar = service.headers("registrar")
    code = service.register(
        family_name="AL-HASHIMI",
        given_names="MOHAMMED ABDULLAH",
        native_name="عبد الرحمن بن محمد بن عبد الله آل عبد العزيز الهاشمي",
        chinese_name="玛丽亚·何塞·亚历杭德拉·瓜达卢佩·加西亚-费尔南德斯",
    )
    granted = service.client.post(
        f"/api/persons/{code}/grants", headers=registrar, json={"service": "hc"}
    )
    assert granted.status_code == 201, granted.text
    uploaded = service.client.put(
        f"/api/persons/{code}/portrait",
        headers=registrar,
        files={"photo": ("me.jpg", SAMPLE_PHOTO.read_bytes(), "image/jpeg")},
    )
    assert uploaded.status_code == 200, uploaded.text
    issued = service.client.post(f"/api/persons/{code}/cards", headers=registrar)
    assert issued.status_code == 201, issued.text
    text = current_card(service, code)["qr_text"]
    assert qr_version(text)[0] <= MAX_QR_VERSION
    verified = service.verifier().verify(text, service="hc", at=datetime.now(UTC))
    assert verified.reason is Reason.VALID
    assert verified.portrait is not None
    stored = service.client.get(f"/api/persons/{code}/portrait", headers=registrar).content
    assert len(verified.portrait) < len(stored)  # the stored one alone would not fit


# --- issuing -------------------------------------------------------------------------------


def test_re_issuing_supersedes_the_card_and_indices_are_random(service: Service) -> None:
    registrar = service.headers("registrar")
    code, first = service.with_card(("hc",))
    issued = [first]
    for _ in range(4):
        response = service.client.post(f"/api/persons/{code}/cards", headers=registrar)
        assert response.status_code == 201, response.text
        issued.append(response.json())
    rows = service.cards_of(code)
    assert [r.serial for r in rows] == [c["serial"] for c in issued]
    assert [r.state for r in rows] == [CardState.SUPERSEDED] * 4 + [CardState.ACTIVE]
    assert [r.superseded_by for r in rows[:-1]] == [r.id for r in rows[1:]]
    indices = [(r.list_id, r.status_index) for r in rows]
    assert len(set(indices)) == len(indices)
    assert max(index for _, index in indices) > 1000  # drawn at random, not counted up
    assert service.reasons(*(c["qr_text"] for c in issued)) == [Reason.SUPERSEDED] * 4 + [
        Reason.VALID
    ]
    renewed = service.client.post(
        f"/api/persons/{code}/cards", headers=registrar, json={"valid_days": 30}
    )
    assert renewed.status_code == 201, renewed.text
    expires = datetime.fromisoformat(renewed.json()["expires_at"])
    assert expires - datetime.fromisoformat(renewed.json()["valid_from"]) == timedelta(days=30)


# (state the card is brought to, action) -> status of the action and what a counter then says
TRANSITIONS = [
    ("active", "suspend", 200, Reason.SUSPENDED),
    ("active", "reinstate", 409, Reason.VALID),
    ("active", "revoke", 200, Reason.REVOKED),
    ("suspended", "suspend", 409, Reason.SUSPENDED),
    ("suspended", "reinstate", 200, Reason.VALID),
    ("suspended", "revoke", 200, Reason.REVOKED),
    ("revoked", "suspend", 409, Reason.REVOKED),
    ("revoked", "reinstate", 409, Reason.REVOKED),
    ("revoked", "revoke", 409, Reason.REVOKED),
    ("superseded", "suspend", 409, Reason.SUPERSEDED),
    ("superseded", "reinstate", 409, Reason.SUPERSEDED),
    ("superseded", "revoke", 409, Reason.SUPERSEDED),
]


@pytest.mark.parametrize(
    ("state", "action", "status", "reason"),
    TRANSITIONS,
    ids=[f"{state}-{action}" for state, action, _, _ in TRANSITIONS],
)
def test_card_state_transitions(
    service: Service, state: str, action: str, status: int, reason: Reason
) -> None:
    supervisor = service.headers("supervisor")
    code, card = service.with_card(("hc",))
    serial = card["serial"]
    setup = {"suspended": "suspend", "revoked": "revoke"}.get(state)
    if setup:
        path = f"/api/cards/{serial}/{setup}"
        done = service.client.post(path, headers=supervisor, json={"reason": "setup"})
        assert done.status_code == 200, done.text
    elif state == "superseded":
        assert service.client.post(f"/api/persons/{code}/cards", headers=supervisor).is_success
    assert service.card(serial)["state"] == state
    before, seq = service.snapshot(), service.audit_seq()

    response = service.client.post(
        f"/api/cards/{serial}/{action}", headers=supervisor, json={"reason": "test reason"}
    )
    if status == 409:
        assert_problem(response, 409, "invalid-transition")
        assert service.snapshot() == before
        assert service.audit_after(seq) == []
    else:
        assert response.status_code == 200, response.text
        [entry] = service.audit_after(seq)
        state = response.json()["state"]
        # The officer's free-text reason stays with the card, not in the audit log: it may
        # name people, and the audit log carries no personal data.
        assert (entry.action, entry.detail, entry.outcome) == (
            f"card.{state}",
            "reason given",
            "ok",
        )
    assert service.reasons(card["qr_text"]) == [reason]


def test_revoking_keeps_the_reason(service: Service) -> None:
    _, card = service.with_card(("hc",))
    revoked = service.client.post(
        f"/api/cards/{card['serial']}/revoke",
        headers=service.headers("supervisor"),
        json={"reason": "card reported stolen"},
    )
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["state"], revoked.json()["revoked_reason"]) == (
        "revoked",
        "card reported stolen",
    )
    assert service.card(card["serial"])["revoked_reason"] == "card reported stolen"


@pytest.mark.parametrize(
    ("body", "field"),
    [(None, "body"), ({}, "reason"), ({"reason": ""}, "reason"), ({"reason": "  \t "}, "reason")],
)
def test_revoking_without_a_reason_is_refused(service: Service, body: Any, field: str) -> None:
    _, card = service.with_card(("hc",))
    before, seq = service.snapshot(), service.audit_seq()
    refused = service.client.post(
        f"/api/cards/{card['serial']}/revoke", headers=service.headers("supervisor"), json=body
    )
    problem = assert_problem(refused, 422, "validation-failed")
    assert [error["field"] for error in problem["errors"]] == [field]
    assert service.snapshot() == before
    assert service.audit_after(seq) == []
    assert service.card(card["serial"])["state"] == "active"


@pytest.mark.parametrize("days", [True, False, "30", 30.5, 0, -1, 20 * 365 + 1])
def test_valid_days_must_be_a_whole_number_of_days_in_range(service: Service, days: Any) -> None:
    code, card = service.with_card(("hc",))
    refused = service.client.post(
        f"/api/persons/{code}/cards",
        headers=service.headers("registrar"),
        json={"valid_days": days},
    )
    assert_problem(refused, 422, "validation-failed")
    assert service.card(card["serial"])["state"] == "active"  # not replaced


def test_a_suspension_survives_re_issue_and_entitlement_changes(service: Service) -> None:
    registrar, supervisor = service.headers("registrar"), service.headers("supervisor")
    code, card = service.with_card(("hc",))
    suspended = service.client.post(
        f"/api/cards/{card['serial']}/suspend", headers=supervisor, json={"reason": "inquiry"}
    )
    assert suspended.status_code == 200, suspended.text

    # A registrar may not lift a suspension by issuing a new card...
    for headers in (registrar, supervisor):
        refused = service.client.post(f"/api/persons/{code}/cards", headers=headers)
        assert_problem(refused, 409, "card-suspended")
    assert len(service.cards_of(code)) == 1

    # ...nor by changing entitlements: the new card is suspended as well.
    granted = service.client.post(
        f"/api/persons/{code}/grants", headers=registrar, json={"service": "ed"}
    )
    assert granted.status_code == 201, granted.text
    replacement = current_card(service, code)
    assert replacement["state"] == "suspended"
    assert service.card(card["serial"])["state"] == "superseded"
    assert service.reasons(card["qr_text"], replacement["qr_text"], service="ed") == [
        Reason.SUPERSEDED,
        Reason.SUSPENDED,
    ]

    reinstated = service.client.post(
        f"/api/cards/{replacement['serial']}/reinstate", headers=supervisor, json={}
    )
    assert reinstated.status_code == 200, reinstated.text
    assert service.reasons(replacement["qr_text"], service="ed") == [Reason.VALID]


def test_expired_cards_leave_the_life_cycle(service: Service) -> None:
    registrar = service.headers("registrar")
    code = service.register()
    service.client.post(f"/api/persons/{code}/grants", headers=registrar, json={"service": "hc"})
    card = service.client.post(
        f"/api/persons/{code}/cards", headers=registrar, json={"valid_days": 1}
    ).json()
    with Session(service.engine) as session:
        assert cards.expire_cards(session, at=datetime.now(UTC) + timedelta(days=2)) >= 1
        session.commit()
    assert service.card(card["serial"])["state"] == "expired"
    refused = service.client.post(
        f"/api/cards/{card['serial']}/suspend", headers=service.headers("supervisor")
    )
    assert_problem(refused, 409, "invalid-transition")
    renewed = service.client.post(f"/api/persons/{code}/cards", headers=registrar)
    assert renewed.status_code == 201, renewed.text
    assert service.card(card["serial"])["state"] == "expired"


# --- idempotency ---------------------------------------------------------------------------


def test_the_same_idempotency_key_returns_the_same_card(service: Service) -> None:
    registrar = service.headers("registrar")
    code = service.register()
    service.client.post(f"/api/persons/{code}/grants", headers=registrar, json={"service": "hc"})
    key = {"Idempotency-Key": f"issue-{code}"}
    first = service.client.post(f"/api/persons/{code}/cards", headers=registrar | key)
    again = service.client.post(f"/api/persons/{code}/cards", headers=registrar | key)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert first.json() == again.json()
    assert len(service.cards_of(code)) == 1

    other = service.register()
    service.client.post(f"/api/persons/{other}/grants", headers=registrar, json={"service": "hc"})
    seq, before = service.audit_seq(), service.snapshot()
    for headers, person, body in (
        (registrar, other, None),  # the same key for another person
        (service.headers("supervisor"), code, None),  # the same key from another officer
        (registrar, code, {"valid_days": 30}),  # the same key with other options
    ):
        reused = service.client.post(
            f"/api/persons/{person}/cards", headers=headers | key, json=body
        )
        assert_problem(reused, 409, "idempotency-key-reused")
    assert service.snapshot() == before
    assert service.audit_after(seq) == []

    fresh = service.client.post(f"/api/persons/{code}/cards", headers=registrar)
    assert fresh.status_code == 201
    assert fresh.json()["serial"] != first.json()["serial"]
    assert len(service.cards_of(code)) == 2


def test_two_idempotency_keys_in_one_request_are_refused(service: Service) -> None:
    code, card = service.with_card(("hc",))
    headers = [
        ("Authorization", service.headers("registrar")["Authorization"]),
        ("Idempotency-Key", "first-key"),
        ("Idempotency-Key", "second-key"),
    ]
    refused = service.client.post(f"/api/persons/{code}/cards", headers=headers)
    problem = assert_problem(refused, 422, "validation-failed")
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert service.card(card["serial"])["state"] == "active"


@pytest.mark.parametrize(
    "key", ["", " ", "x" * 129, "naïve"], ids=["empty", "blank", "too-long", "non-ascii"]
)
def test_malformed_idempotency_keys_are_refused(service: Service, key: str) -> None:
    code, _ = service.with_card(("hc",))
    before = service.snapshot()
    headers: dict[str, str | bytes] = {
        **service.headers("registrar"),
        "Idempotency-Key": key.encode(),
    }
    response = service.client.post(f"/api/persons/{code}/cards", headers=headers)
    assert_problem(response, 422, "validation-failed")
    assert service.snapshot() == before
