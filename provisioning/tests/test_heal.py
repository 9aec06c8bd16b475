"""Healing after an outage: the moment the circuit closes, the work it held is
dispatched, without waiting for another scheduled pass; and a pass that fills its
budget queues the next one itself."""
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning import breaker
from provisioning.models import Breaker, ProvisioningRequest
from provisioning.reconciler import reconcile
from provisioning.tasks import reconcile as reconcile_task
from provisioning.tests.test_breaker import _signups, tight  # noqa: F401 (a fixture)


@pytest.mark.django_db
@pytest.mark.usefixtures("tight")
def test_closing_the_circuit_dispatches_the_held_steps_at_once(
        sandbox, signup_data, drive, django_capture_on_commit_callbacks):
    sandbox("provisioning", "error")
    _signups(6, signup_data)
    drive(max_passes=8)
    assert breaker.is_open("provisioning")
    assert ProvisioningRequest.objects.filter(status="pending").count() == 6
    sandbox("provisioning", "ok")

    # One pass: it sends the single probe the open circuit allows. The probe succeeds,
    # the circuit closes, and the other five go out on the spot, not a pass later.
    with django_capture_on_commit_callbacks(execute=True):
        report = reconcile()
    assert report.dispatched["workspace"] == 1
    assert not breaker.is_open("provisioning")
    assert ProvisioningRequest.objects.filter(status="succeeded").count() == 6


@pytest.mark.django_db
def test_a_pass_that_fills_its_budget_queues_the_next_pass(
        settings, sandbox, signup_data, django_capture_on_commit_callbacks):
    sandbox("provisioning", "error")
    _signups(3, signup_data)  # every first attempt fails; the retries are due at once
    sandbox("provisioning", "ok")
    # A budget of 2 steps per pass (rate 2/s × 1 s): three due steps need two passes.
    settings.PROVIDER_RATE_PER_SECOND = 2
    settings.RECONCILE_EVERY_SECONDS = 1

    with django_capture_on_commit_callbacks(execute=True):
        report = reconcile_task()  # one scheduled pass, as django-q2 runs it
    assert report.startswith("workspace: 2 dispatched")
    assert ProvisioningRequest.objects.filter(status="succeeded").count() == 3


@pytest.mark.django_db
@pytest.mark.usefixtures("tight")
def test_a_pass_that_sent_a_failing_probe_sends_the_next_one_when_due(
        settings, sandbox, signup_data, drive, django_capture_on_commit_callbacks):
    sandbox("provisioning", "error")
    _signups(4, signup_data)
    drive(max_passes=6)
    assert breaker.is_open("provisioning")
    settings.BREAKER_PROBE_SECONDS = 1
    # The provider fails the next probe, then recovers.
    sandbox("provisioning", "flaky", failures=1)
    # Tasks run inline here; outside the sync mode of tests, the next pass is queued.
    settings.Q_CLUSTER = {k: v for k, v in settings.Q_CLUSTER.items() if k != "sync"}
    Breaker.objects.update(probed_at=timezone.now() - timedelta(seconds=1))  # a probe is due

    with django_capture_on_commit_callbacks(execute=True):
        reconcile_task()  # one scheduled pass: its probe fails
    # The pass it queued sent the next probe one interval later, without the scheduler.
    assert not breaker.is_open("provisioning")
    assert ProvisioningRequest.objects.filter(status="succeeded").count() == 4


def _apologise(account, django_capture_on_commit_callbacks):
    """Owe the account its "you're all set" apology, as a workspace made ready after
    a wait does; returns it and whether it was handed to the queue on commit."""
    from django.db import transaction

    from accounts.emails import email_queue
    from accounts.models import EmailKind

    with django_capture_on_commit_callbacks() as enqueued, transaction.atomic():
        apology = email_queue(account=account, kind=EmailKind.ALL_SET, key=str(account.pk))
    return apology, bool(enqueued)


def _verification_sent(account) -> None:
    """A worker sends the account's verification link: no other email is owed to the
    person, so only setup work can hold their apology (it waits for the emails still
    owed to its person too: accounts.tests.test_email_order)."""
    from accounts.models import EmailDelivery, EmailKind
    from provisioning.tasks import run_step

    assert run_step("email", EmailDelivery.objects.get(account=account, kind=EmailKind.VERIFICATION).pk) == "succeeded"


@pytest.fixture
def budget_of_two(settings):
    """A pass's budget of two steps (2/s × 1 s): two due workspaces are a backlog."""
    settings.PROVIDER_RATE_PER_SECOND = 2
    settings.RECONCILE_EVERY_SECONDS = 1


