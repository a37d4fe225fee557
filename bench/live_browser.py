"""Section 10, measured in Chromium: what the holder page's script costs the phone.

The holder page (``cardissuer/web/static/holder-phone.js``) builds a live presentation every
10-second slot: two SHA-256 digests and one ECDSA P-256 signature with the non-extractable
WebCrypto key, the container and its Base45, then the QR (the vendored qrcode-generator) and
its canvas. Here the same script runs in headless Chromium at a phone's viewport (390x844,
device pixel ratio 3) over a phone card signed by :func:`keys.phone.sign_phone_card`, and
every presentation it made is checked by the verifier (level ``live``). The figures are
this machine's CPU, not a phone's: a phone's is some 3-5 times slower.

Skipped, with the reason in the section's notes, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import base64
import functools
import http.server
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.report import Check, Section, Table
from keys.phone import PhoneCard
from schemas.disclosure import pack_disclosures
from schemas.presentation import slot_of
from verifier import Level, Reason, Verifier

CHROMIUM = Path("/usr/bin/chromium")
STATIC = Path(__file__).parents[1] / "cardissuer" / "web" / "static"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
CALLS = 200
"""Presentations signed per profile and run (the slot varies, so each signs anew)."""
DRAWS = 50
"""QR codes encoded and drawn per profile and run."""
BENCH_PAGE = """<!doctype html><meta charset="utf-8"><title>bench</title>
<div style="width:360px"><canvas id="qr"></canvas></div>
<script src="qrcode.js"></script><script src="holder-phone.js"></script>
"""
MAKE_KEY = """async () => {
    window.benchKey = await crypto.subtle.generateKey(
        {name: 'ECDSA', namedCurve: 'P-256'}, false, ['sign']);
    const jwk = await crypto.subtle.exportKey('jwk', window.benchKey.publicKey);
    return {crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y};
}"""
BENCH_SCRIPT = """async ([card, calls, draws, base]) => {
    const pair = window.benchKey;
    const phone = window.fmcardPhone;
    const out = {profiles: {}};
    for (const counter of card.counters) {  // warm up: compile, first-use costs
        phone.qrFor(await phone.present(card, pair.privateKey, counter, base));
    }
    for (const counter of card.counters) {
        let text = null;
        let started = performance.now();
        for (let i = 0; i < calls; i++) {
            text = await phone.present(card, pair.privateKey, counter, base);
        }
        const sign = (performance.now() - started) / calls;
        const canvas = document.getElementById('qr');
        started = performance.now();
        let code = null;
        for (let i = 0; i < draws; i++) code = phone.qrFor(text);
        const encode = (performance.now() - started) / draws;
        started = performance.now();
        for (let i = 0; i < draws; i++) phone.draw(canvas, code);
        const draw = (performance.now() - started) / draws;
        out.profiles[counter.service] = {
            text, slot: base, sign_ms: sign, encode_ms: encode, draw_ms: draw,
            modules: code.getModuleCount(),
        };
    }
    return out;
}"""


def run(
    section: Section,
    bind: Callable[[dict[str, str]], PhoneCard],
    verifier: Verifier,
    *,
    services: tuple[str, ...],
    at: datetime,
) -> None:
    """Add the Chromium table to ``section`` (or a note saying why it was skipped).
    ``bind`` signs the sample phone card for the device key the page made; the page signs
    the slot of ``at`` (the bench's world time), and the verifier checks at ``at``."""
    if not CHROMIUM.exists():
        section.notes.append(f"Chromium-measured signing: skipped ({CHROMIUM} is missing)")
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        section.notes.append("Chromium-measured signing: skipped (playwright is not installed)")
        return
    with _served() as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=3
            ).new_page()
            page.goto(url + "/bench.html")
            page.wait_for_function("window.fmcardPhone !== undefined")
            version = browser.version
            phone_card = bind(page.evaluate(MAKE_KEY))
            card = _document(phone_card, services)
            measured: dict[str, Any] = page.evaluate(
                BENCH_SCRIPT, [card, CALLS, DRAWS, slot_of(at)]
            )
        finally:
            browser.close()
    _report(section, measured, version, verifier, at)


def _report(
    section: Section,
    measured: dict[str, Any],
    version: str,
    verifier: Verifier,
    at: datetime,
) -> None:
    table = Table(
        f"The holder page's script in Chromium {version} (390x844, DPR 3): per presentation",
        ("profile", "sign ms", "QR encode ms", "draw ms", "QR modules", "verdict"),
    )
    for service, figures in measured["profiles"].items():
        result = verifier.verify(figures["text"], service=service, at=at)
        table.add(
            service,
            f"{figures['sign_ms']:.2f}",
            f"{figures['encode_ms']:.2f}",
            f"{figures['draw_ms']:.2f}",
            figures["modules"],
            f"{result.reason.value} ({result.level.value if result.level else '-'})",
        )
        section.checks.append(
            Check(
                f"Chromium presentation, {service}",
                "verifies as VALID, live",
                f"{result.reason.value}, {result.level.value if result.level else '-'}",
                result.reason is Reason.VALID and result.level is Level.LIVE,
            )
        )
        figures.pop("text")
    section.tables.append(table)
    section.data["chromium"] = {"version": version, **measured["profiles"]}
    section.notes.append(
        "Chromium: sign = SHA-256 of the card and of the disclosures, one WebCrypto ECDSA P-256 "
        "signature with a non-extractable key, the container and Base45 "
        f"(mean of {CALLS}); QR encode and draw: mean of {DRAWS}"
    )


def _document(phone_card: PhoneCard, services: tuple[str, ...]) -> dict[str, Any]:
    """The card as the issuer hands it to the phone (cardissuer.wallet.phone)."""
    document = phone_card.to_json()
    document["counters"] = [
        {"service": service, "disclosures": _b64(pack_disclosures(phone_card.profile(service)))}
        for service in services
    ]
    return document


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@contextmanager
def _served() -> Iterator[str]:
    """Serve the page's script, the QR encoder and a bench page on 127.0.0.1 (a secure
    context, where WebCrypto works), quietly."""
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        shutil.copy(STATIC / "holder-phone.js", folder / "holder-phone.js")
        shutil.copy(STATIC / "vendor" / "qrcode.js", folder / "qrcode.js")
        (folder / "bench.html").write_text(BENCH_PAGE, encoding="utf-8")
        handler = functools.partial(_QuietHandler, directory=directory)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: ARG002 - the base's
        return  # one line per request would bury the bench's report
