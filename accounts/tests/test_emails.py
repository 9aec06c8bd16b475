"""Transactional emails as durable steps (``accounts.emails``), through Django's real
SMTP backend talking to a real local SMTP server (FakeSMTP), and the classification
of email errors at the backend boundary."""
from __future__ import annotations

import smtplib
import socket

import pytest
from anymail.exceptions import (
    AnymailAPIError,
    AnymailConfigurationError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
)
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import Client

from accounts.emails import RECIPIENT_REJECTED, classify, email_queue
from accounts.models import EmailDelivery, EmailKind, User
from accounts.tests.factories import VERIFY_LINK, SignupFormFactory, sent_to, sign_up
from accounts.tests.fake_smtp import FakeSMTP
from provisioning.durable import StepStatus
from provisioning.errors import PermanentError, SystemicError, TransientError

ADDRESS = "ada@example.com"


@pytest.fixture
def smtp(settings):
    """Django's SMTP backend pointed at a real local server with a short timeout."""
    with FakeSMTP(hang_seconds=2) as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = server.host
        settings.EMAIL_PORT = server.port
        settings.EMAIL_TIMEOUT = 1
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        yield server


def verification(account: User) -> EmailDelivery:
    return EmailDelivery.objects.get(account=account, kind=EmailKind.VERIFICATION)


def state(client) -> str:
    return client.get("/setup/status.json").json()["state"]


# --- Through real SMTP ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_verification_email_arrives_with_text_and_html_parts(smtp, drive):
    client, account = sign_up(email=ADDRESS)

    drive()

    [message] = smtp.wait_for_messages(1)
    assert message["To"] == ADDRESS
    assert message["Subject"] == "Confirm your email address"
    assert message["X-Idempotency-Key"] == verification(account).idempotency_key
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = VERIFY_LINK.search(text).group(1)
    assert link in html
    assert verification(account).status == StepStatus.SUCCEEDED
    client.post(link)
    assert state(client) == "active"


@pytest.mark.django_db
@pytest.mark.parametrize(("mode", "stored"), [("tempfail", 0), ("disconnect", 0), ("hang", 1)])
def test_transient_smtp_failures_are_retried_and_heal(smtp, drive, mode, stored):
    smtp.mode = mode
    client, account = sign_up(email=ADDRESS)

    drive(max_passes=1)
    delivery = verification(account)
    assert (delivery.status, delivery.attempts) == (StepStatus.PENDING, 1)
    assert delivery.last_error_code and delivery.last_error_detail
    drive(max_passes=1)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (StepStatus.PENDING, 2)
    assert client.get("/setup/status.json").json()["email"]["delivery"] == "pending"
    assert state(client) == "unverified"  # the workspace is ready; the link is on its way
    assert len(smtp.messages) == stored * 2  # "hang": the server kept what it timed out on

    smtp.mode = "ok"
    drive()

    delivery.refresh_from_db()
    assert delivery.status == StepStatus.SUCCEEDED  # the last error stays as history
    assert len(smtp.messages) == stored * 2 + 1  # at-least-once: a timeout may duplicate
    assert all(m["To"] == ADDRESS for m in smtp.messages)
    assert client.get("/setup/status.json").json()["email"]["delivery"] == "sent"


