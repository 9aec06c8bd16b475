"""django-q2 tasks: "just another interface". They take ids and call one function;
the durable row, not the queue, is the source of truth (DESIGN)."""
from __future__ import annotations

import logging

from django_q.tasks import async_task

logger = logging.getLogger(__name__)


def run_step(kind: str, pk: int) -> str:
    from provisioning.durable import step_run

    return step_run(kind, pk)


def reconcile(*, scheduled: bool = True) -> str:
    from provisioning.heal import continue_if_due, probe_again_when_due
    from provisioning.reconciler import reconcile as reconcile_pass
    from provisioning.reconciler import schedule_next_pass
    from provisioning.signals import reconciled

    report = reconcile_pass()
    schedule_next_pass()
    continue_if_due(report)
    probe_again_when_due(report, scheduled=scheduled)
    # Last, so that a slow or failing receiver never keeps the next pass from being
    # queued; sent at once, as the pass's writes are committed (autocommit).
    reconciled.send_robust(sender=type(report), report=report)
    return str(report)


def reconcile_after(seconds: float) -> str:
    """A pass ``seconds`` from now (provisioning.heal: the next probe of an outage)."""
    import time

    time.sleep(seconds)
    return reconcile(scheduled=False)


def queue_backlog() -> int:
    """Tasks waiting in the broker for a worker. Not those a cluster has pulled (ORM
    locks, Redis in memory): among them is the reconcile pass asking, and a step task
    pulled is about to clear its step's mark by claiming it. Counting the pass itself
    hid a lost step for ever when it was the only one. 0 when the broker cannot be
    asked: the reconciler then treats every run-out mark as lost, which duplicates
    at worst."""
    from django.db import DatabaseError
    from django_q.brokers import get_broker
    from redis.exceptions import RedisError

    try:
        return get_broker().queue_size() or 0
    except (DatabaseError, RedisError):
        logger.warning("the task broker could not say how many tasks it holds", exc_info=True)
        return 0


def enqueue_step(kind: str, pk: int) -> None:
    async_task("provisioning.tasks.run_step", kind, pk, group=kind)
