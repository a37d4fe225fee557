"""Phone cards at the issuer: bound to a registered device key, and living beside the printed
card (docs/FORMAT.md 11.6), checked the way a counter sees them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from cardissuer.models import CardRecord, CardState
from cardissuer.portrait import MAX_LIVE_TEXT
from cardissuer.render.qr import qr_version
from cardissuer.services import cards
from keys.jwk import generate, public_jwk
from keys.phone import PhoneCard, largest_presentation, present
from keys.signer import KeySigner
from tests.cardissuer.test_api_helpers import BACKENDS, Service, assert_problem, shared_service
from verifier import Level, Reason


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def _phone_card(service: Service, code: str, device: KeySigner) -> CardRecord:
    with Session(service.engine) as session:
        record = cards.issue_phone_card(
            session,
            service.actor("registrar"),
            code,
            device_jwk=public_jwk(device.public_key),
            at=datetime.now(UTC),
            context=service.context,
        )
        session.commit()
        session.refresh(record)
        return record


def _live(service: Service, record: CardRecord, device: KeySigner, counter: str = "hc") -> Level:
    """What a counter with a fresh bundle says of the phone's live presentation."""
    at = datetime.now(UTC)
    text = present(PhoneCard.from_text(service.text_of(record)), device, service=counter, at=at)
    result = service.verifier().verify(text, service=counter, at=at)
    assert result.reason is Reason.VALID, result.detail
    assert result.level is not None
    return result.level


def _reason(service: Service, record: CardRecord, device: KeySigner) -> Reason:
    at = datetime.now(UTC)
    text = present(PhoneCard.from_text(service.text_of(record)), device, service="hc", at=at)
    return service.verifier().verify(text, service="hc", at=at).reason


def test_a_phone_card_is_bound_and_lives_beside_the_printed_card(service: Service) -> None:
    code, printed = service.with_card(("hc", "tr"))
    device = KeySigner(generate())
    phone = _phone_card(service, code, device)
    assert (phone.kind, printed["serial"] != phone.serial) == ("phone", True)
    assert _live(service, phone, device) is Level.LIVE
    assert _live(service, phone, device, "tr") is Level.LIVE
    assert service.reasons(printed["qr_text"]) == [Reason.VALID]
    # The stored text is the card without a proof: a copy, refused everywhere.
    assert service.reasons(service.text_of(phone)) == [Reason.PROOF_MISSING]
    states = {r.serial: (r.kind, r.state) for r in service.cards_of(code)}
    assert states == {
        printed["serial"]: ("printed", CardState.ACTIVE),
        phone.serial: ("phone", CardState.ACTIVE),
    }


def test_each_kind_supersedes_only_its_own(service: Service) -> None:
    code, printed = service.with_card(("hc",))
    device, new_device = KeySigner(generate()), KeySigner(generate())
    phone = _phone_card(service, code, device)
    reprinted = service.client.post(
        f"/api/persons/{code}/cards", headers=service.headers("registrar")
    )
    assert reprinted.status_code == 201, reprinted.text
    assert service.reasons(printed["qr_text"]) == [Reason.SUPERSEDED]
    assert _live(service, phone, device) is Level.LIVE  # the phone card is untouched
    # A new phone: the old phone card is superseded, the printed card stays.
    second = _phone_card(service, code, new_device)
    assert _reason(service, phone, device) is Reason.SUPERSEDED
    assert _live(service, second, new_device) is Level.LIVE
    assert service.reasons(reprinted.json()["qr_text"]) == [Reason.VALID]


def test_a_lost_phone_revokes_only_the_phone_card(service: Service) -> None:
    code, printed = service.with_card(("hc",))
    device = KeySigner(generate())
    phone = _phone_card(service, code, device)
    revoked = service.client.post(
        f"/api/cards/{phone.serial}/revoke",
        headers=service.headers("supervisor"),
        json={"reason": "phone lost"},
    )
    assert revoked.status_code == 200, revoked.text
    assert _reason(service, phone, device) is Reason.REVOKED
    assert service.reasons(printed["qr_text"]) == [Reason.VALID]


def test_changed_data_re_issues_both_kinds_for_the_same_phone(service: Service) -> None:
    code, printed = service.with_card(("hc",))
    device = KeySigner(generate())
    phone = _phone_card(service, code, device)
    granted = service.client.post(
        f"/api/persons/{code}/grants", headers=service.headers("registrar"), json={"service": "tr"}
    )
    assert granted.status_code == 201, granted.text
    current = {r.kind: r for r in service.cards_of(code) if r.state is CardState.ACTIVE}
    assert set(current) == {"printed", "phone"}
    assert current["phone"].device_jwk == phone.device_jwk
    assert _live(service, current["phone"], device, "tr") is Level.LIVE
    assert service.reasons(printed["qr_text"]) == [Reason.SUPERSEDED]
    assert _reason(service, phone, device) is Reason.SUPERSEDED


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param({"kty": "OKP", "crv": "Ed25519", "x": "A" * 43}, id="ed25519"),
        pytest.param({**public_jwk(generate()), "y": "A" * 43}, id="not-on-the-curve"),
        pytest.param({**public_jwk(generate()), "d": "A" * 43}, id="private"),
        pytest.param("not a jwk", id="string"),
    ],
)
def test_a_bad_device_key_is_refused(service: Service, jwk: object) -> None:
    code, _ = service.with_card(("hc",))
    with Session(service.engine) as session, pytest.raises(cards.DeviceKeyError):
        cards.issue_phone_card(
            session,
            service.actor("registrar"),
            code,
            device_jwk=jwk,
            at=datetime.now(UTC),
            context=service.context,
        )


