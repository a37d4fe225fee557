"""Outgoing mail through a real SMTP server and the development outbox."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from cardissuer.core.config import Environment, Settings
from cardissuer.mail import (
    Mail,
    MailError,
    OutboxMailer,
    RefusingMailer,
    SmtpMailer,
    mailer_for,
    mailer_from_url,
)
from tests.mail_sink import body_of, mail_sink


def test_smtp_delivers_a_message_in_any_script() -> None:
    with mail_sink() as sink:
        mailer = mailer_from_url(sink.url, sender="fmcard@bureau.example")
        mailer.send(
            Mail(to="amina@example.org", subject="رمز التحقق", body="٤٢٧١٩٠", language="ar")
        )
        [message] = sink.wait_for("amina@example.org")
    assert message["Subject"] == "رمز التحقق"
    assert message["From"] == "fmcard@bureau.example"
    assert message["Content-Language"] == "ar"
    assert message["Auto-Submitted"] == "auto-generated"
    assert body_of(message).strip() == "٤٢٧١٩٠"


def test_a_server_that_does_not_answer_is_a_mail_error_without_the_address() -> None:
    mailer = SmtpMailer("127.0.0.1", 9, sender="fmcard@bureau.example", timeout=2)  # discard
    with pytest.raises(MailError) as raised:
        mailer.send(Mail(to="secret.person@example.org", subject="s", body="b"))
    assert "secret.person" not in str(raised.value)


def test_the_outbox_holds_whole_messages(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path / "outbox", sender="fmcard@bureau.example")
    mailer.send(Mail(to="kim@example.org", subject="카드", body="김민준", language="ko"))
    [written] = list((tmp_path / "outbox").iterdir())
    assert written.suffix == ".eml"
    message = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
    assert message["To"] == "kim@example.org"
    assert message["Subject"] == "카드"


@pytest.mark.parametrize(
    "url",
    ["http://mail.example", "smtp://", "ftp://x/y", "mailto:someone@example.org"],
)
def test_a_mail_url_that_names_no_server_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="FMCARD_MAIL_URL"):
        mailer_from_url(url, sender="fmcard@bureau.example")


def test_mail_urls_choose_security_and_port() -> None:
    starttls = mailer_from_url("smtp+starttls://desk%40bureau@mail.example", sender="a@b.c")
    assert isinstance(starttls, SmtpMailer)
    assert (starttls.host, starttls.port, starttls.security) == ("mail.example", 587, "starttls")
    assert starttls.username == "desk@bureau"
    tls = mailer_from_url("smtps://mail.example", sender="a@b.c")
    assert isinstance(tls, SmtpMailer)
    assert (tls.port, tls.security) == (465, "tls")


def test_production_without_a_mail_server_refuses_to_send(tmp_path: Path) -> None:
    production = Settings.model_construct(
        environment=Environment.PRODUCTION, mail_url="", workspace=tmp_path, mail_password=None
    )
    mailer = mailer_for(production)
    assert isinstance(mailer, RefusingMailer)
    with pytest.raises(MailError, match="FMCARD_MAIL_URL"):
        mailer.send(Mail(to="a@example.org", subject="s", body="b"))
    development = Settings(workspace=tmp_path)
    assert isinstance(mailer_for(development), OutboxMailer)


def test_reminder_days_are_checked() -> None:
    assert Settings(reminder_days="14, 60,14").reminder_offsets == (60, 14)
    with pytest.raises(ValueError, match="FMCARD_REMINDER_DAYS"):
        Settings(reminder_days="60,-1")
