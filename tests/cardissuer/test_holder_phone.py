"""The holder page's live card in headless Chromium at phone size (390x844): the page makes a
non-extractable device key, registers it, gets the phone card bound to it and shows a rotating
QR that counters verify as **live** (docs/FORMAT.md section 11), also with no network."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import zxingcpp
from fastapi import FastAPI
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page
from sqlmodel import Session, col, select

from cardissuer.models import CardRecord, CardState
from cardissuer.wallet.models import HolderLinkRecord
from cardissuer.wallet.phone import MAX_DEVICE_KEY_TRIES
from schemas import strictjson
from schemas.presentation import SLOT_SECONDS
from tests.cardissuer.test_holder import PHONE, _login, browser, http, service
from verifier import Bundle, Level, Reason, Verifier
from verifier._presentation import DEFAULT_PROOF_SKEW

__all__ = ["browser", "http", "service"]  # the fixtures, shared with the holder page's tests

SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
VENDOR = Path(__file__).parents[2] / "cardissuer" / "web" / "static" / "vendor"
BANK_MAX_PROOF_AGE = 20
"""verifier/policies/bank.json's max_proof_age_seconds."""


EXPORT_KEPT_KEY = """async () => {
    const db = await new Promise((ok) => {
        const opening = indexedDB.open('fmcard-phone', 1);
        opening.onsuccess = () => ok(opening.result);
    });
    const entry = await new Promise((ok) => {
        const store = db.transaction('cards').objectStore('cards');
        const reading = store.get(new URL(location.href).pathname);
        reading.onsuccess = () => ok(reading.result);
    });
    const key = entry.key;
    const kind = [key.type, key.extractable, key.algorithm.namedCurve].join(' ');
    try { await crypto.subtle.exportKey('jwk', key); return kind + ' exported'; }
    catch (error) { return kind + ' ' + error.name; }
}"""
"""The device key kept in the page's IndexedDB, and what exporting it gives."""
REGISTER_ANOTHER_KEY = """async (path) => {
    const algorithm = {name: 'ECDSA', namedCurve: 'P-256'};
    const pair = await crypto.subtle.generateKey(algorithm, false, ['sign']);
    const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
    const answer = await fetch('/' + path + '/device-key', {method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({jwk: {crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y}})});
    return [answer.status, (await answer.json()).type];
}"""


FILES_KEPT = """async () => {
    await navigator.serviceWorker.ready;
    const kept = await caches.open('fmcard-holder:' + location.pathname);
    return (await kept.keys()).length >= 5;
}"""
"""Whether the service worker keeps the page's files (the page, style, scripts, ...)."""


def _holder_link(http: httpx.Client, services: tuple[str, ...]) -> tuple[str, str]:
    """A person of the demo office with ``services`` granted (the card re-issued) and a new
    holder link for their printed card: the person's code and the link."""
    registrar = _login(http, "registrar")
    person = http.get("/api/persons", headers=registrar).json()["items"][0]
    code = person["code"]
    held = {
        g["service"] for g in http.get(f"/api/persons/{code}", headers=registrar).json()["grants"]
    }
    for wanted in services:
        if wanted not in held:
            granted = http.post(
                f"/api/persons/{code}/grants", headers=registrar, json={"service": wanted}
            )
            assert granted.status_code == 201, granted.text
    cards = http.get(f"/api/persons/{code}", headers=registrar).json()["cards"]
    printed = next(c for c in cards if c["kind"] == "printed" and c["state"] == "active")
    link = http.post(f"/api/cards/{printed['serial']}/holder-link", headers=registrar)
    assert link.status_code == 201, link.text
    return code, str(link.json()["url"])


def _open(browser: Browser, url: str) -> tuple[BrowserContext, Page]:
    phone = browser.new_context(viewport=PHONE, device_scale_factor=2)
    page = phone.new_page()
    response = page.goto(url + "?lang=en")
    assert response is not None
    assert response.status == 200
    page.wait_for_selector("#holder-live[data-ready='true']", timeout=20_000)
    _until(page, "window.fmcardLive.shown !== null")
    return phone, page


