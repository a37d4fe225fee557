"""The holder portal over HTTP: codes through a real SMTP server, applying, tracking, abuse."""

from __future__ import annotations

import io
import json
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import col, select

from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.config import Settings
from cardissuer.core.db import session_scope
from cardissuer.i18n import translations
from cardissuer.main import create_app
from cardissuer.models import (
    AuditRecord,
    CardRecord,
    CardState,
    PersonRecord,
    RevokedSessionRecord,
)
from cardissuer.portal import codes
from cardissuer.portal import session as portal_cookies
from cardissuer.portal.catalogue import ApplicationForm
from cardissuer.portal.forms import EXPIRED
from cardissuer.portal.models import (
    ApplicationFileRecord,
    ApplicationRecord,
    ApplicationState,
    OneTimeCodeRecord,
)
from cardissuer.portal.routes import SIGN_IN_FLOOR_S
from cardissuer.seed import seed_demo
from tests.cardissuer.portal_helpers import (
    SESSION_COOKIE,
    application_fields,
    ask_code,
    code_in,
    csrf_of,
    enter_code,
    image,
    page_jpeg,
    portrait_jpeg,
    sign_in,
    submit_application,
)
from tests.mail_sink import MailSink, body_of, mail_sink

ADDRESS = "sara.qahtani@example.org"
HTTPS = "https://testserver"  # the public URL is https: cookies are Secure
ENGLISH = {"Accept-Language": "en"}


@pytest.fixture
def sink() -> Iterator[MailSink]:
    with mail_sink() as running:
        yield running


@pytest.fixture
def portal_settings(tmp_path: Path, database_url: str, sink: MailSink) -> Settings:
    return Settings(
        workspace=tmp_path / "workspace",
        database_url=database_url,
        mail_url=sink.url,
        one_time_codes_per_address_per_hour=3,
        one_time_codes_per_client_per_hour=6,
        max_photo_bytes=400 * 1024,
        max_body_bytes=1024 * 1024,
    )


@pytest.fixture
def portal_app(portal_settings: Settings) -> Iterator[FastAPI]:
    application = create_app(portal_settings)
    seed_demo(
        application.state.engine,
        issuing_context_of(application),
        environment=application.state.settings.environment,
    )
    yield application
    application.state.engine.dispose()


