"""The console's review queue with a logged-in officer (TestClient, both databases): the
queue, its filters and paging, the application beside its duplicate candidates, the photos
behind an office-scoped route, and decisions through the CSRF-checked forms, including a
mail failure that leaves the decision and offers a resend."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlmodel import select

from cardissuer.core.db import session_scope
from cardissuer.models import AuditRecord
from cardissuer.portal.catalogue import ApplicationForm
from cardissuer.portal.models import ApplicationKind, ApplicationState
from cardissuer.web.i18n import Translator
from tests.cardissuer import applications as factory
from tests.cardissuer.test_console import _client_login
from tests.cardissuer.test_decisions import _okonkwo_again
from tests.mail_sink import MailSink, body_of, mail_sink

_EN = Translator("en")


def EN(key: str, **values: object) -> str:  # noqa: N802 - reads as the console's t()
    """The English of ``key`` as the page shows it (escaped)."""
    return f"{escape(_EN(key, **values))}"


@pytest.fixture
def sink(app: FastAPI) -> Iterator[MailSink]:
    with mail_sink() as running:
        app.state.settings.mail_url = running.url
        yield running


def _officer(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app)
    _client_login(client, username)
    return client


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert found is not None
    return found.group(1)


def _post(client: TestClient, reference: str, decision: str, **fields: str) -> str:
    """Post a decision's form from the application's page; return the page it leads to."""
    path = f"/console/applications/{reference}"
    token = _csrf(client.get(path + "?lang=en").text)
    answer = client.post(f"{path}/{decision}", data={"csrf": token, **fields})
    assert answer.status_code == 200, answer.text
    assert answer.url.path == path
    text: str = answer.text
    return text


def test_the_queue_lists_the_offices_open_applications_oldest_first(app: FastAPI) -> None:
    engine = app.state.engine
    now = datetime.now(UTC).replace(microsecond=0)
    old = factory.submit(engine, submitted_at=now - timedelta(days=3, hours=2))
    new = factory.submit(engine, form=_okonkwo_again(), submitted_at=now - timedelta(hours=1))
    renewal = factory.submit(
        engine, kind=ApplicationKind.RENEWAL, submitted_at=now - timedelta(days=1)
    )
    elsewhere = factory.submit(engine, office="YW-CHOUCHENG")
    done = factory.submit(engine, state=ApplicationState.REJECTED)

    with _officer(app, "registrar") as client:
        page = client.get("/console/applications?lang=en")
        assert page.status_code == 200
        listed = re.findall(r'data-reference="([^"]+)"', page.text)
        assert listed == [old, renewal, new]  # oldest first; not another office's, not decided
        assert "3 days" in page.text
        assert EN("review_today") in page.text
        assert "NGUYEN VAN AN" in page.text
        # The menu's link counts the office's open applications.
        assert 'aria-label="3 open applications"' in page.text

        only = client.get("/console/applications?lang=en&nationality=nga")
        assert re.findall(r'data-reference="([^"]+)"', only.text) == [new]
        kind = client.get("/console/applications?lang=en&kind=renewal")
        assert re.findall(r'data-reference="([^"]+)"', kind.text) == [renewal]
        state = client.get("/console/applications?lang=en&state=rejected")
        assert re.findall(r'data-reference="([^"]+)"', state.text) == [done]
        odd = client.get("/console/applications?lang=en&kind=nonsense&after=zzz")
        assert len(re.findall(r'data-reference="', odd.text)) == 3

    with _officer(app, "auditor") as client:  # every office, read only
        page = client.get("/console/applications?lang=en")
        listed = re.findall(r'data-reference="([^"]+)"', page.text)
        assert listed == [old, renewal, new, elsewhere]
        view = client.get(f"/console/applications/{elsewhere}?lang=en")
        assert view.status_code == 200
        assert 'id="decisions"' not in view.text


def test_the_queue_pages_by_cursor(app: FastAPI) -> None:
    engine = app.state.engine
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)
    same = start + timedelta(seconds=1, microseconds=500)  # several at one moment
    references = [factory.submit(engine, submitted_at=start, files=False)]
    references += [factory.submit(engine, submitted_at=same, files=False) for _ in range(24)]
    seen: list[str] = []
    with _officer(app, "registrar") as client:
        url = "/console/applications?lang=en"
        while url:
            page = client.get(url)
            seen += re.findall(r'data-reference="([^"]+)"', page.text)
            found = re.search(r'rel="next" href="([^"]+)"', page.text)
            url = found.group(1).replace("&amp;", "&") if found else ""
    assert sorted(seen) == sorted(references)
    assert len(seen) == len(set(seen))
    assert seen[0] == references[0]


def test_an_application_opens_beside_its_candidates_and_its_photos(app: FastAPI) -> None:
    engine = app.state.engine
    mrz = ("P<NGAOKONKWO<<CHIDI<EMEKA" + "<" * 19, "A076543210NGA7907025M3401315" + "<" * 14 + "04")
    form = ApplicationForm(person=_okonkwo_again().person, mrz=mrz, services=["hc"])
    reference = factory.submit(engine, form=form)
    elsewhere = factory.submit(engine, office="YW-CHOUCHENG")
    with _officer(app, "registrar") as client:
        page = client.get(f"/console/applications/{reference}?lang=en")
        assert page.status_code == 200
        text = page.text
        assert 'id="duplicates"' in text
        assert "OKONKWO CHIDI EMEKA" in text  # the demo person, beside the application
        assert EN("review_needs_supervisor") in text  # a registrar cannot confirm a new person
        assert 'id="mrz"' in text
        assert "A076543210NGA" in text
        files = re.findall(rf"/console/applications/{reference}/files/(\d+)", text)
        assert len(files) == 2
        image = client.get(f"/console/applications/{reference}/files/{files[0]}")
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/jpeg"
        assert image.headers["content-disposition"] == "inline"
        assert image.headers["x-content-type-options"] == "nosniff"
        assert image.content[:3] == b"\xff\xd8\xff"
        other_file = factory.file_ids(app.state.engine, elsewhere)
        hidden = client.get(f"/console/applications/{elsewhere}?lang=en")
        missing = client.get("/console/applications/NOSUCHAPPLICATION?lang=en")
        assert hidden.status_code == missing.status_code == 404
        foreign = client.get(f"/console/applications/{elsewhere}/files/{other_file[-1]}")
        assert foreign.status_code == 404
        crossed = client.get(f"/console/applications/{reference}/files/{other_file[-1]}")
        assert crossed.status_code == 404  # a file of another application, through this one

    with _officer(app, "supervisor") as client:
        page = client.get(f"/console/applications/{reference}?lang=en")
        assert EN("review_approve_new_confirmed") in page.text


def test_decisions_through_the_console_and_a_failed_mail_offers_a_resend(
    app: FastAPI, sink: MailSink
) -> None:
    engine = app.state.engine
    reference = factory.submit(engine)
    with _officer(app, "registrar") as client:
        page = _post(client, reference, "take")
        assert EN("done_review_take") in page
        page = _post(client, reference, "take")
        assert EN("refusal_application_state") in page

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        app.state.settings.mail_url = f"smtp://127.0.0.1:{closed}"
        page = _post(client, reference, "approve")
        assert EN("done_review_mail_failed") in page
        assert 'id="mail-failed"' in page
        assert 'id="resend"' in page
        assert factory.application(engine, reference).state == ApplicationState.APPROVED

        app.state.settings.mail_url = sink.url
        page = _post(client, reference, "resend")
        assert EN("done_review_resend") in page
        assert 'id="mail-failed"' not in page
        (mail,) = sink.wait_for("applicant@example.org")
        assert "/h/" in body_of(mail)

        page = _post(client, reference, "dispatch", courier="EMS", tracking_number="EA123456789CN")
        assert EN("done_review_dispatch") in page
        assert "EA123456789CN" in page

    with _officer(app, "auditor") as client:  # may read, may not decide: refused and audited
        token = _csrf(client.get("/console/applications?lang=en").text)
        refused = client.post(
            f"/console/applications/{reference}/dispatch",
            data={"csrf": token, "courier": "X", "tracking_number": "Y"},
        )
        assert EN("error_denied") in refused.text
    with session_scope(engine) as session:
        denied = session.exec(select(AuditRecord).where(AuditRecord.outcome == "denied")).all()
        assert any(entry.action == "console.review_decide" for entry in denied)


def test_a_registrar_cannot_confirm_a_new_person_beside_candidates(
    app: FastAPI, sink: MailSink
) -> None:
    engine = app.state.engine
    reference = factory.submit(engine, form=_okonkwo_again())
    with _officer(app, "registrar") as client:
        page = _post(client, reference, "approve")
        assert EN("error_duplicate") in page
        page = _post(client, reference, "approve", confirm_new_person="1")
        assert EN("error_denied") in page
        assert factory.application(engine, reference).state == ApplicationState.SUBMITTED
    with _officer(app, "supervisor") as client:
        page = _post(client, reference, "approve", confirm_new_person="1")
        assert EN("done_review_approve") in page
    sink.wait_for("applicant@example.org")
