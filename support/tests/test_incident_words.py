"""What the console says about an outage is what the database holds: the banner
and the incident page read the circuit (stopped, or recovered and catching up), the
opening line says what the provider did (a 503 is not "stopped answering"), a
refusal of our credentials is not "the same refusal for many accounts", the figures
count only this incident's waits, and a held step's next try is not "in under a
minute". Driven through the sandbox providers and read as the support person reads
the pages."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import EmailDelivery, User
from accounts.tests.factories import page_text
from provisioning import breaker
from provisioning.durable import step_run
from provisioning.models import ProvisioningRequest
from support.models import Incident, IncidentEventKind, IncidentStatus, Ticket
from support.selectors import apology_recipients
from support.tasks import sweep
from support.tests.test_incidents import down, recover, sign_up  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

PAGES = ("/admin/", "/admin/support/ticket/")


def incident_page(console, incident: Incident) -> str:
    return page_text(console.get(f"/admin/support/incident/{incident.pk}/change/"))


def banner(page: str) -> str:
    """The open incidents' banner, alone (the dashboard's chart says "0 signups" too)."""
    found = re.search(r'<section class="panel incidents".*?</section>', page, re.S)
    return found.group(0) if found else ""


def figure(page: str, name: str) -> int:
    return int(re.search(rf'id="figure-{name}">(\d+)', page).group(1))


@pytest.mark.parametrize(("provider", "what", "label"), [
    ("provisioning", "Setting up new workspaces", "workspace provider"),
    ("email", "Sending emails (such as confirmation links)", "email provider"),
])
def test_the_banner_says_stopped_only_while_the_circuit_is_open_then_recovered_and_catching_up(
        provider, what, label, sign_up, down, drive, console, settings, sandbox, committed):  # noqa: F811
    down(provider)
    held = sign_up(6, prefix="held")
    drive(max_passes=5)
    incident = Incident.objects.get()
    for path in PAGES:  # the sentence starts with a capital letter
        assert f"{what} is stopped: 6 signups are waiting on it." in page_text(console.get(path))

    # The provider is back: two of those held go through (the first as the probe) and
    # the circuit closes; the incident stays open while the other four drain.
    sandbox(provider, "ok")
    settings.BREAKER_PROBE_SECONDS = 0
    steps = (ProvisioningRequest.objects.filter(account__email__in=held) if provider == "provisioning"
             else EmailDelivery.objects.filter(account__email__in=held, kind="verification"))
    for step in steps.order_by("pk")[:2]:
        assert step_run("workspace" if provider == "provisioning" else "email", step.pk) == "succeeded"
    assert not breaker.is_open(provider)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.OPEN
    for page in [banner(page_text(console.get(path))) for path in PAGES] + [incident_page(console, incident)]:
        assert f"The {label} has recovered and is catching up: 4 signups still wait." in page
        assert "is stopped" not in page

    # All gone through, before any close check ran: nobody waits, nothing is stopped.
    for step in steps.filter(status="pending").order_by("pk"):
        assert step_run("workspace" if provider == "provisioning" else "email", step.pk) == "succeeded"
    for path in PAGES:
        page = banner(page_text(console.get(path)))
        assert f"The {label} has recovered and no signup waits on it any more" in page
        assert "is stopped" not in page and "0 signups" not in page
    with committed():
        sweep()  # the next check
    assert Incident.objects.get().status == IncidentStatus.CLOSED
    assert "Outage:" not in page_text(console.get("/admin/"))


@pytest.mark.parametrize(("mode", "opening"), [
    ("error", "The workspace provider kept failing (HTTP 503): its circuit breaker opened."),
    ("timeout", "The workspace provider stopped answering (timed out): its circuit breaker opened."),
    ("unauthorized", "The workspace provider refused our credentials (HTTP 401): its circuit breaker opened at "
                     "once."),
])
def test_the_opening_line_says_what_the_provider_did(mode, opening, sign_up, down, drive, sandbox,  # noqa: F811
                                                    console):
    down("provisioning")
    sandbox("provisioning", mode)
    sign_up(5)
    drive(max_passes=5)
    incident = Incident.objects.get()
    line = incident.events.get(kind=IncidentEventKind.OPENED).text
    assert line.startswith(opening)
    assert (mode == "timeout") == ("stopped answering" in line)
    assert opening in incident_page(console, incident)


def test_a_refusal_of_our_credentials_says_so_and_counts_only_this_incidents_accounts(
        sign_up, down, recover, drive, sandbox, settings, console):  # noqa: F811
    """Before the outage, within its window: one account waited on a 503 and went
    through, another had a 422 of its own that support re-ran and that then went
    through. Then one signup is refused our credentials (401), which opens the
    circuit at once. The incident is that one account's, and says why: not "the same
    refusal came back for many accounts"."""
    with time_machine.travel(timezone.now() - timedelta(minutes=3), tick=False) as clock:
        sandbox("provisioning", "error")
        (earlier,) = sign_up(1, prefix="earlier")
        drive(max_passes=1)
        sandbox("provisioning", "ok")
        drive()
        sandbox("provisioning", "reject")
        (refused,) = sign_up(1, prefix="refused")
        drive()
        assert Ticket.objects.get().account.email == refused
        sandbox("provisioning", "ok")
        clock.shift(timedelta(minutes=1))
        account = User.objects.get(email=refused)
        assert console.post(f"/admin/accounts/user/{account.pk}/do/rerun/",
                            {"action_key": uuid.uuid4().hex}).status_code == 302
        drive()
    assert {(r.account.email, r.status, r.last_error_code) for r in ProvisioningRequest.objects.all()} == {
        (earlier, "succeeded", "http_503"), (refused, "succeeded", "http_422")}

    down("provisioning")
    sandbox("provisioning", "unauthorized")
    (waiting,) = sign_up(1, prefix="waiting")
    drive(max_passes=3)
    incident = Incident.objects.get()
    assert incident.cause == "http_401"

    page = incident_page(console, incident)
    assert "The provider refused our credentials (HTTP 401)" in page
    assert "every account's call is refused alike until it is fixed" in page
    assert "1 account refused so far." in page
    assert "came back for many accounts" not in page
    assert (figure(page, "affected"), figure(page, "waiting"), figure(page, "drained")) == (1, 1, 0)

    recover("provisioning")
    incident.refresh_from_db()
    assert (incident.status, incident.affected, incident.drained) == (IncidentStatus.CLOSED, 1, 1)
    # The apology is owed to the one who waited on it, not to those who went through before.
    assert [account.email for account in apology_recipients(incident=incident)] == [waiting]


def test_a_step_held_behind_the_open_circuit_is_held_and_one_past_its_time_is_due_now(
        sign_up, down, drive, sandbox, console):  # noqa: F811
    sandbox("provisioning", "error")
    (late,) = sign_up(1, prefix="late")
    drive(max_passes=1)
    account = User.objects.get(email=late)
    step = ProvisioningRequest.objects.get(account=account)
    assert step.status == "pending"

    def next_retry() -> str:
        page = page_text(console.get(f"/admin/accounts/user/{account.pk}/change/"))
        return re.search(r'Next retry</dt><dd[^>]*>([^<]*)<', page).group(1)

    with time_machine.travel(step.next_attempt_at + timedelta(minutes=2), tick=False):
        assert next_retry() == "due now"

    down("provisioning")
    sign_up(5)
    drive(max_passes=5)
    assert breaker.is_open("provisioning")
    with time_machine.travel(ProvisioningRequest.objects.get(account=account).next_attempt_at
                             + timedelta(minutes=2), tick=False):
        assert next_retry() == "held until the provider recovers (its circuit is open)"
