"""Abandoned signups: never verified and never used → warned at day 23, removed at
day 30 (never sooner than 7 days after the warning), so the address goes back to
its owner. Time passes by ageing every timestamp in the database (``days_pass``):
tests cannot wait a month."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db.models import F
from django_q.models import Schedule
from django_q.tasks import async_task

from accounts.flows.purge import SCHEDULE_NAME, abandoned_signups_purge
from accounts.models import EmailDelivery, EmailKind, User
from accounts.selectors import user_by_email
from accounts.services import BeingRemoved, account_close, account_reopen
from conftest import PASSWORD
from provisioning import durable
from provisioning.models import DeprovisionRequest, Event, SandboxWorkspace, Workspace

pytestmark = pytest.mark.django_db


def days_pass(days: float) -> None:
    delta = timedelta(days=days)
    User.objects.update(date_joined=F("date_joined") - delta, last_login=F("last_login") - delta)
    EmailDelivery.objects.update(created_at=F("created_at") - delta, completed_at=F("completed_at") - delta)


@pytest.fixture
def signed_up(client, signup_data, drive):
    """Signed up through the page (which logs the person in once), workspace ready,
    verification email sent, then left alone."""
    assert client.post("/signup/", signup_data).status_code == 302
    drive()
    client.post("/logout/")
    mail.outbox.clear()
    return user_by_email(email=signup_data["email"])


def _warnings() -> list:
    return [m for m in mail.outbox if "It will be removed in a week" in m.subject]


def test_abandoned_signup_is_warned_then_removed_and_the_address_is_free(client, signup_data, signed_up,
                                                                         drive, caplog):
    days_pass(22)
    assert str(abandoned_signups_purge()) == "warned 0: -; removed 0: -"

    days_pass(1)
    assert abandoned_signups_purge().warned == ["a***@example.com"]
    drive()
    [warning] = _warnings()
    assert warning.to == ["ada@example.com"]
    assert "log in with the password you chose before" in warning.body
    assert "http://127.0.0.1:8000/login/" in warning.body
    assert abandoned_signups_purge().warned == []  # warned once per address

    days_pass(6)  # day 29
    assert abandoned_signups_purge().removed == []
    assert User.objects.filter(pk=signed_up.pk).exists()

    days_pass(1)  # day 30, 7 days after the warning
    with caplog.at_level("INFO", logger="accounts.flows.purge"):
        report = abandoned_signups_purge()
        # First the workspace goes at the provider; the account is closed meanwhile.
        assert (report.removed, report.removing) == ([], ["a***@example.com"])
        assert not User.objects.get(pk=signed_up.pk).is_active
        assert SandboxWorkspace.objects.exists()
        drive()
    assert not User.objects.filter(pk=signed_up.pk).exists()
    assert not Workspace.objects.exists() and not EmailDelivery.objects.exists()
    assert not SandboxWorkspace.objects.exists()  # removed at the provider too
    removal = Event.objects.get(to_state="removed")
    assert removal.account is None and "a***@example.com" in removal.why and str(signed_up.pk) in removal.why
    assert any("abandoned signup removed" in r.getMessage() for r in caplog.records)

    # The address's real owner can now sign up with it, with their own password.
    client.post("/signup/", {**signup_data, "password": "another long passphrase 42"})
    assert user_by_email(email="ada@example.com").pk != signed_up.pk


def test_a_person_who_came_back_is_never_warned_or_removed(client, signed_up, drive):
    days_pass(3)
    client.post("/login/", {"email": "ada@example.com", "password": PASSWORD})
    days_pass(60)
    assert str(abandoned_signups_purge()) == "warned 0: -; removed 0: -"
    assert User.objects.filter(pk=signed_up.pk).exists()


def test_a_verified_account_is_never_warned_or_removed(client, signup_data, drive):
    client.post("/signup/", signup_data)
    drive()
    link = re.search(r"http://127\.0\.0\.1:8000(/verify/\S+/)", mail.outbox[0].body).group(1)
    client.post(link)
    assert user_by_email(email="ada@example.com").email_verified
    days_pass(60)
    assert str(abandoned_signups_purge()) == "warned 0: -; removed 0: -"


def test_removal_waits_a_week_after_a_late_warning(signed_up, drive):
    days_pass(40)  # first seen long after day 30 (say, the feature was just deployed)
    assert abandoned_signups_purge().warned == ["a***@example.com"]
    drive()
    days_pass(6.9)
    assert abandoned_signups_purge().removing == []
    days_pass(0.2)
    assert abandoned_signups_purge().removing == ["a***@example.com"]


def test_an_account_waiting_on_our_team_is_left_to_support(client, signup_data, sandbox, drive):
    sandbox("provisioning", "reject")  # workspace step fails for good: needs_support
    client.post("/signup/", signup_data)
    drive()
    days_pass(60)
    assert str(abandoned_signups_purge()) == "warned 0: -; removed 0: -"


def test_the_command_dry_run_lists_and_changes_nothing(signed_up, drive):
    days_pass(31)
    out = io.StringIO()
    call_command("purge_abandoned_signups", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "would warn 1: a***@example.com; would remove 0: -"
    assert not EmailDelivery.objects.filter(kind=EmailKind.ABANDON_WARNING).exists()

    call_command("purge_abandoned_signups", stdout=out)
    drive()
    days_pass(7)
    out = io.StringIO()
    call_command("purge_abandoned_signups", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "would warn 0: -; would remove 1: a***@example.com"
    assert User.objects.filter(pk=signed_up.pk).exists()


def test_it_runs_daily_on_its_own(signed_up):
    schedule = Schedule.objects.get(name=SCHEDULE_NAME)
    assert schedule.schedule_type == Schedule.DAILY and schedule.repeats == -1
    days_pass(31)
    async_task(schedule.func)  # what the scheduler does (inline in tests)
    # Successful tasks are not stored (Q_CLUSTER save_limit): the warning it queued is the proof.
    assert EmailDelivery.objects.filter(account=signed_up, kind=EmailKind.ABANDON_WARNING).count() == 1


def _warned_a_week_ago(drive) -> None:
    days_pass(23)
    assert abandoned_signups_purge().warned == ["a***@example.com"]
    drive()  # the warning goes out


def test_an_account_support_is_handling_is_never_removed(client, signed_up, drive):
    from support.models import Ticket
    from support.services import ticket_resolve

    _warned_a_week_ago(drive)
    client.post("/help/", {"email": "ada@example.com", "message": "Please keep my account, I'll be back"})
    drive()  # our acknowledgement goes out
    days_pass(30)

    assert str(abandoned_signups_purge()) == "warned 0: -; removed 0: -"
    assert User.objects.get(pk=signed_up.pk).is_active

    ticket_resolve(ticket=Ticket.objects.get(), actor="support (test)")  # support is done with it
    assert abandoned_signups_purge().removing == ["a***@example.com"]


def test_an_account_with_a_step_still_under_way_is_never_warned_or_removed(client, signup_data, sandbox, drive):
    sandbox("provisioning", "timeout")
    client.post("/signup/", signup_data)
    drive(max_passes=1)  # the workspace step is still retrying
    days_pass(60)

    assert str(abandoned_signups_purge()) == "warned 0: -; removed 0: -"


@pytest.mark.parametrize("fate", ["bounced", "refused"])
def test_an_account_whose_warning_never_reached_it_is_never_removed(signed_up, sandbox, drive, fate):
    from accounts.services import email_mark_bounced

    days_pass(23)
    if fate == "refused":
        sandbox("email", "reject")
    assert abandoned_signups_purge().warned == ["a***@example.com"]
    drive()
    if fate == "bounced":
        email_mark_bounced(esp="test", event_id="bounce-1", recipient="ada@example.com", event_type="bounced")
    warning = EmailDelivery.objects.get(kind=EmailKind.ABANDON_WARNING)
    assert warning.bounced_at is not None if fate == "bounced" else warning.status == "failed"
    days_pass(30)

    assert str(abandoned_signups_purge()) == "warned 0: -; removed 0: -"
    assert User.objects.get(pk=signed_up.pk).is_active


def test_the_workspace_goes_at_the_http_provider_before_the_account(client, signup_data, settings, drive):
    from provisioning.tests.fake_provider import FakeProvider

    with FakeProvider() as provider:
        settings.PROVISIONING_BACKEND = "http"
        settings.PROVISIONING_URL = provider.url
        settings.PROVISIONING_TIMEOUT = 0.5
        client.post("/signup/", signup_data)
        drive()
        client.post("/logout/")
        account = user_by_email(email=signup_data["email"])
        [workspace_id] = provider.workspaces.values()
        _warned_a_week_ago(drive)
        days_pass(7)

        provider.mode = "error"  # the provider is down while we remove it
        assert abandoned_signups_purge().removing == ["a***@example.com"]
        drive()
        assert DeprovisionRequest.objects.get().status == "failed"
        assert User.objects.filter(pk=account.pk, is_active=False).exists()  # kept, closed
        assert provider.removed == []

        provider.mode = "ok"  # the next day's run tries again
        assert abandoned_signups_purge().removing == ["a***@example.com"]
        drive()

    assert provider.removed == [workspace_id]
    assert not User.objects.filter(pk=account.pk).exists()
    keys = {r["idempotency_key"] for r in provider.requests if r["method"] == "DELETE"}
    assert keys == {DeprovisionRequest.objects.get().idempotency_key}
    assert DeprovisionRequest.objects.get().account is None  # the record outlives the account
    assert abandoned_signups_purge().removed == []


def _removal_begun(drive) -> User:
    _warned_a_week_ago(drive)
    days_pass(7)
    assert abandoned_signups_purge().removing == ["a***@example.com"]  # closed, removal owed
    return User.objects.get(email="ada@example.com")


def test_reopening_before_the_removal_reaches_the_provider_keeps_the_workspace(signed_up, drive):
    account = _removal_begun(drive)  # the removal's task has not run yet

    account_reopen(account=account, actor="support:1", reason="they called: they want it")
    drive()

    assert User.objects.get(pk=account.pk).is_active
    assert Workspace.objects.filter(owner=account).count() == 1
    assert SandboxWorkspace.objects.count() == 1  # never removed at the provider
    assert DeprovisionRequest.objects.get().last_error_code == "cancelled"
    # Support decided to keep it: later runs of the purge leave it alone.
    days_pass(60)
    report = abandoned_signups_purge()
    assert (report.warned, report.removed, report.removing) == ([], [], [])
    assert User.objects.filter(pk=account.pk, is_active=True).exists()


def test_an_account_reopened_then_closed_again_keeps_its_workspace(signed_up, drive):
    account = _removal_begun(drive)
    account_reopen(account=account, actor="support:1", reason="they want it")
    drive()
    account_close(account=User.objects.get(pk=account.pk), actor="support:1", reason="they asked for a pause")

    for _ in range(2):  # the daily runs that follow
        abandoned_signups_purge()
        drive()

    assert User.objects.filter(pk=account.pk, is_active=False).exists()  # closed, and can be reopened
    assert SandboxWorkspace.objects.count() == 1 and Workspace.objects.filter(owner=account).exists()


def test_an_account_reopened_after_the_provider_refused_its_removal_is_never_removed_later(
        signed_up, drive, sandbox):
    account = _removal_begun(drive)
    sandbox("provisioning", "reject")  # the provider refuses the removal for good
    drive()
    assert DeprovisionRequest.objects.get().status == "failed"
    sandbox("provisioning", "ok")
    account_reopen(account=account, actor="support:1", reason="they want it")
    account_close(account=User.objects.get(pk=account.pk), actor="support:1", reason="they asked for a pause")

    for _ in range(2):  # the daily runs that follow
        abandoned_signups_purge()
        drive()

    assert User.objects.filter(pk=account.pk, is_active=False).exists()
    assert SandboxWorkspace.objects.count() == 1 and Workspace.objects.filter(owner=account).exists()


def test_reopening_while_the_provider_removes_the_workspace_waits_for_its_answer(signed_up, drive):
    account = _removal_begun(drive)
    removal = DeprovisionRequest.objects.get()
    durable.claim(durable.kind_named("workspace_removal"), removal.pk)  # a worker is calling the provider

    with pytest.raises(BeingRemoved, match="being removed at the provider right now"):
        account_reopen(account=account, actor="support:1", reason="they called")

    assert not User.objects.get(pk=account.pk).is_active
    assert DeprovisionRequest.objects.get().status == "running"  # left to its worker


def test_an_account_whose_workspace_is_gone_is_not_reopened_without_one(signed_up, drive):
    account = _removal_begun(drive)
    # The provider removes it; the "removed" announcement (on commit) is lost.
    assert durable.step_run("workspace_removal", DeprovisionRequest.objects.get().pk) == "succeeded"
    assert DeprovisionRequest.objects.get().status == "succeeded" and User.objects.filter(pk=account.pk).exists()

    with pytest.raises(BeingRemoved, match="The person can sign up again with the same address"):
        account_reopen(account=account, actor="support:1", reason="they called")

    assert not User.objects.get(pk=account.pk).is_active
    assert abandoned_signups_purge().removed == ["a***@example.com"]  # the backstop finishes it
