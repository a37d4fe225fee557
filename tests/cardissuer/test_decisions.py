"""The officer's decisions on online applications, on both databases: transitions and
refusals, approval end to end (person, grants, printed card, holder link mailed over SMTP,
the link's QR verifying VALID), linking to an existing code, a passport change, the other
kinds, dispatch, and a mail failure that leaves the decision standing with a resend."""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import zxingcpp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, col, select

from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.db import session_scope
from cardissuer.errors import AccessDeniedError, DuplicateSuspectedError, NotFoundError
from cardissuer.mail import Mailer, SmtpMailer
from cardissuer.models import (
    AuditRecord,
    CardRecord,
    CardState,
    DuplicateReviewRecord,
    GrantRecord,
    PassportIn,
    PassportRecord,
    PassportState,
    PersonRecord,
)
from cardissuer.portal import decisions
from cardissuer.portal.catalogue import ApplicationForm, PassportChangeForm, ServiceForm
from cardissuer.portal.models import ApplicationKind, ApplicationState
from cardissuer.services.access import Actor, RecordHiddenError
from cardissuer.services.cards import UnknownServiceError
from tests.cardissuer import applications as factory
from tests.mail_sink import MailSink, body_of, mail_sink
from verifier.bundle import Bundle
from verifier.reason import Reason
from verifier.verifier import Verifier

BASE = "https://cards.example"
URLS = decisions.Links(base_url=BASE, hours=72)
ADDRESS = "applicant@example.org"


@pytest.fixture
def sink() -> Iterator[MailSink]:
    with mail_sink() as running:
        yield running


def _mailer(sink: MailSink) -> Mailer:
    return SmtpMailer(sink.host, sink.port, sender="fmcard@cards.example", timeout=5)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _approve(
    app: FastAPI, actor: Actor, reference: str, how: decisions.Approval | None = None
) -> decisions.Outgoing:
    with session_scope(app.state.engine) as session:
        return decisions.approve(
            session,
            actor,
            reference,
            at=_now(),
            context=issuing_context_of(app),
            catalogue=app.state.settings.services,
            urls=URLS,
            how=how,
        )


def _decide(app: FastAPI, work: Callable[[Session], decisions.Outgoing]) -> decisions.Outgoing:
    with session_scope(app.state.engine) as session:
        return work(session)


def _person(app: FastAPI, family: str) -> PersonRecord:
    with session_scope(app.state.engine) as session:
        record = session.exec(select(PersonRecord).where(PersonRecord.family_name == family)).one()
        session.expunge(record)
        return record


def _cards(app: FastAPI, person_id: int) -> list[CardRecord]:
    with session_scope(app.state.engine) as session:
        rows = list(
            session.exec(
                select(CardRecord)
                .where(CardRecord.person_id == person_id)
                .order_by(col(CardRecord.id))
            ).all()
        )
        for row in rows:
            session.expunge(row)
        return rows


def _audit_of(app: FastAPI, reference: str) -> list[AuditRecord]:
    with session_scope(app.state.engine) as session:
        rows = list(
            session.exec(
                select(AuditRecord)
                .where(AuditRecord.record_id == reference)
                .order_by(col(AuditRecord.seq))
            ).all()
        )
        for row in rows:
            session.expunge(row)
        return rows


def _link_path(body: str) -> str:
    found = re.search(re.escape(BASE) + r"(/h/[A-Za-z0-9_-]+)", body)
    assert found is not None, body
    return found.group(1)


