"""Sentences on the person's pages that must match what the database holds: why a
workspace step or the confirmation email stopped (refused, or out of retries), and
what can still happen to it; whose problem an open circuit is; whether /setup/ still
says it updates by itself, and what a used password link can and cannot know."""
from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client

from accounts import messages as words
from accounts.models import EmailDelivery, EmailKind, User
from accounts.tests.factories import page_text, sign_up, verification_link
from provisioning.models import Breaker, ProvisioningRequest, Workspace
from support.models import UNRESOLVED, Incident, Ticket
from support.services import ticket_resolve

pytestmark = pytest.mark.django_db

ADDRESS = "ada@example.com"
NEW_PASSWORD = "a brand new passphrase 2024"
REFRESH_HINT = "it also updates by itself"


def _setup_text(client: Client) -> str:
    response = client.get("/setup/")
    assert response.status_code == 200
    return page_text(response)


def test_a_refused_workspace_says_the_provider_refused_it_not_that_retries_ran_out(sandbox, drive):
    client, account = sign_up(email=ADDRESS)
    sandbox("provisioning", "reject")  # HTTP 422: permanent, no retry can help

    drive()

    request = ProvisioningRequest.objects.get(account=account)
    # One immediate refusal: one call, none counted towards the limit.
    assert (request.status, request.attempts, request.counted_attempts, request.last_error_code) == (
        "failed", 1, 0, "http_422")
    page = _setup_text(client)
    message = client.get("/setup/status.json").json()["message"]
    for text in (page, message):
        assert "retries" not in text.lower()
        assert str(words.WORKSPACE_REFUSED.text) in text
    # The lifecycle state is DESIGN's, unchanged: a person has it.
    assert 'data-state="needs_support"' in page and str(words.TITLES["needs_support"]) in page


def _said(client: Client) -> tuple[str, dict]:
    """The page as read, and the status JSON."""
    return _setup_text(client), client.get("/setup/status.json").json()


def test_a_refused_workspace_says_who_has_it_and_that_it_can_be_set_up_again(sandbox, drive, settings):
    client, account = sign_up(email=ADDRESS)
    sandbox("provisioning", "reject")
    drive()
    # What the console did with the refusal: a ticket, so support has been told.
    ticket = Ticket.objects.get(account=account, status__in=UNRESOLVED)

    page, data = _said(client)
    for text in (page, data["message"]):
        assert "the same answer" not in text  # a re-run after the cause is fixed gets another
        assert str(words.WORKSPACE_REFUSED_NEXT.text) in text
        assert f"reference {ticket.reference}" in text
    assert "That's on us" in data["message"]

    # Support resolves the ticket without a re-run: nobody has it now, so the page
    # asks the person to write to us, and still says what support can do.
    ticket_resolve(ticket=ticket, actor="support")
    page, data = _said(client)
    assert "passed to our support team" not in data["message"]
    assert str(words.WRITE_TO_SUPPORT).format(reply_hours=settings.SUPPORT_REPLY_HOURS) in data["message"]
    assert str(words.WORKSPACE_REFUSED_NEXT.text) in data["message"]

    # And it is true: once the cause is fixed, a re-run sets the workspace up.
    sandbox("provisioning", "ok")
    call_command("retry_setup", ADDRESS, stdout=StringIO())
    drive()
    assert Workspace.objects.filter(owner=account).exists()
    assert client.get("/setup/status.json").json()["workspace"]["status"] == "ready"