@pytest.fixture
def web(portal_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(portal_app, base_url=HTTPS, headers=ENGLISH) as test_client:
        yield test_client


def _applications(app: FastAPI) -> list[ApplicationRecord]:
    with session_scope(app.state.engine) as session:
        found = list(session.exec(select(ApplicationRecord)).all())
        session.expunge_all()
    return found


# --- one-time codes ------------------------------------------------------------------------


def test_a_code_arrives_by_smtp_and_signs_the_holder_in(web: TestClient, sink: MailSink) -> None:
    response = ask_code(web, ADDRESS)
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/code?next=apply"
    [message] = sink.wait_for(ADDRESS)
    assert message["From"] == "fmcard@fmcard.example"
    code = code_in(sink, ADDRESS)
    assert code in message["Subject"]
    page = web.get("/portal/code?next=apply")
    assert "If this address can receive mail, a code was sent to it." in page.text
    entered = enter_code(web, code)
    assert entered.status_code == 303
    assert entered.headers["location"] == "/portal/apply"
    cookie = entered.headers.get_list("set-cookie")
    session_cookie = next(value for value in cookie if value.startswith("__Host-fmcard_portal="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=lax" in session_cookie
    assert "Secure" in session_cookie  # the public URL is https
    assert web.get("/portal/apply").status_code == 200


def test_the_code_is_stored_only_as_keyed_hashes(
    web: TestClient, sink: MailSink, portal_app: FastAPI
) -> None:
    ask_code(web, ADDRESS)
    code = code_in(sink, ADDRESS)
    with session_scope(portal_app.state.engine) as session:
        [record] = session.exec(select(OneTimeCodeRecord)).all()
        stored = json.dumps(record.model_dump(), default=str)
    assert code not in stored
    assert "example.org" not in stored
    assert "testclient" not in stored


def test_wrong_codes_are_counted_and_end_the_code(web: TestClient, sink: MailSink) -> None:
    ask_code(web, ADDRESS)
    code = code_in(sink, ADDRESS)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(codes.MAX_WRONG_TRIES - 1):
        response = enter_code(web, wrong)
        assert response.status_code == 422
        assert "This code is not right." in response.text
    last = enter_code(web, wrong)
    assert "no longer valid" in last.text
    # The right code no longer works either: five guesses were all it had.
    after = enter_code(web, code)
    assert after.status_code == 422
    assert "no longer valid" in after.text
    assert web.cookies.get("__Host-fmcard_portal") is None


def test_a_code_expires(web: TestClient, sink: MailSink, portal_app: FastAPI) -> None:
    ask_code(web, ADDRESS)
    code = code_in(sink, ADDRESS)
    with session_scope(portal_app.state.engine) as session:
        record = session.exec(select(OneTimeCodeRecord)).one()
        record.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(record)
    response = enter_code(web, code)
    assert response.status_code == 422
    assert "no longer valid" in response.text


def test_only_the_newest_code_counts(web: TestClient, sink: MailSink) -> None:
    ask_code(web, ADDRESS)
    first = code_in(sink, ADDRESS, 1)
    ask_code(web, ADDRESS)
    second = code_in(sink, ADDRESS, 2)
    if first != second:
        assert enter_code(web, first).status_code == 422
    assert enter_code(web, second).status_code == 303


def test_the_rate_limit_per_address_sends_nothing_more_and_says_the_same(
    web: TestClient, sink: MailSink
) -> None:
    for _ in range(3):
        assert ask_code(web, ADDRESS).status_code == 303
    sink.wait_for(ADDRESS, 3)
    over = ask_code(web, ADDRESS)
    assert over.status_code == 303  # the same answer as when a code goes out
    assert over.headers["location"] == "/portal/code?next=apply"
    other = ask_code(web, "someone.else@example.org")  # another address still gets its code
    assert other.status_code == 303
    sink.wait_for("someone.else@example.org")
    assert len(sink.to(ADDRESS)) == 3


def test_the_answer_takes_as_long_whether_a_mail_goes_out_or_not(
    web: TestClient, sink: MailSink
) -> None:
    ask_code(web, "warm-up@example.org")  # templates compiled, first connections made
    timings = []
    for _ in range(4):  # three codes go out, the fourth is over the address's limit
        started = time.monotonic()
        assert ask_code(web, ADDRESS).status_code == 303
        timings.append(time.monotonic() - started)
    assert len(sink.wait_for(ADDRESS, 3)) == 3
    assert min(timings) >= SIGN_IN_FLOOR_S
    assert max(timings) - min(timings) < 0.25, timings


def test_the_rate_limit_per_client_stops_a_client_asking_for_many_addresses(
    web: TestClient, sink: MailSink
) -> None:
    for number in range(6):
        assert ask_code(web, f"probe{number}@example.org").status_code == 303
    refused = ask_code(web, "probe-last@example.org")
    assert refused.status_code == 429
    assert "Too many codes" in refused.text
    sink.wait_for("probe5@example.org")
    assert sink.to("probe-last@example.org") == []


def test_a_mail_server_that_fails_keeps_nothing_and_says_so(
    tmp_path: Path, database_url: str
) -> None:
    settings = Settings(
        workspace=tmp_path / "workspace", database_url=database_url, mail_url="smtp://127.0.0.1:9"
    )
    app = create_app(settings)
    seed_demo(app.state.engine, issuing_context_of(app), environment=settings.environment)
    try:
        with TestClient(app, base_url=HTTPS, headers=ENGLISH) as client:
            response = ask_code(client, ADDRESS)
            assert response.status_code == 503
            assert "could not be sent" in response.text
            with session_scope(app.state.engine) as session:
                assert session.exec(select(OneTimeCodeRecord)).all() == []
    finally:
        app.state.engine.dispose()


def test_the_answer_is_the_same_for_a_registered_and_an_unknown_address(
    sink: MailSink, portal_app: FastAPI
) -> None:
    with session_scope(portal_app.state.engine) as session:
        person = session.exec(select(PersonRecord)).first()
        assert person is not None
        person.email = "registered@example.org"
        session.add(person)
    answers = []
    for address in ("registered@example.org", "nobody-here@example.org"):
        client = TestClient(portal_app, base_url=HTTPS, headers=ENGLISH)
        response = ask_code(client, address, "card")
        page = client.get(response.headers["location"])
        answers.append((response.status_code, response.headers["location"], page.text))
    assert answers[0][:2] == answers[1][:2]
    assert answers[0][2].replace(csrf_marker(answers[0][2]), "") == answers[1][2].replace(
        csrf_marker(answers[1][2]), ""
    )
    sink.wait_for("registered@example.org")
    sink.wait_for("nobody-here@example.org")


def csrf_marker(html: str) -> str:
    start = html.index('name="csrf" value="') + len('name="csrf" value="')
    return html[start : html.index('"', start)]


def test_a_post_without_the_csrf_token_is_refused(web: TestClient, sink: MailSink) -> None:
    csrf_of(web)
    response = web.post(
        "/portal/sign-in", data={"email": ADDRESS, "next": "apply", "csrf": "forged"}
    )
    assert response.status_code == 403
    assert sink.to(ADDRESS) == []


def test_portal_pages_keep_the_strict_csp_and_run_no_inline_code(
    web: TestClient, sink: MailSink
) -> None:
    from cardissuer.web.rendering import CONTENT_SECURITY_POLICY

    sign_in(web, sink, ADDRESS)
    for path in ("/portal/", "/portal/sign-in", "/portal/apply", "/portal/applications"):
        page = web.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert page.headers["cache-control"] == "private, no-store"
        assert page.headers["x-frame-options"] == "DENY"
        scripts = page.text.count("<script")
        assert scripts == page.text.count('<script src="/static/portal.js" defer></script>')
        assert " on" + "click=" not in page.text


def test_no_portal_route_serves_an_upload() -> None:
    """The portal's routes are its pages and forms; none hands a stored file back."""
    from cardissuer.portal.routes import router

    paths = {getattr(route, "path", "") for route in router.routes}
    assert paths == {
        "/portal/",
        "/portal/sign-in",
        "/portal/code",
        "/portal/sign-out",
        "/portal/apply",
        "/portal/applications",
        "/portal/applications/{reference}",
        "/portal/applications/{reference}/answer",
        "/portal/applications/{reference}/withdraw",
        "/portal/card",
        "/portal/card/passport",
        "/portal/card/renew",
        "/portal/card/service",
        "/portal/card/lost-phone",
    }


# --- applying ------------------------------------------------------------------------------


def test_apply_end_to_end(web: TestClient, sink: MailSink, portal_app: FastAPI) -> None:
    sign_in(web, sink, ADDRESS)
    response = submit_application(web)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/portal/applications/FM-")
    page = web.get(location)
    reference = location.split("/")[-1].split("?")[0]
    assert reference in page.text
    assert "Submitted" in page.text
    assert 'data-clear-draft="apply"' in page.text
    [record] = _applications(portal_app)
    assert record.reference == reference
    assert record.state == ApplicationState.SUBMITTED.value
    assert record.kind == "first_card"
    assert record.email == ADDRESS
    form = ApplicationForm.model_validate_json(record.form or "")
    assert form.person.family_name == "AL-QAHTANI"
    assert form.person.email == ADDRESS
    assert form.services == ["hc", "tr"]
    assert form.mrz is not None
    assert len(form.mrz[0]) == 44
    with session_scope(portal_app.state.engine) as session:
        files = session.exec(
            select(ApplicationFileRecord).where(ApplicationFileRecord.application_id == record.id)
        ).all()
        kinds = sorted(file.kind for file in files)
        assert all(file.data[:3] == b"\xff\xd8\xff" for file in files)
        entries = session.exec(
            select(AuditRecord).where(AuditRecord.record_type == "application")
        ).all()
        assert [entry.record_id for entry in entries] == [reference]
        assert "QAHTANI" not in entries[0].detail
    assert kinds == ["passport_page", "portrait"]
    confirmation = sink.wait_for(ADDRESS, 2)[1]
    assert reference in str(confirmation["Subject"])
    assert reference in body_of(confirmation)


def test_the_apply_page_needs_a_proved_address(web: TestClient) -> None:
    response = web.get("/portal/apply", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/sign-in?next=apply"
    posted = submit_application(web)
    assert posted.status_code == 303
    assert posted.headers["location"] == "/portal/sign-in?next=apply"


def test_a_forged_session_cookie_is_not_a_session(web: TestClient) -> None:
    web.cookies.set("__Host-fmcard_portal", "eyJhIjoiYUBiLmMiLCJ1Ijo5OTk5OTk5OTk5fQ==.00")
    assert web.get("/portal/apply", follow_redirects=False).status_code == 303


def test_a_copied_session_cookie_is_refused_after_sign_out(
    portal_app: FastAPI, sink: MailSink
) -> None:
    """Signing out ends the session on the server: a copy of its cookie (another device, a
    stolen one) is signed out too, on every page and form; another session of the same
    address is not. Expired ended sessions are pruned as the console prunes them."""
    with session_scope(portal_app.state.engine) as session:
        session.add(RevokedSessionRecord(jti="old", expires_at=datetime.now(UTC) - timedelta(1)))
    with (
        TestClient(portal_app, base_url=HTTPS, headers=ENGLISH) as holder,
        TestClient(portal_app, base_url=HTTPS, headers=ENGLISH) as copy,
        TestClient(portal_app, base_url=HTTPS, headers=ENGLISH) as other_device,
    ):
        sign_in(holder, sink, ADDRESS)
        assert ask_code(other_device, ADDRESS).status_code == 303
        assert enter_code(other_device, code_in(sink, ADDRESS, 2)).status_code == 303
        copied = holder.cookies.get(SESSION_COOKIE)
        assert copied
        copy.cookies.set(SESSION_COOKIE, copied)
        assert copy.get("/portal/apply", follow_redirects=False).status_code == 200
        token = csrf_of(copy)  # the session's token, as a page showed it before sign-out
        signed_out = holder.post(
            "/portal/sign-out", data={"csrf": csrf_of(holder)}, follow_redirects=False
        )
        assert signed_out.status_code == 303
        assert holder.cookies.get(SESSION_COOKIE) is None
        for page, next_page in (
            ("/portal/apply", "apply"),
            ("/portal/applications", "applications"),
            ("/portal/card", "card"),
        ):
            replayed = copy.get(page, follow_redirects=False)
            assert replayed.status_code == 303, page
            assert replayed.headers["location"] == f"/portal/sign-in?next={next_page}"
        assert "Sign out" not in copy.get("/portal/").text
        copy.cookies.set(SESSION_COOKIE, copied)
        posted = copy.post(
            "/portal/apply",
            data={**application_fields(), "csrf": token},
            files={
                "passport_page": ("page.jpg", page_jpeg(), "image/jpeg"),
                "portrait": ("me.jpg", portrait_jpeg(), "image/jpeg"),
            },
            follow_redirects=False,
        )
        assert posted.status_code == 303
        assert posted.headers["location"] == "/portal/sign-in?next=apply"
        assert _applications(portal_app) == []
        assert other_device.get("/portal/apply", follow_redirects=False).status_code == 200
    with session_scope(portal_app.state.engine) as session:
        [ended] = session.exec(select(RevokedSessionRecord)).all()
        assert ended.jti.startswith("portal:")
        expires = ended.expires_at.replace(tzinfo=ended.expires_at.tzinfo or UTC)
        assert timedelta(hours=1) < expires - datetime.now(UTC) <= timedelta(hours=2)


def test_a_session_cookie_without_a_session_id_is_refused(
    web: TestClient, portal_app: FastAPI
) -> None:
    """A genuine cookie of the kind made before sessions had ids cannot be signed out, so it
    is no session: the holder signs in again."""
    key = codes.portal_key(portal_app.state.settings.session_secret.get_secret_value())
    until = datetime.now(UTC) + timedelta(hours=1)
    web.cookies.set(
        SESSION_COOKIE, portal_cookies.sign_address(key, "session", ADDRESS, until=until)
    )
    assert web.get("/portal/apply", follow_redirects=False).status_code == 303


def test_field_errors_are_shown_next_to_the_field_in_the_holders_language(
    web: TestClient, sink: MailSink, portal_app: FastAPI
) -> None:
    sign_in(web, sink, ADDRESS)
    fields = application_fields(passport_number="K7345613")
    fields["mrz2"] = fields["mrz2"][:5] + "9" + fields["mrz2"][6:]
    response = submit_application(web, fields)
    assert response.status_code == 422
    assert 'id="mrz2-error"' in response.text
    assert "mistyped" in response.text
    fields = application_fields(birth_date="1991-02-24")
    response = submit_application(web, fields)
    assert 'id="birth_date-error"' in response.text
    assert "another birth date" in response.text
    assert 'value="AL-QAHTANI"' in response.text  # what was typed comes back
    arabic = web.post(
        "/portal/apply?lang=ar",
        data={**fields, "csrf": csrf_of(web)},
        files={
            "passport_page": ("page.jpg", page_jpeg(), "image/jpeg"),
            "portrait": ("me.jpg", portrait_jpeg(), "image/jpeg"),
        },
    )
    assert 'dir="rtl"' in arabic.text
    assert "another birth date" not in arabic.text
    assert _applications(portal_app) == []


def _bomb_png(side: int = 20000) -> bytes:
    """A valid PNG header of ``side`` x ``side`` pixels whose data is a few kilobytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # 1-bit grey
    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (side // 8)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("name", "upload", "message"),
    [
        ("oversized", b"\xff\xd8\xff" + b"\x00" * (401 * 1024), "larger than 400 KB"),
        ("not-an-image", b"%PDF-1.7\n1 0 obj <<>> endobj\n", "Only JPEG, PNG or WebP"),
        ("html", b"<html><script>alert(1)</script></html>", "Only JPEG, PNG or WebP"),
        ("gif", b"GIF89a" + b"\x00" * 64, "Only JPEG, PNG or WebP"),
        (
            "polyglot",
            b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>" + b"\x00" * 64,
            "cannot be read as a photo",
        ),
        ("bomb", _bomb_png(), "too many pixels"),
        ("small", image((120, 150)), "too small"),
        ("dark", image((400, 500), shade=30), "too dark"),
        ("landscape", image((700, 500)), "head and shoulders"),
    ],
)
def test_bad_portraits_are_refused_with_a_clear_message(
    web: TestClient, sink: MailSink, portal_app: FastAPI, name: str, upload: bytes, message: str
) -> None:
    sign_in(web, sink, ADDRESS)
    response = submit_application(
        web,
        files={
            "passport_page": ("page.jpg", page_jpeg(), "image/jpeg"),
            "portrait": (f"{name}.jpg", upload, "image/jpeg"),
        },
    )
    assert response.status_code == 422, name
    assert 'id="portrait-error"' in response.text
    assert message in response.text
    assert _applications(portal_app) == []


def _jpeg_of_size(picture: bytes, size: int) -> bytes:
    """``picture`` (a JPEG) padded to exactly ``size`` bytes with comment segments."""
    missing = size - len(picture)
    segments = b""
    while missing > 0:
        take = min(missing, 65535 + 2)
        if missing - take in (1, 2, 3):  # a segment has at least 4 bytes: leave room for one
            take -= 4
        segments += b"\xff\xfe" + (take - 2).to_bytes(2, "big") + b"c" * (take - 4)
        missing -= take
    padded = picture[:2] + segments + picture[2:]
    assert len(padded) == size
    return padded


def test_three_files_at_the_stated_limit_are_accepted(
    web: TestClient, sink: MailSink, portal_app: FastAPI, portal_settings: Settings
) -> None:
    limit = portal_settings.max_photo_bytes
    assert 3 * limit > portal_settings.max_body_bytes  # more than the API's body limit
    sign_in(web, sink, ADDRESS)
    response = submit_application(
        web,
        fields=application_fields(services=["hc", "ed"]),
        files={
            "passport_page": ("page.jpg", _jpeg_of_size(page_jpeg(), limit), "image/jpeg"),
            "portrait": ("me.jpg", _jpeg_of_size(portrait_jpeg(), limit), "image/jpeg"),
            "document": ("school.jpg", _jpeg_of_size(page_jpeg(), limit), "image/jpeg"),
        },
    )
    assert response.status_code == 303, response.text[:500]
    assert len(_applications(portal_app)) == 1
    # The API keeps its own limit.
    api = web.post("/api/v1/persons", content=b"{" + b" " * portal_settings.max_body_bytes)
    assert api.status_code == 413
    assert api.headers["content-type"] == "application/problem+json"


def test_a_form_over_the_body_limit_gets_a_page_in_the_holders_language(
    web: TestClient, sink: MailSink, portal_app: FastAPI, portal_settings: Settings
) -> None:
    from cardissuer.main import portal_body_limit

    limit = portal_body_limit(portal_settings)
    sign_in(web, sink, ADDRESS)
    response = submit_application(
        web,
        files={
            "passport_page": ("page.jpg", page_jpeg(), "image/jpeg"),
            "portrait": ("me.jpg", portrait_jpeg(), "image/jpeg"),
            "document": ("big.jpg", b"\xff\xd8\xff" + bytes(limit), "image/jpeg"),
        },
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert f"at most {limit // 1024} KB in all" in response.text
    assert _applications(portal_app) == []


def test_a_bomb_is_small_on_the_wire() -> None:
    assert len(_bomb_png()) < 60 * 1024


def test_what_an_image_carries_besides_its_pixels_is_not_kept(
    web: TestClient, sink: MailSink, portal_app: FastAPI
) -> None:
    picture = Image.open(io.BytesIO(portrait_jpeg()))
    exif = Image.Exif()
    exif[0x010F] = "SecretCameraMaker"  # Make
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", exif=exif)
    polyglot = buffer.getvalue() + b"<script>alert('kept')</script>"
    sign_in(web, sink, ADDRESS)
    response = submit_application(
        web,
        files={
            "passport_page": ("page.jpg", page_jpeg(), "image/jpeg"),
            "portrait": ("me.png", polyglot, "image/png"),
        },
    )
    assert response.status_code == 303
    with session_scope(portal_app.state.engine) as session:
        files = session.exec(select(ApplicationFileRecord)).all()
        datas = [file.data for file in files]
    assert all(b"SecretCameraMaker" not in data and b"<script>" not in data for data in datas)
    assert all(data[:3] == b"\xff\xd8\xff" for data in datas)


def test_education_needs_a_supporting_document(web: TestClient, sink: MailSink) -> None:
    sign_in(web, sink, ADDRESS)
    response = submit_application(web, application_fields(services=["ed"]))
    assert response.status_code == 422
    assert 'id="document-error"' in response.text
    assert "needs a supporting document" in response.text
    with_document = web.post(
        "/portal/apply",
        data={**application_fields(services=["ed"]), "csrf": csrf_of(web)},
        files={
            "passport_page": ("page.jpg", page_jpeg(), "image/jpeg"),
            "portrait": ("me.jpg", portrait_jpeg(), "image/jpeg"),
            "document": ("letter.jpg", page_jpeg(), "image/jpeg"),
        },
        follow_redirects=False,
    )
    assert with_document.status_code == 303


# --- tracking ------------------------------------------------------------------------------


def _submitted(web: TestClient, sink: MailSink, address: str) -> str:
    sign_in(web, sink, address)
    response = submit_application(web)
    assert response.status_code == 303, response.text
    return str(response.headers["location"]).split("/")[-1].split("?")[0]


def test_another_address_cannot_see_or_change_an_application(
    portal_app: FastAPI, sink: MailSink
) -> None:
    owner, other = (
        TestClient(portal_app, base_url=HTTPS, headers=ENGLISH),
        TestClient(portal_app, base_url=HTTPS, headers=ENGLISH),
    )
    reference = _submitted(owner, sink, ADDRESS)
    sign_in(other, sink, "intruder@example.org", "applications")
    seen = other.get(f"/portal/applications/{reference}")
    missing = other.get("/portal/applications/FM-2222-3333-4444")
    assert seen.status_code == missing.status_code == 404
    assert seen.text.replace(csrf_marker(seen.text), "") == missing.text.replace(
        csrf_marker(missing.text), ""
    )
    assert reference not in other.get("/portal/applications").text
    refused = other.post(
        f"/portal/applications/{reference}/withdraw", data={"csrf": csrf_of(other)}
    )
    assert refused.status_code == 404
    [record] = _applications(portal_app)
    assert record.state == ApplicationState.SUBMITTED.value


def test_the_holder_answers_a_question_and_withdraws(
    web: TestClient, sink: MailSink, portal_app: FastAPI
) -> None:
    reference = _submitted(web, sink, ADDRESS)
    with session_scope(portal_app.state.engine) as session:
        record = session.exec(select(ApplicationRecord)).one()
        record.state = ApplicationState.INFO_NEEDED.value
        record.question = "Please send the page with your visa."
        session.add(record)
    listed = web.get("/portal/applications")
    assert "Please send the page with your visa." in listed.text
    assert "More information needed" in listed.text
    answered = web.post(
        f"/portal/applications/{reference}/answer",
        data={"answer": "The visa is on page 7.", "csrf": csrf_of(web)},
        follow_redirects=False,
    )
    assert answered.status_code == 303
    [record] = _applications(portal_app)
    assert (record.state, record.answer) == ("submitted", "The visa is on page 7.")
    again = web.post(
        f"/portal/applications/{reference}/answer",
        data={"answer": "again", "csrf": csrf_of(web)},
    )
    assert again.status_code == 409
    withdrawn = web.post(
        f"/portal/applications/{reference}/withdraw",
        data={"csrf": csrf_of(web)},
        follow_redirects=False,
    )
    assert withdrawn.status_code == 303
    [record] = _applications(portal_app)
    assert record.state == ApplicationState.WITHDRAWN.value
    assert record.decided_at is not None
    with session_scope(portal_app.state.engine) as session:
        actions = [
            entry.action
            for entry in session.exec(
                select(AuditRecord).where(AuditRecord.record_id == reference)
            ).all()
        ]
    assert actions == [
        "application.submit.first_card",
        "application.answer",
        "application.withdraw",
    ]


def test_a_refusal_reason_and_a_dispatch_are_shown_in_the_holders_language(
    web: TestClient, sink: MailSink, portal_app: FastAPI
) -> None:
    reference = _submitted(web, sink, ADDRESS)
    with session_scope(portal_app.state.engine) as session:
        record = session.exec(select(ApplicationRecord)).one()
        record.state = ApplicationState.REJECTED.value
        record.reject_reason = "passport-mismatch"
        record.courier = "EMS"
        record.tracking_number = "EA123456789CN"
        session.add(record)
    page = web.get(f"/portal/applications/{reference}")
    assert "The details typed do not match the passport." in page.text
    assert "EA123456789CN" in page.text
    chinese = web.get(f"/portal/applications/{reference}?lang=zh")
    assert "The details typed do not match the passport." not in chinese.text
    assert 'lang="zh-CN"' in chinese.text


# --- a card holder -------------------------------------------------------------------------


def _holder_with_phone_card(app: FastAPI, address: str) -> str:
    """Give a demo person ``address`` and a phone card; return the phone card's serial."""
    from cardissuer.models import OfficerRecord, Role
    from cardissuer.services import cards
    from cardissuer.services.access import Actor

    with session_scope(app.state.engine) as session:
        person = session.exec(select(PersonRecord).order_by(col(PersonRecord.id))).first()
        assert person is not None
        person.email = address
        session.add(person)
        officer = session.exec(
            select(OfficerRecord).where(OfficerRecord.role == Role.REGISTRAR)
        ).first()
        assert officer is not None
        actor = Actor(officer.id or 0, officer.office_id, officer.role, officer.username)
        jwk = _device_jwk()
        card = cards.issue_phone_card(
            session,
            actor,
            person.code,
            device_jwk=jwk,
            at=datetime.now(UTC).replace(microsecond=0),
            context=issuing_context_of(app),
        )
        return card.serial


def _device_jwk() -> dict[str, str]:
    from keys.jwk import generate, public_jwk

    return public_jwk(generate().public_key())


def test_a_lost_phone_suspends_the_phone_card_at_once(
    web: TestClient, sink: MailSink, portal_app: FastAPI
) -> None:
    serial = _holder_with_phone_card(portal_app, "holder@example.org")
    sign_in(web, sink, "holder@example.org", "card")
    page = web.get("/portal/card")
    assert "I lost my phone" in page.text
    response = web.post(
        "/portal/card/lost-phone", data={"csrf": csrf_of(web)}, follow_redirects=False
    )
    assert response.status_code == 303
    with session_scope(portal_app.state.engine) as session:
        card = session.exec(select(CardRecord).where(CardRecord.serial == serial)).one()
        assert card.state is CardState.SUSPENDED
        printed = session.exec(
            select(CardRecord).where(
                CardRecord.person_id == card.person_id, CardRecord.kind == "printed"
            )
        ).all()
        assert all(other.state is CardState.ACTIVE for other in printed)
        suspended = session.exec(
            select(AuditRecord).where(
                AuditRecord.action == "card.suspended", AuditRecord.record_id == str(card.id)
            )
        ).all()
        assert len(suspended) == 1
    [record] = _applications(portal_app)
    assert (record.kind, record.person_id) == ("lost_phone", card.person_id)
    # Reported again while the first report is open: the same application, no new one in the
    # review queue (a holder cannot fill it with reports), and no second mail.
    mails = len(sink.messages)
    again = web.post("/portal/card/lost-phone", data={"csrf": csrf_of(web)}, follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"] == response.headers["location"]
    assert [r.reference for r in _applications(portal_app)] == [record.reference]
    assert len(sink.messages) == mails


def test_an_address_without_a_card_is_told_so_only_after_proving_it(
    web: TestClient, sink: MailSink
) -> None:
    sign_in(web, sink, "newcomer@example.org", "card")
    page = web.get("/portal/card")
    assert 'id="no-card"' in page.text
    refused = web.post("/portal/card/lost-phone", data={"csrf": csrf_of(web)})
    assert refused.status_code == 404


def test_a_holder_reports_a_new_passport_and_asks_for_renewal_and_a_service(
    web: TestClient, sink: MailSink, portal_app: FastAPI
) -> None:
    from cardissuer.portal.mrz import td3_lines

    _holder_with_phone_card(portal_app, "holder@example.org")
    with session_scope(portal_app.state.engine) as session:
        person = session.exec(
            select(PersonRecord).where(PersonRecord.email == "holder@example.org")
        ).one()
        birth = f"{person.birth_date:08d}"
        names = (person.family_name, person.given_names, person.nationality, person.sex)
    expiry = (datetime.now(UTC) + timedelta(days=2000)).date()
    line1, line2 = td3_lines(
        issuing_state=names[2],
        surname=names[0].replace("-", " "),
        given_names=names[1],
        number="N9988776",
        nationality=names[2],
        birth=birth[2:],
        sex=names[3] if names[3] in "MF" else "<",
        expiry=expiry.strftime("%y%m%d"),
    )
    sign_in(web, sink, "holder@example.org", "card")
    response = web.post(
        "/portal/card/passport",
        data={
            "passport_number": "N9988776",
            "passport_country": names[2],
            "passport_expiry": expiry.isoformat(),
            "mrz1": line1,
            "mrz2": line2,
            "csrf": csrf_of(web),
        },
        files={"passport_page": ("page.jpg", page_jpeg(), "image/jpeg")},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    renewal = web.post("/portal/card/renew", data={"csrf": csrf_of(web)}, follow_redirects=False)
    assert renewal.status_code == 303
    service = web.post(
        "/portal/card/service",
        data={"services": ["bz"], "csrf": csrf_of(web)},
        follow_redirects=False,
    )
    assert service.status_code == 303
    kinds = sorted(record.kind for record in _applications(portal_app))
    assert kinds == ["passport_change", "renewal", "service"]
    assert all(record.person_id for record in _applications(portal_app))


# --- how many open applications one address may have ----------------------------------------


def test_a_second_open_first_card_application_is_refused_in_the_holders_language(
    web: TestClient, sink: MailSink, portal_app: FastAPI
) -> None:
    from cardissuer.i18n import translations

    reference = _submitted(web, sink, ADDRESS)
    again = submit_application(web, params={"lang": "ar"})
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("text/html")
    assert 'data-reason="too-many-open"' in again.text
    expected = translations("ar").gettext(
        "You already have an open application for a first card. Follow it under "
        '"My applications": wait for its decision, or withdraw it there before you '
        "apply again."
    )
    assert expected.replace('"', "&#34;") in again.text
    assert [record.reference for record in _applications(portal_app)] == [reference]
    assert len(sink.to(ADDRESS)) == 2  # the code and one confirmation, nothing for the refusal
    withdrawn = web.post(
        f"/portal/applications/{reference}/withdraw",
        data={"csrf": csrf_of(web)},
        follow_redirects=False,
    )
    assert withdrawn.status_code == 303
    assert submit_application(web).status_code == 303


def test_one_address_has_at_most_the_configured_number_of_open_applications(
    web: TestClient, sink: MailSink, portal_app: FastAPI
) -> None:
    _holder_with_phone_card(portal_app, "holder@example.org")
    sign_in(web, sink, "holder@example.org", "card")
    limit = portal_app.state.settings.portal_open_applications_per_address
    assert limit == 3
    for _ in range(limit):
        sent = web.post("/portal/card/renew", data={"csrf": csrf_of(web)}, follow_redirects=False)
        assert sent.status_code == 303
    refused = web.post("/portal/card/service", data={"services": ["bz"], "csrf": csrf_of(web)})
    assert refused.status_code == 409
    assert "You already have 3 open applications" in refused.text
    assert 'href="/portal/applications"' in refused.text
    assert len(_applications(portal_app)) == limit
    # A lost phone is still heard: its cards are suspended at once.
    lost = web.post("/portal/card/lost-phone", data={"csrf": csrf_of(web)}, follow_redirects=False)
    assert lost.status_code == 303
    assert len(_applications(portal_app)) == limit + 1


def test_parallel_submits_cannot_pass_the_limit(portal_app: FastAPI) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from cardissuer.portal import applications as service
    from cardissuer.portal.models import ApplicationKind

    engine = portal_app.state.engine
    owner = service.owner_hash(b"k" * 32, "racer@example.org")
    with session_scope(engine) as session:
        office_id = service.portal_office(session, "").id or 0

    def attempt(kind: ApplicationKind) -> bool:
        try:
            with session_scope(engine) as session:
                service.submit(
                    session,
                    owner=owner,
                    kind=kind,
                    form=None,
                    email="racer@example.org",
                    phone=None,
                    language="en",
                    office_id=office_id,
                    max_open=3,
                    at=datetime.now(UTC),
                )
        except service.TooManyOpenError:
            return False
        return True

    kinds = [ApplicationKind.FIRST_CARD] * 4 + [ApplicationKind.RENEWAL] * 6
    with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
        accepted = list(pool.map(attempt, kinds))
    stored = [record for record in _applications(portal_app) if record.secret_hash == owner]
    assert sum(accepted) == len(stored) == 3
    assert sum(record.kind == "first_card" for record in stored) <= 1


def test_a_question_is_not_shown_as_a_decision(
    web: TestClient, sink: MailSink, portal_app: FastAPI
) -> None:
    reference = _submitted(web, sink, ADDRESS)
    with session_scope(portal_app.state.engine) as session:
        record = session.exec(select(ApplicationRecord)).one()
        record.state = ApplicationState.INFO_NEEDED.value
        record.question = "Please send the page with your visa."
        record.decided_at = datetime.now(UTC)  # an officer's question stamps it
        session.add(record)
    for page in (web.get(f"/portal/applications/{reference}"), web.get("/portal/applications")):
        assert "Please send the page with your visa." in page.text
        assert "Decided on" not in page.text
    with session_scope(portal_app.state.engine) as session:
        record = session.exec(select(ApplicationRecord)).one()
        record.state = ApplicationState.REJECTED.value
        session.add(record)
    assert "Decided on" in web.get(f"/portal/applications/{reference}").text


# --- what the portal does not have, or cannot read ------------------------------------------


def test_an_unknown_portal_path_gets_the_portals_page_in_the_holders_language(
    web: TestClient,
) -> None:
    from cardissuer.i18n import translations

    response = web.get("/portal/nonexistent?lang=ar")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert 'dir="rtl"' in response.text
    assert translations("ar").gettext("There is no such page.") in response.text
    api = web.get("/api/v1/nonexistent")
    assert api.headers["content-type"] == "application/problem+json"


def test_an_unreadable_form_gets_the_portals_page(web: TestClient, sink: MailSink) -> None:
    from cardissuer.i18n import translations

    sign_in(web, sink, ADDRESS)
    expected = translations("ru").gettext(
        "This form could not be read. Go back, reload the page and send it again."
    )
    many_files = [("f", (f"{n}.jpg", b"x", "image/jpeg")) for n in range(6)]
    too_many = web.post("/portal/apply?lang=ru", data={"csrf": csrf_of(web)}, files=many_files)
    broken = web.post(
        "/portal/apply?lang=ru",
        content=b"--x\r\nno headers at all",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    for response in (too_many, broken):
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/html")
        assert expected in response.text


def _jpeg_header(width: int, height: int) -> bytes:
    """A JPEG that is only a start-of-frame claiming ``width`` x ``height`` pixels."""
    sof = b"\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return b"\xff\xd8" + sof + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01" + b"\x00" * 32


def test_odd_uploads_and_foreign_fields_get_a_page_in_the_holders_language(
    web: TestClient, sink: MailSink, portal_app: FastAPI
) -> None:
    """A 1x1 image, headers claiming 50000x50000 pixels, a truncated AVIF: a 422 page in the
    page's language, never a traceback. Fields the form does not have (office, state, an
    id) change nothing; an expired passport and a bad e-mail are refused in Arabic."""
    arabic = translations("ar").gettext
    sign_in(web, sink, ADDRESS)
    one_pixel = io.BytesIO()
    Image.new("RGB", (1, 1)).save(one_pixel, "PNG")
    uploads = {
        "1x1": one_pixel.getvalue(),
        "png-50000": _bomb_png(50000),
        "jpeg-50000": _jpeg_header(50000, 50000),
        "avif-truncated": b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf\x00\x00",
    }
    for name, upload in uploads.items():
        response = submit_application(
            web,
            files={
                "passport_page": ("page.jpg", upload, "image/jpeg"),
                "portrait": (f"{name}.jpg", upload, "image/jpeg"),
            },
            params={"lang": "ar"},
        )
        assert response.status_code == 422, name
        assert response.headers["content-type"].startswith("text/html"), name
        assert 'dir="rtl"' in response.text, name
        assert "Traceback" not in response.text
    foreign = {"office": "YW-OTHER", "office_id": "2", "state": "approved", "person_id": "1"}
    expired = application_fields(passport_expiry="2020-01-01", **foreign)
    refused = submit_application(web, expired, params={"lang": "ar"})
    assert refused.status_code == 422
    assert arabic(str(EXPIRED)) in refused.text
    assert arabic(str(EXPIRED)) != str(EXPIRED)
    accepted = submit_application(web, application_fields(**foreign))
    assert accepted.status_code == 303, accepted.text
    with session_scope(portal_app.state.engine) as session:
        [record] = session.exec(select(ApplicationRecord)).all()
        assert record.state == ApplicationState.SUBMITTED.value
        assert record.person_id is None
    other = TestClient(portal_app, base_url=HTTPS)
    bad = other.post(
        "/portal/sign-in",
        params={"lang": "ar"},
        data={"email": "not an address", "next": "apply", "csrf": csrf_of(other)},
    )
    assert bad.status_code == 422
    assert arabic("This is not an e-mail address (name@example.com).") in bad.text