def test_take_ask_and_reject_move_the_application_and_mail_the_holder(
    app: FastAPI, sink: MailSink
) -> None:
    engine = app.state.engine
    registrar = factory.officer(engine, "registrar")
    reference = factory.submit(engine)

    with session_scope(engine) as session:
        decisions.take(session, registrar, reference, at=_now())
    assert factory.application(engine, reference).state == ApplicationState.UNDER_REVIEW
    with pytest.raises(decisions.ApplicationStateError), session_scope(engine) as session:
        decisions.take(session, registrar, reference, at=_now())
    with pytest.raises(decisions.ApplicationInputError), session_scope(engine) as session:
        decisions.ask(session, registrar, reference, "   ", at=_now(), urls=URLS)

    question = "Please upload a sharper photo of page 2 {with the stamp}."
    outgoing = _decide(
        app, lambda s: decisions.ask(s, registrar, reference, question, at=_now(), urls=URLS)
    )
    assert decisions.deliver(engine, registrar, outgoing, _mailer(sink), at=_now())
    asked = factory.application(engine, reference)
    assert asked.state == ApplicationState.INFO_NEEDED
    assert asked.question == question
    assert asked.mailed_at is not None
    (mail,) = sink.wait_for(ADDRESS)
    assert reference in mail["Subject"]
    assert question in body_of(mail)  # braces in the officer's text are kept as typed

    # Waiting for the holder's answer: not approvable, but rejectable.
    with pytest.raises(decisions.ApplicationStateError), session_scope(engine) as session:
        decisions.approve(
            session,
            registrar,
            reference,
            at=_now(),
            context=issuing_context_of(app),
            catalogue=app.state.settings.services,
            urls=URLS,
        )
    with pytest.raises(decisions.ApplicationInputError), session_scope(engine) as session:
        decisions.reject(session, registrar, reference, "because", at=_now(), urls=URLS)
    outgoing = _decide(
        app,
        lambda s: decisions.reject(s, registrar, reference, "no-answer", at=_now(), urls=URLS),
    )
    assert decisions.deliver(engine, registrar, outgoing, _mailer(sink), at=_now())
    rejected = factory.application(engine, reference)
    assert (rejected.state, rejected.reject_reason) == (ApplicationState.REJECTED, "no-answer")
    second = sink.wait_for(ADDRESS, count=2)[1]
    assert "The question asked was not answered in time." in body_of(second)
    with pytest.raises(decisions.ApplicationStateError), session_scope(engine) as session:
        decisions.reject(session, registrar, reference, "other", at=_now(), urls=URLS)

    entries = _audit_of(app, reference)
    assert [e.action for e in entries] == [
        "application.take",
        "application.ask",
        "application.reject",
    ]
    assert entries[-1].detail == "no-answer"
    for entry in entries:  # the reference, never the person or the question
        text = json.dumps([entry.detail, entry.record_id])
        assert "NGUYEN" not in text
        assert "sharper" not in text


def test_another_offices_application_is_not_found_and_an_auditor_only_reads(
    app: FastAPI,
) -> None:
    engine = app.state.engine
    registrar = factory.officer(engine, "registrar")
    auditor = factory.officer(engine, "auditor")
    elsewhere = factory.submit(engine, office="YW-CHOUCHENG")

    with pytest.raises(RecordHiddenError) as hidden, session_scope(engine) as session:
        decisions.take(session, registrar, elsewhere, at=_now())
    with pytest.raises(NotFoundError) as missing, session_scope(engine) as session:
        decisions.take(session, registrar, "NOSUCHREFERENCE1", at=_now())
    assert (hidden.value.code, str(hidden.value)) == (missing.value.code, str(missing.value))

    with session_scope(engine) as session:  # the auditor reads every office's
        assert decisions.get_application(session, auditor, elsewhere).reference == elsewhere
    for work in (
        lambda s: decisions.take(s, auditor, elsewhere, at=_now()),
        lambda s: decisions.reject(s, auditor, elsewhere, "other", at=_now(), urls=URLS),
    ):
        with pytest.raises(AccessDeniedError) as denied, session_scope(engine) as session:
            work(session)
        assert not isinstance(denied.value, RecordHiddenError)
    assert factory.application(engine, elsewhere).state == ApplicationState.SUBMITTED