def _until(page: Page, expression: str, timeout: float = 20) -> None:
    """Wait until ``expression`` (maybe a promise) is true in the page. Polled from here:
    Playwright's in-page polling evaluates strings, which the page's policy refuses."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


def _shown(page: Page) -> dict[str, Any]:
    shown: dict[str, Any] = page.evaluate("window.fmcardLive.shown")
    return shown


def _scan(page: Page) -> str:
    """The text of the live QR as a camera would read it: a screenshot of the canvas."""
    png = page.locator("#live-qr").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    texts = [barcode.text for barcode in found if barcode.text.startswith("FM2:")]
    assert len(texts) == 1, [b.text[:12] for b in found]
    return texts[0]


def _screenshot(page: Page, name: str, tmp_path: Path) -> None:
    """The phone's screen: a real page (many colours, none filling it), saved for the docs
    with ``FMCARD_UPDATE_SCREENSHOTS=1``."""
    png = page.screenshot()
    (tmp_path / f"{name}.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 24) or []
    assert len(colours) > 50, f"{name}: only {len(colours)} colours, the page looks blank"
    assert max(count for count, _ in colours) < 0.9 * image.width * image.height
    if os.environ.get("FMCARD_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / f"{name}.png").write_bytes(png)


def _verifier(http: httpx.Client) -> Verifier:
    now = datetime.now(UTC)
    return Verifier(Bundle.from_json(json.loads(http.get("/bundle.json").content), at=now))


def _scan_fresh(page: Page) -> tuple[str, datetime]:
    """Scan when at least 3 seconds of the current slot are left, so that the QR cannot change
    between the screenshot and the reading of the page's state."""
    while time.time() % SLOT_SECONDS > SLOT_SECONDS - 3:
        time.sleep(0.2)
    _until(page, f"window.fmcardLive.shown.slot === {int(time.time()) // SLOT_SECONDS}")
    return _scan(page), datetime.now(UTC)


def test_the_page_binds_the_phone_and_shows_a_live_card(
    service: tuple[str, FastAPI], http: httpx.Client, browser: Browser, tmp_path: Path
) -> None:
    code, url = _holder_link(http, ("bk", "tr"))
    phone, page = _open(browser, url)

    # The issuer signed a phone card bound to the page's P-256 key, ending with the printed card.
    engine = service[1].state.engine
    with Session(engine) as session:
        link = session.exec(
            select(HolderLinkRecord).order_by(col(HolderLinkRecord.id).desc())
        ).first()
        assert link is not None
        assert link.device_jwk is not None
        jwk = strictjson.loads(link.device_jwk)
        assert (jwk["kty"], jwk["crv"], sorted(jwk)) == ("EC", "P-256", ["crv", "kty", "x", "y"])
        printed_card = session.get(CardRecord, link.card_id)
        assert printed_card is not None
        phones = session.exec(
            select(CardRecord).where(
                col(CardRecord.person_id) == printed_card.person_id,
                col(CardRecord.kind) == "phone",
                col(CardRecord.state) == CardState.ACTIVE,
            )
        ).all()
        assert [p.device_jwk for p in phones] == [link.device_jwk]
        assert phones[0].expires_at == printed_card.expires_at
    # The live code replaced the printed card's static one, which a screenshot could pass off
    # as a printed card: the page shows one QR, the live one.
    assert page.locator("#holder-qr").count() == 0
    found = zxingcpp.read_barcodes(
        Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("L")
    )
    assert [b.text[:4] for b in found] == ["FM2:"]
    # The private key cannot leave the browser, not even to this page's own script.
    refused = page.evaluate(EXPORT_KEPT_KEY)
    assert refused == "private false P-256 InvalidAccessError"

    # The bank counter: everything disclosed, live; the same text later is a copy.
    page.locator("#live-counters button[data-service='bk']").click()
    _until(page, "window.fmcardLive.shown.service === 'bk'")
    verifier = _verifier(http)
    text, at = _scan_fresh(page)
    assert text == _shown(page)["text"]
    result = verifier.verify(text, service="bk", at=at)
    assert (result.reason, result.level) == (Reason.VALID, Level.LIVE), result.detail
    assert result.card is not None
    assert result.card.code == code
    assert result.disclosed is not None
    assert {"na", "bd", "en.bk", "en.tr"} <= result.disclosed
    slot_end = datetime.fromtimestamp((_shown(page)["slot"] + 1) * SLOT_SECONDS, UTC)
    later = slot_end + timedelta(seconds=BANK_MAX_PROOF_AGE) + DEFAULT_PROOF_SKEW
    replayed = verifier.verify(text, service="bk", at=later)
    assert (replayed.reason, replayed.level) == (Reason.PROOF_STALE, Level.COPY)
    # Shown at another counter, the bank's presentation is no proof for it.
    relayed = verifier.verify(text, service="hc", at=at)
    assert relayed.level is Level.COPY

    # The bus counter: only the bus entitlement (and the portrait, when there is one).
    page.locator("#live-counters button[data-service='tr']").click()
    _until(page, "window.fmcardLive.shown.service === 'tr'")
    fields = page.locator("#live-fields").get_attribute("data-labels")
    bus, at = _scan_fresh(page)
    result = verifier.verify(bus, service="tr", at=at)
    assert (result.reason, result.level) == (Reason.VALID, Level.LIVE), result.detail
    assert result.disclosed is not None
    assert result.disclosed <= {"en.tr", "pt"}
    assert "en.tr" in result.disclosed
    assert fields is not None
    assert set(fields.split()) == result.disclosed
    assert result.closed >= 3  # nationality, birth date and the other entitlements stay closed
    assert "Bus and metro" in page.locator("#live-counters").inner_text()
    page.locator("#live-title").scroll_into_view_if_needed()
    _screenshot(page, "holder-live", tmp_path)

    # A new slot, a new QR.
    first = _shown(page)
    _until(page, f"window.fmcardLive.shown.slot > {first['slot']}", timeout=15)
    second, at = _scan_fresh(page)
    assert second != bus
    assert verifier.verify(second, service="tr", at=at).level is Level.LIVE

    # Opening the page again keeps the key and the card: no second phone card.
    assert page.goto(url) is not None
    page.wait_for_selector("#holder-live[data-ready='true']")
    with Session(engine) as session:
        count = session.exec(
            select(CardRecord).where(
                col(CardRecord.kind) == "phone", col(CardRecord.device_jwk) == link.device_jwk
            )
        ).all()
        assert len(count) == 1
    assert page.locator("#live-warnings li").count() == 0
    assert page.locator("#holder-qr").count() == 0  # left out by the server for a bound link
    phone.close()


