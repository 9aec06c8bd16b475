"""The ``http`` provisioning backend against a real local HTTP provider
(FakeProvider): the DESIGN's request, and each answer classified at the boundary.

Tasks run inline, so a reconciler pass is a worker's attempt; ``drive()`` is the
dispatcher running until nothing is due (retries are due at once in tests).
"""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning import breaker
from provisioning.durable import StepStatus
from provisioning.models import Workspace
from provisioning.reconciler import reconcile


def status_json(client, account) -> dict:
    client.force_login(account)
    return client.get("/setup/status.json").json()


def test_ok_creates_the_workspace_with_the_designed_request(provider, register, drive, client):
    account, request = register()

    drive()

    [sent] = provider.requests
    assert (sent["method"], sent["path"], sent["status"]) == ("POST", "/workspaces", 201)
    assert sent["idempotency_key"] == request.idempotency_key
    assert sent["json"] == {"account_id": str(account.pk), "company": "Analytical Engines",
                            "owner_email": "ada@example.com"}
    workspace = Workspace.objects.get(owner=account)
    assert workspace.external_id == provider.workspaces[request.idempotency_key]
    assert workspace.name == "Analytical Engines"
    status = status_json(client, account)
    assert status["state"] == "unverified"
    assert status["workspace"] == {"status": "ready", "attempts": 1, "next_attempt_at": None}


def test_the_idempotency_key_is_stable_across_attempts(provider, register, drive):
    provider.fail_times(2)
    _, request = register()

    drive()

    assert [r["status"] for r in provider.requests] == [503, 503, 201]
    assert {r["idempotency_key"] for r in provider.requests} == {request.idempotency_key}


def test_409_already_exists_is_success_with_the_given_id(provider, register, drive, client):
    provider.mode = "conflict"
    account, request = register()

    drive()

    assert [r["status"] for r in provider.requests] == [409]
    request.refresh_from_db()
    assert request.status == StepStatus.SUCCEEDED
    assert Workspace.objects.get(owner=account).external_id == provider.workspaces[request.idempotency_key]
    assert status_json(client, account)["workspace"]["status"] == "ready"


def test_503_is_retried_then_succeeds(provider, register, client):
    provider.fail_times(1, status=503)
    account, request = register()

    reconcile()
    request.refresh_from_db()
    assert (request.status, request.last_error_code) == (StepStatus.PENDING, "http_503")
    assert not Workspace.objects.exists()
    assert status_json(client, account)["state"] == "setting_up"

    reconcile()

    request.refresh_from_db()
    assert [r["status"] for r in provider.requests] == [503, 201]
    assert (request.status, request.attempts) == (StepStatus.SUCCEEDED, 2)
    assert Workspace.objects.filter(owner=account).count() == 1
    assert status_json(client, account)["state"] == "unverified"


def test_429_waits_as_long_as_retry_after_says(provider, register, client):
    provider.mode = "rate_limited"
    provider.retry_after = 120
    account, request = register()

    before = timezone.now()
    reconcile()
    reconcile()  # an immediate second pass must not knock again

    assert [r["status"] for r in provider.requests] == [429]
    request.refresh_from_db()
    assert (request.status, request.last_error_code) == (StepStatus.PENDING, "rate_limited")
    assert request.next_attempt_at >= before + timedelta(seconds=120)
    status = status_json(client, account)
    assert status["state"] == "setting_up"
    assert status["workspace"]["next_attempt_at"] == request.next_attempt_at.isoformat()


def test_422_is_a_permanent_failure_that_needs_support(provider, register, drive, client, exhausted):
    provider.mode = "reject"
    account, request = register()

    drive()

    assert [r["status"] for r in provider.requests] == [422]
    request.refresh_from_db()
    assert (request.status, request.last_error_code) == (StepStatus.FAILED, "http_422")
    assert "422" in request.last_error_detail
    assert not Workspace.objects.exists()
    assert exhausted == [("workspace", account.pk)]
    assert status_json(client, account)["state"] == "needs_support"


def test_a_timeout_then_ok_makes_exactly_one_workspace(provider, register, client):
    provider.mode = "hang"
    provider.hang_seconds = 3.0  # longer than PROVISIONING_TIMEOUT (0.5 s)
    account, request = register()

    reconcile()
    request.refresh_from_db()
    assert (request.status, request.last_error_code) == (StepStatus.PENDING, "timeout")
    assert "0.5" in request.last_error_detail
    assert not Workspace.objects.exists()

    provider.mode = "ok"
    reconcile()

    assert [r["status"] for r in provider.requests] == [201, 200]  # made once, then found
    assert provider.created_count == 1
    request.refresh_from_db()
    assert request.status == StepStatus.SUCCEEDED
    assert Workspace.objects.get(owner=account).external_id == provider.workspaces[request.idempotency_key]
    assert Workspace.objects.count() == 1
    assert status_json(client, account)["workspace"]["status"] == "ready"


def test_connection_refused_is_transient(settings, register, drive, client):
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.PROVISIONING_BACKEND = "http"
    settings.PROVISIONING_URL = f"http://127.0.0.1:{port}"
    settings.PROVISIONING_TIMEOUT = 0.5
    account, request = register()

    reconcile()

    request.refresh_from_db()
    assert (request.status, request.last_error_code) == (StepStatus.PENDING, "connection")
    assert (request.counted_attempts, request.next_attempt_at is not None) == (1, True)
    assert not Workspace.objects.exists()
    assert status_json(client, account)["state"] == "setting_up"


def test_a_provisioning_url_without_a_scheme_is_an_outage_of_ours_not_a_hang(
        settings, register, drive, client):
    """A plausible typo in the environment (``PROVISIONING_URL=localhost:8080``) is
    ours: the circuit opens at once (one incident for everyone), the step waits
    behind it without using up its attempts, and nobody is left "setting up"."""
    settings.PROVISIONING_BACKEND = "http"
    settings.PROVISIONING_URL = "localhost:8080"
    settings.BREAKER_PROBE_SECONDS = 3600
    account, request = register()

    drive()

    request.refresh_from_db()
    assert (request.status, request.last_error_code) == (StepStatus.PENDING, "misconfigured")
    assert "localhost:8080" in request.last_error_detail
    assert (request.counted_attempts, request.lease_owner, request.lease_expires_at) == (0, "", None)
    assert breaker.is_open("provisioning")
    assert not Workspace.objects.exists()
    assert status_json(client, account)["state"] == "delayed"


@pytest.mark.parametrize("status", [401, 403, 404, 407])
def test_a_refusal_of_our_credentials_or_configuration_opens_the_breaker_at_once(
        provider, register, drive, settings, exhausted, status):
    settings.BREAKER_PROBE_SECONDS = 3600
    provider.fail_times(10, status=status)
    _, request = register()

    drive()

    request.refresh_from_db()
    assert (request.status, request.last_error_code, request.counted_attempts) == (
        StepStatus.PENDING, f"http_{status}", 0)
    assert breaker.is_open("provisioning")
    assert exhausted == []
    assert len(provider.requests) == 1
