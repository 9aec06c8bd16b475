"""Pacing keeps calls to a provider under PROVIDER_RATE_PER_SECOND for every worker."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from provisioning import pacing
from provisioning.backends import WorkspaceOrder, get_backend
from provisioning.durable import step_run
from provisioning.models import Pace, ProvisioningRequest


@pytest.fixture
def rate(settings):
    settings.PROVIDER_RATE_PER_SECOND = 4
    settings.PACING_MAX_WAIT_SECONDS = 1.0
    return 4


@pytest.mark.django_db
def test_slots_come_at_the_lanes_pace(settings):
    settings.PROVIDER_RATE_PER_SECOND = 0.5  # slots ~2 s apart: a busy machine cannot blur them
    settings.PACING_MAX_WAIT_SECONDS = 10.0
    slots = [pacing.reserve("provisioning") for _ in range(4)]
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(slots, slots[1:], strict=False)]
    # One lane, a call every 1 ÷ rate seconds and the margin.
    assert gaps == pytest.approx([2 + settings.PACING_MARGIN_SECONDS] * 3, abs=0.001)
    assert {slot.lane for slot in slots} == {0}


@pytest.mark.django_db
def test_slots_take_the_lanes_in_turn(settings):
    settings.PROVIDER_RATE_PER_SECOND = 4.7  # four whole calls a second: four lanes, a second each
    settings.PACING_MAX_WAIT_SECONDS = 10.0
    slots = [pacing.reserve("provisioning") for _ in range(9)]
    assert [slot.lane for slot in slots] == [1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert (slots[4].at - slots[0].at).total_seconds() == pytest.approx(1 + settings.PACING_MARGIN_SECONDS, abs=0.001)


@pytest.mark.django_db
def test_a_call_leaves_a_lane_a_second_and_the_margin_after_the_last_one_did(settings, provider):
    """Four lanes for a limit of four a second; the first call is late (its worker
    woke after the next three had left), so the fifth, on its lane, must wait for it,
    not for its own slot: otherwise five calls would reach the provider within one
    second. The provider, enforcing the limit, answers every call."""
    settings.PROVIDER_RATE_PER_SECOND = 4
    settings.PACING_MAX_WAIT_SECONDS = 10.0
    settings.PACING_MARGIN_SECONDS = 0.1  # the provider shares the test's interpreter
    provider.rate_limit_per_second = 4
    backend = get_backend()
    slots = [pacing.reserve("provisioning") for _ in range(5)]
    assert slots[0].lane == slots[4].lane

    for n in [1, 2, 3, 0, 4]:  # the first call leaves last but one
        pacing.leave("provisioning", slots[n])
        backend.create_workspace(WorkspaceOrder(account_id=str(n), company="Engines", owner_email="a@example.com",
                                                idempotency_key=f"workspace-{n}"))

    assert [r["status"] for r in provider.requests] == [201] * 5
    assert provider.max_requests_in_any_second() == 4
    late, fifth = (r["time"] for r in provider.requests[-2:])
    assert fifth - late >= 1  # held for the late call on its lane, which it would have bunched with


@pytest.mark.django_db
def test_a_slot_further_than_max_wait_is_not_reserved(rate):
    # Other workers have booked the next 30 s: well past the 1 s allowed, however slow the machine.
    Pace.objects.create(provider="provisioning", next_slot_at=timezone.now() + timedelta(seconds=30))
    before = Pace.objects.get(provider="provisioning")
    assert pacing.reserve("provisioning") is None
    after = Pace.objects.get(provider="provisioning")
    assert (after.next_slot_at, after.slots_taken) == (before.next_slot_at, before.slots_taken)  # nothing taken
    assert pacing.reserve("provisioning", max_wait=60) is not None  # a caller willing to wait gets it


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
    # Due again at the provider's next free slot, and not marked as queued: the
    # reconciler dispatches it once the slot comes.
    assert request.next_attempt_at >= timezone.now() + timedelta(seconds=29)
    assert request.dispatched_until is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_that_waited_for_the_timeline_gets_a_slot_from_when_it_got_it(rate):
    """Slots are dated when the reservation holds the row, not when it asked: a slot
    dated before a wait for the lock would send the call late, bunched up with the
    calls that follow it."""
    Pace.objects.create(provider="provisioning", next_slot_at=timezone.now() - timedelta(seconds=60))
    locked, released = threading.Event(), []

    def hold_the_timeline():
        with transaction.atomic():
            Pace.objects.select_for_update().get(provider="provisioning")
            locked.set()
            time.sleep(0.5)  # another worker's reservation, slowed down
            released.append(timezone.now())
        connections.close_all()

    holder = threading.Thread(target=hold_the_timeline)
    holder.start()
    assert locked.wait(10)
    pacing.reserve("provisioning")  # waits for the row
    holder.join()
    slot = Pace.objects.get(provider="provisioning").next_slot_at - timedelta(seconds=pacing.slot_spacing())
    assert slot >= released[0]