def test_the_live_card_works_offline_after_the_first_visit(
    http: httpx.Client, browser: Browser
) -> None:
    _, url = _holder_link(http, ("bk",))
    phone, page = _open(browser, url)
    # The worker keeps the page's files once it is installed.
    _until(page, FILES_KEPT, timeout=15)
    # Installable: the page names its manifest, which opens this link as an app.
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    assert page.get_attribute("link[rel=manifest]", "href") == path + "/manifest.webmanifest"
    manifest = page.request.get(url + "/manifest.webmanifest").json()
    assert (manifest["start_url"], manifest["scope"], manifest["display"]) == (
        path,
        path,
        "standalone",
    )
    assert {icon["sizes"] for icon in manifest["icons"]} == {"192x192", "512x512"}
    origin = url.split("/h/", 1)[0]
    for icon in manifest["icons"]:
        assert page.request.get(origin + icon["src"]).ok
    phone.set_offline(True)
    response = page.reload()
    assert response is not None
    assert response.status == 200
    page.wait_for_selector("#holder-live[data-ready='true']", timeout=20_000)
    _until(page, "window.fmcardLive.shown !== null")
    assert page.locator("#live-warnings li[data-warning='offline']").count() == 1
    page.locator("#live-counters button[data-service='bk']").click()
    _until(page, "window.fmcardLive.shown.service === 'bk'")
    text, at = _scan_fresh(page)
    result = _verifier(http).verify(text, service="bk", at=at)
    assert (result.reason, result.level) == (Reason.VALID, Level.LIVE), result.detail
    phone.close()


def test_the_page_warns_when_the_phones_clock_is_off(http: httpx.Client, browser: Browser) -> None:
    _, url = _holder_link(http, ("bk",))
    phone = browser.new_context(viewport=PHONE)
    page = phone.new_page()
    page.clock.install(time=datetime.now(UTC) + timedelta(minutes=3))
    page.clock.resume()
    page.goto(url + "?lang=en")
    page.wait_for_selector("#holder-live[data-ready='true']", timeout=20_000)
    warning = page.locator("#live-warnings li[data-warning='clock']")
    assert warning.count() == 1
    assert "clock is 18" in warning.inner_text()  # 180 seconds: "18x seconds off"
    phone.close()


