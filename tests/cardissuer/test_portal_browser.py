"""The holder portal in headless Chromium at phone sizes, in English and in Arabic (right to
left): ask for a code, read it from the SMTP server, fill in the application with photos,
send it, see the reference; the draft survives a reload; nothing overflows a 360-px screen
and the strict CSP blocks nothing of ours."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from playwright.sync_api import Browser, FilePayload, Page, ViewportSize, sync_playwright
from sqlmodel import select

from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.config import Settings
from cardissuer.core.db import session_scope
from cardissuer.main import create_app
from cardissuer.portal.models import ApplicationFileRecord, ApplicationRecord
from cardissuer.portal.mrz import td3_lines
from cardissuer.seed import seed_demo
from keys.jwk import key_thumbprint
from tests.cardissuer.portal_helpers import (
    application_fields,
    code_in,
    image,
    page_jpeg,
    portrait_jpeg,
)
from tests.cardissuer.test_console import (
    CHROMIUM,
    CHROMIUM_ARGS,
    _require_chromium,
    login,
    served,
)
from tests.mail_sink import MailSink, body_of, mail_sink
from verifier import cli as verifier_cli

SCREENSHOT_DIR = Path(__file__).parents[2] / "docs" / "screenshots"
SIZES: dict[str, ViewportSize] = {
    "390": {"width": 390, "height": 844},
    "360": {"width": 360, "height": 780},
}


@pytest.fixture(scope="module")
def sink() -> Iterator[MailSink]:
    with mail_sink() as running:
        yield running


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, sink: MailSink
) -> Iterator[tuple[str, FastAPI]]:
    directory = tmp_path_factory.mktemp("portal")
    app = create_app(
        Settings(
            workspace=directory,
            database_url=f"sqlite:///{directory / 'fmcard.db'}",
            mail_url=sink.url,
        )
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


def screenshot(page: Page, name: str, width: int, tmp_path: Path) -> None:
    """A real page: the phone's width, many colours, not one colour filling it; saved for the
    docs with ``FMCARD_UPDATE_SCREENSHOTS=1``."""
    png = page.screenshot(full_page=True)
    path = tmp_path / f"{name}.png"
    path.write_bytes(png)
    image = Image.open(path).convert("RGB")
    assert image.width == width
    colours = image.getcolors(maxcolors=1 << 24) or []
    assert len(colours) > 100, f"{name}: only {len(colours)} colours, the page looks blank"
    most_common = max(count for count, _ in colours)
    assert most_common < 0.9 * image.width * image.height, f"{name}: one colour fills the page"
    if os.environ.get("FMCARD_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        (SCREENSHOT_DIR / f"{name}.png").write_bytes(png)


def jpeg(name: str, data: bytes) -> list[FilePayload]:
    return [{"name": name, "mimeType": "image/jpeg", "buffer": data}]


def fits(page: Page) -> bool:
    """Nothing wider than the screen (no sideways scrolling on a phone)."""
    return bool(
        page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    )


def apply_on_phone(
    page: Page,
    base: str,
    sink: MailSink,
    address: str,
    language: str,
    *,
    fields: dict[str, Any] | None = None,
    shot: Callable[[str], None] | None = None,
) -> str:
    """Everything an applicant does on the phone, from the portal's first page to the sent
    application (the code read from the SMTP server); returns the application's reference."""
    fields = fields or application_fields()
    shot = shot or (lambda _name: None)
    direction = "rtl" if language == "ar" else "ltr"
    page.goto(f"{base}/portal/?lang={language}")
    assert page.get_attribute("html", "dir") == direction
    assert page.get_attribute("html", "lang") == language
    shot("1-start")
    page.click("#start-apply")
    page.fill("#email", address)
    page.click("#send-code")
    page.wait_for_selector("#code")
    assert page.get_attribute("html", "dir") == direction
    shot("2-code")
    page.fill("#code", code_in(sink, address))
    page.click("#check-code")
    page.wait_for_selector("#submit-application")
    assert page.url.endswith("/portal/apply")

    for name, value in fields.items():
        if name in {"services", "sex"}:
            continue
        page.fill(f"#{name}", value)
    page.check(f"input[name=sex][value={fields['sex']}]")
    for code in fields["services"]:
        page.check(f"input[name=services][value={code}]")
    # The draft is kept in this browser: a reload (or a closed tab) loses no typing.
    page.reload()
    page.wait_for_selector("#submit-application")
    assert page.input_value("#family_name") == fields["family_name"]
    assert page.input_value("#mrz2") == fields["mrz2"]
    for code in fields["services"]:
        assert page.is_checked(f"input[name=services][value={code}]")
    assert fits(page), "the form is wider than the phone"
    page.set_input_files("#passport_page", files=jpeg("page.jpg", page_jpeg()))
    page.set_input_files("#portrait", files=jpeg("me.jpg", portrait_jpeg()))
    shot("3-form")
    page.click("#submit-application")
    page.wait_for_selector("#new-reference")
    reference = page.inner_text("#new-reference").strip()
    assert reference.startswith("FM-")
    assert page.get_attribute("html", "dir") == direction
    assert fits(page)
    shot("4-sent")
    return reference


