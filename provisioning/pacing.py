"""Pacing: calls to a provider never exceed PROVIDER_RATE_PER_SECOND in any one
second, across every worker process on every host, and come within a margin of it.

Two shared records, both in the database (nothing is shared through a host):

- **the timeline** (``Pace``, one row per provider, locked for each reservation):
  each call reserves the next free slot, then waits for it. Slots are evenly spaced,
  so the provider sees a steady stream rather than bursts, even when a backlog of
  thousands becomes due at once after an outage, and a worker never waits long (a
  slot further than PACING_MAX_WAIT_SECONDS is not taken: the step comes back then).
- **the lanes** (``PaceLane``, L of them, L = the limit's whole calls per second):
  slot n leaves on lane n mod L, and only once that lane's previous call left at
  least 1 s + PACING_MARGIN_SECONDS before, by the database's clock. The lane is
  taken with one compare-and-set as the call leaves, and the call goes out at once.

Why both: the timeline alone guarantees nothing about when calls *arrive*. A call
leaves some milliseconds after its slot (the worker wakes late, the machine is busy)
and a late call bunches with the ones on time after it: with slots 1 ÷ (0.95 × limit)
apart, the provider's busiest second still came within 2 to 3 % of the limit, and a
headroom of 2 % drew answers 429. The lanes date each call when it actually leaves,
so the guarantee no longer depends on that jitter, nor on the hosts' clocks
agreeing: any L + 1 calls include two on the same lane (pigeonhole), which left at
least 1 s + PACING_MARGIN_SECONDS apart. A late call holds back only the calls after
it on its lane, by as much as it was late; the rate stays the timeline's. What the
margin still has to cover is the time from taking the lane to the provider's clock
(sending the request, the provider reading it), one call's against another's.

The timeline is spaced to the lanes' own rate, L ÷ (1 s + PACING_MARGIN_SECONDS):
the lanes only absorb jitter and never hold a worker for long. A 429 pushes the
timeline back by its Retry-After, slowing every worker at once. The cost is two
short writes per call (the reservation and the lane), neither waiting for the disk.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Now
from django.utils import timezone

from provisioning.models import Pace, PaceLane
from provisioning.transactions import commit_without_waiting_for_disk

_NEVER = datetime(2000, 1, 1, tzinfo=UTC)

# A process's first call reaches the provider later than its next ones do: after a
# fork, every object it touches is copied on its first write (measured 9–11 ms from
# leaving to the provider's clock, once 88 ms, against 3.5–4.5 ms; and a cluster
# starts its workers at once). Its lane is dated this much later than it leaves, so
# the next call on that lane waits for it: once per process, almost nothing.
FIRST_CALL_SECONDS = 0.1
_warm_pid: int | None = None  # the process that has already made a call


@dataclass(frozen=True)
class Slot:
    """A reserved slot: when it comes, and the lane its call leaves on."""

    at: datetime
    lane: int


def lanes() -> int:
    """How many calls may leave within any one second: the limit's whole calls (one
    for a limit under one a second)."""
    return max(1, math.floor(settings.PROVIDER_RATE_PER_SECOND))


def lane_gap() -> float:
    """Seconds between two calls on one lane: one second (or 1 ÷ rate, under one a
    second), plus the margin."""
    return max(1.0, 1 / max(settings.PROVIDER_RATE_PER_SECOND, 0.001)) + settings.PACING_MARGIN_SECONDS


def slot_spacing() -> float:
    """Seconds between two slots on the timeline: the lanes' own pace."""
    return lane_gap() / lanes()


