"""Whoever re-runs a person's setup, the account's timeline says who did and why, in
that one's words: the person signing up again, an operator, support, a reopened
account, or an outage's incident taking over a step that ran out of retries. Each
used to read "signed up again", whoever it was."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command

from accounts.services import account_close, account_reopen, account_resume
from provisioning import durable
from provisioning.durable import StepStatus
from provisioning.models import Event, ProvisioningRequest
from support import actions
from support.models import Incident, IncidentStatus, Ticket

WORKSPACE = "workspace"


def _last_rearm(account) -> tuple[str, str]:
    event = Event.objects.filter(account=account, subject=WORKSPACE, to_state=StepStatus.PENDING).last()
    return event.actor, event.why


@pytest.mark.parametrize("who", ["person", "operator", "console", "reopened"])
def test_a_re_run_says_on_the_timeline_who_did_it_and_why(who, stranded, support_user, committed):
    account = stranded()
    assert ProvisioningRequest.objects.get(account=account).status == StepStatus.FAILED

    with committed():
        if who == "person":
            account_resume(account=account)
        elif who == "operator":
            call_command("retry_setup", account.email, stdout=open("/dev/null", "w"))  # noqa: SIM115
        elif who == "console":
            actions.retry_setup(actor=support_user, account=account)
        else:
            account_close(account=account, actor="support (a@support.example)", reason="asked to")
            account_reopen(account=account, actor="support (a@support.example)", reason="changed their mind")

    assert _last_rearm(account) == {
        "person": ("the person", "signed up again"),
        "operator": ("operator (manage.py retry_setup)", "re-run by an operator"),
        "console": (actions.console_actor(support_user), "re-run from the console"),
        "reopened": ("support (a@support.example)", "account reopened"),
    }[who]


def test_a_step_out_of_retries_during_an_outage_waits_for_the_recovery_and_says_so(
        register, sandbox, settings, committed):
    """Workers died on each of its attempts, and the provider's circuit opened
    meanwhile: the take-over that gives the step up hands it to the incident, which
    re-arms it to wait with the others; no ticket, and the timeline says why."""
    settings.PROVISIONING_MAX_ATTEMPTS = 3
    settings.BREAKER_FAILURE_THRESHOLD = 2
    settings.BREAKER_PROBE_SECONDS = 3600  # the re-armed step waits: no probe is due yet
    settings.STEP_LEASE_SECONDS = 0  # each worker's lease runs out the moment it dies
    sandbox("provisioning", "error")
    account = register()  # its first attempt fails: one of the two failures that open the circuit
    request = ProvisioningRequest.objects.get(account=account)
    kind = durable.kind_named(WORKSPACE)
    for n in range(3):  # three workers claim the step and die before recording
        assert durable.claim(kind, request.pk, now=request.next_attempt_at + timedelta(microseconds=n))
    assert ProvisioningRequest.objects.get(account=account).counted_attempts == 3
    other = register(email="grace@example.com")  # the second failure: the circuit opens
    assert ProvisioningRequest.objects.get(account=other).status == StepStatus.PENDING

    with committed():
        assert durable.step_run(WORKSPACE, request.pk) == "failed"

    incident = Incident.objects.get(status=IncidentStatus.OPEN)
    assert _last_rearm(account) == (
        f"incident {incident.pk}", "ran out of retries during the outage: waits for the recovery with the others")
    assert ProvisioningRequest.objects.get(account=account).status == StepStatus.PENDING
    assert not Ticket.objects.filter(account=account).exists()
