"""Developers' commands: where an account stands (`account_status`), re-running its
stopped steps (`retry_setup`), one dispatcher pass (`reconcile`), the sandbox switches
(`sandbox`) and the replayed story (`demo_outage`)."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import EmailDelivery, EmailKind
from accounts.tests.factories import sent_to, sign_up
from provisioning.durable import StepStatus
from provisioning.models import ProvisioningRequest, SandboxSwitch, Workspace

pytestmark = pytest.mark.django_db


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


# --- account_status ----------------------------------------------------------------------


def test_account_status_tells_where_an_account_stands_and_why(sandbox, drive, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 50
    sandbox("provisioning", "error")
    sandbox("email", "reject")
    sign_up(email="ada@example.com", name="Ada Lovelace", company="Analytical Engines")
    drive(max_passes=3)

    out = run("account_status", "ADA@example.com")

    assert "ada@example.com  (Ada Lovelace, Analytical Engines, +14155550100)" in out
    assert "state:     delayed" in out
    assert "workspace: pending (step pending, 3 attempts" in out
    assert "last error: http_503: The provider failed with HTTP 503." in out
    assert "email:     unverified, delivery failed" in out
    emails = out.split("emails:")[1].split("timeline:")[0]
    assert "verification" in emails and "failed" in emails and "recipient_rejected" in emails
    timeline = out.split("timeline:")[1]
    assert "signed up" in timeline and "[the person]" in timeline
    assert "signup: a workspace is owed" in timeline


def test_account_status_of_an_active_account(drive):
    client, _ = sign_up(email="ada@example.com")
    drive()

    out = run("account_status", "ada@example.com")

    assert "state:     unverified" in out
    assert "workspace: ready (step succeeded, 1 attempts" in out
    assert "created after 1 attempt(s)" in out


def test_account_status_of_an_unknown_address_is_an_error():
    with pytest.raises(CommandError, match="No account uses nobody@example.com"):
        run("account_status", "nobody@example.com")


# --- retry_setup -----------------------------------------------------------------------------


def test_retry_setup_rearms_failed_steps_once_however_often_it_runs(sandbox, drive):
    sandbox("provisioning", "reject")
    sandbox("email", "reject")
    _, account = sign_up(email="ada@example.com")
    drive()
    request = ProvisioningRequest.objects.get()
    assert request.status == StepStatus.FAILED
    assert EmailDelivery.objects.get().status == StepStatus.FAILED

    first = run("retry_setup", "ada@example.com")
    second = run("retry_setup", "Ada@Example.com")

    assert first == "ada@example.com: workspace, verification email\n"
    assert second.startswith("ada@example.com:")
    request.refresh_from_db()
    assert request.status == StepStatus.PENDING
    assert ProvisioningRequest.objects.count() == 1
    deliveries = EmailDelivery.objects.filter(account=account, kind=EmailKind.VERIFICATION)
    assert deliveries.count() == 2  # the refused one, and one fresh one however often we run
    assert deliveries.filter(status=StepStatus.PENDING).count() == 1

    sandbox("provisioning", "ok")
    sandbox("email", "ok")
    drive()

    assert Workspace.objects.filter(owner=account).count() == 1
    assert len(sent_to("ada@example.com", subject="Confirm")) == 1
    assert run("retry_setup", "ada@example.com") == "ada@example.com: nothing to retry\n"


def test_retry_setup_all_failed_takes_only_stuck_accounts(sandbox, drive):
    sign_up(email="healthy@example.com")
    drive()
    sandbox("provisioning", "reject")
    sign_up(email="ada@example.com")
    sign_up(email="bob@example.com")
    drive()
    failed = ProvisioningRequest.objects.filter(status=StepStatus.FAILED)
    assert failed.count() == 2

    out = run("retry_setup", "--all-failed")
    again = run("retry_setup", "--all-failed")

    assert "ada@example.com: workspace" in out and "bob@example.com: workspace" in out
    assert "healthy@example.com" not in out
    assert "No account has a failed step." in again
    assert ProvisioningRequest.objects.count() == 3
    assert not failed.exists()
    sandbox("provisioning", "ok")
    drive()
    assert Workspace.objects.count() == 3


def test_retry_setup_all_failed_with_nothing_stuck(drive):
    sign_up(email="ada@example.com")
    drive()

    assert run("retry_setup", "--all-failed") == "No account has a failed step.\n"


def test_retry_setup_all_failed_ignores_links_cancelled_by_a_corrected_address(sandbox, drive):
    sandbox("email", "error")
    client, _ = sign_up(email="ada@exmaple.com")
    drive(max_passes=1)
    client.post("/setup/email/", {"email": "ada@example.com"})  # cancels the owed link
    sandbox("email", "ok")
    drive()

    assert run("retry_setup", "--all-failed") == "No account has a failed step.\n"


@pytest.mark.parametrize("args", [(), ("ada@example.com", "--all-failed")])
def test_retry_setup_needs_one_address_or_all_failed(args):
    with pytest.raises(CommandError, match="Give one EMAIL, or --all-failed"):
        run("retry_setup", *args)


def test_retry_setup_of_an_unknown_address_is_an_error():
    with pytest.raises(CommandError, match="No account uses"):
        run("retry_setup", "nobody@example.com")


# --- sandbox ---------------------------------------------------------------------------------


def test_sandbox_shows_the_modes():
    out = run("sandbox")

    assert out.splitlines()[0].split()[:2] == ["provisioning", "ok"]
    assert out.splitlines()[1].split()[:2] == ["email", "ok"]


def test_sandbox_switches_a_provider_and_the_switch_takes_effect(drive):
    out = run("sandbox", "provisioning", "reject")

    assert out.splitlines()[0].split()[:2] == ["provisioning", "reject"]
    assert SandboxSwitch.objects.get(provider="provisioning").mode == "reject"
    client, _ = sign_up(email="ada@example.com")
    drive()
    assert client.get("/setup/status.json").json()["state"] == "needs_support"
    assert "1 calls so far" in run("sandbox").splitlines()[0]


def test_sandbox_flaky_fails_the_given_number_of_times(drive, settings):
    out = run("sandbox", "email", "flaky", "--failures", "2")

    assert "(2 failures left)" in out.splitlines()[1]
    _, account = sign_up(email="ada@example.com")
    drive()
    delivery = EmailDelivery.objects.get(account=account)
    assert (delivery.status, delivery.attempts) == (StepStatus.SUCCEEDED, 3)


def test_sandbox_all_switches_both():
    out = run("sandbox", "all", "timeout")

    assert [line.split()[1] for line in out.splitlines()] == ["timeout", "timeout"]


def test_sandbox_without_a_mode_says_which_modes_exist():
    with pytest.raises(CommandError, match="Say which mode"):
        run("sandbox", "email")


# --- reconcile -------------------------------------------------------------------------------


def test_reconcile_prints_what_it_dispatched(drive):
    sign_up(email="ada@example.com")  # its first attempts are owed

    first = run("reconcile")
    second = run("reconcile")

    assert "workspace: 1 dispatched" in first and "email: 1 dispatched" in first
    assert "workspace: 0 dispatched" in second and "email: 0 dispatched" in second
    assert ProvisioningRequest.objects.get().status == StepStatus.SUCCEEDED


# --- demo_outage -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_demo_outage_tells_the_whole_story_and_succeeds():
    # Real commits: the story's "you're all set" email is queued by an on-commit
    # announcement, which a test wrapped in one transaction would never make.
    out = run("demo_outage")

    assert "FAIL" not in out
    assert "ok    1. Signup during the outage answers at once and lands on /setup/" in out
    assert "The account is active" in out
    assert "The story holds: nobody was stranded." in out
    assert [s.mode for s in SandboxSwitch.objects.order_by("provider")] == ["ok", "ok"]  # left healthy
