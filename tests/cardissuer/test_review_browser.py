"""The review queue in headless Chromium: a supervisor opens the queue, an application beside
its duplicate candidates and photos, and approves it for the existing person; the holder's
e-mail lands in the development outbox. Screenshots of the queue and the application are
checked and, with ``FMCARD_UPDATE_SCREENSHOTS=1``, written to
``docs/screenshots/console-review-*.png``."""

from __future__ import annotations

import email
import email.policy
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page

from cardissuer.portal.catalogue import ApplicationForm
from cardissuer.portal.models import ApplicationKind, ApplicationState
from tests.cardissuer import applications as factory
from tests.cardissuer.test_console import (  # noqa: F401 - fixtures
    Console,
    browser,
    check_screenshot,
    console,
    context,
    flash_text,
    login,
    page,
)
from tests.cardissuer.test_decisions import _okonkwo_again


def _images_loaded(tab: Page) -> None:
    """Every image of the page decoded (polled: the console's CSP forbids evaluated strings)."""
    deadline = time.monotonic() + 15
    script = "imgs => imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0)"
    while not tab.eval_on_selector_all("img", script):
        assert time.monotonic() < deadline, "the photos did not load"
        time.sleep(0.05)


def _fits_a_phone_in_arabic(tab: Page, reference: str) -> None:
    """At 360 px in Arabic the page does not scroll sideways (the MRZ scrolls inside its own
    box) and left-to-right values (phone, dates, passport number) keep their order."""
    size = tab.viewport_size
    tab.set_viewport_size({"width": 360, "height": 800})
    try:
        for lang in ("en", "ar"):  # the checks below run on the Arabic page
            tab.goto(f"/console/applications/{reference}?lang={lang}")
            _images_loaded(tab)
            width = tab.eval_on_selector("html", "html => html.scrollWidth")
            assert width <= 360, f"{lang}: the page scrolls sideways ({width} px)"
            mrz = tab.locator("#mrz")
            assert mrz.evaluate("e => e.scrollWidth > e.clientWidth")  # it scrolls itself
        phone = tab.locator("#application-form dd", has_text="13800000000")
        assert phone.get_attribute("dir") == "ltr"
        assert phone.evaluate("e => getComputedStyle(e).direction") == "ltr"
        for selector in ("#submitted-at", "#passport-number", "#birth-date", "#mrz"):
            assert tab.locator(selector).evaluate("e => getComputedStyle(e).direction") == "ltr"
    finally:
        if size is not None:
            tab.set_viewport_size(size)
        tab.goto(f"/console/applications/{reference}?lang=en")


def test_a_supervisor_reviews_and_approves_in_the_browser(
    console: Console,  # noqa: F811
    page: Page,  # noqa: F811
    tmp_path: Path,
) -> None:
    engine = console.app.state.engine
    now = datetime.now(UTC).replace(microsecond=0)
    factory.submit(engine, submitted_at=now - timedelta(days=4, hours=3), language="ru")
    mrz = (
        "P<NGAOKONKWO<<CHIDI<EMEKA" + "<" * 19,
        "A076543210NGA7907025M3401315" + "<" * 14 + "04",
    )
    form = ApplicationForm(person=_okonkwo_again().person, mrz=mrz, services=["hc", "ed"])
    reference = factory.submit(
        engine, form=form, phone="+86 13800000000", submitted_at=now - timedelta(days=2)
    )
    factory.submit(
        engine,
        kind=ApplicationKind.RENEWAL,
        person_id=1,
        submitted_at=now - timedelta(hours=5),
        language="ar",
    )

    login(page, "supervisor")
    page.goto("/console/applications?lang=en")
    assert page.locator("nav.menu .count-badge").inner_text() == "3"
    assert page.locator("#queue tbody tr").count() == 3
    assert page.locator("#queue tbody tr").first.inner_text().count("4 days") == 1
    check_screenshot(page.screenshot(full_page=True), "review-queue", tmp_path)

    page.click(f"a[href='/console/applications/{reference}']")
    page.wait_for_url(f"**/console/applications/{reference}")
    _images_loaded(page)
    assert "OKONKWO CHIDI EMEKA" in page.locator("#duplicates").inner_text()
    assert "A076543210NGA" in page.locator("#mrz").inner_text()
    check_screenshot(page.screenshot(full_page=True), "review-application", tmp_path)
    _fits_a_phone_in_arabic(page, reference)

    page.click("#duplicates button")  # approve for the existing person
    page.wait_for_url(f"**/console/applications/{reference}")
    assert "Approved" in flash_text(page)
    assert page.locator("#application-state").inner_text() == "Approved"
    approved = factory.application(engine, reference)
    assert approved.state == ApplicationState.APPROVED
    outbox = console.app.state.settings.workspace / "outbox"
    mails = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in outbox.glob("*.eml")
    ]
    assert [m["To"] for m in mails] == ["applicant@example.org"]
    assert "/h/" in str(mails[0].get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
