"""What the console says about a refusal of our credentials, and about a provider
whose circuit is closed, is what the database holds: while our credentials are
refused, support is told to fix them (it does not pass by itself); once the
incident closed, its page speaks in the past tense and offers no "Re-run all" with
nothing stopped; a closed circuit is "answering", not "healthy"; a held step is
held in the queue as on its ticket; and one account is one account. Driven through
the sandbox providers and read as the support person reads the pages."""
from __future__ import annotations

import re

import pytest

from accounts.models import User
from accounts.tests.factories import page_text
from provisioning import breaker
from support.models import Incident, IncidentEventKind, IncidentStatus, Ticket
from support.tests.test_incident_words import banner, incident_page
from support.tests.test_incidents import down, recover, sign_up  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def test_a_refusal_of_our_credentials_asks_for_them_to_be_fixed_then_speaks_in_the_past(
        sign_up, down, recover, drive, sandbox, console):  # noqa: F811
    down("provisioning")
    sandbox("provisioning", "unauthorized")
    sign_up(1, prefix="waiting")
    drive(max_passes=3)
    incident = Incident.objects.get()
    assert incident.cause == "http_401"

    # Open: it does not recover by itself, so "Nothing to do" would be false.
    for page in (incident_page(console, incident), banner(page_text(console.get("/admin/"))),
                 banner(page_text(console.get("/admin/support/ticket/")))):
        assert "Nothing to do" not in page and "when the provider recovers" not in page
        assert "check the provider's credentials in the environment (the PROVISIONING_* settings" in page
    page = incident_page(console, incident)
    affected = re.search(r'id="figure-affected">(.*?)</dd>', page, re.S).group(1)
    assert affected == '1 <span class="help">account whose step waited on the provider during the outage</span>'

    recover("provisioning")
    incident.refresh_from_db()
    assert (incident.status, incident.affected, incident.drained) == (IncidentStatus.CLOSED, 1, 1)
    page = incident_page(console, incident)
    cause = re.search(r'id="incident-cause">([^<]*)<', page).group(1)
    assert cause.startswith("The provider refused our credentials (HTTP 401); the incident lasted from ")
    assert cause.endswith("1 account waited.")
    assert "is refused alike until it is fixed" not in page and "so far" not in page
    assert "Re-run all refused alike" not in page  # nothing is stopped with HTTP 401
    recovered = incident.events.get(kind=IncidentEventKind.RECOVERED).text
    assert recovered.startswith("The workspace provider accepted our credentials again: ")
    assert "recovered" not in recovered
    closed = incident.events.get(kind=IncidentEventKind.CLOSED).text
    assert "1 account affected," in closed and "1 accounts" not in closed + recovered


def test_an_outage_still_drains_by_itself_and_its_recovery_counts_one_account_as_one(
        sign_up, down, recover, drive, console, settings):  # noqa: F811
    settings.BREAKER_FAILURE_THRESHOLD = 1
    down("provisioning")
    sign_up(1)
    drive(max_passes=3)
    incident = Incident.objects.get()
    assert "everything drains by itself when the provider recovers" in incident_page(console, incident)
    recover("provisioning")
    recovered = incident.events.get(kind=IncidentEventKind.RECOVERED).text
    assert recovered.startswith("The workspace provider recovered: ")
    assert "0 of the 1 account affected still wait and drain now; 1 already went through." in recovered


def test_a_closed_circuit_is_answering_not_healthy_and_a_refusal_is_said(sign_up, drive, sandbox, console):  # noqa: F811
    sandbox("provisioning", "reject")
    sign_up(1, prefix="refused")
    drive()
    assert not breaker.is_open("provisioning")
    ticket = Ticket.objects.get()
    page = page_text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    now = re.search(r'id="provider-health">(.*?)</dd>', page, re.S).group(1)
    assert "healthy" not in now
    assert now == "answering (circuit closed); its last answer to this account was a refusal (HTTP 422)"


def test_a_step_held_behind_the_open_circuit_is_held_in_the_queue_as_on_its_ticket(
        sign_up, down, drive, console):  # noqa: F811
    """An account with a ticket whose step then waits behind the open circuit."""
    down("provisioning")
    sign_up(6)
    drive(max_passes=5)
    assert breaker.is_open("provisioning")
    account = User.objects.filter(provisioning_request__status="pending",
                                  provisioning_request__attempts__gte=1).order_by("pk").first()
    ticket = Ticket.objects.create(account=account, email=account.email)
    queue = page_text(console.get("/admin/support/ticket/"))
    assert "Workspace setup is held until the provider recovers (1 try so far)" in queue
    assert "is retrying" not in queue
    page = page_text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    assert "held until the provider recovers" in page
    assert "Workspace setup is held until the provider recovers" in page
