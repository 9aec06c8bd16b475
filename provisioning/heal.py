"""Heal at once: when a provider's circuit closes, the work it held is dispatched
immediately instead of waiting for the next scheduled pass.

django-q2's scheduler wakes about every 30 s whatever RECONCILE_EVERY_SECONDS says,
so after an outage the held steps sat behind it twice: once until the first pass
after the probe succeeded, and again between passes, each of which dispatches only
about one interval of work (measured from outside: 69.5 s against a bound of 16 s
for 120 stranded accounts; bench/heal_time.py measures it now). Two hand-offs remove both waits:

- the receiver below enqueues a reconcile pass the moment the circuit closes;
- a pass that filled its whole budget for a kind enqueues the next pass itself
  (``continue_if_due``). Queued after them, that next pass mostly runs once the
  workers have taken the steps dispatched before it (django-q2's ORM broker hands
  tasks out in the table's order, which is only roughly the order they went in;
  strictly in order measured slower, as the pass then waits behind every paced
  email too): the chain drains a backlog near the provider's rate and stops when a
  pass finds less than a budget due. A pass that finds the queue still full dispatches a
  trickle, not a budget, so two chains meeting collapse into one.

During the outage itself, the next probe would also wait for the scheduler: a pass
that sent a probe queues a pass for when the next one is due
(``probe_again_when_due``), and a scheduled pass that found the probe not yet due
queues one for when it is, so the circuit closes within one probe interval of the
provider's recovery. That pass waits in a worker, so only for probe intervals up to
the scheduler's own tick; longer ones are served by the schedule. A pass that finds
the probe already taken sends none and queues nothing, so these passes never pile up.

The apologies a heal owes (``durable.StepKind.not_urgent``) wait while a budget of
setup work is due; when the last of it is dispatched, a pass that finds the queue
still full may end the chain before they are due, and they go at the next scheduled
pass: a minute later, for an email that is not urgent.

Enqueueing is robust on commit: a broker that is down loses only this shortcut; the
scheduled pass still comes.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from provisioning import durable
from provisioning.signals import breaker_closed

logger = logging.getLogger(__name__)


def enqueue_reconcile() -> None:
    from django_q.tasks import async_task

    async_task("provisioning.tasks.reconcile", group="reconcile")


@receiver(breaker_closed, dispatch_uid="provisioning.heal.dispatch_held_work")
def dispatch_held_work(*, provider: str, **kwargs) -> None:
    logger.info("circuit for %s closed: dispatching the held work now", provider)
    transaction.on_commit(enqueue_reconcile, robust=True)


def continue_if_due(report) -> None:
    """After a pass: if it dispatched a whole budget for some kind, more may be due;
    queue the next pass behind that work rather than waiting for the scheduler."""
    if report.full:
        transaction.on_commit(enqueue_reconcile, robust=True)


# django-q2's scheduler wakes about every 30 s: probe intervals up to this are kept
# by a waiting pass, longer ones by the schedule.
SCHEDULER_TICK_SECONDS = 30
# A probe's slot is taken when its task starts, a moment after the pass that sent it.
PROBE_MARGIN_SECONDS = 0.5


def enqueue_reconcile_after(seconds: float) -> None:
    from django_q.tasks import async_task

    async_task("provisioning.tasks.reconcile_after", seconds, group="reconcile")


def probe_again_when_due(report, *, scheduled: bool) -> None:
    """After a pass that sent an outage probe, queue the pass that sends the next
    one. A scheduled pass that found the probe not yet due queues the pass for when
    it is (that starts the chain); a queued pass that found it taken queues nothing,
    so two chains meeting collapse into one."""
    interval = settings.BREAKER_PROBE_SECONDS
    # Tasks run inline in sync mode (tests): waiting there would stall the caller.
    if not 0 < interval <= SCHEDULER_TICK_SECONDS or settings.Q_CLUSTER.get("sync"):
        return
    if report.probed:
        wait = interval
    elif scheduled and report.held:
        wait = _seconds_to_next_probe([durable.kind_named(name).provider for name in report.held])
        if wait is None or wait > SCHEDULER_TICK_SECONDS:
            return
    else:
        return
    transaction.on_commit(lambda: enqueue_reconcile_after(wait + PROBE_MARGIN_SECONDS), robust=True)


def _seconds_to_next_probe(providers: list[str]) -> float | None:
    from provisioning.models import Breaker, BreakerState

    slots = Breaker.objects.filter(provider__in=providers, state=BreakerState.OPEN,
                                   probed_at__isnull=False).values_list("probed_at", flat=True)
    now = timezone.now()
    waits = [(slot - now).total_seconds() + settings.BREAKER_PROBE_SECONDS for slot in slots]
    return max(0.0, min(waits)) if waits else None
