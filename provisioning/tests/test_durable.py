"""Durable steps (provisioning.durable): the claim, the lease, backoff, error
classification, exhaustion, retry by a person, and the first attempt on commit.

Failures are injected through the sandbox switches or the real local HTTP provider;
tasks run inline (Q_CLUSTER sync), so a reconciler pass is what a worker would do.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone
from django_q.models import Task

from provisioning import durable
from provisioning.durable import StepStatus
from provisioning.models import ProvisioningRequest, SandboxSwitch, Workspace
from provisioning.reconciler import reconcile

WORKSPACE = "workspace"


def status_json(client, account) -> dict:
    client.force_login(account)
    return client.get("/setup/status.json").json()


def sandbox_calls(provider: str = "provisioning") -> int:
    switch = SandboxSwitch.objects.filter(provider=provider).first()
    return switch.calls if switch else 0


# -- the claim --------------------------------------------------------------------


def test_a_second_claim_of_a_running_step_with_a_live_lease_gets_nothing(register):
    _, request = register()
    kind = durable.kind_named(WORKSPACE)

    first = durable.claim(kind, request.pk)
    second = durable.claim(kind, request.pk)

    assert first is not None and first.status == StepStatus.RUNNING and first.lease_owner
    assert second is None
    request.refresh_from_db()
    assert (request.lease_owner, request.attempts) == (first.lease_owner, 1)


def test_an_expired_lease_can_be_claimed_by_another_worker(register, settings):
    _, request = register()
    kind = durable.kind_named(WORKSPACE)
    first = durable.claim(kind, request.pk)

    after_expiry = first.lease_expires_at + timedelta(seconds=1)
    second = durable.claim(kind, request.pk, now=after_expiry)

    assert second is not None
    assert second.lease_owner != first.lease_owner
    assert second.lease_expires_at == after_expiry + timedelta(seconds=settings.STEP_LEASE_SECONDS)
    assert second.attempts == 2


def test_a_step_that_is_not_due_yet_or_done_cannot_be_claimed(register, drive):
    _, request = register()
    kind = durable.kind_named(WORKSPACE)

    assert durable.claim(kind, request.pk, now=request.next_attempt_at - timedelta(seconds=1)) is None
    drive()
    request.refresh_from_db()
    assert request.status == StepStatus.SUCCEEDED
    assert durable.claim(kind, request.pk) is None
    request.refresh_from_db()
    assert (request.status, request.attempts) == (StepStatus.SUCCEEDED, 1)


@pytest.mark.django_db(transaction=True)
def test_only_the_lease_holder_writes_the_outcome(provider, settings, register):
    """Worker A's call hangs past its lease; worker B takes the step over and
    succeeds; A's late timeout must not overwrite B's success."""
    provider.fail_times(1)  # the first attempt, run when the signup commits, fails
    account, request = register()
    assert request.status == StepStatus.PENDING
    provider.reset()
    settings.STEP_LEASE_SECONDS = 0  # every lease runs out at once: A's will before it answers
    settings.PROVISIONING_TIMEOUT = 1.0  # ample time for B to take over before A gives up
    provider.hang_seconds = 5.0
    provider.mode = "hang"

    outcome_a: list[str] = []

    def worker_a():
        try:
            outcome_a.append(durable.step_run(WORKSPACE, request.pk))
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker_a)
    thread.start()
    deadline = time.monotonic() + 5
    while not provider.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(provider.requests) == 1, "worker A never reached the provider"
    provider.mode = "ok"  # the provider recovers; worker B gets its answer at once

    outcome_b = durable.step_run(WORKSPACE, request.pk)
    thread.join(timeout=10)

    assert (outcome_a, outcome_b) == (["lost-lease"], "succeeded")
    request.refresh_from_db()
    assert (request.status, request.next_attempt_at) == (StepStatus.SUCCEEDED, None)
    assert request.last_error_code == "http_503"  # the first attempt's, kept as history; not A's timeout
    assert Workspace.objects.filter(owner=account).count() == 1
    assert provider.created_count == 1


# -- backoff ----------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, 1, 3, 5, 6, 12])
def test_full_jitter_backoff_stays_within_zero_and_the_capped_ceiling(settings, attempt):
    settings.RETRY_BASE_SECONDS = 30
    settings.RETRY_MAX_SECONDS = 1800
    ceiling = min(1800, 30 * 2 ** attempt)

    draws = [durable.backoff_seconds(attempt) for _ in range(4000)]

    assert all(0 <= d <= ceiling for d in draws)
    # Full jitter spreads over the whole range (not "ceiling/2 + jitter", not fixed).
    assert min(draws) < 0.05 * ceiling
    assert max(draws) > 0.95 * ceiling
    assert 0.45 * ceiling < sum(draws) / len(draws) < 0.55 * ceiling


# -- outcomes ---------------------------------------------------------------------


def test_a_transient_error_leaves_the_step_pending_with_a_retry_in_the_future(
        register, sandbox, settings, client):
    # A long base, so the jittered delay is (all but surely) more than the few
    # milliseconds this test takes.
    settings.RETRY_BASE_SECONDS = 3600
    settings.RETRY_MAX_SECONDS = 86400
    sandbox("provisioning", "error")
    account, request = register()

    reconcile()
    after = timezone.now()

    request.refresh_from_db()
    assert request.status == StepStatus.PENDING
    assert (request.attempts, request.counted_attempts) == (1, 1)
    assert request.last_error_code == "http_503"
    assert "503" in request.last_error_detail
    # The first retry waits random(0, min(cap, base × 2^1)): up to two hours.
    assert after < request.next_attempt_at <= after + timedelta(hours=2)
    assert (request.lease_owner, request.lease_expires_at) == ("", None)
    assert not Workspace.objects.exists()
    # Not due yet: an immediate second pass leaves it alone.
    assert reconcile().dispatched[WORKSPACE] == 0
    assert sandbox_calls() == 1
    status = status_json(client, account)
    assert status["state"] == "setting_up"
    assert status["workspace"] == {"status": "pending", "attempts": 1,
                                   "next_attempt_at": request.next_attempt_at.isoformat()}


def test_a_permanent_error_fails_at_once(register, sandbox, drive, exhausted, client):
    sandbox("provisioning", "reject")
    account, request = register()

    drive()

    request.refresh_from_db()
    assert request.status == StepStatus.FAILED
    assert (request.attempts, request.last_error_code) == (1, "http_422")
    assert request.next_attempt_at is None
    assert sandbox_calls() == 1
    assert exhausted == [(WORKSPACE, account.pk)]
    assert not Workspace.objects.exists()
    assert status_json(client, account)["state"] == "needs_support"


def test_exhaustion_fails_the_step_announces_it_once_and_needs_support(
        register, sandbox, drive, exhausted, settings, client):
    settings.PROVISIONING_MAX_ATTEMPTS = 3
    sandbox("provisioning", "timeout")
    account, request = register()

    drive()  # each pass runs its on-commit work: the announcement goes out
    assert drive() == 1  # nothing is due any more

    request.refresh_from_db()
    assert request.status == StepStatus.FAILED
    assert (request.attempts, request.counted_attempts) == (3, 3)
    assert request.last_error_code == "timeout"
    assert sandbox_calls() == 3
    assert exhausted == [(WORKSPACE, account.pk)]
    assert not Workspace.objects.exists()
    status = status_json(client, account)
    assert status["state"] == "needs_support"
    assert status["workspace"] == {"status": "failed", "attempts": 3, "next_attempt_at": None}


def test_retry_now_rearms_a_failed_step_with_fresh_attempts_and_is_idempotent(
        register, sandbox, drive, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 2
    sandbox("provisioning", "error")
    _, request = register()
    drive()
    request.refresh_from_db()
    assert (request.status, sandbox_calls()) == (StepStatus.FAILED, 2)

    assert durable.step_retry_now(request) is True
    durable.step_retry_now(request)  # a double click

    assert request.status == StepStatus.PENDING
    assert request.counted_attempts == 0
    assert request.next_attempt_at <= timezone.now()
    assert request.completed_at is None
    drive()
    request.refresh_from_db()
    # A fresh allowance of two attempts, spent once: the double click added nothing.
    assert (request.status, request.counted_attempts, sandbox_calls()) == (StepStatus.FAILED, 2, 4)

    sandbox("provisioning", "ok")
    durable.step_retry_now(request)
    drive()
    request.refresh_from_db()
    assert request.status == StepStatus.SUCCEEDED
    assert durable.step_retry_now(request) is False
    assert request.status == StepStatus.SUCCEEDED
    drive()
    assert sandbox_calls() == 5
    assert Workspace.objects.count() == 1


def test_retry_now_leaves_a_running_step_alone(register):
    _, request = register()
    running = durable.claim(durable.kind_named(WORKSPACE), request.pk)

    assert durable.step_retry_now(running) is False
    assert (running.status, running.attempts) == (StepStatus.RUNNING, 1)


# -- the first attempt, on commit ----------------------------------------------------


def test_the_first_attempt_is_enqueued_when_the_signup_commits(
        db, client, signup_data, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/signup/", signup_data)
        # The answer did not wait on a provider: nothing has been called yet.
        assert response.status_code == 302
        assert sandbox_calls("provisioning") == sandbox_calls("email") == 0

    assert len(callbacks) >= 2  # the workspace and the verification email
    request = ProvisioningRequest.objects.get()
    assert (request.status, request.attempts) == (StepStatus.SUCCEEDED, 1)
    assert Workspace.objects.filter(owner=request.account).count() == 1
    # The rows are the record of what ran: django-q2 keeps no successful task.
    assert not Task.objects.exists()


def test_a_rolled_back_signup_enqueues_nothing(register, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            register()
            raise RuntimeError("the request died after the signup was written")

    assert callbacks == []
    assert not ProvisioningRequest.objects.exists()
    assert not Task.objects.exists()
    assert sandbox_calls("provisioning") == sandbox_calls("email") == 0