def test_approving_a_first_card_registers_grants_issues_and_mails_a_working_link(
    app: FastAPI, sink: MailSink
) -> None:
    engine = app.state.engine
    registrar = factory.officer(engine, "registrar")
    reference = factory.submit(engine)

    outgoing = _approve(app, registrar, reference)
    assert decisions.deliver(engine, registrar, outgoing, _mailer(sink), at=_now())

    approved = factory.application(engine, reference)
    assert approved.state == ApplicationState.APPROVED
    person = _person(app, "NGUYEN")
    assert approved.person_id == person.id
    assert person.email == ADDRESS  # the reminders reach the holder
    with session_scope(engine) as session:
        grants = session.exec(select(GrantRecord).where(GrantRecord.person_id == person.id)).all()
        assert sorted(g.service for g in grants) == ["bk", "hc"]
    (card,) = _cards(app, person.id or 0)
    assert (card.id, card.state, card.kind) == (approved.card_id, CardState.ACTIVE, "printed")
    actions = [e.action for e in _audit_of(app, reference)]
    assert actions == ["application.approve"]

    (mail,) = sink.wait_for(ADDRESS)
    assert mail["Subject"] == "Your Foreign Merchant Card is ready"
    assert mail["Content-Language"] == "en"
    path = _link_path(body_of(mail))
    with TestClient(app) as phone:
        page = phone.get(path)
        assert page.status_code == 200, page.text
        assert card.serial in page.text
        qr = phone.get(path + "/qr.png")
        assert qr.status_code == 200
        found = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.content)).convert("L"))
        texts = [barcode.text for barcode in found if barcode.text.startswith("FM1:")]
        assert len(texts) == 1
        now = datetime.now(UTC)
        bundle = Bundle.from_json(json.loads(phone.get("/bundle.json").content), at=now)
    result = Verifier(bundle).verify(texts[0], service="bk", at=now)
    assert result.reason is Reason.VALID
    assert result.card is not None
    assert (result.card.code, result.card.serial) == (person.code, card.serial)


def test_a_failed_approval_leaves_nothing_behind(app: FastAPI) -> None:
    engine = app.state.engine
    registrar = factory.officer(engine, "registrar")
    form = ApplicationForm(person=factory.person(), services=["hc", "zz"])
    reference = factory.submit(engine, form=form)
    with pytest.raises(UnknownServiceError):
        _approve(app, registrar, reference)
    with session_scope(engine) as session:
        assert (
            session.exec(select(PersonRecord).where(PersonRecord.family_name == "NGUYEN")).all()
            == []
        )
        assert (
            session.exec(select(PassportRecord).where(PassportRecord.number == "C1234567")).all()
            == []
        )
    assert factory.application(engine, reference).state == ApplicationState.SUBMITTED
    assert _audit_of(app, reference) == []


def _okonkwo_again() -> ApplicationForm:
    """The demo person OKONKWO CHIDI EMEKA applying online with a new passport."""
    return ApplicationForm(
        person=factory.person(
            family_name="OKONKWO",
            given_names="CHIDI EMEKA",
            native_name=None,
            nationality="NGA",
            birth_date="1979-07-02",
            passport=PassportIn(number="A07654321", issuing_country="NGA", expires_on=factory.FAR),
        ),
        services=["hc", "ed"],
    )


def test_a_new_person_beside_duplicate_candidates_needs_a_supervisor(app: FastAPI) -> None:
    engine = app.state.engine
    registrar = factory.officer(engine, "registrar")
    supervisor = factory.officer(engine, "supervisor")
    reference = factory.submit(engine, form=_okonkwo_again())

    with session_scope(engine) as session:
        record = decisions.get_application(session, registrar, reference)
        duplicates, holders = decisions.candidates_of(session, registrar, record)
    assert [c["family_name"] for c in duplicates] == ["OKONKWO"]
    assert holders == []

    with pytest.raises(DuplicateSuspectedError):
        _approve(app, registrar, reference)
    with pytest.raises(AccessDeniedError):
        _approve(app, registrar, reference, decisions.Approval(confirm_new_person=True))
    with session_scope(engine) as session:
        people = session.exec(select(PersonRecord).where(PersonRecord.family_name == "OKONKWO"))
        assert len(people.all()) == 1
    assert factory.application(engine, reference).state == ApplicationState.SUBMITTED

    _approve(app, supervisor, reference, decisions.Approval(confirm_new_person=True))
    with session_scope(engine) as session:
        people = session.exec(select(PersonRecord).where(PersonRecord.family_name == "OKONKWO"))
        newest = max(people.all(), key=lambda p: p.id or 0)
        review = session.exec(
            select(DuplicateReviewRecord).where(DuplicateReviewRecord.person_id == newest.id)
        ).one()
        assert review.decision == "new"


