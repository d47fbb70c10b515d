"""A real SMTP server on loopback for tests (aiosmtpd), so mail goes through Django's SMTP
backend and over TCP exactly as in production, and arrives here parsed.

    with Mailbox() as mailbox:
        settings.EMAIL_PORT = mailbox.port
        ...
        [message] = mailbox.wait_for(1)

Tests use it through the ``smtp_mailbox`` fixture in tests/conftest.py.
"""

from __future__ import annotations

import email.policy
import threading
import time
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.controller import Controller


class _Controller(Controller):
    """aiosmtpd's controller, listening on a port the kernel picks (port 0)."""

    def _trigger_server(self):
        # The listening socket exists by now; learn its port before the controller's own
        # "is it up?" connection, which would otherwise dial port 0.
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class Mailbox:
    """Collects every message delivered to an SMTP server on 127.0.0.1."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TO) per message
        self._arrived = threading.Condition()
        self._controller = _Controller(self, hostname=host, port=0)

    @property
    def port(self) -> int:
        return self._controller.port

    def start(self) -> Mailbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Mailbox:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # aiosmtpd handler hook, called on the server's thread.
    async def handle_DATA(self, server, session, envelope) -> str:
        raw = envelope.original_content or envelope.content
        message = BytesParser(policy=email.policy.default).parsebytes(raw)
        with self._arrived:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        """Wait until at least ``count`` messages have arrived; return all of them. Raises
        AssertionError (with what did arrive) when they do not arrive within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    subjects = [m["Subject"] for m in self.messages]
                    raise AssertionError(
                        f"expected {count} message(s) within {timeout}s, got {subjects}"
                    )
                self._arrived.wait(left)
            return list(self.messages)

    def clear(self) -> None:
        with self._arrived:
            self.messages.clear()
            self.envelopes.clear()

    @staticmethod
    def body(message: EmailMessage) -> str:
        """The plain-text body of a message (allauth sends text, or text + HTML)."""
        part = message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""
