"""Outgoing mail: one-time codes, holder links and expiry reminders.

``FMCARD_MAIL_URL`` says where mail goes:

* ``smtp://host:port`` (plain, e.g. a relay on the host), ``smtp+starttls://user@host:587``
  (STARTTLS, then login with ``FMCARD_MAIL_PASSWORD``) or ``smtps://host:465`` (TLS from the
  start), through the standard library's :mod:`smtplib`;
* ``file:///path/to/outbox``: every message is written there as an ``.eml`` file (RFC 5322),
  for development and demonstrations (``./dev serve`` uses ``<workspace>/outbox``);
* empty: development writes to ``<workspace>/outbox``; production refuses to send (the portal
  then says that it cannot send codes) rather than drop mail silently.

Senders are kept behind the :class:`Mailer` protocol so that an SMS gateway can stand beside
e-mail for one-time codes later (:class:`CodeSender`). Nothing here logs an address or a body.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from cardissuer.core.config import Settings

log = logging.getLogger("fmcard.mail")

SMTP_TIMEOUT_S = 15.0


class MailError(Exception):
    """Mail could not be handed over (the message says why, without the address)."""


@dataclass(frozen=True, slots=True)
class Mail:
    """One plain-text message to one address, in the recipient's language."""

    to: str
    subject: str
    body: str
    language: str = "en"


class Mailer(Protocol):
    """Hands a message to the outside world; raises :class:`MailError` when it cannot."""

    def send(self, mail: Mail) -> None: ...


class CodeSender(Protocol):
    """Sends a one-time code to an address (an e-mail address today; a phone number through
    an SMS gateway later)."""

    def send_code(self, address: str, subject: str, body: str, language: str) -> None: ...


def _message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "fmcard.invalid")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    message.set_content(mail.body)  # UTF-8; any script of the holder's language
    message["Content-Language"] = mail.language  # (set_content drops Content-* headers)
    return message


class SmtpMailer:
    """Sends through an SMTP server with :mod:`smtplib` (one connection per message: the
    portal sends a few messages a minute, not a stream)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        security: str = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = SMTP_TIMEOUT_S,
    ) -> None:
        if security not in {"none", "starttls", "tls"}:
            raise ValueError(f"unknown SMTP security {security!r}")
        self.host, self.port, self.sender = host, port, sender
        self.security, self.username, self.password = security, username, password
        self.timeout = timeout

    def send(self, mail: Mail) -> None:
        message = _message(mail, self.sender)
        try:
            if self.security == "tls":
                context = ssl.create_default_context()
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=context
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            # The class of the failure only: the server's reply may quote the address.
            log.warning("mail to the SMTP server failed: %s", type(exc).__name__)
            raise MailError(
                f"the mail server did not accept the message ({type(exc).__name__})"
            ) from None


class OutboxMailer:
    """Writes each message as an ``.eml`` file into a directory (development: open the files
    with any mail program, or read them in the terminal)."""

    def __init__(self, directory: Path, *, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    def send(self, mail: Mail) -> None:
        message = _message(mail, self.sender)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            target = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
            # Written whole then renamed: a reader never sees half a message.
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(handle, "wb") as file:
                file.write(message.as_bytes())
            os.replace(temporary, target)
        except OSError as exc:
            raise MailError(f"the outbox cannot be written ({type(exc).__name__})") from exc


class RefusingMailer:
    """Production without a configured mail server: every send fails with a clear reason."""

    def send(self, mail: Mail) -> None:  # noqa: ARG002 - the Mailer protocol
        raise MailError("no mail server is configured (FMCARD_MAIL_URL)")


class EmailCodeSender:
    """One-time codes by e-mail."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer

    def send_code(self, address: str, subject: str, body: str, language: str) -> None:
        self.mailer.send(Mail(to=address, subject=subject, body=body, language=language))


def mailer_from_url(url: str, *, sender: str, password: str | None = None) -> Mailer:
    """The mailer a ``FMCARD_MAIL_URL`` names (see the module's documentation)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return OutboxMailer(Path(unquote(parts.path)), sender=sender)
    security = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "tls"}.get(parts.scheme)
    if security is None or not parts.hostname:
        raise ValueError(
            "FMCARD_MAIL_URL must be smtp://host:port, smtp+starttls://user@host:port, "
            "smtps://host:port or file:///directory"
        )
    default_port = {"none": 25, "starttls": 587, "tls": 465}[security]
    return SmtpMailer(
        parts.hostname,
        parts.port or default_port,
        sender=sender,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=password,
    )


def mailer_for(settings: Settings) -> Mailer:
    """The service's mailer: ``FMCARD_MAIL_URL``, or the workspace's outbox in development."""
    from cardissuer.core.config import Environment

    password = settings.mail_password.get_secret_value() if settings.mail_password else None
    if settings.mail_url:
        return mailer_from_url(settings.mail_url, sender=settings.mail_from, password=password)
    if settings.environment is Environment.PRODUCTION:
        return RefusingMailer()
    return OutboxMailer(settings.workspace / "outbox", sender=settings.mail_from)
