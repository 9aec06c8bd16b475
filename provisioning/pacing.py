"""Pacing: calls to a provider never exceed PROVIDER_RATE_PER_SECOND, across every
worker process.

Each call reserves the next free slot on a shared timeline (one row per provider,
locked for the reservation), then waits for it. Slots are 1/rate apart, so the
provider sees an even stream rather than bursts, even when a backlog of thousands
becomes due at once after an outage. A 429 pushes the timeline back by its
Retry-After, slowing every worker at once. The cost is one short transaction per
call, which is small next to the call itself.
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from provisioning.models import Pace

# We aim a little under the limit: a request leaves some milliseconds after its slot
# (scheduling, connection set-up), and that jitter must not push a busy second over.
HEADROOM = 0.95


def _rate() -> float:
    return max(settings.PROVIDER_RATE_PER_SECOND * HEADROOM, 0.001)


def _ensure_row(provider: str) -> None:
    try:
        Pace.objects.get_or_create(provider=provider, defaults={"next_slot_at": timezone.now()})
    except IntegrityError:  # created by another process at the same moment
        pass


def reserve(provider: str, *, max_wait: float | None = None) -> float | None:
    """Reserve the next slot and return how many seconds to wait for it, or None
    (nothing reserved) when the next slot is more than ``max_wait`` away: the
    caller should leave its work for later instead of holding a worker."""
    max_wait = settings.PACING_MAX_WAIT_SECONDS if max_wait is None else max_wait
    with transaction.atomic():
        # One query when the row exists (always, after the first call).
        pace, _ = Pace.objects.select_for_update().get_or_create(
            provider=provider, defaults={"next_slot_at": timezone.now()})
        # The clock is read once the row is ours. Read before waiting for the lock,
        # a free slot would be dated in the past, and the call would leave late by
        # however long other workers held the row: late calls bunch up with the
        # ones on time, and a second can take more calls than the limit.
        slot = max(pace.next_slot_at, timezone.now())
        if (slot - timezone.now()).total_seconds() > max_wait:
            return None
        pace.next_slot_at = slot + timedelta(seconds=1 / _rate())
        pace.save(update_fields=["next_slot_at"])
    # Measured after the commit, so the caller wakes at the slot itself.
    return max(0.0, (slot - timezone.now()).total_seconds())


def slow_down(provider: str, seconds: float) -> None:
    """The provider said 429: no worker calls it again for ``seconds``."""
    later = timezone.now() + timedelta(seconds=seconds)
    _ensure_row(provider)
    Pace.objects.filter(provider=provider, next_slot_at__lt=later).update(next_slot_at=later)


def next_free_slot(provider: str):
    pace = Pace.objects.filter(provider=provider).first()
    return max(pace.next_slot_at, timezone.now()) if pace else timezone.now()
