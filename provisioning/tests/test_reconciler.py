"""The dispatcher and reconciler (provisioning.reconciler): nothing owed is ever
forgotten, whether the task was lost, the worker killed, or the process crashed
between the commit and the enqueue.

Under the ``db`` fixture a signup's on-commit enqueues never run: that is exactly a
crash between commit and enqueue, and the reconciler must find the work anyway.
"""
from __future__ import annotations

from io import StringIO

from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.tasks import async_task

from provisioning import durable, tasks
from provisioning.durable import StepStatus
from provisioning.models import ProvisioningRequest, SandboxSwitch, Workspace
from provisioning.reconciler import SCHEDULE_NAME, reconcile


class Queue:
    """A queue that holds tasks without running them (a busy or dead worker)."""

    def __init__(self):
        self.tasks: list[tuple[str, int]] = []

    def __call__(self, kind: str, pk: int) -> None:
        self.tasks.append((kind, pk))


def provisioning_calls() -> int:
    switch = SandboxSwitch.objects.filter(provider="provisioning").first()
    return switch.calls if switch else 0


def test_a_pass_dispatches_due_steps_once(register):
    account, request = register()
    queue = Queue()

    first = reconcile(enqueue=queue)
    second = reconcile(enqueue=queue)

    assert first.dispatched == {"workspace": 1, "workspace_removal": 0, "email": 1}
    assert ("workspace", request.pk) in queue.tasks
    assert len(queue.tasks) == 2  # the second pass knew they were queued
    assert second.dispatched == {"workspace": 0, "workspace_removal": 0, "email": 0}
    request.refresh_from_db()
    assert request.status == StepStatus.PENDING
    assert request.dispatched_until > timezone.now()


def test_a_lost_task_is_dispatched_again(register, settings, client):
    account, request = register()
    queue = Queue()
    settings.STEP_LEASE_SECONDS = 0  # the grace for a queued task is over at once
    reconcile(enqueue=queue)
    assert ("workspace", request.pk) in queue.tasks

    # The task never ran (a Redis worker died, SECRET_KEY rotated): the next
    # pass, this time with a working queue, dispatches it again.
    report = reconcile()

    assert report.dispatched == {"workspace": 1, "workspace_removal": 0, "email": 1}
    request.refresh_from_db()
    assert (request.status, request.attempts) == (StepStatus.SUCCEEDED, 1)
    assert Workspace.objects.filter(owner=account).count() == 1


def broker_enqueue(kind: str, pk: int) -> None:
    """Enqueue into the real (ORM) broker, as a deployment does, instead of running
    the task inline: the task waits there for a worker that is slow to come."""
    async_task("provisioning.tasks.run_step", kind, pk, group=kind, sync=False)


def test_a_slow_queue_is_not_fed_the_same_steps_again(register, settings):
    _, request = register()
    settings.STEP_LEASE_SECONDS = 0  # the mark runs out at once: the queue is slower than it
    reconcile(enqueue=broker_enqueue)
    assert get_broker().queue_size() == 2

    again = Queue()
    report = reconcile(enqueue=again)

    # Both tasks are still in the broker: sending them again would only make the
    # queue longer, each copy a task for a worker to skip.
    assert report.dispatched == {"workspace": 0, "workspace_removal": 0, "email": 0}
    assert again.tasks == []

    get_broker().purge_queue()  # now they are lost (a Redis worker died, SECRET_KEY rotated)
    report = reconcile(enqueue=again)

    assert report.dispatched == {"workspace": 1, "workspace_removal": 0, "email": 1}
    assert ("workspace", request.pk) in again.tasks


def test_lost_steps_are_found_while_the_pass_itself_holds_a_place_in_the_broker(register, settings):
    _, request = register()
    settings.STEP_LEASE_SECONDS = 0
    reconcile(enqueue=broker_enqueue)
    get_broker().purge_queue()  # both tasks lost
    async_task("provisioning.tasks.reconcile", sync=False)  # the scheduled pass...
    assert len(get_broker().dequeue()) == 1  # ...pulled by a cluster, which runs it:

    report = reconcile(enqueue=Queue())

    # The pass's own task is not one of the steps'; counting it hid a lost step.
    assert report.dispatched == {"workspace": 1, "workspace_removal": 0, "email": 1}


def test_steps_still_queued_count_against_the_budget_however_long_they_wait(register, settings):
    settings.PROVIDER_RATE_PER_SECOND = 1
    settings.RECONCILE_EVERY_SECONDS = 2  # a budget of two queued steps per kind
    for n in range(4):
        register(email=f"person{n}@example.com")
    settings.STEP_LEASE_SECONDS = 0
    first = reconcile(enqueue=broker_enqueue)
    assert first.dispatched["workspace"] == 2

    second = reconcile(enqueue=broker_enqueue)

    # Their marks ran out, but they are still queued: the pass tops the queue up by
    # its floor of one, not by another budget.
    assert second.dispatched["workspace"] == 1
    assert ProvisioningRequest.objects.filter(dispatched_until__isnull=True).count() == 1


