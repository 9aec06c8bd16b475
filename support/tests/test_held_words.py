"""A step held behind an open circuit is said to wait for what holds it, read from what
opened the circuit: an outage of the provider's passes when it recovers; a refusal of
ours (our credentials) waits until we fix it. The confirmation email held so is called
held, as the workspace is; and the delayed reply claims only what will happen. Faults
come from the sandbox providers; pages are read as the support person reads them."""
from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from accounts.models import EmailDelivery, EmailKind
from accounts.services import account_register
from accounts.tests.factories import page_text
from provisioning.durable import OUTAGE, StepStatus
from provisioning.models import Breaker, BreakerOpening, BreakerState, ProvisioningRequest
from support import messages as words
from support.models import Ticket

pytestmark = pytest.mark.django_db

OUR_CREDENTIALS = "we fix our credentials, which the provider refused"


def said(console, path: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page_text(console.get(path))).split())


def ticket_for(account) -> Ticket:
    return Ticket.objects.create(account=account, email=account.email)


def circuit(provider: str) -> Breaker:
    return Breaker.objects.get(provider=provider, state=BreakerState.OPEN)


# --- 1. What holds a workspace step ---------------------------------------------------------

def test_a_workspace_held_behind_our_refused_credentials_waits_for_our_fix_not_the_provider(
        register, sandbox, drive, settings, console):
    settings.BREAKER_PROBE_SECONDS = 3600  # no probe while we look
    sandbox("provisioning", "unauthorized")  # HTTP 401: our credentials, the circuit opens at once
    register(email="first@example.com")
    account = register(email="second@example.com")  # its turn comes behind the open circuit
    drive()
    assert circuit("provisioning").opened_by == BreakerOpening.CREDENTIALS
    step = ProvisioningRequest.objects.get(account=account)
    assert (step.status, step.attempts, step.last_error_code) == (StepStatus.PENDING, 0, OUTAGE)
    ticket = ticket_for(account)

    headline = str(words.HELD_WORKSPACE).format(until=OUR_CREDENTIALS, tries=words.tries(0),
                                                detail=words.HELD_DETAIL)
    for path in (f"/admin/support/ticket/{ticket.pk}/change/", "/admin/support/ticket/",
                 f"/admin/accounts/user/{account.pk}/change/"):
        page = said(console, path)
        assert headline in page, path
        assert "held until the provider recovers" not in page
        assert "having an outage" not in page
    page = page_text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    assert re.search(r'id="next-retry">([^<]*)<', page).group(1) == (
        f"held until {OUR_CREDENTIALS} (its circuit is open)")
    # Beside the buttons: a re-run would wait too, and what lets the steps through.
    failing = " ".join(re.search(r'id="provider-failing">(.*?)</p>', page, re.S).group(1).split())
    assert failing.endswith(f"Steps go through by themselves once {OUR_CREDENTIALS}.")
    assert "when it recovers" not in failing


def test_a_workspace_held_by_the_providers_outage_waits_for_it_to_recover(
        register, sandbox, drive, settings, console):
    settings.BREAKER_PROBE_SECONDS = 3600
    settings.BREAKER_FAILURE_THRESHOLD = 1
    sandbox("provisioning", "error")  # 5xx: the provider kept failing
    register(email="first@example.com")
    account = register(email="second@example.com")
    drive()
    assert circuit("provisioning").opened_by == BreakerOpening.FAILING
    ticket = ticket_for(account)
    page = said(console, f"/admin/support/ticket/{ticket.pk}/change/")
    assert str(words.HELD_WORKSPACE).format(until="the provider recovers", tries=words.tries(0),
                                            detail=words.HELD_DETAIL) in page
    assert "held until the provider recovers (its circuit is open)" in page


# --- 2. A confirmation email held behind the open email circuit is called held -------------------

