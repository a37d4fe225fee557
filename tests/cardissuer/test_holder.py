"""The holder's card page in headless Chromium at phone size: the QR on the screen scans and
verifies; another device, a revoked card and an expired link are refused; the page speaks the
browser's language or the one the holder picks, right to left for Arabic."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import zxingcpp
from fastapi import FastAPI
from PIL import Image
from playwright.sync_api import Browser, ViewportSize, sync_playwright
from sqlmodel import Session, select

from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.config import Settings
from cardissuer.i18n import LANGUAGES, holder_language, translations
from cardissuer.main import create_app
from cardissuer.seed import DEMO_PASSWORD, seed_demo
from cardissuer.wallet.models import HolderLinkRecord
from cardissuer.web import holder
from tests.cardissuer.test_console import CHROMIUM, CHROMIUM_ARGS, _require_chromium, served
from verifier.bundle import Bundle
from verifier.reason import Reason
from verifier.verifier import Verifier

PHONE: ViewportSize = {"width": 390, "height": 844}
SCREENSHOT = Path(__file__).parents[2] / "docs" / "screenshots" / "holder-page.png"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FastAPI]]:
    directory = tmp_path_factory.mktemp("holder")
    app = create_app(
        Settings(workspace=directory, database_url=f"sqlite:///{directory / 'fmcard.db'}")
    )
    seed_demo(app.state.engine, issuing_context_of(app), environment=app.state.settings.environment)
    with served(app) as base_url:
        yield base_url, app


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def http(service: tuple[str, FastAPI]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service[0]) as client:
        yield client


def _login(http: httpx.Client, username: str) -> dict[str, str]:
    response = http.post("/api/auth/login", json={"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    http.cookies.clear()
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _card(http: httpx.Client, headers: dict[str, str], index: int) -> dict[str, str]:
    person = http.get("/api/persons", headers=headers).json()["items"][index]
    card: dict[str, str] = http.get(f"/api/persons/{person['code']}", headers=headers).json()[
        "cards"
    ][0]
    return card


def test_holder_page_shows_a_scannable_card_to_one_device(
    http: httpx.Client, browser: Browser, tmp_path: Path
) -> None:
    registrar = _login(http, "registrar")
    card = _card(http, registrar, 0)
    link = http.post(f"/api/cards/{card['serial']}/holder-link", headers=registrar)
    assert link.status_code == 201, link.text
    url = link.json()["url"]

    # A phone whose card cannot be bound (here the key's registration never answers) shows
    # the printed card's QR; a bound phone shows the live code instead (test_holder_phone).
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2)
    phone.route("**/device-key", lambda route: route.abort())
    page = phone.new_page()
    response = page.goto(url + "?lang=en")
    assert response is not None
    assert response.status == 200
    page.wait_for_function("document.getElementById('holder-qr').naturalWidth > 0")
    assert page.locator("#add-apple").is_visible()
    assert page.locator("#add-google").is_visible()
    assert "brightness" in page.content()
    png = page.screenshot(full_page=True)
    if os.environ.get("FMCARD_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(png)
    (tmp_path / "holder.png").write_bytes(png)
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    texts = [barcode.text for barcode in found if barcode.text.startswith("FM1:")]
    assert texts == [card["qr_text"]]
    now = datetime.now(UTC)
    bundle = Bundle.from_json(json.loads(http.get("/bundle.json").content), at=now)
    result = Verifier(bundle).verify(texts[0], service="hc", at=now)
    assert result.reason is Reason.VALID
    assert result.card is not None
    assert result.card.serial == card["serial"]
    # The same device comes back: still the card.
    assert page.goto(url) is not None
    assert page.locator("#holder-qr").count() == 1
    pkpass = page.request.get(url + "/pass.pkpass")
    assert pkpass.ok
    assert pkpass.headers["content-type"] == "application/vnd.apple.pkpass"

    other = browser.new_context(viewport=PHONE)
    refused = other.new_page()
    answer = refused.goto(url + "?lang=en")
    assert answer is not None
    assert answer.status == 403
    assert refused.locator("#refused").get_attribute("data-reason") == "other_device"
    assert refused.request.get(url + "/qr.png").status == 403
    other.close()

    supervisor = _login(http, "supervisor")
    revoked = http.post(
        f"/api/cards/{card['serial']}/revoke", headers=supervisor, json={"reason": "stolen"}
    )
    assert revoked.status_code == 200, revoked.text
    gone = page.goto(url + "?lang=en")
    assert gone is not None
    assert gone.status == 410
    assert "This card is no longer valid." in page.locator("#refused").inner_text()
    phone.close()


def test_expired_link_is_refused(
    service: tuple[str, FastAPI], http: httpx.Client, browser: Browser
) -> None:
    app = service[1]
    registrar = _login(http, "registrar")
    card = _card(http, registrar, 1)
    url = http.post(f"/api/cards/{card['serial']}/holder-link", headers=registrar).json()["url"]
    with Session(app.state.engine) as session:
        record = session.exec(select(HolderLinkRecord).order_by(HolderLinkRecord.id.desc())).first()  # type: ignore[union-attr]
        assert record is not None
        record.expires_at = datetime.now(UTC) - timedelta(minutes=1)
        session.add(record)
        session.commit()
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    answer = page.goto(url + "?lang=zh")
    assert answer is not None
    assert answer.status == 410
    assert page.locator("#refused").get_attribute("data-reason") == "expired"
    context.close()


def test_holder_page_follows_the_browser_and_the_holders_choice(
    http: httpx.Client, browser: Browser, tmp_path: Path
) -> None:
    """Korean from Accept-Language; the menu switches to Arabic, laid out right to left and
    remembered in a cookie that holds only the language; no stated language gives Chinese."""
    registrar = _login(http, "registrar")
    card = _card(http, registrar, 2)
    url = http.post(f"/api/cards/{card['serial']}/holder-link", headers=registrar).json()["url"]
    phone = browser.new_context(
        viewport=PHONE, extra_http_headers={"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.8"}
    )
    page = phone.new_page()
    assert page.goto(url) is not None
    assert page.eval_on_selector("html", "h => [h.lang, h.dir]") == ["ko", "ltr"]
    assert page.title() == "외국 상인 카드 · 이우시 공안국"
    assert page.locator("#add-apple").inner_text() == "Apple 지갑에 추가"
    links = page.locator("#holder-lang a")
    assert links.count() == len(LANGUAGES)
    page.locator("#holder-lang summary").click()
    page.locator("#holder-lang a[hreflang=ar]").click()
    page.wait_for_load_state()
    assert page.eval_on_selector("html", "h => [h.lang, h.dir]") == ["ar", "rtl"]
    assert "إضافة إلى Apple Wallet" in page.locator("#add-apple").inner_text()
    # Right to left: the brand starts at the right edge, the language menu sits on the left,
    # the portrait is on the right of the names; the code stays left to right.
    brand = page.locator(".holder-brand").bounding_box()
    menu = page.locator("#holder-lang").bounding_box()
    assert brand is not None
    assert menu is not None
    assert menu["x"] < brand["x"]
    names = page.locator(".holder-names").bounding_box()
    portrait = page.locator(".holder-portrait")
    if portrait.count():
        box = portrait.bounding_box()
        assert box is not None
        assert names is not None
        assert box["x"] > names["x"]
    assert page.eval_on_selector("#holder-code", "d => getComputedStyle(d).direction") == "ltr"
    (tmp_path / "holder-ar.png").write_bytes(page.screenshot(full_page=True))
    cookies = {c["name"]: c["value"] for c in phone.cookies()}
    assert cookies["lang"] == "ar"
    # Remembered: the next visit, without ?lang, is Arabic although the browser asks Korean.
    assert page.goto(url) is not None
    assert page.eval_on_selector("html", "h => h.dir") == "rtl"
    phone.close()
    unstated = httpx.get(url, headers={"Accept-Language": ""})
    assert '<html lang="zh-CN" dir="ltr">' in unstated.text
    assert "无法显示此卡" in unstated.text  # another device: refused, in Chinese
    german = httpx.get(url, headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert "This card cannot be shown" in german.text


@pytest.mark.parametrize(
    ("asked", "remembered", "accept", "expected"),
    [
        (None, None, None, "zh"),
        (None, None, "", "zh"),
        (None, None, "de-DE,de;q=0.9", "en"),
        (None, None, "fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        (None, None, "en;q=0.5,ur", "ur"),
        (None, "ar", "fr", "ar"),
        ("ko", "ar", "fr", "ko"),
        ("xx", "nonsense", "es", "es"),
        ("zh-CN", None, None, "zh"),
    ],
)
def test_the_holders_language_is_asked_then_remembered_then_negotiated(
    asked: str | None, remembered: str | None, accept: str | None, expected: str
) -> None:
    assert holder_language(asked, remembered, accept) == expected


@pytest.mark.parametrize(
    ("language", "days", "expected"),
    [
        ("ru", 1, "остался 1 день"),
        ("ru", 3, "осталось 3 дня"),
        ("ru", 25, "осталось 25 дней"),
        ("ar", 2, "بقي يومان"),
        ("ar", 11, "بقي 11 يومًا"),
        ("ko", 7, "7일 남음"),
        ("en", 1, "1 day left"),
        ("fr", 1, "encore 1 jour"),
    ],
)
def test_days_left_uses_each_languages_plural(language: str, days: int, expected: str) -> None:
    html = holder._templates.get_template("holder.html").render(
        _=translations(language).gettext,
        ngettext=translations(language).ngettext,
        lang=language,
        html_lang=language,
        rtl=False,
        languages=[],
        lang_name="",
        base="/h/x",
        name="N",
        native_name=None,
        chinese_name=None,
        code="C",
        serial="S",
        expires="2027-01-01",
        days_left=days,
        suspended=False,
        has_portrait=False,
        counter_names=[],
        clock_skew_seconds=holder.CLOCK_SKEW_SECONDS,
        near_expiry_days=holder.NEAR_EXPIRY_DAYS,
        stale_days=holder.STALE_DAYS,
        printed=True,
        printed_qr=True,
    )
    assert expected in html
