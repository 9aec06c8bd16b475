"""The sandbox email backend: behaves like a real provider whose failure modes are
switched at run time (``manage.py sandbox email <mode>``). It raises the same
exceptions Django's SMTP backend raises, so the classification in
``accounts.emails`` is exercised exactly as in production. When healthy it hands
the message to SANDBOX_EMAIL_DELIVER_TO (the console by default)."""
from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend

from provisioning.models import SandboxMode
from provisioning.sandbox import sandbox_outcome


class SandboxEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        sent = 0
        for message in email_messages:
            outcome = sandbox_outcome("email")
            if outcome == SandboxMode.TIMEOUT:
                raise TimeoutError("timed out")
            if outcome == SandboxMode.ERROR:
                raise smtplib.SMTPRecipientsRefused(
                    {r: (451, b"4.3.0 Try again later") for r in message.recipients()})
            if outcome == SandboxMode.REJECT:
                raise smtplib.SMTPRecipientsRefused(
                    {r: (550, b"5.1.1 No such user") for r in message.recipients()})
            if outcome == SandboxMode.UNAUTHORIZED:
                raise smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid")
            if outcome == SandboxMode.RELAY_DENIED:
                raise smtplib.SMTPRecipientsRefused(
                    {r: (554, b"5.7.1 Relay access denied") for r in message.recipients()})
            if outcome == SandboxMode.REFUSE_MESSAGE:
                # The recipients were accepted; the message itself is refused at DATA.
                raise smtplib.SMTPDataError(554, b"5.6.0 Message refused")
            sent += get_connection(settings.SANDBOX_EMAIL_DELIVER_TO).send_messages([message])
            if outcome == SandboxMode.LATE:
                raise TimeoutError("timed out after the message was accepted")
        return sent
