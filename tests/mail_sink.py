"""A real SMTP server on 127.0.0.1 for the tests (aiosmtpd), keeping what it receives.

The portal's mail is tested as it leaves the service: over SMTP to a server that parses it,
not through a fake mailer object.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class MailSink:
    """Collects every message the server accepts; :meth:`wait_for` blocks until one arrives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._arrived = threading.Condition()
        self.host = "127.0.0.1"
        self.port = 0
        self.while_receiving: Callable[[], None] | None = None
        """Called (in the server's thread) while a message is received, before it is
        accepted: what the sender holds while its mail is in flight can be looked at."""

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self,
        server: Any,  # noqa: ARG002
        session: Any,  # noqa: ARG002
        envelope: Any,
    ) -> str:
        if self.while_receiving is not None:
            self.while_receiving()
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if message["To"] == address]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """The first ``count`` messages to ``address``, waiting for them if need be."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.to(address)) >= count, timeout):
                raise AssertionError(f"{len(self.to(address))} message(s) to {address}")
            return self.to(address)[:count]

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"


@contextmanager
def mail_sink() -> Iterator[MailSink]:
    sink = MailSink()
    with socket.socket() as probe:  # a free port (aiosmtpd checks readiness by connecting)
        probe.bind(("127.0.0.1", 0))
        sink.port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content