def test_the_api_issues_a_phone_card_the_phone_can_present(service: Service) -> None:
    code, printed = service.with_card(("hc",))
    device = KeySigner(generate())
    response = service.client.post(
        f"/api/persons/{code}/phone-cards",
        headers=service.headers("registrar"),
        json={"device_jwk": public_jwk(device.public_key)},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "phone"
    document = body["phone_card"]
    assert {d["label"] for d in document["disclosures"]} >= {"na", "bd", "en.hc"}
    assert document["profiles"]["tr"] == ["en.tr", "pt"]
    phone = PhoneCard.from_text(body["qr_text"])
    assert phone.to_json() == document
    at = datetime.now(UTC)
    result = service.verifier().verify(
        present(phone, device, service="hc", at=at), service="hc", at=at
    )
    assert (result.reason, result.level) == (Reason.VALID, Level.LIVE)
    assert service.reasons(printed["qr_text"]) == [Reason.VALID]


def test_the_api_refuses_a_bad_device_key(service: Service) -> None:
    code, _ = service.with_card(("hc",))
    headers = service.headers("registrar")
    bad = {**public_jwk(generate()), "y": "A" * 43}
    response = service.client.post(
        f"/api/persons/{code}/phone-cards", headers=headers, json={"device_jwk": bad}
    )
    assert_problem(response, 422, "invalid-device-key")
    auditor = service.client.post(
        f"/api/persons/{code}/phone-cards",
        headers=service.headers("auditor"),
        json={"device_jwk": public_jwk(generate())},
    )
    assert auditor.status_code == 403, auditor.text


def test_a_phone_card_has_no_printed_wallet_or_qr_image_form(service: Service) -> None:
    """Without its device's proof every counter refuses a phone card (PROOF_MISSING): the
    service makes no card image, PDF, sheet, QR image or wallet pass of it."""
    code, printed = service.with_card(("hc",))
    device = KeySigner(generate())
    headers = service.headers("registrar")
    issued = service.client.post(
        f"/api/persons/{code}/phone-cards",
        headers=headers,
        json={"device_jwk": public_jwk(device.public_key)},
    )
    assert issued.status_code == 201, issued.text
    serial = issued.json()["serial"]
    for path in ("card.png", "card.pdf", "qr.png", "pass.pkpass", "google-wallet"):
        refused = service.client.get(f"/api/cards/{serial}/{path}", headers=headers)
        assert_problem(refused, 409, "phone-card-not-printable")
    sheet = service.client.post("/api/cards/sheet.pdf", headers=headers, json=[serial])
    assert_problem(sheet, 409, "phone-card-not-printable")
    # The printed card of the same person still prints.
    image = service.client.get(f"/api/cards/{printed['serial']}/qr.png", headers=headers)
    assert image.status_code == 200, image.text


def test_a_phone_card_with_long_names_and_a_portrait_stays_within_version_22(
    service: Service,
) -> None:
    """An Arabic native name, a Chinese name, a portrait and four entitlements: the bank's
    presentation (everything disclosed, with the proof) needed version 23 with the portrait
    as stored; the issuer signs the phone card with the same face at a lower quality so that
    every presentation fits version 22 at L, and leaves cards that fit alone."""
    registrar = service.headers("registrar")
    code = service.register(
        family_name="AL-HASHIMI",
        given_names="MOHAMMED ABDULLAH",
        native_name="محمد عبد الله الهاشمي",
        chinese_name="穆罕默德·哈希米",
    )
    for wanted in ("hc", "tr", "bk", "ed"):
        granted = service.client.post(
            f"/api/persons/{code}/grants", headers=registrar, json={"service": wanted}
        )
        assert granted.status_code == 201, granted.text
    photo = Path(cards.__file__).parents[1] / "demo" / "sample-photo.jpg"
    uploaded = service.client.put(
        f"/api/persons/{code}/portrait",
        headers=registrar,
        files={"photo": ("me.jpg", photo.read_bytes(), "image/jpeg")},
    )
    assert uploaded.status_code == 200, uploaded.text
    device = KeySigner(generate())
    phone = PhoneCard.from_text(service.text_of(_phone_card(service, code, device)))
    largest = largest_presentation(phone)
    assert len(largest) <= MAX_LIVE_TEXT
    assert qr_version(largest)[0] <= 22
    stored = service.client.get(f"/api/persons/{code}/portrait", headers=registrar).content
    shown = next(d.value for d in phone.disclosures if d.name == "pt")
    assert len(shown) < len(stored)  # the stored portrait alone would not fit
    at = datetime.now(UTC)
    bank = present(phone, device, service="bk", at=at)
    result = service.verifier().verify(bank, service="bk", at=at)
    assert (result.reason, result.level) == (Reason.VALID, Level.LIVE), result.detail
    assert result.portrait == shown
    # A short name keeps the portrait as stored.
    short = service.register(family_name="LI", given_names="NA")
    granted = service.client.post(
        f"/api/persons/{short}/grants", headers=registrar, json={"service": "hc"}
    )
    assert granted.status_code == 201, granted.text
    uploaded = service.client.put(
        f"/api/persons/{short}/portrait",
        headers=registrar,
        files={"photo": ("me.jpg", photo.read_bytes(), "image/jpeg")},
    )
    assert uploaded.status_code == 200, uploaded.text
    kept = PhoneCard.from_text(service.text_of(_phone_card(service, short, KeySigner(generate()))))
    stored = service.client.get(f"/api/persons/{short}/portrait", headers=registrar).content
    assert next(d.value for d in kept.disclosures if d.name == "pt") == stored
