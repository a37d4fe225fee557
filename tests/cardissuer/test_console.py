"""The officer console in a real browser: headless Chromium driven through Playwright.

The service runs under uvicorn in a background thread on 127.0.0.1 (SQLite, demo data), and
the tests click through the pages as an officer would: log in, register with a photo, change
the passport, grant, issue, revoke as a supervisor, then check with the offline verifier that
the card's QR now reads as revoked. Screenshots of the register-and-issue flow are checked
(size, not blank, the QR is there and decodes to the card) and, with
``FMCARD_UPDATE_SCREENSHOTS=1``, written to ``docs/screenshots/console-*.png``.

Chromium is the Debian package (``/usr/bin/chromium``), never a download. Without it the
browser tests are skipped on a workstation but fail under CI (``CI=true``): CI must run them.
The first tests need no browser and always run.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)
from sqlmodel import Session, col, select

import cardissuer
from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.config import Settings
from cardissuer.core.security import hash_password
from cardissuer.errors import ConflictError, IssuerError
from cardissuer.main import create_app
from cardissuer.models import (
    AuditRecord,
    CardRecord,
    CardState,
    OfficeRecord,
    OfficerRecord,
    PersonRecord,
    Role,
)
from cardissuer.portrait import PORTRAIT_SIZE
from cardissuer.seed import DEMO_PASSWORD, seed_demo
from cardissuer.services.cards import NoEntitlementError
from cardissuer.web import security
from cardissuer.web.console import audit as console_audit
from cardissuer.web.console import persons as console_persons
from cardissuer.web.i18n import LANGUAGES, STRINGS, Translator
from cardissuer.web.rendering import TEMPLATE_DIR, error_flash
from schemas import code as foreigner_code
from schemas.code import format_for_reading
from verifier import Bundle, Reason, Verifier

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAKE_CAMERA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
SAMPLE_PHOTO = Path(cardissuer.__file__).parent / "demo" / "sample-photo.jpg"
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}


def _app(workspace: Path) -> FastAPI:
    settings = Settings(
        workspace=workspace, database_url=f"sqlite:///{workspace.parent / 'fmcard.db'}"
    )
    app = create_app(settings)
    seed_demo(app.state.engine, issuing_context_of(app), environment=app.state.settings.environment)
    return app


# --- without a browser --------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    app = _app(tmp_path_factory.mktemp("plain") / "workspace")
    yield app
    app.state.engine.dispose()


def _client_login(client: TestClient, username: str) -> None:
    page = client.get("/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None
    response = client.post(
        "/console/login",
        data={"username": username, "password": DEMO_PASSWORD, "nonce": nonce.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def test_every_string_of_the_templates_is_translated() -> None:
    used: set[str] = set()
    prefixes: set[str] = set()  # t("card_state_" ~ state.value)
    for template in TEMPLATE_DIR.glob("*.html"):
        if template.name.startswith("holder"):
            continue  # the holder's page has its own strings (test_holder_strings_are_translated)
        text = template.read_text(encoding="utf-8")
        used |= set(re.findall(r"""\bt(?:\.alt)?\(\s*["']([a-zA-Z_]+)["']\s*[,)]""", text))
        prefixes |= set(re.findall(r"""\bt(?:\.alt)?\(\s*["']([a-zA-Z_]+)["']\s*~""", text))
    assert len(used) > 100, "the templates use hardly any strings?"
    assert not sorted(key for key in used if key not in STRINGS)
    assert all(any(key.startswith(prefix) for key in STRINGS) for prefix in prefixes)
    for language in LANGUAGES:
        translate = Translator(language)
        blank = [key for key in STRINGS if not translate(key).strip()]
        assert not blank, (language, blank)
    assert Translator("zh")("search_results", total=3) == "共 3 条结果"
    assert Translator("en")("search_results", total=1) == "1 result"
    assert Translator("en")("search_results", total=3) == "3 results"
    assert Translator("ru")("search_results", total=3) == "3 результата"
    assert Translator("ru")("search_results", total=5) == "5 результатов"
    assert Translator("ar")("search_results", total=2) == "نتيجتان"
    assert Translator("ko")("nav_search") == "조회"
    assert Translator("ko").alt("nav_search") == "查询"  # the second language is Chinese
    assert Translator("en").alt("login_title") == "警员登录"


def test_each_kind_of_refusal_is_explained_in_both_languages() -> None:
    import cardissuer.main  # noqa: F401 - defines (through its imports) every error class
    from cardissuer.portal import decisions  # noqa: F401 - and the review queue's
    from cardissuer.wallet import credentials  # noqa: F401 - and the wallet's

    def kinds(cls: type[IssuerError]) -> set[type[IssuerError]]:
        found = set(cls.__subclasses__())
        for sub in list(found):
            found |= kinds(sub)
        return found

    codes = {kind.code for kind in kinds(IssuerError)}
    refusals = [key for key in STRINGS if key.startswith("refusal_")]
    explained = {key.removeprefix("refusal_").replace("_", "-") for key in refusals}
    assert explained <= codes, explained - codes  # no sentence for a code that does not exist
    assert {"access-denied", "not-found", "no-entitlement", "passport-blocked"} <= explained
    flash = error_flash(NoEntitlementError("2345678909 has no entitlement"))
    assert flash.reason == "refusal_no_entitlement"
    assert Translator("zh")(flash.reason).startswith("此人没有任何服务权限")
    assert flash.detail == "2345678909 has no entitlement"
    assert error_flash(ConflictError("something else")).reason == ""  # the title says it
    secret = "s" * 32
    assert security.read_flash(security.sign_flash(flash, secret), secret) == flash


def test_holder_strings_are_translated() -> None:
    """The holder templates take every word from the ``fmcard`` catalog (``_()``), and each
    of those words is translated in every shipped language."""
    from cardissuer.i18n import translations

    used: set[str] = set()
    for template in TEMPLATE_DIR.glob("holder*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"""\bt\(\s*["']""", text), template.name
        used |= set(re.findall(r"""\b_\(\s*"([^"]+)"\s*\)""", text))
    assert len(used) > 10, "the holder templates use no strings?"
    for language in set(LANGUAGES) - {"en"}:
        entries = translations(language)._catalog  # type: ignore[attr-defined]
        untranslated = sorted(m for m in used if not entries.get(m))
        assert not untranslated, (language, untranslated)


def test_signed_values_cannot_be_forged_and_next_stays_in_the_console() -> None:
    secret = "s" * 40
    flash = security.Flash("error", "error_denied", "role registrar may not card.revoke")
    signed = security.sign_flash(flash, secret)
    assert security.read_flash(signed, secret) == flash
    assert security.read_flash(signed, "other-secret") is None
    assert security.read_flash(signed[:-1] + ("0" if signed[-1] != "0" else "1"), secret) is None
    token = security.sign_portrait(b"\x00portrait", secret)
    assert security.read_portrait(token, secret) == b"\x00portrait"
    assert security.read_portrait("AAAA" + token[4:], secret) is None
    csrf = security.csrf_token("session-a", secret)
    assert security.csrf_valid(csrf, "session-a", secret)
    assert not security.csrf_valid(csrf, "session-b", secret)
    assert not security.csrf_valid("", "session-a", secret)
    for bad in ("https://evil.example/", "//evil.example/x", "/api/persons", "/console/\\x", ""):
        assert security.safe_next(bad) == "/console/search"
    assert security.safe_next("/console/persons/7KQ4MX9TRB") == "/console/persons/7KQ4MX9TRB"


def test_console_errors_are_pages_and_the_api_keeps_problem_details(plain_app: FastAPI) -> None:
    with TestClient(plain_app) as client:
        anonymous = client.get("/console/search", follow_redirects=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"].startswith("/console/login?next=/console/search")
        missing = client.get("/console/no-such-page")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        api_missing = client.get("/api/no-such-thing")
        assert api_missing.headers["content-type"] == "application/problem+json"
        _client_login(client, "registrar")
        page = client.get("/console/search")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        no_token = client.post("/console/persons/0000000000/cards", data={"issue_key": "x" * 20})
        assert no_token.status_code == 403
        assert no_token.headers["content-type"].startswith("text/html")
        assert Translator("zh")("error_csrf") in no_token.text  # Chinese by default
        denied = client.get("/console/audit?lang=en")
        assert denied.status_code == 403
        assert "Not allowed" in denied.text
        assert Translator("en")("refusal_access_denied") in denied.text  # what it means, translated
        assert "audit.read" in denied.text  # and the server's own detail
        missing_person = client.get(f"/console/persons/{foreigner_code.generate()}?lang=zh")
        assert missing_person.status_code == 404
        assert Translator("zh")("refusal_not_found") in missing_person.text
    with Session(plain_app.state.engine) as session:
        refusals = session.exec(
            select(AuditRecord)
            .where(AuditRecord.outcome == "denied")
            .order_by(col(AuditRecord.seq).desc())
            .limit(2)
        ).all()
    assert [r.action for r in refusals] == ["console.audit", "console.issue"]
    assert "may not audit.read" in refusals[0].detail
    assert "CSRF" in refusals[1].detail


def test_logging_out_of_the_console_ends_the_session_for_a_kept_cookie(
    plain_app: FastAPI,
) -> None:
    with TestClient(plain_app) as client:
        _client_login(client, "registrar")
        kept = client.cookies.get("fmcard_session")
        assert kept
        page = client.get("/console/search").text
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
        assert csrf is not None
        out = client.post("/console/logout", data={"csrf": csrf.group(1)}, follow_redirects=False)
        assert out.status_code == 303
    with TestClient(plain_app) as replay:  # someone who copied the cookie before the logout
        replay.cookies.set("fmcard_session", kept)
        page = replay.get("/console/search", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/console/login")
        api = replay.get("/api/auth/me", headers={"Authorization": f"Bearer {kept}"})
        assert api.status_code == 401


def test_person_page_forms_work_without_a_browser(plain_app: FastAPI) -> None:
    """Suspend, reinstate, withdraw and report a passport: each form redirects to the person
    with a message, and a refused change comes back as a readable message."""
    with TestClient(plain_app) as client:
        _client_login(client, "supervisor")
        search = client.get("/console/search?q=IVANOVA&lang=en")
        code = re.search(r"/console/persons/([0-9A-Z]{10})", search.text)
        assert code is not None
        path = f"/console/persons/{code.group(1)}"
        page = client.get(path).text
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
        serial = re.search(r'id="card-serial">([0-9A-Z]+)<', page)
        grant = re.search(r"/grants/(\d+)/withdraw", page)
        assert csrf is not None
        assert serial is not None
        assert grant is not None
        token = csrf.group(1)

        def post(url: str, **fields: str) -> str:
            response = client.post(url, data={"csrf": token, "next": path, **fields})
            assert response.status_code == 200, response.text
            assert str(response.url).endswith(path) or "/passport" in str(response.url)
            return str(response.text)

        cards_url = f"/console/cards/{serial.group(1)}"
        assert "Card suspended." in post(f"{cards_url}/suspend", reason="checking documents")
        assert "Card reinstated." in post(f"{cards_url}/reinstate")
        refused = post(f"{cards_url}/revoke", reason="")
        assert "Please check the form" in refused
        assert "a reason is required" in refused
        assert "Service withdrawn." in post(f"{path}/grants/{grant.group(1)}/withdraw")
        grants = client.get(path).text.split('id="grants"')[1].split("</table>")[0]
        assert "Healthcare" not in grants
        assert "Education" in grants
        reported = client.post(
            "/console/passports/mark",
            data={"csrf": token, "number": "751234567", "country": "RUS", "state": "stolen"},
        )
        assert reported.status_code == 200
        assert "The passport is reported." in reported.text
        assert "Reported stolen" in reported.text
        again = client.post(
            "/console/register",
            data={
                "csrf": token,
                "family_name": "PETROVA",
                "nationality": "RUS",
                "birth_date": "1991-01-01",
                "passport_number": "751234567",
                "passport_country": "RUS",
            },
        )
        assert again.status_code == 409
        assert "reported stolen" in again.text
        assert 'value="PETROVA"' in again.text  # the officer's typing is kept
        photo = SAMPLE_PHOTO.read_bytes()
        too_large = client.post(
            f"{path}/portrait",
            data={"csrf": token},
            files={"photo": ("big.jpg", photo + b"\0" * (1024 * 1024), "image/jpeg")},
        )
        assert "is larger than 1024 KB" in too_large.text
        portrait = client.post(
            f"{path}/portrait",
            data={"csrf": token},
            files={"photo": ("face.jpg", photo, "image/jpeg")},
        )
        assert "Portrait updated." in portrait.text
        assert f'src="/api/persons/{code.group(1)}/portrait"' in portrait.text
        with Session(plain_app.state.engine) as session:
            last = session.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc())).first()
        assert last is not None
        assert last.action == "person.portrait"
        assert last.before_digest != last.after_digest
        bad_date = client.post(
            f"{path}/passport",
            data={"csrf": token, "number": "761111111", "country": "RUS", "expires": "soon"},
        )
        assert bad_date.status_code == 400
        assert "not a date" in bad_date.text


def test_a_photo_smaller_than_the_portrait_is_refused_on_the_form(plain_app: FastAPI) -> None:
    with TestClient(plain_app) as client:
        _client_login(client, "supervisor")
        search = client.get("/console/search?q=IVANOVA&lang=en")
        code = re.search(r"/console/persons/([0-9A-Z]{10})", search.text)
        assert code is not None
        path = f"/console/persons/{code.group(1)}"
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', client.get(path).text)
        assert csrf is not None
        tiny = io.BytesIO()
        Image.new("RGB", (1, 1)).save(tiny, "PNG")
        refused = client.post(
            f"{path}/portrait",
            data={"csrf": csrf.group(1), "next": path},
            files={"photo": ("tiny.png", tiny.getvalue(), "image/png")},
        )
        assert "photo is 1x1 pixels; at least 96x120" in refused.text
        assert "Portrait updated." not in refused.text


def test_the_forms_refuse_an_expired_passport_and_a_malformed_email(plain_app: FastAPI) -> None:
    with TestClient(plain_app) as client:
        _client_login(client, "registrar")
        csrf = re.search(
            r'name="csrf" value="([0-9a-f]{64})"', client.get("/console/register").text
        )
        assert csrf is not None
        form = {
            "csrf": csrf.group(1),
            "family_name": "FORMTEST",
            "nationality": "FRA",
            "birth_date": "1961-06-01",
            "passport_number": "T" + secrets.token_hex(4).upper(),
            "passport_country": "FRA",
        }
        expired = client.post(
            "/console/register?lang=en", data={**form, "passport_expires": "2001-01-01"}
        )
        assert 400 <= expired.status_code < 500
        assert "the passport has expired" in expired.text
        bad_email = client.post(
            "/console/register?lang=en", data={**form, "email": "S3CR3T at example.com"}
        )
        assert 400 <= bad_email.status_code < 500
        assert "email" in bad_email.text
        assert "an e-mail address has no spaces" in bad_email.text
    with Session(plain_app.state.engine) as session:
        found = session.exec(select(PersonRecord).where(PersonRecord.family_name == "FORMTEST"))
        assert found.all() == []


def test_search_and_audit_pages_are_paginated(
    plain_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console_persons, "SEARCH_PAGE_SIZE", 2)
    monkeypatch.setattr(console_audit, "AUDIT_PAGE_SIZE", 5)
    with TestClient(plain_app) as client:
        _client_login(client, "admin")
        first = client.get("/console/search?lang=en")
        assert first.text.count('class="code-link"') == 2
        assert "First page" not in first.text
        following = re.search(r'href="(/console/search\?q=&amp;after=[^"]+)"', first.text)
        assert following is not None
        second = client.get(following.group(1).replace("&amp;", "&"))
        assert "First page" in second.text
        assert 'rel="next"' not in second.text  # the last page
        assert second.text.count('class="code-link"') == 1
        assert "OKONKWO" in second.text  # the oldest registration comes last
        edited = client.get("/console/search?q=&after=bm90LWEtY3Vyc29y")
        assert edited.status_code == 200  # an edited link shows the first page
        assert edited.text.count('class="code-link"') == 2
        audit_log = client.get("/console/audit?page=2")
        assert audit_log.status_code == 200
        seqs = [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', audit_log.text)]
        assert len(seqs) == 5
        assert seqs == sorted(seqs, reverse=True)
        assert "Page 2 of" in audit_log.text


# --- the service and the browser ------------------------------------------------------------


@dataclass(frozen=True)
class Console:
    base_url: str
    app: FastAPI


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The issuer with demo data, served by uvicorn in a background thread."""
    app = _app(tmp_path_factory.mktemp("console") / "workspace")
    with served(app) as base_url:
        yield Console(base_url, app)


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn in a background thread on a free local port: yields its base
    URL; stops the server and disposes of the app's engine at the end."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
        )
    )
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        app.state.engine.dispose()


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{CHROMIUM} is missing: CI must run the browser tests (apt-get install chromium)"
        )
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + FAKE_CAMERA_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, console: Console) -> Iterator[BrowserContext]:
    """A fresh browser profile: no cookies, no language chosen."""
    created = browser.new_context(base_url=console.base_url, viewport=VIEWPORT)
    created.set_default_timeout(15_000)
    yield created
    created.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def login(page: Page, username: str, *, lang: str = "en") -> None:
    page.goto(f"/console/login?lang={lang}")
    page.fill("#f-username", username)
    page.fill("#f-password", DEMO_PASSWORD)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_url("**/console/search")


def logout(page: Page) -> None:
    page.click("form[action='/console/logout'] button")
    page.wait_for_url("**/console/login")


def fill_registration(
    page: Page,
    *,
    family: str,
    given: str,
    nationality: str,
    birth: str,
    passport: str,
    native: str = "",
    chinese: str = "",
    sex: str = "X",
) -> None:
    page.goto("/console/register")
    page.fill("#f-family_name", family)
    page.fill("#f-given_names", given)
    page.fill("#f-native_name", native)
    page.fill("#f-chinese_name", chinese)
    page.fill("#f-nationality", nationality)
    page.select_option("#f-sex", sex)
    page.fill("#f-birth_date", birth)
    page.fill("#f-passport_number", passport)
    page.fill("#f-passport_country", nationality)


def flash_text(page: Page) -> str:
    return page.locator("main .message").first.inner_text()


def image_loaded(page: Page, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0"))


def wait_until(page: Page, selector: str, predicate: str, timeout: float = 15) -> None:
    """Poll ``predicate`` (a JS function of the element) from Python: the console's CSP
    forbids the string evaluation that ``page.wait_for_function`` polls with."""
    deadline = time.monotonic() + timeout
    while not page.eval_on_selector(selector, predicate):
        assert time.monotonic() < deadline, f"timed out waiting for {selector}: {predicate}"
        page.wait_for_timeout(50)


def check_screenshot(png: bytes, name: str, tmp_path: Path) -> Image.Image:
    """A screenshot is a real page: the browser's width, many colours, no single colour
    filling it. Saved for the docs with ``FMCARD_UPDATE_SCREENSHOTS=1``."""
    path = tmp_path / f"console-{name}.png"
    path.write_bytes(png)
    assert path.exists()
    assert path.stat().st_size > 20_000
    image = Image.open(path).convert("RGB")
    assert image.width == VIEWPORT["width"]
    assert image.height >= VIEWPORT["height"]
    colours = image.getcolors(maxcolors=1 << 24) or []
    assert len(colours) > 200, f"{name}: only {len(colours)} colours, the page looks blank"
    most_common = max(count for count, _ in colours)
    assert most_common < 0.9 * image.width * image.height, f"{name}: one colour fills the page"
    if os.environ.get("FMCARD_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        (SCREENSHOT_DIR / f"console-{name}.png").write_bytes(png)
    return image


def check_qr_area(page: Page, image: Image.Image, qr_text: str) -> None:
    """The QR in a full-page screenshot: black and white modules, and it decodes to the card."""
    box = page.eval_on_selector(
        "#qr-image",
        "img => { const r = img.getBoundingClientRect();"
        " return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; }",
    )
    left, top, width, height = (round(value) for value in box)
    assert min(width, height) >= 300
    area = image.crop((left, top, left + width, top + height)).convert("L")
    histogram, total = area.histogram(), width * height
    dark = sum(histogram[:128]) / total
    crisp = (sum(histogram[:40]) + sum(histogram[216:])) / total
    assert 0.25 < dark < 0.75, f"the QR area is {dark:.0%} dark"
    assert crisp > 0.9, "the QR area is not black-and-white modules"
    try:
        import zxingcpp
    except ImportError:  # the scan extra is not installed: the pixel checks above must do
        return
    framed = Image.new("L", (width + 80, height + 80), 255)
    framed.paste(area, (40, 40))
    decoded = [barcode.text for barcode in zxingcpp.read_barcodes(framed)]
    assert decoded == [qr_text]


def denied_entries(console: Console) -> list[AuditRecord]:
    with Session(console.app.state.engine) as session:
        return list(
            session.exec(
                select(AuditRecord)
                .where(AuditRecord.outcome == "denied")
                .order_by(col(AuditRecord.seq))
            ).all()
        )


# --- browser tests --------------------------------------------------------------------------


def test_register_change_passport_grant_issue_then_revoke_and_verify(
    page: Page, tmp_path: Path
) -> None:
    login(page, "registrar")
    fill_registration(
        page,
        family="KOVALENKO",
        given="OLENA",
        native="Коваленко Олена",
        chinese="科瓦连科·奥莲娜",
        nationality="UKR",
        birth="1992-05-17",
        passport="FE123456",
        sex="F",
    )
    page.set_input_files("#f-photo", SAMPLE_PHOTO)
    expect(page.locator("[data-photo-preview]")).to_be_visible()
    page.locator("#f-passport_country").blur()
    check_screenshot(page.screenshot(full_page=True), "register", tmp_path)
    page.click("#register-form button[type=submit]:not([name])")

    page.wait_for_url("**/console/persons/*")
    assert flash_text(page) == "Registered."
    code = page.locator(".code").get_attribute("data-code")
    assert code is not None
    expect(page.locator(".code")).to_have_text(format_for_reading(code))
    expect(page.locator(".other-names")).to_contain_text("Коваленко Олена")
    assert image_loaded(page, "img.portrait"), "the portrait made from the photo is shown"

    page.get_by_role("link", name="Change passport").click()
    page.fill("#f-number", "GA654321")
    page.fill("#f-country", "UKR")
    page.check("input[name=reason][value=renewed]")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"**/console/persons/{code}")
    assert flash_text(page) == "Passport changed; the code is the same."
    assert page.locator(".code").get_attribute("data-code") == code
    passports = page.locator("#passports tbody tr")
    expect(passports.nth(0)).to_contain_text("GA654321")
    expect(passports.nth(0)).to_contain_text("Current")
    expect(passports.nth(1)).to_contain_text("FE123456")
    expect(passports.nth(1)).to_contain_text("Replaced")

    page.select_option("#f-service", "hc")
    page.get_by_role("button", name="Grant", exact=True).click()
    assert flash_text(page) == "Service granted."
    expect(page.locator("#grants")).to_contain_text("Healthcare")

    page.get_by_role("button", name="Issue card").click()
    page.wait_for_url(f"**/console/persons/{code}")
    assert flash_text(page) == "Card issued."
    expect(page.locator("#qr-image")).to_be_visible()
    wait_until(page, "#qr-image", "img => img.complete && img.naturalWidth > 0")
    qr_text = page.locator("#qr-text").input_value()
    serial = page.locator("#card-serial").inner_text()
    assert re.fullmatch(r"[0-9A-Z$%*+\-./: ]{200,}", qr_text)
    expect(page.get_by_role("link", name="Download QR image (PNG)")).to_have_attribute(
        "href", f"/api/cards/{serial}/qr.png"
    )
    assert page.locator("button", has_text="Revoke").count() == 0
    person_shot = check_screenshot(page.screenshot(full_page=True), "person", tmp_path)
    check_qr_area(page, person_shot, qr_text)
    qr_png = page.request.get(f"/api/cards/{serial}/qr.png")
    assert qr_png.ok
    assert qr_png.headers["content-type"] == "image/png"
    downloaded = page.request.get(f"/console/cards/{serial}/qr.txt")
    assert downloaded.text().strip() == qr_text

    page.goto(f"/console/search?q={'FE123456'}")
    expect(page.locator("table.data tbody tr")).to_have_count(1)
    expect(page.locator("table.data")).to_contain_text(format_for_reading(code))
    logout(page)

    login(page, "supervisor")
    page.goto(f"/console/persons/{code}")
    page.fill("#f-revoke-reason", "card reported stolen")
    page.get_by_role("button", name="Revoke", exact=True).click()
    page.wait_for_url(f"**/console/persons/{code}")
    assert flash_text(page) == "Card revoked."
    row = page.locator("#earlier-cards tbody tr", has_text=serial)
    expect(row).to_contain_text("Revoked")
    expect(row).to_contain_text("card reported stolen")
    check_screenshot(page.screenshot(full_page=True), "revoked", tmp_path)

    bundle = page.request.get("/bundle.json")
    assert bundle.ok
    now = datetime.now(UTC)
    verifier = Verifier(Bundle.from_json(json.loads(bundle.body()), at=now))
    assert verifier.verify(qr_text, service="hc", at=now).reason is Reason.REVOKED


def test_another_offices_candidate_is_shown_without_its_names(console: Console, page: Page) -> None:
    with Session(console.app.state.engine) as session:
        office = session.exec(select(OfficeRecord).where(OfficeRecord.code == "YW-CHOUCHENG")).one()
        session.add(
            OfficerRecord(
                office_id=office.id or 0,
                username="choucheng-registrar",
                display_name="Choucheng registrar",
                role=Role.REGISTRAR,
                password_hash=hash_password(DEMO_PASSWORD, n=2**10),
            )
        )
        session.commit()
    login(page, "choucheng-registrar")
    fill_registration(  # a demo person of YW-FUTIAN
        page,
        family="AL HASHIMI",
        given="MUHAMMAD ABDULLAH",
        nationality="SAU",
        birth="1985-03-14",
        passport="K7000001",
    )
    page.click("#register-form button[type=submit]:not([name])")
    row = page.locator("#candidates tbody tr").first
    expect(row).to_contain_text("registered at YW-FUTIAN")
    expect(row).not_to_contain_text("HASHIMI")
    expect(row.get_by_role("button")).to_have_count(0)  # nothing to link to
    expect(row.get_by_role("link")).to_have_count(0)
    logout(page)


def test_duplicate_registration_shows_candidates_to_link_or_confirm(
    console: Console, page: Page
) -> None:
    login(page, "registrar")
    fill_registration(
        page,
        family="AL HASHIMI",
        given="MUHAMMAD ABDULLAH",
        nationality="SAU",
        birth="1985-03-14",
        passport="K7654321",
    )
    page.click("#register-form button[type=submit]:not([name])")
    expect(page.locator("main .message.error")).to_contain_text("Possible duplicate registration")
    candidates = page.locator("#candidates tbody tr")
    expect(candidates.first).to_contain_text("AL-HASHIMI MOHAMMED ABDULLAH")
    expect(page.locator("#f-family_name")).to_have_value("AL HASHIMI")

    page.get_by_role("button", name="Register as a new person").click()  # registrars may not
    refusal = page.locator("main .message.error")
    expect(refusal).to_contain_text("Not allowed")
    expect(refusal).to_contain_text("duplicate.approve")
    expect(refusal).to_contain_text("recorded in the audit log")
    expect(candidates.first).to_be_visible()
    assert denied_entries(console)[-1].action == "console.register_submit"

    candidates.first.get_by_role("button", name="Link passport to this person").click()
    page.wait_for_url("**/console/persons/*")
    assert flash_text(page) == "The passport is linked to this person."
    expect(page.locator(".person-name")).to_contain_text("AL-HASHIMI")
    expect(page.locator("#passports")).to_contain_text("K7654321")
    page.get_by_role("link", name="Duplicate reviews").click()
    expect(page.locator("#reviews tbody tr").first).to_contain_text("Linked to a registered person")
    logout(page)

    login(page, "supervisor")
    fill_registration(
        page,
        family="ALHASHIMI",
        given="MOHAMAD",
        nationality="SAU",
        birth="1985-03-14",
        passport="K1112223",
    )
    page.set_input_files("#f-photo", SAMPLE_PHOTO)
    page.click("#register-form button[type=submit]:not([name])")
    expect(page.locator("#candidates tbody tr").first).to_be_visible()
    expect(page.locator("[data-photo-status]")).to_have_text("The photo sent before is kept.")
    assert image_loaded(page, "[data-photo-preview]")
    page.get_by_role("button", name="Register as a new person").click()
    page.wait_for_url("**/console/persons/*")
    assert flash_text(page) == "Registered."
    assert image_loaded(page, "img.portrait"), "the photo of the first attempt was kept"
    page.goto("/console/duplicates")
    expect(page.locator("#reviews tbody tr").first).to_contain_text("Confirmed a new person")


def test_language_switch_shows_chinese_labels(page: Page) -> None:
    page.goto("/console/login")
    expect(page.locator("h1")).to_have_text("警员登录")
    expect(page.locator("label[for=f-username] .label-main")).to_have_text("用户名")
    assert page.get_attribute("html", "lang") == "zh-CN"
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_have_text("Officer login")
    page.goto("/console/login")  # the choice is remembered
    expect(page.locator("h1")).to_have_text("Officer login")
    login(page, "registrar", lang="en")
    expect(page.locator("h1")).to_have_text("Find a foreign merchant")
    page.get_by_role("link", name="中文").click()
    expect(page.locator("h1")).to_have_text("查询外国商人")
    expect(page.get_by_role("navigation", name="主导航")).to_contain_text("登记")
    page.get_by_role("link", name="登记").click()
    expect(page.locator("label[for=f-family_name] .label-main")).to_have_text(
        Translator("zh")("family_name")
    )
    expect(page.locator("label[for=f-family_name] .label-alt")).to_have_text(
        "Family name (as in the passport)"
    )
    assert page.get_attribute("html", "lang") == "zh-CN"


def test_registrar_sees_no_revoke_button_and_a_forged_revoke_is_refused_and_audited(
    console: Console, page: Page
) -> None:
    login(page, "registrar")
    page.goto("/console/search?q=OKONKWO")
    page.locator("table.data tbody a.code-link").first.click()
    page.wait_for_url("**/console/persons/*")
    serial = page.locator("#card-serial").inner_text()
    expect(page.get_by_role("button", name="Re-issue card")).to_be_visible()
    for action in ("Revoke", "Suspend", "Reinstate"):
        assert page.get_by_role("button", name=action, exact=True).count() == 0
    assert page.locator(f"form[action$='/cards/{serial}/revoke']").count() == 0

    csrf = page.locator("input[name=csrf]").first.input_value()
    before = len(denied_entries(console))
    forged = page.request.post(
        f"/console/cards/{serial}/revoke",
        form={"csrf": csrf, "reason": "forged by hand", "next": urlparse(page.url).path},
    )
    assert forged.ok  # redirected to a page that says no, as HTML
    assert forged.headers["content-type"].startswith("text/html")
    assert "Not allowed" in forged.text()
    assert "card.revoke" in forged.text()
    refusals = denied_entries(console)
    assert len(refusals) == before + 1
    assert refusals[-1].action == "console.card_action"
    assert "may not card.revoke" in refusals[-1].detail
    assert serial not in refusals[-1].record_id  # a digest, not the serial itself
    with Session(console.app.state.engine) as session:
        card = session.exec(select(CardRecord).where(CardRecord.serial == serial)).one()
        assert card.state is CardState.ACTIVE

    no_token = page.request.post(f"/console/cards/{serial}/revoke", form={"reason": "x"})
    assert no_token.status == 403
    assert "did not come from this console" in no_token.text()
    assert "CSRF" in denied_entries(console)[-1].detail
    page.reload()
    expect(page.locator(".card-current .badge")).to_have_text("Active")


def test_login_errors_are_shown_inline_with_the_rate_limit(page: Page) -> None:
    page.goto("/console/login?lang=en")
    page.keyboard.press("Tab")  # keyboard users first meet the skip link, then the form
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.locator("#f-username")).to_be_focused()
    for attempt in range(6):
        page.fill("#f-username", "nobody-here")
        page.fill("#f-password", f"wrong-{attempt}")
        page.click("form[action='/console/login'] button[type=submit]")
        expect(page.locator("h1")).to_have_text("Officer login")
    expect(page.locator("main .message.error")).to_contain_text("Too many failed logins")
    expect(page.locator("#f-username")).to_have_value("nobody-here")
    assert page.locator("#f-password").input_value() == ""


def test_auditor_reads_the_log_and_verifies_the_chain(page: Page) -> None:
    login(page, "auditor")
    page.get_by_role("link", name="Audit log").click()
    rows = page.locator("#audit tbody tr")
    expect(rows.first).to_be_visible()
    first, second = (int(rows.nth(i).locator("td").first.inner_text()) for i in (0, 1))
    assert first > second, "newest first"
    page.get_by_role("button", name="Verify chain").click()
    expect(page.locator("#chain-result")).to_contain_text("The chain is intact")
    assert page.get_by_role("link", name="Register").count() == 0


def test_webcam_capture_gives_the_new_person_a_portrait(page: Page) -> None:
    """Chromium's fake camera stands in for the desk's webcam."""
    page.context.grant_permissions(["camera"])
    login(page, "registrar")
    fill_registration(
        page,
        family="NGUYEN",
        given="VAN AN",
        nationality="VNM",
        birth="1988-02",
        passport="C9876543",
    )
    page.get_by_role("button", name="Start camera").click()
    wait_until(page, "[data-camera-video]", "video => video.videoWidth > 0")
    page.get_by_role("button", name="Take photo").click()
    assert page.locator("[data-camera-field]").input_value().startswith("data:image/jpeg;base64,")
    expect(page.locator("[data-photo-status]")).to_contain_text("Photo taken")
    page.click("#register-form button[type=submit]:not([name])")
    page.wait_for_url("**/console/persons/*")
    assert flash_text(page) == "Registered."
    expect(page.locator(".facts")).to_contain_text("1988-02")
    assert image_loaded(page, "img.portrait")
    portrait = page.request.get(page.locator("img.portrait").get_attribute("src") or "")
    assert Image.open(io.BytesIO(portrait.body())).size == PORTRAIT_SIZE


def test_officer_downloads_every_form_of_the_card_and_makes_a_holder_link(
    plain_app: FastAPI,
) -> None:
    """From the person page: card PNG and PDF, the Apple pass, the Google link, and a one-time
    link for the holder's phone that opens the card page."""
    with TestClient(plain_app) as client:
        _client_login(client, "registrar")
        search = client.get("/console/search?q=OKONKWO&lang=en")
        code = re.search(r"/console/persons/([0-9A-Z]{10})", search.text)
        assert code is not None
        path = f"/console/persons/{code.group(1)}"
        page = client.get(path).text
        serial = re.search(r'id="card-serial">([0-9A-Z]+)<', page)
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
        assert serial is not None
        assert csrf is not None
        downloads = {
            f"/api/cards/{serial.group(1)}/card.png?side=front&amp;size=print": "image/png",
            f"/api/cards/{serial.group(1)}/card.pdf": "application/pdf",
            f"/api/cards/{serial.group(1)}/pass.pkpass": "application/vnd.apple.pkpass",
        }
        for link, media_type in downloads.items():
            assert link in page
            response = client.get(link.replace("&amp;", "&"))
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith(media_type)
        google = client.get(
            f"/console/cards/{serial.group(1)}/google-wallet", follow_redirects=False
        )
        assert google.status_code == 303
        assert google.headers["location"].startswith("https://pay.google.com/gp/v/save/")
        made = client.post(
            f"/console/holder-link/{serial.group(1)}", data={"csrf": csrf.group(1), "next": path}
        )
        assert made.status_code == 200, made.text
        url = re.search(r'id="holder-link-url" class="mono" href="([^"]+)"', made.text)
        assert url is not None
        holder = client.get(url.group(1).replace("http://testserver", ""))
        assert holder.status_code == 200
        assert "OKONKWO" in holder.text


def test_the_console_speaks_korean_and_lays_out_arabic_right_to_left(
    page: Page, tmp_path: Path
) -> None:
    """Any shipped language from the menu; labels keep Chinese as the second language;
    Arabic turns the frame right to left (the brand at the right, the menu at the left)."""
    login(page, "registrar", lang="ko")
    expect(page.locator("h1")).to_have_text("외국 상인 조회")
    assert page.eval_on_selector("html", "h => [h.lang, h.dir]") == ["ko", "ltr"]
    expect(page.locator("label[for=f-q] .label-alt")).to_have_text("姓名、外国人编码或护照号码")
    page.locator(".more-langs summary").click()
    page.locator(".more-langs a[hreflang=ar]").click()
    expect(page.locator("h1")).to_have_text("البحث عن تاجر أجنبي")
    assert page.eval_on_selector("html", "h => [h.lang, h.dir]") == ["ar", "rtl"]
    brand = page.locator(".brand").bounding_box()
    langs = page.locator(".langs").bounding_box()
    assert brand is not None
    assert langs is not None
    assert brand["x"] > langs["x"], "right to left: the brand starts at the right"
    cell = page.locator("table.data th").first
    if cell.count():
        assert cell.evaluate("c => getComputedStyle(c).textAlign") in ("start", "right")
    page.goto("/console/search")  # remembered
    assert page.eval_on_selector("html", "h => h.dir") == "rtl"
    (tmp_path / "console-ar.png").write_bytes(page.screenshot(full_page=True))
    page.get_by_role("link", name="中文").click()
    assert page.eval_on_selector("html", "h => [h.lang, h.dir]") == ["zh-CN", "ltr"]
