"""Shared pieces of the holder portal's tests: images, a valid application, signing in
through the real SMTP sink."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from cardissuer.portal.mrz import td3_lines
from tests.mail_sink import MailSink, body_of

SESSION_COOKIE = "__Host-fmcard_portal"
"""The portal's session cookie over https (the tests' clients use https: cookies are Secure)."""


def image(size: tuple[int, int], *, fmt: str = "JPEG", shade: int = 170) -> bytes:
    """A photo-like image: a light background, a darker oval 'face', some texture."""
    width, height = size
    picture = Image.new("RGB", size, (shade, shade, shade - 10))
    draw = ImageDraw.Draw(picture)
    draw.ellipse(
        (width * 0.25, height * 0.15, width * 0.75, height * 0.7),
        fill=(max(shade - 60, 0), max(shade - 80, 0), max(shade - 90, 0)),
    )
    for x in range(0, width, 17):
        draw.line((x, 0, x, height), fill=(shade - 20, shade - 20, shade - 20))
    buffer = io.BytesIO()
    picture.save(buffer, fmt)
    return buffer.getvalue()


def portrait_jpeg() -> bytes:
    return image((400, 500))


def page_jpeg() -> bytes:
    return image((900, 640))


def future(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def application_fields(**changes: Any) -> dict[str, Any]:
    """A first-card application whose MRZ agrees with the typed fields."""
    expiry = future(3 * 365)
    number, country = "K7345612", "SAU"
    line1, line2 = td3_lines(
        issuing_state=country,
        surname="AL QAHTANI",
        given_names="SARA",
        number=number,
        nationality=country,
        birth="910223",
        sex="F",
        expiry=expiry[2:4] + expiry[5:7] + expiry[8:10],
    )
    fields: dict[str, Any] = {
        "family_name": "AL-QAHTANI",
        "given_names": "SARA",
        "native_name": "سارة القحطاني",
        "chinese_name": "萨拉",
        "nationality": "SAU",
        "birth_date": "1991-02-23",
        "sex": "F",
        "phone": "+86 579 8555 0199",
        "passport_number": number,
        "passport_country": country,
        "passport_expiry": expiry,
        "mrz1": line1,
        "mrz2": line2,
        "services": ["hc", "tr"],
    }
    fields.update(changes)
    return fields


def csrf_of(client: TestClient) -> str:
    """The CSRF token of the client's current portal session (or pending address, or
    pre-session nonce), as a portal page puts it in its forms."""
    page = client.get("/portal/sign-in")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def ask_code(client: TestClient, address: str, next_page: str = "apply") -> Any:
    return client.post(
        "/portal/sign-in",
        data={"email": address, "next": next_page, "csrf": csrf_of(client)},
        follow_redirects=False,
    )


def code_in(sink: MailSink, address: str, count: int = 1) -> str:
    message = sink.wait_for(address, count)[count - 1]
    found = re.search(r"\b(\d{6})\b", body_of(message))
    assert found, "no code in the mail"
    return found.group(1)


def enter_code(client: TestClient, code: str, next_page: str = "apply") -> Any:
    return client.post(
        "/portal/code",
        data={"code": code, "next": next_page, "csrf": csrf_of(client)},
        follow_redirects=False,
    )


def sign_in(client: TestClient, sink: MailSink, address: str, next_page: str = "apply") -> None:
    assert ask_code(client, address, next_page).status_code == 303
    before = len(sink.to(address))
    code = code_in(sink, address, max(before, 1))
    response = enter_code(client, code, next_page)
    assert response.status_code == 303, response.text
    assert client.cookies.get(SESSION_COOKIE)


def submit_application(
    client: TestClient,
    fields: dict[str, Any] | None = None,
    files: dict[str, tuple[str, bytes, str]] | None = None,
    params: dict[str, str] | None = None,
) -> Any:
    data = {**(fields or application_fields()), "csrf": csrf_of(client)}
    uploads = files or {
        "passport_page": ("page.jpg", page_jpeg(), "image/jpeg"),
        "portrait": ("me.jpg", portrait_jpeg(), "image/jpeg"),
    }
    return client.post(
        "/portal/apply", data=data, files=uploads, params=params, follow_redirects=False
    )
