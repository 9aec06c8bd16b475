"""Steps never loop (issue 10, fault 1): a worker that dies on every attempt, an
answer that cannot be recorded and a provider that answers with a broken id all
end the step in ``failed`` after its attempts, in front of a person, instead of
re-calling the provider at every lease expiry for ever."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from provisioning import durable, services
from provisioning.durable import StepKind, StepStatus
from provisioning.models import ProvisioningRequest, SandboxSwitch, Workspace
from provisioning.reconciler import reconcile

WORKSPACE = "workspace"


def provisioning_calls() -> int:
    switch = SandboxSwitch.objects.filter(provider="provisioning").first()
    return switch.calls if switch else 0


def test_a_worker_killed_on_every_attempt_ends_failed_after_the_limit(
        register, settings, exhausted, django_capture_on_commit_callbacks):
    settings.PROVISIONING_MAX_ATTEMPTS = 3
    settings.STEP_LEASE_SECONDS = 0  # each worker's lease runs out the moment it dies
    account, request = register()
    kind = durable.kind_named(WORKSPACE)
    for n in range(3):  # three workers each claim the step and die before recording
        assert durable.claim(kind, request.pk, now=request.next_attempt_at + timedelta(microseconds=n)) is not None

    with django_capture_on_commit_callbacks(execute=True):
        report = reconcile()  # the fourth take-over finds the attempts used up

    assert report.dispatched[WORKSPACE] == 1
    request.refresh_from_db()
    assert request.status == StepStatus.FAILED
    assert (request.attempts, request.counted_attempts) == (3, 3)
    assert request.last_error_code == durable.INTERRUPTED
    assert (request.lease_owner, request.lease_expires_at, request.next_attempt_at) == ("", None, None)
    assert exhausted == [(WORKSPACE, account.pk)]
    assert provisioning_calls() == 0  # the take-over that gave up called nobody
    assert durable.due_steps(kind, now=timezone.now() + timedelta(days=1)) == []


def test_a_worker_killed_at_the_take_over_that_would_give_up_leaves_the_count_at_the_limit(
        register, settings, exhausted, django_capture_on_commit_callbacks):
    """The take-over that finds the attempts used up fails the step; a worker killed
    right after that claim, before writing the failure, must not count one more: the
    step never shows more attempts than the limit without having failed."""
    settings.PROVISIONING_MAX_ATTEMPTS = 3
    settings.STEP_LEASE_SECONDS = 0
    account, request = register()
    kind = durable.kind_named(WORKSPACE)
    for n in range(6):  # three dying attempts, then three dying take-overs that would give up
        step = durable.claim(kind, request.pk, now=request.next_attempt_at + timedelta(microseconds=n))
        assert step.status == StepStatus.RUNNING
        assert step.counted_attempts == min(n, 3)

    with django_capture_on_commit_callbacks(execute=True):
        reconcile()

    request.refresh_from_db()
    assert (request.status, request.counted_attempts) == (StepStatus.FAILED, 3)
    assert exhausted == [(WORKSPACE, account.pk)]
    assert provisioning_calls() == 0


def test_a_take_over_counts_the_dead_workers_attempt(register, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 5
    _, request = register()
    kind = durable.kind_named(WORKSPACE)
    first = durable.claim(kind, request.pk)

    second = durable.claim(kind, request.pk, now=first.lease_expires_at + timedelta(seconds=1))

    assert (first.counted_attempts, second.counted_attempts) == (0, 1)
    assert second.last_error_code == durable.INTERRUPTED


@pytest.mark.parametrize("workspace_id", ["w" * 101, "", "   ", None, ["ws_1"], {"id": "ws_1"}, "ws\n1"],
                         ids=["too-long", "empty", "blank", "null", "list", "object", "control-char"])
def test_a_broken_workspace_id_is_refused_at_the_boundary_and_the_step_ends_failed(
        provider, register, drive, settings, exhausted, workspace_id):
    settings.PROVISIONING_MAX_ATTEMPTS = 2
    provider.workspace_id = workspace_id
    account, request = register()

    drive()

    request.refresh_from_db()
    assert (request.status, request.last_error_code) == (StepStatus.FAILED, "bad_response")
    assert (request.attempts, request.counted_attempts) == (2, 2)
    assert not Workspace.objects.filter(owner=account).exists()
    assert exhausted == [(WORKSPACE, account.pk)]
    assert provider.created_count == 1  # the retry used the same idempotency key


def test_a_numeric_workspace_id_is_taken_as_text(provider, register, drive):
    provider.workspace_id = 4242
    account, _ = register()

    drive()

    assert Workspace.objects.get(owner=account).external_id == "4242"


@pytest.fixture
def unrecordable():
    """A workspace step whose provider answers with an id longer than
    ``Workspace.external_id`` and no backend check in between: the real recorder
    (``services._succeeded``) then fails on PostgreSQL, after the provider answered."""
    durable.register(StepKind(
        name="unrecordable", model=ProvisioningRequest, perform=lambda step: "w" * 101,
        max_attempts=lambda: 2, on_succeeded=services._succeeded, on_failed=services._failed,
        provider="provisioning"))
    yield durable.kind_named("unrecordable")
    durable.unregister("unrecordable")


@pytest.mark.postgres
def test_an_error_recording_the_answer_fails_the_attempt_instead_of_leaving_it_running(
        register, unrecordable, exhausted, django_capture_on_commit_callbacks):
    assert connection.vendor == "postgresql"  # SQLite ignores the column's length
    account, request = register()

    first = durable.step_run("unrecordable", request.pk)

    request.refresh_from_db()
    assert first == "retrying"
    assert (request.status, request.last_error_code) == (StepStatus.PENDING, "unrecorded")
    assert (request.lease_owner, request.counted_attempts) == ("", 1)
    assert not Workspace.objects.filter(owner=account).exists()

    with django_capture_on_commit_callbacks(execute=True):
        second = durable.step_run("unrecordable", request.pk)

    request.refresh_from_db()
    assert (second, request.status, request.counted_attempts) == ("failed", StepStatus.FAILED, 2)
    assert exhausted == [(WORKSPACE, account.pk)]  # announced by the real recorder of failures