@pytest.mark.parametrize(
    ("language", "size"),
    [("en", "390"), ("ar", "390"), ("en", "360"), ("ar", "360")],
)
def test_a_holder_applies_from_a_phone(
    browser: Browser,
    service: tuple[str, FastAPI],
    sink: MailSink,
    tmp_path: Path,
    language: str,
    size: str,
) -> None:
    base, app = service
    viewport = SIZES[size]
    address = f"applicant-{language}-{size}@example.org"
    context = browser.new_context(viewport=viewport, locale=language, is_mobile=True)
    page = context.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    save = size == "390"
    step = f"portal-{language}"
    try:

        def shot(name: str) -> None:
            if save:
                screenshot(page, f"{step}-{name}", viewport["width"], tmp_path)

        reference = apply_on_phone(page, base, sink, address, language, shot=shot)
        # The draft is gone once the application is sent.
        assert page.evaluate("() => window.localStorage.length") == 0
        assert refused == []
    finally:
        context.close()
    with session_scope(app.state.engine) as session:
        record = session.exec(
            select(ApplicationRecord).where(ApplicationRecord.reference == reference)
        ).one()
        assert (record.email, record.language) == (address, language)
        files = session.exec(
            select(ApplicationFileRecord).where(ApplicationFileRecord.application_id == record.id)
        ).all()
        assert sorted(file.kind for file in files) == ["passport_page", "portrait"]
    [_, confirmation] = sink.wait_for(address, 2)
    assert reference in str(confirmation["Subject"])
    if language == "ar":
        assert confirmation["Content-Language"] == "ar"


def test_a_refused_photo_is_named_beside_its_field_in_arabic(
    browser: Browser, service: tuple[str, FastAPI], sink: MailSink, tmp_path: Path
) -> None:
    base, _ = service
    address = "dark-photo@example.org"
    context = browser.new_context(viewport=SIZES["360"], locale="ar", is_mobile=True)
    page = context.new_page()
    try:
        page.goto(f"{base}/portal/sign-in?next=apply&lang=ar")
        page.fill("#email", address)
        page.click("#send-code")
        page.wait_for_selector("#code")
        page.fill("#code", code_in(sink, address))
        page.click("#check-code")
        page.wait_for_selector("#submit-application")
        fields = application_fields()
        for name, value in fields.items():
            if name not in {"services", "sex"}:
                page.fill(f"#{name}", value)
        page.check("input[name=sex][value=F]")
        page.check("input[name=services][value=hc]")
        page.set_input_files(
            "#passport_page",
            files=jpeg("page.jpg", page_jpeg()),
        )
        page.set_input_files(
            "#portrait",
            files=jpeg("me.jpg", image((400, 500), shade=30)),
        )
        page.click("#submit-application")
        page.wait_for_selector("#portrait-error")
        assert (
            page.inner_text("#portrait-error") == "الصورة داكنة جدًا: التقطها مجددًا في إضاءة أفضل."
        )
        assert page.get_attribute("#portrait", "aria-invalid") == "true"
        # What was typed comes back from the server (the files must be chosen again).
        assert page.input_value("#family_name") == fields["family_name"]
        assert fits(page)
        screenshot(page, "portal-ar-photo-refused", SIZES["360"]["width"], tmp_path)
    finally:
        context.close()


