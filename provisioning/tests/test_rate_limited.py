"""A 429 is the provider pacing us, not a failure, until it has lasted longer than
the breaker's window (provisioning.durable._record_rate_limited). Against the real
local HTTP provider answering 429; tasks run inline."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning import breaker, durable, pacing
from provisioning.durable import StepStatus
from provisioning.models import BreakerFailure, ProvisioningRequest
from provisioning.services import workspace_request_retry
from support.models import Incident

WORKSPACE = "workspace"


@pytest.fixture
def limited(provider):
    """The provider answers every call 429, with Retry-After: 0 (the step is due again
    at once, so a test can knock again without waiting)."""
    provider.mode = "rate_limited"
    provider.retry_after = 0
    return provider


def refused_for_the_whole_window(settings, *requests) -> None:
    """The provider has answered these steps nothing but 429 for longer than the window."""
    since = timezone.now() - timedelta(seconds=settings.BREAKER_WINDOW_SECONDS + 1)
    ProvisioningRequest.objects.filter(pk__in=[r.pk for r in requests]).update(rate_limited_since=since)


def test_a_429_is_no_attempt_of_the_persons_nor_a_breaker_failure(register, provider):
    provider.mode = "rate_limited"
    provider.retry_after = 7
    _, request = register()

    before = timezone.now()
    assert durable.step_run(WORKSPACE, request.pk) == "slowed down"
    after = timezone.now()

    request.refresh_from_db()
    assert (request.status, request.attempts, request.counted_attempts) == (StepStatus.PENDING, 1, 0)
    assert request.last_error_code == "rate_limited"
    assert before + timedelta(seconds=7) <= request.next_attempt_at <= after + timedelta(seconds=7)
    assert before <= request.rate_limited_since <= after
    assert not BreakerFailure.objects.exists()
    # Every worker waits the Retry-After, not only this step.
    assert pacing.next_free_slot("provisioning") >= before + timedelta(seconds=7)
    assert durable.step_run(WORKSPACE, request.pk) == "skipped"  # not due before then
    assert len(provider.requests) == 1


def test_429s_use_up_no_attempts_and_open_no_circuit(register, limited, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 2
    requests = [register(email=f"p{n}@example.com")[1] for n in range(settings.BREAKER_FAILURE_THRESHOLD)]

    for _ in range(3):
        for request in requests:
            assert durable.step_run(WORKSPACE, request.pk) == "slowed down"

    assert not breaker.is_open("provisioning")
    assert set(ProvisioningRequest.objects.values_list("status", "attempts", "counted_attempts")) == {
        (StepStatus.PENDING, 3, 0)}
    limited.mode = "ok"
    assert [durable.step_run(WORKSPACE, r.pk) for r in requests] == ["succeeded"] * len(requests)
    assert not ProvisioningRequest.objects.filter(rate_limited_since__isnull=False).exists()


def test_a_429_without_retry_after_waits_a_second(register, limited):
    limited.retry_after = None
    _, request = register()

    before = timezone.now()
    assert durable.step_run(WORKSPACE, request.pk) == "slowed down"
    after = timezone.now()

    request.refresh_from_db()
    assert before + timedelta(seconds=1) <= request.next_attempt_at <= after + timedelta(seconds=1)
    assert pacing.next_free_slot("provisioning") >= before + timedelta(seconds=1)


def test_429s_for_longer_than_the_window_count_as_failures(register, limited, settings):
    _, request = register()
    assert durable.step_run(WORKSPACE, request.pk) == "slowed down"
    inside = timezone.now() - timedelta(seconds=settings.BREAKER_WINDOW_SECONDS - 5)
    ProvisioningRequest.objects.filter(pk=request.pk).update(rate_limited_since=inside)
    assert durable.step_run(WORKSPACE, request.pk) == "slowed down"  # not yet longer than the window

    refused_for_the_whole_window(settings, request)
    assert durable.step_run(WORKSPACE, request.pk) == "retrying"

    request.refresh_from_db()
    assert (request.attempts, request.counted_attempts) == (3, 1)
    assert request.rate_limited_since is not None  # still refused: the run goes on
    assert BreakerFailure.objects.filter(account_key=str(request.account_id)).count() == 1


def test_a_provider_answering_only_429_becomes_an_outage_support_sees(
        register, limited, settings, django_capture_on_commit_callbacks):
    requests = [register(email=f"p{n}@example.com")[1] for n in range(settings.BREAKER_FAILURE_THRESHOLD)]
    for request in requests:
        assert durable.step_run(WORKSPACE, request.pk) == "slowed down"
    refused_for_the_whole_window(settings, *requests)

    with django_capture_on_commit_callbacks(execute=True):
        outcomes = [durable.step_run(WORKSPACE, r.pk) for r in requests]

    assert outcomes == ["retrying"] * len(requests)
    assert breaker.is_open("provisioning")
    assert Incident.objects.filter(provider="provisioning", status="open").count() == 1
    # Held behind the open circuit, a step's run of 429s ends: the outage speaks for it.
    assert durable.step_run(WORKSPACE, requests[0].pk) == "held"
    requests[0].refresh_from_db()
    assert requests[0].rate_limited_since is None


def test_one_account_refused_alone_ends_failed_in_front_of_a_person(
        register, limited, settings, exhausted, django_capture_on_commit_callbacks):
    settings.PROVISIONING_MAX_ATTEMPTS = 2
    account, request = register()
    assert durable.step_run(WORKSPACE, request.pk) == "slowed down"
    refused_for_the_whole_window(settings, request)

    with django_capture_on_commit_callbacks(execute=True):
        assert [durable.step_run(WORKSPACE, request.pk) for _ in range(2)] == ["retrying", "failed"]

    request.refresh_from_db()
    assert (request.status, request.last_error_code) == (StepStatus.FAILED, "rate_limited")
    assert exhausted == [(WORKSPACE, account.pk)]
    # Re-armed by support: fresh attempts, and a fresh run of 429s.
    assert workspace_request_retry(request=request)
    assert (request.counted_attempts, request.rate_limited_since) == (0, None)


def test_any_other_answer_ends_the_run_of_429s(register, limited):
    _, request = register()
    assert durable.step_run(WORKSPACE, request.pk) == "slowed down"

    limited.mode = "error"
    assert durable.step_run(WORKSPACE, request.pk) == "retrying"
    request.refresh_from_db()
    assert (request.counted_attempts, request.rate_limited_since) == (1, None)

    limited.mode = "rate_limited"
    before = timezone.now()
    assert durable.step_run(WORKSPACE, request.pk) == "slowed down"
    request.refresh_from_db()
    assert request.rate_limited_since >= before  # a new run, from now


def test_a_step_paced_for_later_keeps_its_run_of_429s(register, limited):
    limited.retry_after = 30  # past PACING_MAX_WAIT_SECONDS: no worker waits that long
    _, request = register()
    assert durable.step_run(WORKSPACE, request.pk) == "slowed down"
    request.refresh_from_db()
    since = request.rate_limited_since
    ProvisioningRequest.objects.filter(pk=request.pk).update(next_attempt_at=timezone.now())

    assert durable.step_run(WORKSPACE, request.pk) == "paced"  # no call made: no answer to end the run

    request.refresh_from_db()
    assert request.rate_limited_since == since
    assert len(limited.requests) == 1
