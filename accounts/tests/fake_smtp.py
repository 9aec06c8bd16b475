"""A real local SMTP server for tests, with switchable failure modes.

Built on ``aiosmtpd.controller.Controller`` (its own event loop in a daemon thread)
listening on 127.0.0.1 and a free port, so the code under test speaks real SMTP over
a real socket, with real timeouts::

    with FakeSMTP() as smtp:
        settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.host, smtp.port
        ...
        [message] = smtp.wait_for_messages(1)
        assert message["To"] == "ada@example.com"

Modes (:attr:`FakeSMTP.mode`, switchable at any time from any thread):

``"ok"``          accept everything; DATA answers ``250``
``"tempfail"``    every RCPT answers ``451 4.3.0 Try again later``
``"reject"``      every RCPT answers ``550 5.1.1 No such user``
``"relay_denied"`` every RCPT answers ``554 5.7.1 Relay access denied`` (the relay
                  refuses us, whoever the recipient)
``"hang"``        the message is **stored first**, then the DATA answer is delayed by
                  ``hang_seconds``: a client with a shorter timeout times out although
                  the server has the message (at-least-once delivery: a retry stores a
                  duplicate, as a real server might)
``"disconnect"``  MAIL answers ``421 4.3.2 Service not available, closing transmission
                  channel`` and the server closes the connection

Each mode is read when its command arrives (MAIL, RCPT or DATA respectively).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Literal, Self, cast, get_args

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["MODES", "Delivery", "FakeSMTP", "Mode"]

Mode = Literal["ok", "tempfail", "reject", "relay_denied", "hang", "disconnect"]
MODES: frozenset[str] = frozenset(get_args(Mode))

TEMPFAIL_REPLY = "451 4.3.0 Try again later"
REJECT_REPLY = "550 5.1.1 No such user"
RELAY_DENIED_REPLY = "554 5.7.1 Relay access denied"
DISCONNECT_REPLY = "421 4.3.2 Service not available, closing transmission channel"


@dataclass(frozen=True)
class Delivery:
    """One message as received: the SMTP envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage


class FakeSMTP:
    """A local SMTP server; a context manager that serves while inside ``with``.

    :param mode: initial behaviour, one of :data:`MODES` (see the module docstring).
    :param hang_seconds: how long ``"hang"`` delays the answer to DATA.
    :param ready_timeout: how long to wait for the server thread to come up.

    ``hang_seconds`` is a plain attribute and may be reassigned at any time.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        mode: Mode = "ok",
        *,
        hang_seconds: float = 5.0,
        ready_timeout: float = 10.0,
    ) -> None:
        self._lock = threading.Lock()
        self._received = threading.Condition(self._lock)
        self._deliveries: list[Delivery] = []
        self._mode: Mode = "ok"
        self.mode = mode
        self.hang_seconds = hang_seconds
        self.ready_timeout = ready_timeout
        self._controller: Controller | None = None
        self._port: int | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        """Pick a free port and start the server thread."""
        if self._controller is not None:
            raise RuntimeError("FakeSMTP is already running")
        port = _free_port(self.host)
        controller = Controller(
            _Handler(self),
            hostname=self.host,
            port=port,
            ready_timeout=self.ready_timeout,
            enable_SMTPUTF8=True,
        )
        controller.start()
        self._controller, self._port = controller, port
        return self

    def stop(self) -> None:
        """Stop the server; any DATA still hanging is cancelled."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeSMTP has not been started")
        return self._port

    # -- behaviour ---------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, value: Mode) -> None:
        if value not in MODES:
            raise ValueError(f"unknown mode {value!r}; expected one of {sorted(MODES)}")
        with self._lock:
            self._mode = value

    def reset(self) -> None:
        """Forget the messages received so far (the mode is kept)."""
        with self._lock:
            self._deliveries.clear()

    # -- observation -------------------------------------------------------------

    @property
    def envelopes(self) -> list[Delivery]:
        """A snapshot of every delivery (envelope sender, recipients, message)."""
        with self._lock:
            return list(self._deliveries)

    @property
    def messages(self) -> list[EmailMessage]:
        """A snapshot of the messages received, parsed with ``email.policy.default``."""
        with self._lock:
            return [d.message for d in self._deliveries]

    def wait_for_messages(
        self, count: int = 1, timeout: float = 5.0
    ) -> list[EmailMessage]:
        """Block until at least ``count`` messages arrived; return them all.

        Raises ``TimeoutError`` if they do not arrive within ``timeout`` seconds.
        """
        with self._received:
            if not self._received.wait_for(
                lambda: len(self._deliveries) >= count, timeout
            ):
                raise TimeoutError(
                    f"expected {count} message(s), got {len(self._deliveries)}"
                )
            return [d.message for d in self._deliveries]

    def _store(self, envelope: Envelope) -> None:
        raw = envelope.original_content or b""
        message = cast(
            EmailMessage, email.message_from_bytes(raw, policy=email.policy.default)
        )
        delivery = Delivery(envelope.mail_from or "", tuple(envelope.rcpt_tos), message)
        with self._received:
            self._deliveries.append(delivery)
            self._received.notify_all()


class _Handler:
    """aiosmtpd handler hooks; each returns the SMTP reply line to send."""

    def __init__(self, fake: FakeSMTP) -> None:
        self._fake = fake

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._fake.mode == "disconnect":
            transport = server.transport
            if transport is not None:
                # Runs after the 421 below has been written; close() flushes it first.
                asyncio.get_running_loop().call_soon(transport.close)
            return DISCONNECT_REPLY
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        mode = self._fake.mode
        if mode == "tempfail":
            return TEMPFAIL_REPLY
        if mode == "reject":
            return REJECT_REPLY
        if mode == "relay_denied":
            return RELAY_DENIED_REPLY
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self._fake._store(envelope)
        if self._fake.mode == "hang":
            await asyncio.sleep(self._fake.hang_seconds)
        return "250 Message accepted for delivery"


def _free_port(host: str) -> int:
    """Ask the OS for a free port (aiosmtpd's Controller needs an explicit one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