def test_a_step_whose_worker_died_and_whose_new_task_was_lost_is_sent_once_more(register, settings):
    account, request = register()
    assert durable.step_run("email", account.email_deliveries.get().pk) == "succeeded"  # only this one left
    settings.STEP_LEASE_SECONDS = 0  # leases and marks run out at once
    durable.claim(durable.kind_named("workspace"), request.pk)  # its worker dies mid-call
    lost = Queue()
    reconcile(enqueue=lost)  # handed out again: that task is lost too (a Redis cluster died)
    assert ("workspace", request.pk) in lost.tasks

    again = Queue()
    reconcile(enqueue=again)

    # Still running on a dead lease, with a run-out mark and no task anywhere.
    assert ("workspace", request.pk) in again.tasks


def test_lost_steps_are_sent_again_oldest_first_whatever_their_kind(register, settings):
    first, _ = register(email="first@example.com")
    settings.STEP_LEASE_SECONDS = 0
    reconcile(enqueue=Queue())  # first's two steps: their tasks are lost
    second, second_request = register(email="second@example.com")
    for kind, pk in (("workspace", second_request.pk), ("email", second.email_deliveries.get().pk)):
        # Enqueued as a signup's commit does: second's two wait in the broker.
        durable.mark_dispatched(durable.kind_named(kind), [pk], now=timezone.now())
        broker_enqueue(kind, pk)

    again = Queue()
    reconcile(enqueue=again)

    # Two tasks are missing: first's, whose marks are the oldest, not second's.
    assert sorted(kind for kind, _ in again.tasks) == ["email", "workspace"]
    assert {pk for _, pk in again.tasks} == {ProvisioningRequest.objects.get(account=first).pk,
                                              first.email_deliveries.get().pk}


def test_a_running_step_with_a_live_lease_is_left_to_its_worker(register):
    _, request = register()
    running = durable.claim(durable.kind_named("workspace"), request.pk)

    report = reconcile()

    assert report.dispatched["workspace"] == 0
    request.refresh_from_db()
    assert (request.status, request.lease_owner) == (StepStatus.RUNNING, running.lease_owner)
    assert provisioning_calls() == 0


def test_a_step_whose_worker_was_killed_is_rescued_and_completes(register, settings, client):
    account, request = register()
    settings.STEP_LEASE_SECONDS = 0  # the killed worker's lease has run out
    killed = durable.claim(durable.kind_named("workspace"), request.pk)
    assert killed.status == StepStatus.RUNNING  # ...and it never finishes
    settings.STEP_LEASE_SECONDS = 120

    report = reconcile()

    assert report.dispatched["workspace"] == 1
    request.refresh_from_db()
    assert request.status == StepStatus.SUCCEEDED
    assert request.attempts == 2
    assert (request.lease_owner, request.lease_expires_at) == ("", None)
    assert Workspace.objects.filter(owner=account).count() == 1
    assert provisioning_calls() == 1
    client.force_login(account)
    assert client.get("/setup/status.json").json()["workspace"]["status"] == "ready"


def test_a_crash_between_commit_and_enqueue_is_found_by_the_next_pass(
        db, client, signup_data, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as lost:
        assert client.post("/signup/", signup_data).status_code == 302
    assert lost  # the enqueue owed at commit (both steps, together), lost with the process
    assert not Workspace.objects.exists() and not mail.outbox

    report = reconcile()

    assert report.dispatched == {"workspace": 1, "workspace_removal": 0, "email": 1}
    request = ProvisioningRequest.objects.get()
    assert request.status == StepStatus.SUCCEEDED
    assert Workspace.objects.filter(owner=request.account).count() == 1
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
    assert client.get("/setup/status.json").json()["state"] == "unverified"


def test_the_schedule_exists_after_migrate_and_its_task_runs_a_pass(register):
    schedule = Schedule.objects.get(name=SCHEDULE_NAME)
    assert schedule.func == "provisioning.tasks.reconcile"
    assert (schedule.schedule_type, schedule.repeats) == (Schedule.MINUTES, -1)
    account, request = register()

    assert getattr(tasks, schedule.func.rsplit(".", 1)[1])() == (
        "workspace: 1 dispatched; workspace_removal: 0 dispatched; email: 1 dispatched")

    request.refresh_from_db()
    assert request.status == StepStatus.SUCCEEDED
    schedule.refresh_from_db()
    assert schedule.next_run > timezone.now()
    assert Schedule.objects.filter(name=SCHEDULE_NAME).count() == 1


def test_manage_py_reconcile_prints_what_it_did(register):
    register()
    out = StringIO()

    call_command("reconcile", stdout=out)
    call_command("reconcile", stdout=out)

    assert out.getvalue().splitlines() == [
        "workspace: 1 dispatched; workspace_removal: 0 dispatched; email: 1 dispatched",
        "workspace: 0 dispatched; workspace_removal: 0 dispatched; email: 0 dispatched"]
