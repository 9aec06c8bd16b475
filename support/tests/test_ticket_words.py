"""The ticket's header and timeline say only what the database holds: the headline
reads every step of the account and the outage it waits on, an automatic email is
called automatic (in the console and in its subject), and each label is said once."""
from __future__ import annotations

import importlib
import re

import pytest
from django.apps import apps
from django.core import mail
from django.test import Client

from accounts.messages import EMAIL_SUBJECTS, TITLES
from accounts.models import EmailDelivery, EmailKind, User
from accounts.tests.factories import page_text
from provisioning.durable import StepStatus
from provisioning.models import Breaker, BreakerState, ProvisioningRequest
from support import messages as words
from support.models import Incident, IncidentStatus, Reason, Ticket, TicketEvent
from support.services import contact_message_receive
from support.tests.test_admin_buttons import key_from, url

pytestmark = pytest.mark.django_db

acknowledgement_kind = importlib.import_module("accounts.migrations.0016_acknowledgement_kind")


def header(console: Client, ticket: Ticket) -> str:
    """The ticket page's header as the support person reads it: tags stripped."""
    page = page_text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    head = re.search(r'<header class="panel ticket-head">(.*?)</header>', page, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", head).split())


def header_meta(console: Client, ticket: Ticket) -> str:
    """The header's line under the headline: priority, waiting time, reason."""
    page = page_text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    head = re.search(r'<header class="panel ticket-head">(.*?)</header>', page, re.S).group(1)
    meta = re.search(r'<p class="meta">(.*?)</p>', head, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", meta).split())


def queue_row(console: Client, ticket: Ticket) -> str:
    page = page_text(console.get("/admin/support/ticket/"))
    row = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*{ticket.reference}.*?</tr>", page, re.S).group(0)
    return " ".join(re.sub(r"<[^>]+>", " ", row).split())


def sign_up(signup_data, email: str) -> Client:
    person = Client()
    assert person.post("/signup/", {**signup_data, "email": email}).status_code == 302
    return person


# --- 1. The headline reads every step, and the outage it waits on --------------------------

def test_a_ticket_waiting_on_an_email_outage_never_says_nothing_is_failing(
        signup_data, sandbox, settings, drive, console, committed):
    """The walkthrough: workspaces and emails both failing, five signups (the email
    circuit opens: an incident), one writes to /help/, then workspaces recover. The
    workspace is ready, but the confirmation email is still owed behind the outage."""
    settings.BREAKER_PROBE_SECONDS = 3600
    sandbox("provisioning", "error")
    sandbox("email", "timeout")
    people = [sign_up(signup_data, f"p{i}@example.com") for i in range(5)]
    drive(max_passes=5)
    with committed():
        people[0].post("/help/", {"email": "p0@example.com", "message": "Where is my confirmation email?"})
    sandbox("provisioning", "ok")
    settings.BREAKER_PROBE_SECONDS = 0  # the probes go at once: workspaces recover, email stays down
    drive(max_passes=5)

    ticket = Ticket.objects.get()
    verification = EmailDelivery.objects.get(account=ticket.account, kind=EmailKind.VERIFICATION)
    # What the database holds: the workspace exists, the link is still owed after
    # timed-out tries, and the email outage's incident is open.
    assert ProvisioningRequest.objects.get(account=ticket.account).status == StepStatus.SUCCEEDED
    assert verification.status == StepStatus.PENDING and verification.attempts >= 2
    assert verification.last_error_code == "timeout"
    assert Incident.objects.filter(provider="email", status=IncidentStatus.OPEN).exists()
    assert str(TITLES["email_outage"]) in page_text(people[0].get("/setup/"))

    # Held behind the email provider's open circuit, which its timeouts opened.
    said = str(words.HELD_EMAIL).format(until=words.held_until("no_answer"),
                                        tries=words.tries(verification.attempts),
                                        detail=verification.last_error_detail)
    waits = str(words.WAITS_ON_INCIDENT).format(provider="email provider")
    for where in (header(console, ticket), queue_row(console, ticket)):
        assert str(words.NOTHING_FAILING) not in where
        assert said in where and waits in where
    # The acknowledgement of their message is owed too, after its own timeout; "you're
    # all set" is owed but untried: it waits for the emails still owed to the person.
    assert words.other_emails_in_trouble(1) in header(console, ticket)
    assert EmailDelivery.objects.get(account=ticket.account, kind=EmailKind.ALL_SET).attempts == 0


def test_emails_held_behind_the_email_outage_are_not_counted_as_failed_tries(
        register, sandbox, settings, drive, console, committed):
    """The email provider refuses our credentials (SMTP 535): the password link's try
    is refused and opens the circuit; the acknowledgement of their message is then
    held behind it without a try. Only the first hit an error of its own: the queue
    and the ticket count the held one as held, not as one whose last try failed."""
    settings.BREAKER_PROBE_SECONDS = 3600  # no probe while we look
    account = register()
    drive()
    sandbox("email", "unauthorized")
    with committed():
        Client().post("/password-reset/", {"email": account.email})
    drive()
    with committed():
        contact_message_receive(email=account.email, message="I asked for a password link and got nothing")
    drive()

    ticket = Ticket.objects.get()
    reset, ack = (EmailDelivery.objects.get(account=account, kind=kind)
                  for kind in (EmailKind.PASSWORD_RESET, EmailKind.ACKNOWLEDGEMENT))
    # What the database holds: the password link was tried and refused; the
    # acknowledgement was never tried, held behind the open email circuit.
    assert reset.status == ack.status == StepStatus.PENDING
    assert reset.attempts == 1 and reset.last_error_code not in ("", "outage")
    assert ack.attempts == 0 and ack.last_error_code == "outage"
    assert Breaker.objects.filter(provider="email", state=BreakerState.OPEN).exists()

    errors, held = words.other_emails_in_trouble(1), words.other_emails_held(1, circuit_open=True)
    for where in (header(console, ticket), queue_row(console, ticket)):
        assert errors in where and held in where
        assert words.other_emails_in_trouble(2) not in where

    # The provider takes our credentials again: everything owed goes, and neither is said.
    sandbox("email", "ok")
    settings.BREAKER_PROBE_SECONDS = 0
    drive()
    assert not EmailDelivery.objects.filter(account=account, kind__in=[
        EmailKind.PASSWORD_RESET, EmailKind.ACKNOWLEDGEMENT]).exclude(status=StepStatus.SUCCEEDED).exists()
    for where in (header(console, ticket), queue_row(console, ticket)):
        assert "other email" not in where


def test_the_headline_names_a_failing_email_while_the_workspace_is_retrying(
        register, sandbox, settings, drive, console):
    """Both steps are failing: the headline says both, not the first one found."""
    settings.BREAKER_FAILURE_THRESHOLD = 10_000  # one person's failures: no outage
    settings.EMAIL_MAX_ATTEMPTS = 1
    settings.PROVISIONING_MAX_ATTEMPTS = 50
    sandbox("provisioning", "error")
    sandbox("email", "timeout")
    register()
    drive(max_passes=3)

    ticket = Ticket.objects.get()
    assert ticket.reason == Reason.EMAIL_FAILED
    request = ProvisioningRequest.objects.get(account=ticket.account)
    verification = EmailDelivery.objects.get(account=ticket.account, kind=EmailKind.VERIFICATION)
    assert request.status == StepStatus.PENDING and verification.status == StepStatus.FAILED
    said = header(console, ticket)
    assert str(words.RETRYING_WORKSPACE).format(tries=words.tries(request.attempts),
                                                detail=request.last_error_detail) in said
    assert str(words.FAILED_EMAIL).format(tries=words.tries(1), detail=verification.last_error_detail) in said
    assert "outage" not in said


def test_nothing_is_failing_only_once_every_step_is_done(register, drive, console, committed):
    account = register()
    drive()
    with committed():
        contact_message_receive(email=account.email, message="Just saying hello")
    drive()
    ticket = Ticket.objects.get()
    assert not EmailDelivery.objects.filter(account=account).exclude(status=StepStatus.SUCCEEDED).exists()
    assert str(words.NOTHING_FAILING) in header(console, ticket)


# --- 2. An automatic email is called automatic --------------------------------------------

def test_the_acknowledgement_is_automatic_and_a_reply_is_from_support(
        register, drive, console, committed):
    account = register()
    drive()
    with committed():
        contact_message_receive(email=account.email, message="Is my workspace ready?")
    drive()
    ticket = Ticket.objects.get()

    [ack] = [m for m in mail.outbox if m.to == [account.email] and ticket.reference in m.body]
    assert ack.subject == str(EMAIL_SUBJECTS["acknowledgement"]) == "We've got your message"
    page = page_text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    assert "We let them know we got their message (automatic)" in page
    assert "Message from support" not in page and "support email" not in page

    # A support person replies: that one is from support, and says so.
    with committed():
        console.post(url(ticket, "reply"), {"action_key": key_from(console.get(url(ticket, "reply"))),
                                            "body": "It is: log in any time.", "then": "waiting_on_customer"})
    drive()
    [reply] = [m for m in mail.outbox if "It is: log in any time." in m.body]
    assert reply.subject == str(EMAIL_SUBJECTS["support"]) == "A message from our support team"
    page = page_text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    assert page.count("Message from support") == 1
    assert page.count("We let them know we got their message (automatic)") == 1


def test_an_acknowledgement_that_could_not_go_out_is_noted_as_such(db, sandbox, settings, drive, committed):
    settings.BREAKER_FAILURE_THRESHOLD = 10_000
    settings.EMAIL_MAX_ATTEMPTS = 1
    sandbox("email", "timeout")
    with committed():
        contact_message_receive(email="someone@elsewhere.example", message="Hello?")
    drive()
    [note] = TicketEvent.objects.filter(text__contains="could not be delivered").values_list("text", flat=True)
    assert note == str(words.OUR_ACK_FAILED).format(address="someone@elsewhere.example", code="timeout")
    assert "our reply" not in note


def test_acknowledgements_stored_as_support_messages_are_relabelled(register, committed, console):
    """accounts 0016: an acknowledgement queued before it had a kind of its own is
    told apart from a reply by its key, and relabelled; a reply stays from support."""
    account = register()
    with committed():
        contact_message_receive(email=account.email, message="Hello?")
    ticket = Ticket.objects.get()
    ack = EmailDelivery.objects.get(kind=EmailKind.ACKNOWLEDGEMENT)
    EmailDelivery.objects.filter(pk=ack.pk).update(  # as it was stored before
        kind=EmailKind.SUPPORT, idempotency_key=ack.idempotency_key.replace("acknowledgement:", "support:", 1))
    with committed():
        console.post(url(ticket, "reply"), {"action_key": key_from(console.get(url(ticket, "reply"))),
                                            "body": "Hi!", "then": "waiting_on_customer"})

    acknowledgement_kind.relabel_acknowledgements(apps, None)

    kinds = sorted(EmailDelivery.objects.exclude(kind=EmailKind.VERIFICATION).values_list("kind", flat=True))
    assert kinds == [EmailKind.ACKNOWLEDGEMENT, EmailKind.SUPPORT]
    assert EmailDelivery.objects.get(kind=EmailKind.SUPPORT).context["body"] == "Hi!"


# --- 3. Each label once ------------------------------------------------------------------

def test_a_message_that_opened_the_ticket_is_named_once_in_the_header(register, drive, console, committed):
    account = register()
    with committed():
        contact_message_receive(email=account.email, message="Hello?")
    said = header_meta(console, Ticket.objects.get())
    assert said.count("The person wrote to us") == 1
    assert said.startswith("The person wrote to us · waiting")


def test_a_ticket_opened_by_automation_then_written_to_names_both(stranded, console, committed):
    account = stranded()
    with committed():
        contact_message_receive(email=account.email, message="Any news?")
    said = header_meta(console, Ticket.objects.get())
    assert said.startswith("The person wrote to us · waiting") and said.endswith(" · Workspace setup stopped")
    assert User.objects.get(pk=account.pk).tickets.count() == 1