def test_a_confirmation_email_the_provider_refused_says_so_not_that_retries_ran_out(sandbox, drive):
    client, account = sign_up(email=ADDRESS)
    sandbox("email", "refuse_message")  # the message itself refused for good (SMTP 554 5.6.0), not the address
    drive()

    delivery = EmailDelivery.objects.get(account=account, kind=EmailKind.VERIFICATION)
    # Refused at once: one call, none counted, no retry ran; the address is not blamed.
    assert (delivery.status, delivery.attempts, delivery.counted_attempts, delivery.last_error_code) == (
        "failed", 1, 0, "smtp_5xx")
    ticket = Ticket.objects.get(account=account, status__in=UNRESOLVED)
    refused = str(words.EMAIL_PROVIDER_REFUSED.text).format(address=ADDRESS)

    page, data = _said(client)
    assert data["state"] == "needs_support" and data["email"]["delivery"] == "failed"
    for text in (page, data["message"], data["said"]["email"]):
        assert "retries" not in text.lower()
    for text in (page, data["message"]):
        assert refused in text and f"reference {ticket.reference}" in text
    assert data["said"]["email"] == str(words.EMAIL_WORDS["refused"])
    assert str(words.EMAIL_REFUSED).format(address=ADDRESS) not in page  # not "your address refused it"

    ticket_resolve(ticket=ticket, actor="support")
    page, data = _said(client)
    assert data["said"]["title"] == str(words.TITLES["email_refused"])
    assert str(words.TITLES["retries_ran_out"]) not in page
    assert refused in data["message"]


def test_the_same_refusal_for_many_accounts_is_told_as_ours_not_the_providers_outage(
        settings, sandbox, drive):
    settings.BREAKER_FAILURE_THRESHOLD = 3
    settings.BREAKER_PROBE_SECONDS = 3600  # no probe while we look
    sandbox("provisioning", "reject")  # the same refusal for every account: ours, says the console
    clients = [sign_up(email=f"p{i}@example.com")[0] for i in range(3)]
    drive()

    assert Breaker.objects.get(provider="provisioning").opened_by == "refused_alike"
    assert Incident.objects.filter(provider="provisioning").exists()
    for client in clients:
        page, data = _said(client)
        assert data["state"] == "delayed"
        for text in (page, data["message"]):
            assert str(words.WORKSPACE_OUR_OUTAGE) in text
            assert "having an outage" not in text and "recovers" not in text


def test_the_same_email_refusal_for_many_accounts_is_told_as_ours_not_the_providers_outage(
        settings, sandbox, drive):
    settings.BREAKER_FAILURE_THRESHOLD = 3
    settings.BREAKER_PROBE_SECONDS = 3600
    sandbox("email", "refuse_message")
    people = [f"p{i}@example.com" for i in range(3)]
    clients = [sign_up(email=address)[0] for address in people]
    drive()

    assert Breaker.objects.get(provider="email").opened_by == "refused_alike"
    for address, client in zip(people, clients, strict=True):
        page, data = _said(client)
        assert data["state"] == "delayed" and data["workspace"]["status"] == "ready"
        assert str(words.EMAIL_OUR_OUTAGE).format(address=address) in data["message"]
        assert data["said"]["email"] == str(words.EMAIL_WORDS["held_ours"])
        for text in (page, data["message"], data["said"]["email"]):
            assert "having an outage" not in text and "recover" not in text


def test_each_open_circuit_is_told_as_whose_it_is_when_both_hold_an_account(settings, sandbox, drive):
    settings.BREAKER_FAILURE_THRESHOLD = 3
    settings.BREAKER_PROBE_SECONDS = 3600
    sandbox("provisioning", "timeout")  # the workspace provider stops answering: its outage
    sandbox("email", "refuse_message")  # and the email provider refuses everyone alike: ours
    clients = [sign_up(email=f"p{i}@example.com")[0] for i in range(3)]
    drive()

    assert dict(Breaker.objects.values_list("provider", "opened_by")) == {
        "provisioning": "no_answer", "email": "refused_alike"}
    for client in clients:
        page, data = _said(client)
        assert data["workspace"]["status"] == "pending"
        assert data["message"].startswith(str(words.WORKSPACE_OUTAGE))  # the provider's, truly
        assert data["said"]["email"] == str(words.EMAIL_WORDS["held_ours"])  # ours, not "to recover"


