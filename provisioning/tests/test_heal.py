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
