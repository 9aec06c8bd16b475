"""Races, on PostgreSQL: real threads, each with its own database connection, and
real commits (transactional tests). SQLite serialises every writer, so these races
cannot happen there and the tests are skipped (``postgres`` marker, conftest).
"""
from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.test import Client

from accounts.models import User
from provisioning import durable
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
