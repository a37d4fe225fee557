"""Wallet passes: the .pkpass archive and its signature (checked by openssl), the Google save
link's JWT, and the barcode of both verified by the offline verifier."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from cardissuer.i18n import LANGUAGES
from cardissuer.models import CardRecord
from cardissuer.render.qr import SMALL_CODE_VERSION, qr_version
from cardissuer.wallet.apple import PASS_TEXT
from cardissuer.wallet.barcode import StoredTextMismatchError, wallet_text
from keys.cards import claims_of
from schemas.code import format_for_reading
from tests.cardissuer.conftest import login_headers
from verifier.bundle import Bundle
from verifier.reason import Reason
from verifier.verifier import Verifier


def _card(client: TestClient, headers: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    person = client.get("/api/persons", headers=headers).json()["items"][0]
    detail = client.get(f"/api/persons/{person['code']}", headers=headers).json()
    return detail, detail["cards"][0]


def _verify(client: TestClient, text: str) -> Any:
    now = datetime.now(UTC)
    bundle = client.get("/bundle.json")
    assert bundle.status_code == 200
    return Verifier(Bundle.from_json(json.loads(bundle.content), at=now)).verify(
        text, service="hc", at=now
    )


def _assert_compact_form(client: TestClient, text: str, card: dict[str, Any]) -> None:
    """``text`` (a pass's barcode) is ``card`` without its portrait: valid for the counter's
    verifier against the issuer's published keys, the same serial, status index and claims
    byte for byte, and a QR as small as a card without portrait (version 12 or less at M)."""
    assert text.startswith("FM1:")
    assert claims_of(text) == claims_of(card["qr_text"])
    result = _verify(client, text)
    assert result.reason is Reason.VALID
    assert result.card is not None
    assert result.card.serial == card["serial"]
    printed = _verify(client, card["qr_text"]).card
    assert printed is not None
    assert result.card.status == printed.status
    assert result.portrait is None
    version, level = qr_version(text)
    assert (level, version <= SMALL_CODE_VERSION) == ("M", True), (version, level)


def _portrait_card(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """The first person's current card, which has a signed portrait (the demo data gives
    them one)."""
    _, card = _card(client, headers)
    assert _verify(client, card["qr_text"]).portrait is not None
    return card


def test_pkpass_layout_manifest_and_openssl_signature(
    client: TestClient, app: FastAPI, tmp_path: Path
) -> None:
    headers = login_headers(client, "registrar")
    person, card = _card(client, headers)
    response = client.get(f"/api/cards/{card['serial']}/pass.pkpass", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apple.pkpass"
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["x-fmcard-development"] == "true"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    assert {
        "pass.json",
        "manifest.json",
        "signature",
        "icon.png",
        "icon@2x.png",
        "logo.png",
    } <= names
    manifest = json.loads(archive.read("manifest.json"))
    assert set(manifest) == names - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert hashlib.sha1(archive.read(name), usedforsecurity=False).hexdigest() == digest
    document = json.loads(archive.read("pass.json"))
    assert document["serialNumber"] == card["serial"]
    assert document["passTypeIdentifier"] == app.state.settings.apple_pass_type_identifier
    assert document["teamIdentifier"] == app.state.settings.apple_team_identifier
    assert "义乌" in document["organizationName"]
    assert "Yiwu" in document["organizationName"]
    assert document["voided"] is False
    barcode = document["barcodes"][0]
    assert barcode["format"] == "PKBarcodeFormatQR"
    assert barcode["messageEncoding"] == "iso-8859-1"
    assert barcode["message"].startswith("FM1:")
    fields = json.dumps(document["generic"], ensure_ascii=False)
    assert format_for_reading(person["code"]) in fields
    assert person["family_name"] in fields
    # Labels are English keys, translated per phone language by <language>.lproj/pass.strings.
    assert document["generic"]["primaryFields"][0]["label"] == "Name"
    for language in LANGUAGES:
        directory = "zh-Hans" if language == "zh" else language
        strings = archive.read(f"{directory}.lproj/pass.strings").decode("utf-16")
        for text in PASS_TEXT:
            assert f'"{text}" = "' in strings, (language, text)
    korean = archive.read("ko.lproj/pass.strings").decode("utf-16")
    assert '"Name" = "이름";' in korean
    assert '"Foreign Merchant Card" = "외국 상인 카드";' in korean
    assert '"Expires" = "有效期至";' in archive.read("zh-Hans.lproj/pass.strings").decode("utf-16")

    for name in ("manifest.json", "signature"):
        (tmp_path / name).write_bytes(archive.read(name))
    root = app.state.settings.workspace / "wallet-dev" / "apple-dev-root.pem"
    checked = subprocess.run(
        [
            "openssl", "smime", "-verify", "-binary", "-inform", "DER",
            "-content", str(tmp_path / "manifest.json"), "-in", str(tmp_path / "signature"),
            "-CAfile", str(root), "-purpose", "any", "-out", str(tmp_path / "out"),
        ],
        capture_output=True,
        check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr.decode()
    assert b"Verification successful" in checked.stderr
    assert (tmp_path / "out").read_bytes() == archive.read("manifest.json")

    # The pass's barcode is the signed card without its portrait: the counter accepts it.
    assert document["barcode"] == barcode
    _assert_compact_form(client, barcode["message"], card)


def test_wallet_barcodes_carry_the_portrait_card_without_its_portrait(client: TestClient) -> None:
    """A portrait card's QR (version 15-16) in a wallet's barcode area is read by zbar from a
    distance for 8 of 12 cards, a compact card's for all (bench section 8): both passes carry
    the compact form, the same card signed without the portrait."""
    headers = login_headers(client, "registrar")
    card = _portrait_card(client, headers)
    assert qr_version(card["qr_text"])[0] > SMALL_CODE_VERSION
    response = client.get(f"/api/cards/{card['serial']}/pass.pkpass", headers=headers)
    assert response.status_code == 200, response.text
    document = json.loads(zipfile.ZipFile(io.BytesIO(response.content)).read("pass.json"))
    _assert_compact_form(client, document["barcodes"][0]["message"], card)
    link = client.get(f"/api/cards/{card['serial']}/google-wallet", headers=headers)
    assert link.status_code == 200, link.text
    token = link.json()["save_url"].removeprefix("https://pay.google.com/gp/v/save/")
    claims = jwt.decode(token, options={"verify_signature": False})
    (obj,) = claims["payload"]["genericObjects"]
    _assert_compact_form(client, obj["barcode"]["value"], card)


def test_a_wallet_pass_re_signs_only_the_claims_its_card_records(
    client: TestClient, app: FastAPI
) -> None:
    """The issuer re-signs only the claims the card's row records: another card's text under
    this card's record is refused, never signed into its pass."""
    headers = login_headers(client, "registrar")
    first, second = (
        client.get(f"/api/persons/{person['code']}", headers=headers).json()["cards"][0]
        for person in client.get("/api/persons", headers=headers).json()["items"][:2]
    )
    signer = app.state.keys.signer
    with Session(app.state.engine) as session:
        record = session.exec(select(CardRecord).where(CardRecord.serial == first["serial"])).one()
        assert claims_of(wallet_text(record, first["qr_text"], signer)) == claims_of(
            first["qr_text"]
        )
        with pytest.raises(StoredTextMismatchError):
            wallet_text(record, second["qr_text"], signer)