def reserve(provider: str, *, max_wait: float | None = None) -> Slot | None:
    """Reserve the next slot (when it comes, and its lane), or None
    (nothing reserved) when the next slot is more than ``max_wait`` away: the
    caller should leave its work for later instead of holding a worker. The call
    leaves through ``leave``."""
    max_wait = settings.PACING_MAX_WAIT_SECONDS if max_wait is None else max_wait
    with transaction.atomic():
        # Lost in a crash of the database, a slot is only handed out again.
        commit_without_waiting_for_disk()
        # One query when the row exists (always, after the first call).
        pace, _ = Pace.objects.select_for_update().get_or_create(
            provider=provider, defaults={"next_slot_at": timezone.now()})
        # The clock is read once the row is ours. Read before waiting for the lock,
        # a free slot would be dated in the past, and the call would leave late by
        # however long other workers held the row.
        slot = max(pace.next_slot_at, timezone.now())
        if (slot - timezone.now()).total_seconds() > max_wait:
            return None
        pace.next_slot_at = slot + timedelta(seconds=slot_spacing())
        pace.slots_taken += 1
        pace.save(update_fields=["next_slot_at", "slots_taken"])
    return Slot(at=slot, lane=pace.slots_taken % lanes())


def leave(provider: str, slot: Slot) -> None:
    """Wait for the slot, then for its lane, and take the lane: returns when the
    call may leave, which it must do at once. Taking the lane is one compare-and-set
    on the database's clock; a lane still busy (its previous call left late) is
    waited for, however long, since the slot is already spent."""
    wait = (slot.at - timezone.now()).total_seconds()
    if wait > 0:
        time.sleep(wait)
    global _warm_pid
    gap = timedelta(seconds=lane_gap())
    later = timedelta(seconds=0 if _warm_pid == os.getpid() else FIRST_CALL_SECONDS)
    while not _take(provider, slot.lane, gap, later):
        lane = PaceLane.objects.filter(provider=provider, lane=slot.lane)
        busy = lane.annotate(now=Now()).values_list("departed_at", "now").first()
        if busy is None:  # its first call: the lane is made free, and taken on the next turn
            PaceLane.objects.get_or_create(provider=provider, lane=slot.lane, defaults={"departed_at": _NEVER})
            continue
        departed_at, now = busy
        time.sleep(max(0.0, (departed_at + gap - now).total_seconds()))
    _warm_pid = os.getpid()


def _take(provider: str, lane: int, gap: timedelta, later: timedelta) -> bool:
    """The compare-and-set. The call leaves the moment it commits, so the commit
    must not wait for the disk (a millisecond, far more when the disk is busy): the
    margin would have to cover it. Lost in a crash of the database, a lane's time
    only lets one call leave up to a second early."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # One statement, its own transaction: no BEGIN and COMMIT round trips
        # between dating the call and sending it, each a wake-up of two processes
        # that a busy machine can delay. set_config is the statement's SET LOCAL.
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {PaceLane._meta.db_table} SET departed_at = STATEMENT_TIMESTAMP() + %s "
                "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous "
                "WHERE provider = %s AND lane = %s AND departed_at <= STATEMENT_TIMESTAMP() - %s",
                [later, provider, lane, gap])
            return cursor.rowcount == 1
    with transaction.atomic():
        commit_without_waiting_for_disk()
        lanes = PaceLane.objects.filter(provider=provider, lane=lane, departed_at__lte=Now() - gap)
        return bool(lanes.update(departed_at=Now() + later))


def slow_down(provider: str, seconds: float) -> None:
    """The provider said 429: no worker calls it again for ``seconds``."""
    later = timezone.now() + timedelta(seconds=seconds)
    _ensure_row(provider)
    Pace.objects.filter(provider=provider, next_slot_at__lt=later).update(next_slot_at=later)


def _ensure_row(provider: str) -> None:
    try:
        Pace.objects.get_or_create(provider=provider, defaults={"next_slot_at": timezone.now()})
    except IntegrityError:  # created by another process at the same moment
        pass


def next_free_slot(provider: str):
    pace = Pace.objects.filter(provider=provider).first()
    return max(pace.next_slot_at, timezone.now()) if pace else timezone.now()