@pytest.mark.parametrize(("mode", "opened_by", "until"), [
    ("unauthorized", BreakerOpening.CREDENTIALS, OUR_CREDENTIALS),  # SMTP 535
    ("error", BreakerOpening.FAILING, "the provider recovers"),  # SMTP 4xx
])
def test_a_confirmation_email_held_behind_the_open_email_circuit_is_held_until_what_holds_it(
        mode, opened_by, until, register, sandbox, drive, settings, console):
    settings.BREAKER_PROBE_SECONDS = 3600
    settings.BREAKER_FAILURE_THRESHOLD = 1
    sandbox("email", mode)
    account = register()
    drive()
    assert circuit("email").opened_by == opened_by
    link = EmailDelivery.objects.get(account=account, kind=EmailKind.VERIFICATION)
    assert link.status == StepStatus.PENDING and link.last_error_code
    ticket = ticket_for(account)

    held = str(words.HELD_EMAIL).format(until=until, tries=words.tries(link.attempts),
                                        detail=words.step_error(link.last_error_code, link.last_error_detail))
    for path in (f"/admin/support/ticket/{ticket.pk}/change/", "/admin/support/ticket/"):
        page = said(console, path)
        assert held in page, path
        assert "Confirmation email not sent yet" not in page
    assert f"held until {until} (its circuit is open)" in said(console, f"/admin/support/ticket/{ticket.pk}/change/")


# --- 3. The delayed reply claims only what will happen ---------------------------------------------

def reply_form(console, ticket) -> str:
    page = console.get(f"/admin/support/ticket/{ticket.pk}/do/reply/")
    assert page.status_code == 200
    return html.unescape(page.content.decode())


def delayed_reply(key: str, then, settings) -> str:
    login_url = settings.SITE_URL + reverse("accounts:login")
    return " ".join((str(words.DELAYED_REPLIES[key]), str(then).format(login_url=login_url)))


@pytest.mark.parametrize(("mode", "key"), [("unauthorized", "held_ours"), ("error", "held")])
def test_the_delayed_reply_while_the_workspace_is_held_says_what_holds_it_not_that_we_retry(
        mode, key, register, sandbox, drive, settings, console):
    settings.BREAKER_PROBE_SECONDS = 3600
    settings.BREAKER_FAILURE_THRESHOLD = 1
    sandbox("provisioning", mode)
    account = register()
    drive()
    assert breaker_open("provisioning")
    assert ProvisioningRequest.objects.get(account=account).last_error_code  # it waited: "all set" follows
    form = reply_form(console, ticket_for(account))
    assert delayed_reply(key, words.DELAYED_EMAIL_AFTER, settings) in form
    assert "retrying automatically" not in form and "the moment" not in form


def test_the_delayed_reply_promises_no_email_the_workspace_will_not_bring(
        signup_data, register, sandbox, drive, settings, console):
    """Signed up while our credentials are refused, its turn not come yet: nothing
    has held it, so if the circuit closes before its turn no "you're all set" email
    follows (accounts.receivers.on_workspace_ready), and none is promised."""
    settings.BREAKER_PROBE_SECONDS = 3600
    sandbox("provisioning", "unauthorized")
    register(email="first@example.com")
    drive()
    account = account_register(name="Late Comer", email="late@example.com", company="Late Ltd",
                               password=signup_data["password"], phone=signup_data["phone"])  # not run yet
    assert ProvisioningRequest.objects.get(account=account).last_error_code == ""
    form = reply_form(console, ticket_for(account))
    assert delayed_reply("held_ours", words.DELAYED_LOG_IN, settings) in form
    assert "email you" not in form


def test_the_delayed_reply_while_we_retry_says_so_and_that_all_set_follows(
        register, sandbox, drive, settings, console):
    settings.BREAKER_FAILURE_THRESHOLD = 10_000  # one person's failures, no outage
    settings.DELAYED_AFTER_ATTEMPTS = 1
    settings.PROVISIONING_MAX_ATTEMPTS = 50
    sandbox("provisioning", "error")
    account = register()
    assert not breaker_open("provisioning")
    form = reply_form(console, ticket_for(account))
    assert delayed_reply("retrying", words.DELAYED_EMAIL_AFTER, settings) in form
    assert "the moment" not in form


def breaker_open(provider: str) -> bool:
    return Breaker.objects.filter(provider=provider, state=BreakerState.OPEN).exists()