def test_revoked_card_gives_a_voided_pass(client: TestClient) -> None:
    registrar = login_headers(client, "registrar")
    _, card = _card(client, registrar)
    supervisor = login_headers(client, "supervisor")
    revoked = client.post(
        f"/api/cards/{card['serial']}/revoke", headers=supervisor, json={"reason": "stolen"}
    )
    assert revoked.status_code == 200, revoked.text
    response = client.get(f"/api/cards/{card['serial']}/pass.pkpass", headers=supervisor)
    document = json.loads(zipfile.ZipFile(io.BytesIO(response.content)).read("pass.json"))
    assert document["voided"] is True


def test_google_wallet_save_link_is_a_signed_jwt(client: TestClient, app: FastAPI) -> None:
    headers = login_headers(client, "registrar")
    _, card = _card(client, headers)
    response = client.get(f"/api/cards/{card['serial']}/google-wallet", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, no-store"
    body = response.json()
    assert body["development"] is True
    prefix = "https://pay.google.com/gp/v/save/"
    assert body["save_url"].startswith(prefix)
    account_file = app.state.settings.workspace / "wallet-dev" / "google-service-account.json"
    account = json.loads(account_file.read_text())
    key = load_pem_private_key(account["private_key"].encode(), password=None)
    claims = jwt.decode(
        body["save_url"].removeprefix(prefix),
        key.public_key(),  # type: ignore[arg-type]
        algorithms=["RS256"],
        audience="google",
    )
    assert claims["iss"] == account["client_email"]
    assert claims["typ"] == "savetowallet"
    assert claims["origins"] == []
    (obj,) = claims["payload"]["genericObjects"]
    assert obj["barcode"]["type"] == "QR_CODE"
    assert obj["barcode"]["alternateText"] == card["serial"]
    _assert_compact_form(client, obj["barcode"]["value"], card)
    assert obj["state"] == "ACTIVE"
    title = obj["cardTitle"]
    assert title["defaultValue"] == {"language": "zh-CN", "value": "外国商人卡 · 义乌市公安局"}
    translated = {value["language"]: value["value"] for value in title["translatedValues"]}
    assert set(translated) == {"en-US", *LANGUAGES} - {"en", "zh"}
    assert translated["ur"] == "غیر ملکی تاجر کارڈ · ییوو پولیس"
    serial = next(m for m in obj["textModulesData"] if m["id"] == "serial")
    assert serial["header"] == "Serial"
    assert serial["localizedHeader"]["translatedValues"][0]["value"] == "Serial"
    assert obj["classId"] == claims["payload"]["genericClasses"][0]["id"]


def test_wallet_needs_a_login_and_a_visible_card(client: TestClient) -> None:
    assert client.get("/api/cards/ABCDEFGH/pass.pkpass").status_code == 401
    headers = login_headers(client, "registrar")
    assert client.get("/api/cards/ZZZZZZZZ/google-wallet", headers=headers).status_code == 404


def test_auditor_may_not_create_holder_links(client: TestClient) -> None:
    registrar = login_headers(client, "registrar")
    _, card = _card(client, registrar)
    auditor = login_headers(client, "auditor")
    refused = client.post(f"/api/cards/{card['serial']}/holder-link", headers=auditor)
    assert refused.status_code == 403
    created = client.post(f"/api/cards/{card['serial']}/holder-link", headers=registrar)
    assert created.status_code == 201, created.text
    assert "/h/" in created.json()["url"]


def test_development_credentials_are_reused(app: FastAPI) -> None:
    from cardissuer.wallet.credentials import apple_credentials

    first = apple_credentials(app.state.settings)
    second = apple_credentials(app.state.settings)
    assert first.development
    assert first.certificate == second.certificate
