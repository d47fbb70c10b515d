"""A real SMTP server on loopback for tests (aiosmtpd), so mail goes through Django's SMTP
backend and over TCP exactly as in production, and arrives here parsed.

    with Mailbox() as mailbox:
        settings.EMAIL_PORT = mailbox.port
        ...
        [message] = mailbox.wait_for(1)

Tests use it through the ``smtp_mailbox`` fixture in tests/conftest.py.

Bad days, for the outbox's tests (catalog M01):
- ``mailbox.stop()`` then ``mailbox.start()``: the server is down, then back on the same port;
- ``mailbox.mode = "451"``: every message is refused with "451 try again later" ("550": for
  good);
- ``mailbox.hold_next()``: the next message is received and kept, and its "250" withheld until
  ``mailbox.release()`` (a sender killed between DATA and recording success);
- ``Tarpit(port)``: a socket that accepts connections and never says a word.
"""

from __future__ import annotations

import asyncio
import email.policy
import socket
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
        self._port = 0
        self.mode = "accept"  # or "451", "550"
        self._hold = False
        self._released = threading.Event()
        self.running = False

    @property
    def port(self) -> int:
        return self._port or self._controller.port

    def start(self) -> Mailbox:
        """Start (or start again, on the same port)."""
        if self._port:
            self._controller = _Controller(self, hostname=self.host, port=self._port)
        self._controller.start()
        self._port = self._controller.port
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self._released.set()
            self._controller.stop()
            self.running = False

    def hold_next(self) -> None:
        self._hold = True
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> Mailbox:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # aiosmtpd handler hook, called on the server's thread.
    async def handle_DATA(self, server, session, envelope) -> str:
        if self.mode == "451":
            return "451 4.3.0 Mail server temporarily unavailable, try again later"
        if self.mode == "550":
            return "550 5.7.1 Message refused"
        raw = envelope.original_content or envelope.content
        message = BytesParser(policy=email.policy.default).parsebytes(raw)
        with self._arrived:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self._arrived.notify_all()
        if self._hold:
            self._hold = False
            for _ in range(600):  # at most 60 s
                if self._released.is_set():
                    break
                await asyncio.sleep(0.1)
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


class Tarpit:
    """A TCP server on loopback that accepts connections and never answers (an SMTP server
    that hangs). Counts the connections it accepted."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self._socket.listen(64)
        self._socket.settimeout(0.1)
        self.port = self._socket.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._socket.accept()
            except (TimeoutError, OSError):
                continue
            self.connections.append(conn)  # kept open, never written to

    def __enter__(self) -> Tarpit:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        for conn in self.connections:
            conn.close()
        self._socket.close()


def drain_outbox() -> None:
    """Run `broadsheet worker --batch` in this process: sweep once, send what is queued, exit.
    Needs committed rows (``transactional_db``), as a worker sees them."""
    from django.core.management import call_command

    call_command("worker", "--batch", "--no-startup-delay", "--verbosity", "0")