def test_a_workspace_that_ran_out_of_retries_says_so(sandbox, drive, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 2
    client, account = sign_up(email=ADDRESS)
    sandbox("provisioning", "error")  # HTTP 503: transient, retried until the attempts are used up

    drive()

    request = ProvisioningRequest.objects.get(account=account)
    assert (request.status, request.counted_attempts, request.last_error_code) == ("failed", 2, "http_503")
    page = _setup_text(client)
    assert str(words.RETRIES_RAN_OUT.text) in page
    assert str(words.WORKSPACE_REFUSED.text) not in page


def test_the_refresh_hint_shows_only_while_something_is_still_in_progress(drive):
    client, _ = sign_up(email=ADDRESS)
    assert REFRESH_HINT in _setup_text(client)  # setting up
    drive()
    assert REFRESH_HINT in _setup_text(client)  # waiting for the address to be confirmed

    client.post(verification_link(ADDRESS))

    page = _setup_text(client)
    assert 'data-state="active"' in page
    assert REFRESH_HINT not in page
    assert 'http-equiv="refresh"' not in page  # and, without JavaScript, it no longer reloads itself


def test_a_used_password_link_claims_nothing_about_the_password_and_offers_both_ways_on(drive):
    sign_up(email=ADDRESS)
    drive()
    mail.outbox.clear()
    asker = Client()
    asker.post("/password-reset/", {"email": ADDRESS})
    drive()
    (link,) = [path for message in mail.outbox
               for path in re.findall(r"https?://[^/\s]+(/password-reset/\S+/\S+/)", message.body)]
    set_password = asker.get(link)["Location"]
    asker.post(set_password, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert User.objects.get(email=ADDRESS).check_password(NEW_PASSWORD)  # changed through this very link

    again = page_text(Client().get(link))

    assert str(words.PASSWORD_RESET_LINK_BAD.title) in again
    assert "unchanged" not in again and "password changed" not in again
    assert str(words.PASSWORD_RESET_LINK_BAD.next) in again  # log in with the new one, or ask again
    assert 'href="/login/"' in again and 'href="/password-reset/"' in again


@pytest.mark.parametrize("provider", ["provisioning", "email"])
def test_a_problem_of_ours_claims_nobody_is_fixing_it_and_says_our_team_sees_it_only_once_its_incident_is_open(
        provider, settings, sandbox, django_capture_on_commit_callbacks):
    from provisioning import durable
    from provisioning.tasks import reconcile as reconcile_task

    settings.BREAKER_FAILURE_THRESHOLD = 1
    settings.BREAKER_PROBE_SECONDS = 3600  # no probe while we look
    client, account = sign_up(email=ADDRESS)
    if provider == "email":  # the workspace is made; what waits is the confirmation email
        with django_capture_on_commit_callbacks(execute=True):
            durable.step_run("workspace", ProvisioningRequest.objects.get(account=account).pk)
        step, kind = EmailDelivery.objects.get(account=account, kind=EmailKind.VERIFICATION), "email"
    else:
        step, kind = ProvisioningRequest.objects.get(account=account), "workspace"
    sandbox(provider, "unauthorized")  # the provider refuses our credentials: ours
    # The try runs and opens the circuit, but what it announced on commit is lost: no incident yet.
    durable.step_run(kind, step.pk)
    assert Breaker.objects.get(provider=provider).opened_by == "credentials"
    assert not Incident.objects.exists()
    seen = str(words.TEAM_SEES_OUR_OUTAGE.text)

    page, data = _said(client)
    assert data["state"] == "delayed"
    for text in (page, data["message"], data["said"]["email"]):
        assert "fixing" not in text  # no row says anyone is working on it
    assert "a problem on our side" in data["message"] and seen not in page

    with django_capture_on_commit_callbacks(execute=True):
        reconcile_task()  # the next scheduled pass opens the incident the lost announcement would have
    assert Incident.objects.filter(provider=provider, status="open").exists()
    page, data = _said(client)
    for text in (page, data["message"]):
        assert seen in text and "fixing" not in text