def test_a_card_holder_reports_a_lost_phone_and_answers_a_question(
    browser: Browser, service: tuple[str, FastAPI], sink: MailSink, tmp_path: Path
) -> None:
    """In Arabic at 360 px: the holder's actions, the phone card suspended at once, then the
    officer's question answered on the tracking page."""
    from cardissuer.models import CardRecord, CardState
    from cardissuer.portal.models import ApplicationState
    from tests.cardissuer.test_portal import _holder_with_phone_card

    base, app = service
    address = "phone-holder@example.org"
    serial = _holder_with_phone_card(app, address)
    context = browser.new_context(viewport=SIZES["360"], locale="ar", is_mobile=True)
    page = context.new_page()
    try:
        page.goto(f"{base}/portal/?lang=ar")
        page.click("#start-card")
        page.fill("#email", address)
        page.click("#send-code")
        page.wait_for_selector("#code")
        page.fill("#code", code_in(sink, address))
        page.click("#check-code")
        page.wait_for_selector("#report-lost-phone")
        assert page.get_attribute("html", "dir") == "rtl"
        assert fits(page)
        screenshot(page, "portal-ar-5-card", SIZES["360"]["width"], tmp_path)
        page.click("#report-lost-phone")
        page.wait_for_selector("#new-reference")
        reference = page.inner_text("#new-reference").strip()
        with session_scope(app.state.engine) as session:
            card = session.exec(select(CardRecord).where(CardRecord.serial == serial)).one()
            assert card.state is CardState.SUSPENDED
            record = session.exec(
                select(ApplicationRecord).where(ApplicationRecord.reference == reference)
            ).one()
            record.state = ApplicationState.INFO_NEEDED.value
            record.question = "هل ما زلت تستخدم رقم الهاتف نفسه؟"
            session.add(record)
        page.goto(f"{base}/portal/applications")
        page.wait_for_selector(f"#answer-{reference}")
        assert "هل ما زلت تستخدم رقم الهاتف نفسه؟" in page.inner_text(".portal-question-text")
        page.fill(f"#answer-{reference}", "نعم، الرقم نفسه.")
        assert fits(page)
        screenshot(page, "portal-ar-6-question", SIZES["360"]["width"], tmp_path)
        page.click(f"#application-{reference} .portal-question button")
        page.wait_for_selector(f"#application-{reference}[data-state=submitted]")
    finally:
        context.close()
    with session_scope(app.state.engine) as session:
        record = session.exec(
            select(ApplicationRecord).where(ApplicationRecord.reference == reference)
        ).one()
        assert (record.state, record.answer) == ("submitted", "نعم، الرقم نفسه.")


def test_from_the_application_to_a_live_card_verified_at_a_bank(
    browser: Browser,
    service: tuple[str, FastAPI],
    sink: MailSink,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The whole journey with no desk visit: a holder applies on the phone, an officer
    approves in the console, the holder link arrives by e-mail, the phone shows a live card,
    and a counter's ``fmcard-verify`` reads a screenshot of it against the published bundle."""
    base, app = service
    address = "journey@example.org"
    fields = application_fields(
        family_name="NGUYEN",
        given_names="THI HOA",
        native_name="Nguyễn Thị Hoa",
        chinese_name="阮氏花",
        nationality="VNM",
        birth_date="1988-07-19",
        sex="F",
        services=["hc", "bk"],
    )
    fields.update(
        dict(
            zip(
                ("mrz1", "mrz2"),
                td3_lines(
                    issuing_state="VNM",
                    surname="NGUYEN",
                    given_names="THI HOA",
                    number=fields["passport_number"],
                    nationality="VNM",
                    birth="880719",
                    sex="F",
                    expiry=fields["passport_expiry"][2:].replace("-", ""),
                ),
                strict=True,
            )
        ),
        passport_country="VNM",
    )
    applicant = browser.new_context(viewport=SIZES["390"], locale="en", is_mobile=True)
    try:
        reference = apply_on_phone(applicant.new_page(), base, sink, address, "en", fields=fields)
    finally:
        applicant.close()

    desk = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    try:
        page = desk.new_page()
        login(page, "supervisor")
        page.goto(f"/console/applications/{reference}?lang=en")
        page.click("#approve")
        page.wait_for_selector("#application-state")
        assert page.inner_text("#application-state") == "Approved"
    finally:
        desk.close()

    [*_, approval] = sink.wait_for(address, 3)  # the code, the confirmation, the approval
    found = re.search(r"https?://\S+?(/h/[A-Za-z0-9_-]+)", body_of(approval))
    assert found, "no holder link in the approval e-mail"

    phone = browser.new_context(viewport=SIZES["390"], locale="en", is_mobile=True)
    try:
        card_page = phone.new_page()
        card_page.goto(f"{base}{found.group(1)}?lang=en")
        card_page.wait_for_selector("#holder-live[data-ready='true']", timeout=20_000)
        card_page.locator("#live-counters button[data-service='bk']").click()
        deadline = time.monotonic() + 20
        while card_page.evaluate("window.fmcardLive.shown?.service") != "bk":
            assert time.monotonic() < deadline, "the bank's code never showed"
            time.sleep(0.1)
        screen = tmp_path / "phone.png"
        screen.write_bytes(card_page.screenshot())
    finally:
        phone.close()

    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(httpx.get(f"{base}/bundle.json").content)
    anchor = key_thumbprint(app.state.keys.anchor)
    capsys.readouterr()
    status = verifier_cli.main(
        [
            "--bundle",
            str(bundle),
            "--anchor-thumbprint",
            anchor,
            "--counter",
            "bank",
            "--json",
            "--image",
            str(screen),
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert (status, result["reason"], result["level"]) == (0, "VALID", "live"), result
    assert result["card"]["family_name"] == "NGUYEN"
