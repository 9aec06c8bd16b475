"""An incident's figures are defined once (support.incidents.incident_figures) and
every place that shows them agrees, at every moment of an outage driven through the
sandbox provider: the incident page, the incident list, the banner on the dashboard
and the incident's own timeline lines. None contradicts another: waiting now is never
above the peak, nor the peak above those affected, and what drained plus what waits
never exceeds those affected."""
from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from provisioning import breaker
from support.incidents import IncidentFigures, incident_figures
from support.models import Incident, IncidentEventKind, IncidentStatus
from support.tests.test_incidents import down, recover, sign_up  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return html.unescape(response.content.decode())


def shown(console: Client, incident: Incident) -> IncidentFigures:
    """The figures as the incident page shows them."""
    page = text(console.get(f"/admin/support/incident/{incident.pk}/change/"))
    value = {name: int(re.search(rf'id="figure-{name}">(\d+)', page).group(1))
             for name in ("affected", "waiting", "drained", "peak")}
    return IncidentFigures(**value)


def consistent(figures: IncidentFigures) -> bool:
    return figures.waiting <= figures.peak <= figures.affected and figures.waiting + figures.drained <= figures.affected


def listed(console: Client) -> list[int]:
    """The list's four figure columns of its one row: affected, waiting, drained, peak."""
    row = text(console.get("/admin/support/incident/")).split('<tbody>')[1].split("</tr>")[0]
    cells = re.findall(r'<td class="field-(affected_|waiting_now|drained_|peak)">(\d+)</td>', row)
    return [int(value) for _, value in cells]


def test_the_figures_agree_everywhere_through_an_outage(sign_up, down, recover, drive, console,  # noqa: F811
                                                        settings, sandbox, committed):
    down("provisioning")
    sign_up(6)
    drive(max_passes=5)
    incident = Incident.objects.get()

    # During the outage: everyone affected waits, nothing drained; the page, the list
    # and the dashboard's banner say the same.
    during = shown(console, incident)
    assert during == incident_figures(incident) and consistent(during)
    assert (during.affected, during.waiting, during.drained) == (6, 6, 0)
    assert listed(console) == [during.affected, during.waiting, during.drained, during.peak]
    assert f"{during.waiting} signups are waiting on it" in text(console.get("/admin/"))

    # The provider recovers: the recovery line says how many of those affected still
    # wait, in the page's own figures, and the peak is never below what waited.
    recover("provisioning")
    assert not breaker.is_open("provisioning")
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED
    after = shown(console, incident)
    assert consistent(after) and after.waiting == 0
    assert (after.affected, after.drained) == (6, 6) and after.peak >= during.waiting
    lines = {event.kind: event.text for event in incident.events.all()}
    recovered = re.search(r"(\d+) of the (\d+) accounts affected still wait .*; (\d+) already went through",
                          lines[IncidentEventKind.RECOVERED])
    waiting, affected, through = (int(n) for n in recovered.groups())
    # The probe that closed the circuit went through first; everyone else still waited.
    assert affected == during.affected and waiting + through == during.waiting and through >= 1
    assert f"{after.affected} accounts affected, {after.drained} drained" in lines[IncidentEventKind.CLOSED]
    assert listed(console) == [after.affected, after.waiting, after.drained, after.peak]


def test_a_peak_never_reads_below_what_waits_now(sign_up, down, drive, console):  # noqa: F811
    """The stored peak is sampled (at recovery and at each close check); what waits
    now is live. The figures never show the live count above the peak."""
    down("provisioning")
    sign_up(6)
    drive(max_passes=5)
    incident = Incident.objects.get()
    Incident.objects.filter(pk=incident.pk).update(peak_backlog=0)  # never sampled yet
    incident.refresh_from_db()
    figures = shown(console, incident)
    assert figures.waiting == 6 and figures.peak == 6


def test_only_people_waiting_for_setup_count_as_waiting(sign_up, down, recover, drive, console,  # noqa: F811
                                                        committed):
    """A workspace removal (the abandoned-signup purge's) held by the same outage is
    not a person waiting: it is counted nowhere in the figures or the banner, and
    still drains when the provider recovers."""
    from provisioning.models import DeprovisionRequest, Workspace
    from provisioning.removal import workspace_removal_request

    sign_up(1, prefix="leaving")
    drive()
    down("provisioning")
    with committed():
        workspace_removal_request(workspace=Workspace.objects.get(), why="abandoned signup")
    drive(max_passes=2)
    removal = DeprovisionRequest.objects.get()
    assert removal.status == "pending" and removal.last_error_code  # held by the outage after an error
    sign_up(6)
    drive(max_passes=5)
    incident = Incident.objects.get()

    figures = shown(console, incident)
    assert figures == incident_figures(incident)
    assert (figures.affected, figures.waiting, figures.drained) == (6, 6, 0)
    assert "6 signups are waiting on it" in text(console.get("/admin/"))

    recover("provisioning")
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED and (incident.affected, incident.drained) == (6, 6)
    assert DeprovisionRequest.objects.get().status == "succeeded"


