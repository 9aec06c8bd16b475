"""What an incident says it is, and what it asks support to do, is what the backend
and the circuit recorded: the accounts "refused so far" are those the provider
refused, not those held behind its circuit; every kind of incident has its own
to-do (an outage passes by itself, our credentials, our configuration or relay, and
a refusal many accounts got alike do not); and a probe refused our credentials
during an outage makes the incident a matter of credentials. Faults come from the
sandbox providers and the local HTTP provider; pages are read as support reads them."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.messages import EMAIL_SUBJECTS
from accounts.tests.factories import page_text
from provisioning import breaker
from provisioning.durable import StepStatus, step_run
from provisioning.models import Breaker, ProvisioningRequest, Workspace
from provisioning.tests.fake_provider import FakeProvider
from support.models import Incident, IncidentEventKind, IncidentStatus
from support.tasks import sweep
from support.tests.test_incident_words import banner, figure, incident_page
from support.tests.test_incidents import down, recover, sign_up  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

NOTHING_TO_DO = "Nothing to do"
CHECK_CREDENTIALS = "To do: check the provider's credentials in the environment"
CHECK_SETUP = "To do: this does not pass by itself. Check how we reach the provider"


def pages(console, incident: Incident) -> list[str]:
    """Where support reads an open incident: its page, and the banner of Today and the Queue."""
    return [incident_page(console, incident), banner(page_text(console.get("/admin/"))),
            banner(page_text(console.get("/admin/support/ticket/")))]


def cause(page: str) -> str:
    return re.search(r'id="incident-cause">([^<]*)<', page).group(1)


def test_accounts_held_behind_the_circuit_are_not_counted_as_refused(sign_up, down, drive, sandbox,  # noqa: F811
                                                                     console):
    """The first signup is refused our credentials and opens the circuit; the four
    after it are held behind it: the provider never saw them."""
    down("provisioning")
    sandbox("provisioning", "unauthorized")
    sign_up(5)
    drive(max_passes=3)
    incident = Incident.objects.get()
    assert sorted(ProvisioningRequest.objects.values_list("last_error_code", flat=True)) == [
        "http_401", "outage", "outage", "outage", "outage"]

    page = incident_page(console, incident)
    assert "1 account refused so far; 4 more wait behind the circuit." in cause(page)
    assert "5 accounts refused" not in page
    assert (figure(page, "affected"), figure(page, "waiting")) == (5, 5)


@pytest.mark.parametrize(("provider", "mode", "opening", "to_do"), [
    # HTTP 403: our credentials lack the permission; the backend says so, not a list in the console.
    ("provisioning", "relay_denied", "The workspace provider refused our credentials (HTTP 403)",
     f"{CHECK_CREDENTIALS} (the PROVISIONING_* settings"),
    ("email", "unauthorized", "The email provider refused our credentials (SMTP 535)",
     f"{CHECK_CREDENTIALS} (the EMAIL_URL or ANYMAIL_* settings"),
    # A relay that refuses us is ours, and not our credentials: nothing drains until it is fixed.
    ("email", "relay_denied", "The email provider refused us (SMTP 554): our configuration, relay or sending "
                              "policy.", f"{CHECK_SETUP} (the EMAIL_URL or ANYMAIL_* settings"),
])
def test_a_refusal_of_us_asks_for_its_own_fix_never_nothing_to_do(
        provider, mode, opening, to_do, sign_up, down, recover, drive, sandbox, console):  # noqa: F811
    down(provider)
    sandbox(provider, mode)
    sign_up(3)
    drive(max_passes=3)
    incident = Incident.objects.get()
    assert incident.events.get(kind=IncidentEventKind.OPENED).text.startswith(opening)
    for page in pages(console, incident):
        assert to_do in page
        assert NOTHING_TO_DO not in page and "drains by itself when the provider recovers" not in page
    assert "1 account refused so far; 2 more wait behind the circuit." in cause(incident_page(console, incident))

    recover(provider)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED


def test_a_wrong_provisioning_url_asks_for_our_settings_to_be_checked(settings, sign_up, drive, console):  # noqa: F811
    with FakeProvider() as provider:
        settings.PROVISIONING_BACKEND, settings.PROVISIONING_URL = "http", provider.url
        settings.PROVISIONING_TIMEOUT, settings.BREAKER_PROBE_SECONDS = 0.5, 3600
        provider.fail_times(1000, status=404)
        sign_up(2)
        drive()
    incident = Incident.objects.get()
    assert incident.cause == "http_404"
    for page in pages(console, incident):
        assert f"{CHECK_SETUP} (the PROVISIONING_* settings" in page
        assert NOTHING_TO_DO not in page and CHECK_CREDENTIALS not in page
    assert "refused our credentials" not in incident_page(console, incident)


def test_a_refusal_many_accounts_got_alike_asks_for_its_cause_and_a_re_run_of_what_it_stopped(
        sign_up, drive, sandbox, settings, console, committed):  # noqa: F811
    """One account was refused (HTTP 422) long before the others: its step stopped,
    with a ticket. Then five within the window: ours, one incident, and those five
    wait behind the circuit. The one stopped before does not drain with them."""
    settings.BREAKER_PROBE_SECONDS = 3600
    sandbox("provisioning", "reject")
    with time_machine.travel(timezone.now() - timedelta(hours=1), tick=False):
        (early,) = sign_up(1, prefix="early")
        drive()
    assert ProvisioningRequest.objects.get(account__email=early).status == StepStatus.FAILED
    later = sign_up(5, prefix="later")
    drive()
    incident = Incident.objects.get()
    assert (incident.opened_by, incident.cause) == ("refused_alike", "http_422")

    stopped_one = "1 account's step stopped with this refusal (HTTP 422) stays stopped: re-run it once what was " \
                  "refused is fixed"
    for page in pages(console, incident):
        assert "To do: find out why the provider gives every account the same refusal (HTTP 422)" in page
        assert stopped_one in page
        assert NOTHING_TO_DO not in page and "drains by itself when the provider recovers" not in page
    assert "Re-run all refused alike" in incident_page(console, incident)

    # Fixed at the provider: the five drain by themselves; the one stopped before does not.
    sandbox("provisioning", "ok")
    settings.BREAKER_PROBE_SECONDS = 0
    drive()
    assert Workspace.objects.filter(owner__email__in=later).count() == 5
    with committed():
        sweep()
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED
    page = incident_page(console, incident)
    assert stopped_one in cause(page)
    assert "Re-run all refused alike" in page

    # Re-run: nothing is stopped any more, so neither the sentence nor the button is offered.
    button = f"/admin/support/incident/{incident.pk}/rerun-all/"
    key = re.search(r'name="action_key" value="([0-9a-f]{32})"', console.get(button).content.decode()).group(1)
    with committed():
        assert console.post(button, {"action_key": key}).status_code == 302
    drive()
    assert Workspace.objects.filter(owner__email=early).exists()
    page = incident_page(console, incident)
    assert "stays stopped" not in page and "Re-run all refused alike" not in page


def test_a_refusal_alike_whose_circuit_closed_asks_only_for_the_re_run(sign_up, drive, sandbox, settings,  # noqa: F811
                                                                       console):
    """The provider accepts again and what waited is draining: "Nothing to do" would
    leave the step the refusal stopped stopped for good."""
    settings.BREAKER_PROBE_SECONDS = 3600
    sandbox("provisioning", "reject")
    with time_machine.travel(timezone.now() - timedelta(hours=1), tick=False):
        sign_up(1, prefix="early")
        drive()
    sign_up(5, prefix="later")
    drive()
    incident = Incident.objects.get()
    sandbox("provisioning", "ok")
    settings.BREAKER_PROBE_SECONDS = 0
    probe = ProvisioningRequest.objects.filter(status=StepStatus.PENDING).order_by("pk").first()
    assert step_run("workspace", probe.pk) == "succeeded"  # the circuit closes; the others have not gone yet
    assert not breaker.is_open("provisioning")
    assert ProvisioningRequest.objects.filter(status=StepStatus.PENDING).exists()
    for page in pages(console, incident):
        assert "has recovered and is catching up" in page
        assert "To do: 1 account's step stopped with this refusal (HTTP 422) stays stopped" in page
        assert NOTHING_TO_DO not in page


def test_a_probe_refused_our_credentials_during_an_outage_makes_it_a_matter_of_credentials(
        sign_up, down, recover, drive, sandbox, settings, console, signup_data):  # noqa: F811
    down("provisioning")
    emails = sign_up(8)
    drive(max_passes=5)
    incident = Incident.objects.get()
    assert (incident.opened_by, incident.cause) == ("failing", "")
    for page in pages(console, incident):
        assert NOTHING_TO_DO in page

    # While it is down, our credentials stop working too: the next probe is refused them.
    sandbox("provisioning", "unauthorized")
    settings.BREAKER_PROBE_SECONDS = 0
    drive(max_passes=1)
    settings.BREAKER_PROBE_SECONDS = 3600
    assert Breaker.objects.filter(provider="provisioning", opened_by="credentials", cause="http_401").exists()
    incident.refresh_from_db()
    assert (incident.opened_by, incident.cause, incident.failure) == ("credentials", "http_401", "http_503")
    assert incident.events.get(kind=IncidentEventKind.CAUSE).text.startswith(
        "The workspace provider now refuses our credentials (HTTP 401): that is what holds its circuit open now")
    for page in pages(console, incident):
        assert f"{CHECK_CREDENTIALS} (the PROVISIONING_* settings" in page
        assert NOTHING_TO_DO not in page
    page = incident_page(console, incident)
    assert "1 account refused so far; 7 more wait behind the circuit." in cause(page)
    # The person is told it is ours, as the console is.
    client = Client()
    assert client.post("/login/", {"email": emails[0], "password": signup_data["password"]}).status_code == 302
    message = client.get("/setup/status.json").json()["message"]
    assert "stopped by a problem on our side" in message and "Our support team can see the problem." in message

    # Our credentials fixed and the provider back: everything drains, the incident closes.
    recover("provisioning")
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED
    assert (incident.affected, incident.drained) == (8, 8)
    assert Workspace.objects.count() == 8
    assert incident.events.get(kind=IncidentEventKind.RECOVERED).text.startswith(
        "The workspace provider accepted our credentials again")
    apologised = sorted(m.to[0] for m in mail.outbox if m.subject == str(EMAIL_SUBJECTS["all_set"]))
    assert apologised == sorted(emails)


def test_a_lost_announcement_of_the_new_cause_is_caught_up_by_the_next_check(sign_up, down, drive, sandbox,  # noqa: F811
                                                                             settings, console, committed):
    down("provisioning")
    sign_up(6)
    drive(max_passes=5)
    incident = Incident.objects.get()
    sandbox("provisioning", "unauthorized")
    settings.BREAKER_PROBE_SECONDS = 0
    # The probe runs, but what its transaction announced on commit is lost.
    step = ProvisioningRequest.objects.filter(status=StepStatus.PENDING).order_by("pk").first()
    assert step_run("workspace", step.pk) == "retrying"
    incident.refresh_from_db()
    assert incident.cause == ""
    with committed():
        sweep()
    incident.refresh_from_db()
    assert (incident.opened_by, incident.cause) == ("credentials", "http_401")
    assert CHECK_CREDENTIALS in incident_page(console, incident)
