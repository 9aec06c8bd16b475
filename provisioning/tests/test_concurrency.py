"""Races, on PostgreSQL: real threads, each with its own database connection, and
real commits (transactional tests). SQLite serialises every writer, so these races
cannot happen there and the tests are skipped (``postgres`` marker, conftest).
"""
from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from accounts.models import User
from provisioning import durable, pacing
from provisioning.backends import WorkspaceOrder, get_backend
from provisioning.durable import StepStatus
from provisioning.models import ProvisioningRequest, SandboxWorkspace, Workspace

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(n: int, work) -> list:
    """Run ``work()`` in n threads released at the same instant; return each
    result or the exception it raised. Every thread closes its connections."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def target(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = work()
        except Exception as error:  # reported by the caller's assertions
            results[i] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a thread never finished"
    return results


def test_ten_simultaneous_signups_with_one_address_make_one_account(signup_data, drive):
    def sign_up():
        response = Client().post("/signup/", signup_data)
        return response.status_code, response.get("Location")

    results = run_together(10, sign_up)

    # Same address and the same password: one creates, the rest are welcomed back.
    assert results == [(302, "/setup/")] * 10
    assert User.objects.count() == 1
    assert ProvisioningRequest.objects.count() == 1
    drive()
    assert ProvisioningRequest.objects.get().status == StepStatus.SUCCEEDED
    assert Workspace.objects.count() == 1
    assert SandboxWorkspace.objects.count() == 1


def test_two_workers_racing_for_one_step_make_one_provider_call(provider, settings, register):
    provider.fail_times(1)  # the attempt run when the signup commits fails: a retry is due
    account, request = register()
    assert request.status == StepStatus.PENDING
    provider.reset()
    provider.mode = "hang"  # the winner's call stays in flight while the loser tries
    provider.hang_seconds = 0.5
    settings.PROVISIONING_TIMEOUT = 3.0  # the settings fixture is process-wide: threads see it

    outcomes = run_together(2, lambda: durable.step_run("workspace", request.pk))

    assert sorted(outcomes) == ["skipped", "succeeded"]
    assert len(provider.requests) == 1
    assert provider.created_count == 1
    request.refresh_from_db()
    assert (request.status, request.attempts) == (StepStatus.SUCCEEDED, 2)
    assert Workspace.objects.filter(owner=account).count() == 1


def test_many_workers_some_late_never_put_more_than_the_limit_in_a_second(settings, provider):
    """Six workers, each with its own connection, make 24 calls against a provider
    enforcing 4 a second; every third call's worker wakes 0.4 s after its slot (a
    busy machine). Late calls would bunch with the ones on time after them; the
    pacing lanes hold those back, so the provider refuses nothing. (The margin covers
    the test's threads sharing one interpreter with the provider.)"""
    settings.PROVIDER_RATE_PER_SECOND = 4
    settings.PACING_MARGIN_SECONDS = 0.1
    settings.PACING_MAX_WAIT_SECONDS = 30.0
    provider.rate_limit_per_second = 4
    numbers = iter(range(24))
    lock = threading.Lock()

    def worker() -> None:
        backend = get_backend()
        while True:
            with lock:
                n = next(numbers, None)
            if n is None:
                return
            slot = pacing.reserve("provisioning")
            if n % 3 == 0:
                time.sleep(max(0.0, (slot.at - timezone.now()).total_seconds()) + 0.4)
            pacing.leave("provisioning", slot)
            backend.create_workspace(WorkspaceOrder(account_id=str(n), company="Engines",
                                                    owner_email="a@example.com", idempotency_key=f"k-{n}"))

    assert run_together(6, worker) == [None] * 6
    assert [r["status"] for r in provider.requests] == [201] * 24
    assert provider.max_requests_in_any_second() <= 4


def _two_calls_in_a_fresh_process(pipe) -> None:
    """In a forked worker: two paced calls, each with the clock read just before it
    leaves and the lane's date after."""
    from provisioning.models import PaceLane

    dates = []
    for _ in range(2):
        slot = pacing.reserve("provisioning")
        before = timezone.now()
        pacing.leave("provisioning", slot)
        dates.append((before, PaceLane.objects.get(provider="provisioning", lane=slot.lane).departed_at,
                      timezone.now()))
    connections.close_all()
    pipe.send(dates)


def test_a_worker_processes_first_call_dates_its_lane_later(settings):
    """A fresh process's first call reaches the provider later than its next ones:
    its lane is dated FIRST_CALL_SECONDS after it left, so the next call on that lane
    waits for it. The second call of the same process is dated when it leaves."""
    settings.PROVIDER_RATE_PER_SECOND = 50
    connections.close_all()  # the child opens its own connection
    ours, theirs = multiprocessing.get_context("fork").Pipe()
    child = multiprocessing.get_context("fork").Process(target=_two_calls_in_a_fresh_process, args=(theirs,))
    child.start()
    assert ours.poll(30)
    (before_first, first, _), (_, second, after_second) = ours.recv()
    child.join(10)

    assert first >= before_first + timedelta(seconds=pacing.FIRST_CALL_SECONDS)
    assert second <= after_second