@pytest.mark.parametrize("provider", ["provisioning", "email"])
def test_the_figures_are_what_the_definitions_find_over_every_account(provider, mixed_accounts, sign_up, down,  # noqa: F811
                                                                      drive, console, settings, sandbox):
    """The figures are counted from the steps the outage touched, not by testing every
    account: they are what the definitions (``outage_waited``, ``outage_waiting``) find
    over every account, at every moment, among accounts in every state (some with
    errors from before the outage, which the figures must leave out); and everyone the
    banner counts as waiting reads ``delayed``, as their own page says."""
    from accounts.models import EmailDelivery, User
    from accounts.selectors import State, with_lifecycle_state
    from provisioning.durable import step_run
    from provisioning.models import ProvisioningRequest
    from provisioning.selectors import outage_waited, outage_waiting

    with time_machine.travel(timezone.now() - timedelta(hours=1), tick=False) as clock:
        mixed_accounts(13)
        settings.EMAIL_MAX_ATTEMPTS = 6  # as deployed (the mixed accounts' emails gave up at once)
        # One more waited on an error and then went through, long before the outage.
        sandbox(provider, "error")
        sign_up(1, prefix="earlier")
        drive(max_passes=1)
        sandbox(provider, "ok")
        clock.shift(timedelta(minutes=30))
        drive()
    settings.BREAKER_FAILURE_THRESHOLD = 3  # as deployed: many alike open the circuit
    down(provider)
    waiting_for = sign_up(6, prefix="held")
    drive(max_passes=5)
    incident = Incident.objects.get()
    confirmed = 0
    if provider == "email":
        # One confirms with a link that went out before (say, resent): their held
        # verification email holds nobody up now; they are all set, not waiting.
        from accounts.services import email_verify
        from accounts.tokens import make_verification_token

        email_verify(token=make_verification_token(User.objects.get(email=waiting_for[-1])))
        confirmed = 1
    since = incident.started_at - timedelta(seconds=settings.BREAKER_WINDOW_SECONDS)

    def by_definition() -> tuple[int, int, int]:
        waiting = User.objects.filter(outage_waiting(provider))
        return (User.objects.filter(outage_waited(provider, since)).count(), waiting.count(),
                User.objects.filter(outage_waited(provider, since, drained=True)).exclude(
                    outage_waiting(provider)).count())

    during = incident_figures(incident)
    assert (during.affected, during.waiting, during.drained) == by_definition()
    # All those affected wait but one who confirmed: the earlier error is not this outage's.
    assert during.affected - confirmed == during.waiting >= 6 - confirmed and during.drained == 0
    assert User.objects.filter(outage_waited(provider, since - timedelta(hours=1)), email="earlier0@example.com")
    waiting = with_lifecycle_state(User.objects.filter(outage_waiting(provider)))
    assert set(waiting.values_list("lifecycle_state", flat=True)) == {State.DELAYED}
    assert f"{during.waiting} signups are waiting on it" in text(console.get("/admin/"))

    # The provider is back; two of those held go through (the first as the probe),
    # a moment before the rest: the incident is still open, its figures live.
    sandbox(provider, "ok")
    settings.BREAKER_PROBE_SECONDS = 0
    steps = (ProvisioningRequest.objects.filter(account__email__in=waiting_for) if provider == "provisioning"
             else EmailDelivery.objects.filter(account__email__in=waiting_for, kind="verification"))
    for step in steps.filter(next_attempt_at__lte=timezone.now()).order_by("pk")[:2]:  # held, so due
        assert step_run("workspace" if provider == "provisioning" else "email", step.pk) == "succeeded"
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.OPEN and not breaker.is_open(provider)
    draining = incident_figures(incident)
    assert (draining.affected, draining.waiting, draining.drained) == by_definition()
    assert (draining.affected, draining.waiting, draining.drained) == (during.affected, during.waiting - 2, 2)
    assert shown(console, incident) == draining and consistent(draining)
