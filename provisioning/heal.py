"""Heal at once: when a provider's circuit closes, the work it held is dispatched
immediately instead of waiting for the next scheduled pass.

django-q2's scheduler wakes about every 30 s whatever RECONCILE_EVERY_SECONDS says,
so after an outage the held steps sat behind it twice: once until the first pass
after the probe succeeded, and again between passes, each of which dispatches only
about one interval of work (bench/heal_time.py measured 69.5 s against a bound of
16 s for 120 stranded accounts). Two hand-offs remove both waits:

- the receiver below enqueues a reconcile pass the moment the circuit closes;
- a pass that filled its whole budget for a kind enqueues the next pass itself
  (``continue_if_due``). The queue is first-in first-out, so that next pass runs once
  the workers have taken the steps queued before it, about one interval of work
  later: the chain drains a backlog at the provider's rate and stops when a pass
  finds less than a budget due. A pass that finds the queue still full dispatches a
  trickle, not a budget, so two chains meeting collapse into one.

Enqueueing is robust on commit: a broker that is down loses only this shortcut; the
scheduled pass still comes.
"""
from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import receiver

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