@pytest.mark.django_db
def test_a_mail_server_that_is_down_is_retried(smtp, drive, settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        settings.EMAIL_PORT = probe.getsockname()[1]
    client, account = sign_up(email=ADDRESS)

    drive(max_passes=2)

    delivery = verification(account)
    assert (delivery.status, delivery.attempts, delivery.last_error_code) == (
        StepStatus.PENDING, 2, "connection")
    settings.EMAIL_PORT = smtp.port
    drive()
    assert len(smtp.wait_for_messages(1)) == 1


@pytest.mark.django_db
def test_a_rejected_recipient_fails_at_once_and_the_account_can_fix_its_address(smtp, drive):
    smtp.mode = "reject"
    client, account = sign_up(email=ADDRESS)

    drive()

    delivery = verification(account)
    assert delivery.status == StepStatus.FAILED
    assert delivery.attempts == 1  # permanent: no retry
    assert delivery.last_error_code == RECIPIENT_REJECTED
    data = client.get("/setup/status.json").json()
    assert data["state"] == "email_undeliverable"
    assert data["email"]["delivery"] == "failed"
    assert smtp.messages == []


@pytest.mark.django_db
def test_transient_errors_until_attempts_run_out_need_support(smtp, drive, settings):
    settings.EMAIL_MAX_ATTEMPTS = 3
    smtp.mode = "tempfail"
    client, account = sign_up(email=ADDRESS)

    drive()

    delivery = verification(account)
    assert delivery.status == StepStatus.FAILED
    assert delivery.attempts == 3 and delivery.last_error_code == "smtp_4xx"
    assert state(client) == "needs_support"
    assert "Passed to our support team" in client.get("/setup/").content.decode()


# --- Classification (Anymail, for ESPs) -----------------------------------------------------


@pytest.mark.parametrize("error", [
    AnymailRecipientsRefused("All recipients were rejected"),
    AnymailInvalidAddress("Invalid 'to' address"),
])
def test_refused_or_invalid_recipients_are_permanent(error):
    result = classify(error)

    assert isinstance(result, PermanentError)
    assert result.code == RECIPIENT_REJECTED


@pytest.mark.parametrize("status_code", [None, 429, 500, 502, 503])
def test_esp_timeouts_rate_limits_and_5xx_are_transient(status_code):
    result = classify(AnymailAPIError("The ESP failed", status_code=status_code))

    assert isinstance(result, TransientError)
    assert result.detail


@pytest.mark.parametrize("status_code", [401, 403])
def test_an_esp_refusing_our_credentials_is_refused_for_us(status_code):
    result = classify(AnymailAPIError("The ESP refused our key", status_code=status_code))

    assert isinstance(result, SystemicError)
    assert result.code == f"esp_{status_code}"


@pytest.mark.parametrize("error", [AnymailConfigurationError("missing ANYMAIL setting"),
                                   ImproperlyConfigured("bad settings"), ImportError("no such backend")])
def test_a_misconfigured_email_backend_is_refused_for_us(error):
    result = classify(error)

    assert isinstance(result, SystemicError)
    assert result.code == "misconfigured"


@pytest.mark.parametrize("status_code", [400, 422])
def test_other_esp_4xx_are_permanent(status_code):
    result = classify(AnymailAPIError("The ESP refused", status_code=status_code))

    assert isinstance(result, PermanentError)
    assert result.code == f"esp_{status_code}"
    assert result.code != RECIPIENT_REJECTED  # not the person's address: support looks


# --- Classification (SMTP and sockets) -------------------------------------------------------


@pytest.mark.parametrize(("error", "kind", "code"), [
    (smtplib.SMTPRecipientsRefused({ADDRESS: (550, b"5.1.1 No such user")}), PermanentError, RECIPIENT_REJECTED),
    (smtplib.SMTPRecipientsRefused({ADDRESS: (451, b"4.3.0 Later")}), TransientError, "smtp_4xx"),
    (smtplib.SMTPRecipientsRefused({ADDRESS: (550, b"no"), "b@example.com": (451, b"later")}),
     TransientError, "smtp_4xx"),
    (smtplib.SMTPSenderRefused(421, b"closing", "hello@example.com"), TransientError, "smtp_4xx"),
    (smtplib.SMTPDataError(554, b"5.7.1 Message refused"), SystemicError, "smtp_554"),
    (smtplib.SMTPDataError(552, b"5.3.4 Message too big"), PermanentError, "smtp_5xx"),
    (smtplib.SMTPRecipientsRefused({ADDRESS: (554, b"5.7.1 Relay access denied")}), SystemicError, "smtp_554"),
    (smtplib.SMTPAuthenticationError(535, b"5.7.8 Authentication credentials invalid"), SystemicError, "smtp_535"),
    (smtplib.SMTPSenderRefused(530, b"5.7.0 Authentication required", "hello@example.com"),
     SystemicError, "smtp_530"),
    (smtplib.SMTPSenderRefused(553, b"5.1.8 Sender address rejected", "hello@example.com"),
     SystemicError, "smtp_553"),
    (smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."), SystemicError, "misconfigured"),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), TransientError, "connection"),
    (ConnectionRefusedError(111, "Connection refused"), TransientError, "connection"),
    (TimeoutError("timed out"), TransientError, "timeout"),
])
def test_smtp_errors_are_classified(error, kind, code):
    result = classify(error)

    assert type(result) is kind
    assert result.code == code


def test_unknown_errors_are_not_swallowed():
    with pytest.raises(ZeroDivisionError):
        classify(ZeroDivisionError("a bug, not an outage"))


# --- The other emails ----------------------------------------------------------------------


def parts(message) -> tuple[str, str]:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return message.body, html


@pytest.mark.django_db
def test_a_person_who_waited_gets_one_all_set_email(sandbox, drive, django_capture_on_commit_callbacks):
    sandbox("provisioning", "flaky", failures=2)
    client, account = sign_up(email=ADDRESS)

    # The workspace's "ready" announcement goes out when its transaction commits.
    with django_capture_on_commit_callbacks(execute=True):
        drive()
    drive()
    Client().post("/signup/", {**SignupFormFactory(email=ADDRESS)})  # welcomed back: nothing new owed
    with django_capture_on_commit_callbacks(execute=True):
        drive()

    [sorry] = sent_to(ADDRESS, subject="Sorry for the wait")
    text, html = parts(sorry)
    assert "/login/" in text and "/login/" in html
    assert EmailDelivery.objects.filter(kind=EmailKind.ALL_SET).count() == 1


@pytest.mark.django_db
def test_a_person_who_did_not_wait_gets_no_apology(drive, django_capture_on_commit_callbacks):
    sign_up(email=ADDRESS)

    with django_capture_on_commit_callbacks(execute=True):
        drive()
    drive()

    assert sent_to(ADDRESS, subject="Sorry for the wait") == []
    assert len(sent_to(ADDRESS, subject="Confirm")) == 1


@pytest.mark.django_db
def test_every_email_has_a_text_and_an_html_part(drive):
    sign_up(email=ADDRESS)
    Client().post("/signup/", {**SignupFormFactory(email=ADDRESS), "password": "a different long passphrase"})

    drive()

    assert {m.subject for m in mail.outbox} == {"Confirm your email address",
                                                 "Someone — perhaps you — tried to sign up with your email address"}
    for message in mail.outbox:
        text, html = parts(message)
        assert "Hi Grace," in text and "Hi Grace," in html
        assert "{%" not in text + html and "{{" not in text + html


@pytest.mark.django_db
def test_queuing_one_key_twice_owes_one_email_and_leaves_the_transaction_usable(
        django_capture_on_commit_callbacks):
    _, account = sign_up(email=ADDRESS)
    with django_capture_on_commit_callbacks() as enqueued, transaction.atomic():
        first = email_queue(account=account, kind=EmailKind.SIGNUP_ATTEMPT, key="once")
        again = email_queue(account=account, kind=EmailKind.SIGNUP_ATTEMPT, key="once")
        assert User.objects.filter(pk=account.pk).exists()  # still usable after the clash

    assert again == first
    assert EmailDelivery.objects.filter(kind=EmailKind.SIGNUP_ATTEMPT).count() == 1
    assert len(enqueued) == 1


@pytest.mark.django_db
def test_the_confirmation_email_never_says_a_workspace_works_that_does_not(sandbox, drive):
    # The workspace step is refused: the link still goes, while no workspace exists.
    sandbox("provisioning", "reject")
    sign_up(email=ADDRESS)

    drive()

    (message,) = sent_to(ADDRESS, subject="Confirm")
    (html_body, _), = message.alternatives
    for body in (message.body, html_body):
        assert "workspace work" not in body
        assert "You can keep using your account in the meantime" in body  # login never waits on the link
