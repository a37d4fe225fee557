"""The holder page's device key on both databases: one key per link, the phone card bound to
it (ending with the printed card), the re-issued card after a data change, the audit entry
without personal data (cardissuer/wallet/phone.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from cardissuer.models import CardState, Role
from keys.jwk import generate, public_jwk
from keys.phone import PhoneCard, present
from keys.signer import KeySigner
from tests.cardissuer.test_api_helpers import BACKENDS, Service, shared_service
from verifier import Level, Reason

ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def _phone(service: Service, services: tuple[str, ...]) -> tuple[str, str, TestClient]:
    """A person with a printed card, a holder link opened by a new phone: the code, the
    link's path and the phone's client (holding the device cookie)."""
    code, printed = service.with_card(services)
    link = service.client.post(
        f"/api/cards/{printed['serial']}/holder-link", headers=service.headers("registrar")
    )
    assert link.status_code == 201, link.text
    path = "/h/" + link.json()["url"].rsplit("/", 1)[1]
    phone = TestClient(service.app)
    assert phone.get(path).status_code == 200
    return code, path, phone


def test_one_key_per_link_and_its_card_ends_with_the_printed_card(service: Service) -> None:
    code, path, phone = _phone(service, ("hc", "tr"))
    device = KeySigner(generate())
    jwk = public_jwk(device.public_key)
    before = service.audit_seq()
    assert phone.get(path + "/phone-card").status_code == 404  # nothing registered yet
    first = phone.post(path + "/device-key", json={"jwk": jwk}, headers=ORIGIN)
    assert first.status_code == 201, first.text
    document = first.json()
    records = {r.kind: r for r in service.cards_of(code) if r.state is CardState.ACTIVE}
    assert records["phone"].serial == document["serial"]
    assert records["phone"].expires_at == records["printed"].expires_at
    assert [c["service"] for c in document["counters"]] == ["hc", "tr"]
    assert next(c for c in document["counters"] if c["service"] == "tr")["labels"] == ["en.tr"]
    # What the phone keeps verifies as live once the device signs it.
    at = datetime.now(UTC)
    kept = PhoneCard.from_text(service.text_of(records["phone"]))
    result = service.verifier().verify(
        present(kept, device, service="tr", at=at), service="tr", at=at
    )
    assert (result.reason, result.level) == (Reason.VALID, Level.LIVE)
    # Audited without personal data: the link's id and the card's serial only.
    entries = [e for e in service.audit_after(before) if e.action == "holder_link.device_key"]
    assert len(entries) == 1
    assert entries[0].detail == f"phone card {document['serial']}"
    assert code not in " ".join(e.detail for e in service.audit_after(before))
    # The same key again: the same card. Another key: refused, nothing issued.
    again = phone.post(path + "/device-key", json={"jwk": jwk}, headers=ORIGIN)
    assert (again.status_code, again.json()["serial"]) == (200, document["serial"])
    other = public_jwk(generate())
    refused = phone.post(path + "/device-key", json={"jwk": other}, headers=ORIGIN)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/device-key-registered")
    assert len([r for r in service.cards_of(code) if r.kind == "phone"]) == 1
    phone.close()


def test_the_phone_gets_the_reissued_card_for_its_key(service: Service) -> None:
    code, path, phone = _phone(service, ("hc",))
    jwk = public_jwk(generate())
    issued = phone.post(path + "/device-key", json={"jwk": jwk}, headers=ORIGIN)
    assert issued.status_code == 201, issued.text
    granted = service.client.post(
        f"/api/persons/{code}/grants", headers=service.headers("registrar"), json={"service": "tr"}
    )
    assert granted.status_code == 201, granted.text
    phones = [r for r in service.cards_of(code) if r.kind == "phone"]
    states = sorted(r.state.value for r in phones)
    assert states == ["active", "superseded"]
    assert {r.device_jwk for r in phones} == {phones[0].device_jwk}  # the same device key
    # The printed card was re-issued too; the link follows the holder's cards, so the phone
    # fetches its re-issued card without a new link, and the page shows the new printed card.
    current = next(r for r in phones if r.state is CardState.ACTIVE)
    fetched = phone.get(path + "/phone-card")
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["serial"] == current.serial
    assert [c["service"] for c in fetched.json()["counters"]] == ["hc", "tr"]
    printed = next(
        r for r in service.cards_of(code) if r.kind == "printed" and r.state is CardState.ACTIVE
    )
    page = phone.get(path)
    assert page.status_code == 200
    assert printed.serial in page.text
    assert 'id="holder-qr"' not in page.text  # the link's device is bound: the live code only
    phone.close()


def test_a_desk_reprint_keeps_the_link_and_a_lost_printed_card_leaves_the_phone_card(
    service: Service,
) -> None:
    code, path, phone = _phone(service, ("hc",))
    printed = next(r for r in service.cards_of(code) if r.kind == "printed")
    # A re-print at the desk before the phone was bound: the link shows the new card.
    reprinted = service.client.post(
        f"/api/persons/{code}/cards", headers=service.headers("registrar"), json={}
    )
    assert reprinted.status_code == 201, reprinted.text
    new_serial = reprinted.json()["serial"]
    page = phone.get(path)
    assert page.status_code == 200
    assert new_serial in page.text
    assert printed.serial not in page.text
    assert 'id="holder-qr"' in page.text  # not bound yet: the printed card's QR
    assert phone.get(path + "/qr.png").status_code == 200
    bound = phone.post(path + "/device-key", json={"jwk": public_jwk(generate())}, headers=ORIGIN)
    assert bound.status_code == 201, bound.text
    # The printed card is lost and revoked: the phone card stays valid (docs/FORMAT.md 11.6),
    # and the link goes on showing it; the printed card's downloads are gone.
    revoked = service.client.post(
        f"/api/cards/{new_serial}/revoke",
        headers=service.headers("supervisor"),
        json={"reason": "lost"},
    )
    assert revoked.status_code == 200, revoked.text
    page = phone.get(path)
    assert page.status_code == 200
    assert bound.json()["serial"] in page.text
    assert "pass.pkpass" not in page.text
    for resource in ("/qr.png", "/pass.pkpass", "/card.png", "/card.pdf"):
        assert phone.get(path + resource).status_code == 410, resource
    fetched = phone.get(path + "/phone-card")
    assert (fetched.status_code, fetched.json()["serial"]) == (200, bound.json()["serial"])
    # The person is the reason: the phone card is revoked too, and the link says so.
    gone = service.client.post(
        f"/api/cards/{bound.json()['serial']}/revoke",
        headers=service.headers("supervisor"),
        json={"reason": "holder left"},
    )
    assert gone.status_code == 200, gone.text
    assert phone.get(path).status_code == 410
    refused = phone.get(path + "/phone-card")
    assert (refused.status_code, refused.json()["reason"]) == (410, "no_longer_valid")
    phone.close()


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        "not a key",
    ],
)
def test_a_key_that_is_not_public_p256_is_refused(service: Service, jwk: object) -> None:
    code, path, phone = _phone(service, ("hc",))
    refused = phone.post(path + "/device-key", json={"jwk": jwk}, headers=ORIGIN)
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/invalid-device-key")
    private = public_jwk(generate()) | {"d": "AAAA"}
    assert (
        phone.post(path + "/device-key", json={"jwk": private}, headers=ORIGIN).status_code == 422
    )
    assert [r for r in service.cards_of(code) if r.kind == "phone"] == []
    phone.close()


def test_a_link_whose_officer_was_disabled_issues_no_phone_card(service: Service) -> None:
    """The phone card is issued on the authority of the link's officer: once they are disabled,
    a link that has bound no key yet issues nothing (and a card issued before stays)."""
    username = "link.maker"
    maker = service.officer(username, Role.REGISTRAR)
    code, printed = service.with_card(("hc",))
    made = service.client.post(f"/api/cards/{printed['serial']}/holder-link", headers=maker)
    assert made.status_code == 201, made.text
    path = "/h/" + made.json()["url"].rsplit("/", 1)[1]
    phone = TestClient(service.app)
    assert phone.get(path).status_code == 200
    disabled = service.client.patch(
        f"/api/officers/{username}", headers=service.headers("admin"), json={"active": False}
    )
    assert disabled.status_code == 200, disabled.text
    jwk = public_jwk(generate())
    refused = phone.post(path + "/device-key", json={"jwk": jwk}, headers=ORIGIN)
    assert refused.status_code == 410, refused.text
    assert refused.json()["type"].endswith("/holder-link-refused")
    assert refused.json()["reason"] == "officer_inactive"
    assert [r for r in service.cards_of(code) if r.kind == "phone"] == []
    # Re-enabled, the same link binds the key.
    enabled = service.client.patch(
        f"/api/officers/{username}", headers=service.headers("admin"), json={"active": True}
    )
    assert enabled.status_code == 200, enabled.text
    bound = phone.post(path + "/device-key", json={"jwk": jwk}, headers=ORIGIN)
    assert bound.status_code == 201, bound.text
    phone.close()