@pytest.mark.usefixtures("budget_of_two")
def test_apologies_wait_while_workspaces_are_due_and_follow_them(
        register, django_capture_on_commit_callbacks):
    from accounts.models import EmailDelivery, EmailKind
    from provisioning.tasks import run_step
    from provisioning.tests.test_reconciler import Queue

    waited, _ = register(email="waited@example.com")
    _, other = register(email="other@example.com")
    verifications = set(EmailDelivery.objects.filter(kind=EmailKind.VERIFICATION).values_list("pk", flat=True))

    # Two workspaces are due: the apology is left to the dispatcher (owed twice, once)...
    apology, enqueued = _apologise(waited, django_capture_on_commit_callbacks)
    again, enqueued_again = _apologise(waited, django_capture_on_commit_callbacks)
    assert (again, enqueued, enqueued_again) == (apology, False, False)
    assert EmailDelivery.objects.filter(kind=EmailKind.ALL_SET).count() == 1
    queue = Queue()
    reconcile(enqueue=queue)
    # ... which sends the workspaces and the verification links, not the apology.
    assert {pk for kind, pk in queue.tasks if kind == "workspace"} == set(
        ProvisioningRequest.objects.values_list("pk", flat=True))
    assert {pk for kind, pk in queue.tasks if kind == "email"} == verifications

    # The workers make the workspaces: the next pass sends the apology.
    for kind, pk in queue.tasks:
        run_step(kind, pk)
    assert not ProvisioningRequest.objects.exclude(status="succeeded").exists()
    queue.tasks.clear()
    reconcile(enqueue=queue)
    assert queue.tasks == [("email", apology.pk)]

    # With no setup work waiting, an apology goes to the queue at once.
    assert _apologise(other.account, django_capture_on_commit_callbacks)[1]


@pytest.mark.usefixtures("budget_of_two")
def test_less_than_a_pass_of_setup_work_holds_no_apology(register, django_capture_on_commit_callbacks):
    """A signup's workspace due, or a retry waiting for the next pass, is not a backlog."""
    account, _ = register()
    _verification_sent(account)
    assert _apologise(account, django_capture_on_commit_callbacks)[1]


@pytest.mark.usefixtures("budget_of_two")
def test_an_apology_waits_behind_a_backlog_no_longer_than_the_hold_and_after_urgent_emails(
        register, django_capture_on_commit_callbacks):
    """Signups faster than the provider takes them never end the backlog: an apology
    owed NOT_URGENT_HOLD ago goes out beside the setup work, however recently pacing
    or a retry moved its due time; still after the urgent emails due with it."""
    from accounts.emails import email_queue
    from accounts.models import EmailDelivery, EmailKind
    from provisioning.durable import NOT_URGENT_HOLD
    from provisioning.tests.test_reconciler import Queue

    account, _ = register(email="waited@example.com")
    other, _ = register(email="other@example.com")
    _verification_sent(account)
    apology, enqueued = _apologise(account, django_capture_on_commit_callbacks)
    assert not enqueued
    queue = Queue()
    reconcile(enqueue=queue)  # the other person's verification link
    assert ("email", apology.pk) not in queue.tasks

    now = timezone.now()
    EmailDelivery.objects.filter(pk=apology.pk).update(
        created_at=now - NOT_URGENT_HOLD - timedelta(seconds=1), next_attempt_at=now - timedelta(seconds=1))
    # Someone else's email (one owed to the apology's person would hold it until sent).
    notice = email_queue(account=other, kind=EmailKind.SIGNUP_ATTEMPT, key="later")  # due after it
    reconcile(enqueue=queue)  # the budget leaves one email a pass: the urgent one
    assert ("email", notice.pk) in queue.tasks and ("email", apology.pk) not in queue.tasks
    reconcile(enqueue=queue)
    assert ("email", apology.pk) in queue.tasks


@pytest.mark.usefixtures("budget_of_two")
def test_an_apology_that_waited_on_its_own_provider_is_not_held_again(
        register, django_capture_on_commit_callbacks):
    """Held behind the email provider's outage, an apology has waited already: held
    again behind the workspaces, it would also keep the email incident open with
    nobody waiting."""
    from accounts.models import EmailDelivery
    from provisioning.durable import OUTAGE
    from provisioning.tests.test_reconciler import Queue

    account, _ = register(email="waited@example.com")
    register(email="other@example.com")
    _verification_sent(account)
    apology, _ = _apologise(account, django_capture_on_commit_callbacks)
    EmailDelivery.objects.filter(pk=apology.pk).update(last_error_code=OUTAGE)
    queue = Queue()
    reconcile(enqueue=queue)
    reconcile(enqueue=queue)
    assert ("email", apology.pk) in queue.tasks


@pytest.mark.usefixtures("budget_of_two")
def test_work_held_behind_an_open_circuit_does_not_hold_the_apologies(
        register, django_capture_on_commit_callbacks):
    from provisioning.tests.test_reconciler import Queue

    account, _ = register()
    register(email="other@example.com")  # two workspaces due: a backlog, were the circuit closed
    _verification_sent(account)
    breaker.trip("provisioning", why="an outage")
    Breaker.objects.filter(provider="provisioning").update(probed_at=timezone.now())  # no probe due

    # The workspaces are due, but they wait for the provider, not for the workers.
    apology, enqueued = _apologise(account, django_capture_on_commit_callbacks)
    assert enqueued
    queue = Queue()
    reconcile(enqueue=queue)
    reconcile(enqueue=queue)
    assert ("email", apology.pk) in queue.tasks
    assert not [task for task in queue.tasks if task[0] == "workspace"]
