"""Pacing keeps calls to a provider under PROVIDER_RATE_PER_SECOND for every worker."""
import pytest
from django.utils import timezone

from provisioning import pacing
from provisioning.durable import step_run
from provisioning.models import ProvisioningRequest


@pytest.fixture
def rate(settings):
    settings.PROVIDER_RATE_PER_SECOND = 4
    settings.PACING_MAX_WAIT_SECONDS = 1.0
    return 4


@pytest.mark.django_db
def test_slots_are_one_over_rate_apart(rate):
    waits = [pacing.reserve("provisioning") for _ in range(4)]
    # 4 calls at 4/s: the first goes now, the next ones a quarter second apart each.
    gaps = [b - a for a, b in zip(waits, waits[1:], strict=False)]
    assert waits[0] == pytest.approx(0, abs=0.05)  # slots: 1 / (rate × HEADROOM)
    assert all(gap == pytest.approx(1 / (rate * pacing.HEADROOM), abs=0.05) for gap in gaps)


@pytest.mark.django_db
def test_a_slot_further_than_max_wait_is_not_reserved(rate):
    for _ in range(5):  # fills the next 1.25 s
        pacing.reserve("provisioning")
    before = pacing.next_free_slot("provisioning")
    assert pacing.reserve("provisioning") is None
    assert pacing.next_free_slot("provisioning") == before  # nothing was taken


@pytest.mark.django_db
def test_a_429_slows_every_worker_down(rate):
    pacing.slow_down("provisioning", 30)
    assert (pacing.next_free_slot("provisioning") - timezone.now()).total_seconds() > 29
    assert pacing.reserve("provisioning") is None


@pytest.mark.django_db
def test_a_paced_step_is_left_for_later_without_using_an_attempt(rate, client, signup_data, sandbox):
    sandbox("provisioning", "error")
    client.post("/signup/", signup_data)  # tasks are not run: the test DB never commits
    request = ProvisioningRequest.objects.get()
    pacing.slow_down("provisioning", 30)
    assert step_run("workspace", request.pk) == "paced"
    request.refresh_from_db()
    assert request.attempts == 0 and request.status == "pending"
    assert request.dispatched_until >= timezone.now()