def test_linking_to_the_existing_person_keeps_the_code_and_adds_the_passport(
    app: FastAPI,
) -> None:
    engine = app.state.engine
    registrar = factory.officer(engine, "registrar")
    existing = _person(app, "OKONKWO")
    (old_card,) = _cards(app, existing.id or 0)
    reference = factory.submit(engine, form=_okonkwo_again())

    _approve(app, registrar, reference, decisions.Approval(link_to=existing.code))

    approved = factory.application(engine, reference)
    assert approved.person_id == existing.id
    with session_scope(engine) as session:
        passports = session.exec(
            select(PassportRecord)
            .where(PassportRecord.person_id == existing.id)
            .order_by(col(PassportRecord.id))
        ).all()
        assert [(p.number, p.state) for p in passports] == [
            ("A01234567", PassportState.REPLACED),
            ("A07654321", PassportState.CURRENT),
        ]
        services = session.exec(
            select(GrantRecord.service).where(
                GrantRecord.person_id == existing.id, col(GrantRecord.withdrawn_at).is_(None)
            )
        ).all()
        assert sorted(services) == ["bk", "ed", "hc"]
    old, new = _cards(app, existing.id or 0)
    assert (old.id, old.state) == (old_card.id, CardState.SUPERSEDED)
    assert (new.id, new.state) == (approved.card_id, CardState.ACTIVE)
    # A second link to the same person: the passport is now theirs, so it is not added twice.
    with session_scope(engine) as session:
        holders = decisions.passport_holders(session, registrar, "A07654321")
    assert [h["code"] for h in holders] == [existing.code]


def test_a_passport_change_keeps_the_code_and_supersedes_the_card(
    app: FastAPI, sink: MailSink
) -> None:
    engine = app.state.engine
    registrar = factory.officer(engine, "registrar")
    holder = _person(app, "IVANOVA")
    (old_card,) = _cards(app, holder.id or 0)
    form = PassportChangeForm(
        passport=PassportIn(number="759999999", issuing_country="RUS", expires_on=factory.FAR)
    )
    reference = factory.submit(
        engine, kind=ApplicationKind.PASSPORT_CHANGE, form=form, person_id=holder.id, language="ru"
    )
    outgoing = _approve(app, registrar, reference)
    assert decisions.deliver(engine, registrar, outgoing, _mailer(sink), at=_now())

    assert _person(app, "IVANOVA").code == holder.code
    with session_scope(engine) as session:
        current = session.exec(
            select(PassportRecord).where(
                PassportRecord.person_id == holder.id,
                PassportRecord.state == PassportState.CURRENT,
            )
        ).one()
        assert current.number == "759999999"
    old, new = _cards(app, holder.id or 0)
    assert (old.id, old.state, new.state) == (old_card.id, CardState.SUPERSEDED, CardState.ACTIVE)
    (mail,) = sink.wait_for(ADDRESS)
    assert mail["Content-Language"] == "ru"
    assert "/h/" in body_of(mail)


