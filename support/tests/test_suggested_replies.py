"""The console's suggested replies are read by the person later, when the schedule or
the delivery may have changed: they promise no time and claim no email was sent."""
import html

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import sign_up
from support import messages as words
from support.models import Ticket
from support.selectors import suggested_reply

# Claims a reply cannot back: a duration the schedule may no longer keep, and "sent"
# without knowing that a server accepted the message.
FORBIDDEN = ("under a minute", "we sent", "we've sent", "check your spam")


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["setting_up", "delayed", "needs_support", "email_undeliverable",
                                   "unverified", "active", "disabled", None])
def test_a_suggested_reply_promises_no_time_and_claims_no_sending(state):
    _, account = sign_up()
    ticket = Ticket(account=account, email=account.email)
    reply = suggested_reply(ticket=ticket, state=state).lower()
    for claim in FORBIDDEN:
        assert claim not in reply, (state, claim)


def _reply_form(console, ticket) -> str:
    page = console.get(f"/admin/support/ticket/{ticket.pk}/do/reply/")
    assert page.status_code == 200
    return html.unescape(page.content.decode())


# Each stop a "needs support" account can be in, reached through the real flow: what
# stopped (the workspace, or the confirmation email once the workspace is ready) and why.
STOPS = {
    "workspace_refused": ("provisioning", "reject"),  # HTTP 422 at once
    "workspace_retries": ("provisioning", "error"),  # 5xx until the tries run out
    "email_refused": ("email", "refuse_message"),  # SMTP 554 5.6.0 at once
    "email_retries": ("email", "error"),  # 4xx until the tries run out
}


@pytest.mark.django_db
@pytest.mark.parametrize("stop", STOPS)
def test_the_needs_support_reply_tells_what_stopped_and_why_and_claims_nothing_support_has_not_done(
        stop, register, sandbox, drive, console, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = settings.EMAIL_MAX_ATTEMPTS = 2
    settings.BREAKER_FAILURE_THRESHOLD = 10_000  # one person's failures, not an outage
    sandbox(*STOPS[stop])
    account = register()
    drive()
    ticket = Ticket.objects.get()
    assert ticket.account == account

    form = _reply_form(console, ticket)
    reply = str(words.NEEDS_SUPPORT_REPLIES[stop]).format(
        email=account.email, login_url=settings.SITE_URL + reverse("accounts:login"))
    assert reply in form

    # Nothing was restarted yet: the reply says what support does next.
    assert "restarted" not in form and "I've " not in reply
    email_stopped = stop.startswith("email")
    assert ("confirmation email" in reply) is email_stopped
    assert ("setting up your workspace" in reply) is not email_stopped
    # "Our automatic retries couldn't" only where they ran; a refusal is told as one.
    assert ("automatic retries" in reply) is stop.endswith("retries")
    assert ("refused" in reply) is stop.endswith("refused")


@pytest.mark.django_db
def test_the_delayed_reply_while_only_the_confirmation_email_waits_says_the_workspace_is_ready(
        register, sandbox, drive, console, settings, committed):
    settings.BREAKER_FAILURE_THRESHOLD = 1
    settings.BREAKER_PROBE_SECONDS = 3600  # no probe while we look
    sandbox("email", "error")  # the email provider fails: its circuit opens; the workspace is made
    account = register()
    drive()
    person = Client()
    person.force_login(account)
    with committed():
        person.post("/help/", {"email": account.email, "message": "Where is my confirmation email?"})
    ticket = Ticket.objects.get()
    assert person.get("/setup/status.json").json()["state"] == "delayed"

    form = _reply_form(console, ticket)

    assert "setting up your workspace hit a problem" not in form  # it is made
    assert str(words.SUGGESTED_REPLIES["delayed_email"]).format(
        email=account.email, login_url=settings.SITE_URL + reverse("accounts:login")) in form