def test_an_old_kept_card_near_its_end_is_warned_about_offline(
    http: httpx.Client, browser: Browser
) -> None:
    """Offline, ten days before the card's end and months after the card was last fetched:
    the page warns of the end (30 days) and of the old copy (7 days), not of the clock (its
    offset was measured online, and the clock was right then)."""
    _, url = _holder_link(http, ("bk",))
    phone, page = _open(browser, url)
    _until(page, FILES_KEPT, timeout=15)
    expires = page.evaluate("window.fmcardLive.entry.card.expires_at")
    phone.set_offline(True)
    page.clock.install(time=datetime.fromtimestamp(expires, UTC) - timedelta(days=10))
    page.clock.resume()
    page.reload()
    page.wait_for_selector("#holder-live[data-ready='true']", timeout=20_000)
    warnings = page.eval_on_selector_all(
        "#live-warnings li", "items => items.map(i => i.dataset.warning)"
    )
    assert warnings == ["offline", "expiring", "stale"]
    assert "Ask the issuing office to renew it." in page.inner_text("#live-warnings")
    phone.close()


def test_device_keys_are_registered_once_per_link_from_the_page_only(
    service: tuple[str, FastAPI], http: httpx.Client, browser: Browser
) -> None:
    _, url = _holder_link(http, ("bk",))
    phone, page = _open(browser, url)
    path = url.split("://", 1)[1].split("/", 1)[1]
    registered = page.evaluate(REGISTER_ANOTHER_KEY, path)
    assert registered[0] == 409
    assert registered[1].endswith("device-key-registered")
    # Another site's page (or a form) cannot register a key with the holder's cookie.
    device = {"Cookie": "; ".join(f"{c['name']}={c['value']}" for c in phone.cookies())}
    jwk = strictjson.loads(json.dumps(page.evaluate("window.fmcardLive.entry.jwk")).encode())
    body = json.dumps({"jwk": {k: jwk[k] for k in ("crv", "kty", "x", "y")}})
    for headers in (
        {"Origin": "https://evil.example", "Content-Type": "application/json"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
        {"Content-Type": "application/json"},
        {"Sec-Fetch-Site": "same-origin", "Content-Type": "text/plain"},
    ):
        answer = http.post(f"/{path}/device-key", content=body, headers={**headers, **device})
        assert answer.status_code == 403, headers
        assert answer.json()["type"].endswith("cross-site-refused")
    own = {"Origin": str(http.base_url).rstrip("/"), "Content-Type": "application/json"}
    # Without the device's cookie the link does not know the caller.
    stranger = http.post(f"/{path}/device-key", content=body, headers=own)
    assert stranger.status_code == 403
    assert stranger.json()["reason"] == "other_device"
    # The same key again (a page that lost the answer): the same card, nothing new signed.
    again = http.post(f"/{path}/device-key", content=body, headers={**own, **device})
    assert again.status_code == 200, again.text
    assert again.json()["serial"] == page.evaluate("window.fmcardLive.entry.card.serial")
    # Every request counts: past the limit the link answers 429.
    with Session(service[1].state.engine) as session:
        link = session.exec(
            select(HolderLinkRecord).order_by(col(HolderLinkRecord.id).desc())
        ).first()
        assert link is not None
        tries = link.device_key_tries
    for _ in range(MAX_DEVICE_KEY_TRIES - tries):
        assert (
            http.post(f"/{path}/device-key", content=body, headers={**own, **device}).status_code
            == 200
        )
    limited = http.post(f"/{path}/device-key", content=body, headers={**own, **device})
    assert limited.status_code == 429
    assert "retry-after" in limited.headers
    phone.close()


def test_the_vendored_qr_encoder_is_the_registrys_file() -> None:
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    for name in ("qrcode.js", "LICENSE.qrcode-generator"):
        digest = hashlib.sha256((VENDOR / name).read_bytes()).hexdigest()
        assert f"| `{name}` | `{digest}` |" in readme