def test_renewal_service_and_lost_phone_and_dispatch(app: FastAPI, sink: MailSink) -> None:
    engine = app.state.engine
    registrar = factory.officer(engine, "registrar")
    holder = _person(app, "AL-HASHIMI")
    (first,) = _cards(app, holder.id or 0)

    renewal = factory.submit(engine, kind=ApplicationKind.RENEWAL, person_id=holder.id)
    _approve(app, registrar, renewal)
    service = factory.submit(
        engine,
        kind=ApplicationKind.SERVICE,
        form=ServiceForm(services=["tr"]),
        person_id=holder.id,
    )
    _approve(app, registrar, service)
    states = [(c.state, c.id) for c in _cards(app, holder.id or 0)]
    assert [s for s, _ in states] == [CardState.SUPERSEDED] * 2 + [CardState.ACTIVE]
    assert states[0][1] == first.id
    with session_scope(engine) as session:
        held = session.exec(
            select(GrantRecord.service).where(
                GrantRecord.person_id == holder.id, col(GrantRecord.withdrawn_at).is_(None)
            )
        ).all()
        assert "tr" in held

    lost = factory.submit(engine, kind=ApplicationKind.LOST_PHONE, person_id=holder.id)
    outgoing = _approve(app, registrar, lost)
    assert decisions.deliver(engine, registrar, outgoing, _mailer(sink), at=_now())
    assert len(_cards(app, holder.id or 0)) == 3  # no new card: a new link to the current one
    (mail,) = sink.wait_for(ADDRESS)
    assert mail["Subject"] == "A link for your new phone"
    with TestClient(app) as phone:
        assert phone.get(_link_path(body_of(mail))).status_code == 200

    with pytest.raises(decisions.ApplicationStateError), session_scope(engine) as session:
        decisions.dispatch(session, registrar, factory.submit(engine), "SF", "1", at=_now())
    with pytest.raises(decisions.ApplicationInputError), session_scope(engine) as session:
        decisions.dispatch(session, registrar, renewal, "", "SF123", at=_now())
    with session_scope(engine) as session:
        decisions.dispatch(session, registrar, renewal, "SF Express", "SF1234567890", at=_now())
    sent = factory.application(engine, renewal)
    assert (sent.courier, sent.tracking_number) == ("SF Express", "SF1234567890")
    assert sent.dispatched_at is not None
    assert [e.action for e in _audit_of(app, renewal)] == [
        "application.approve",
        "application.dispatch",
    ]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_mail_failure_keeps_the_decision_and_a_resend_delivers_a_new_link(
    app: FastAPI, sink: MailSink
) -> None:
    engine = app.state.engine
    registrar = factory.officer(engine, "registrar")
    reference = factory.submit(engine)
    outgoing = _approve(app, registrar, reference)
    down = SmtpMailer("127.0.0.1", _closed_port(), sender="fmcard@cards.example", timeout=2)
    assert not decisions.deliver(engine, registrar, outgoing, down, at=_now())

    failed = factory.application(engine, reference)
    assert failed.state == ApplicationState.APPROVED
    assert failed.mail_failed_at is not None
    assert failed.mailed_at is None
    assert [e.action for e in _audit_of(app, reference)] == [
        "application.approve",
        "application.mail_failed",
    ]

    again = _decide(app, lambda s: decisions.resend(s, registrar, reference, at=_now(), urls=URLS))
    assert decisions.deliver(engine, registrar, again, _mailer(sink), at=_now())
    resent = factory.application(engine, reference)
    assert (resent.mail_failed_at, resent.mailed_at is not None) == (None, True)
    (mail,) = sink.wait_for(ADDRESS)
    with TestClient(app) as phone:
        assert phone.get(_link_path(body_of(mail))).status_code == 200
    # The first link's token was never sent anywhere; the one mailed is a new one.
    assert outgoing.mail is not None
    assert _link_path(outgoing.mail.body) != _link_path(body_of(mail))


def test_an_application_without_an_address_is_recorded_as_not_mailed(app: FastAPI) -> None:
    engine = app.state.engine
    registrar = factory.officer(engine, "registrar")
    reference = factory.submit(engine, email=None)
    outgoing = _decide(
        app, lambda s: decisions.reject(s, registrar, reference, "other", at=_now(), urls=URLS)
    )
    assert outgoing.mail is None
    assert not decisions.deliver(engine, registrar, outgoing, _mailer_never(), at=_now())
    assert factory.application(engine, reference).mail_failed_at is not None


def _mailer_never() -> Mailer:
    class Never:
        def send(self, mail: object) -> None:
            raise AssertionError(f"nothing to send: {mail}")

    return Never()


def test_open_count_is_the_offices_for_officers_and_everyones_for_auditors(
    app: FastAPI,
) -> None:
    engine = app.state.engine
    here = [factory.submit(engine) for _ in range(2)]
    factory.submit(engine, office="YW-CHOUCHENG")
    factory.submit(engine, state=ApplicationState.REJECTED)
    registrar, auditor = factory.officer(engine, "registrar"), factory.officer(engine, "auditor")
    with session_scope(engine) as session:
        assert decisions.open_count(session, registrar) == len(here)
        assert decisions.open_count(session, auditor) == 3
