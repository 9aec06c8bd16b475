"""The dispatcher and reconciler: one pass enqueues every step that is due and not
known to be queued, and rescues steps whose lease expired (a worker was killed) or
whose task was lost (Redis broker, rotated SECRET_KEY). It is what guarantees that
nothing owed is ever forgotten; django-q2 runs it on a schedule, and
``manage.py reconcile`` runs one pass by hand."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from provisioning import breaker, durable
from provisioning.models import Heartbeat

SCHEDULE_NAME = "reconcile"


@dataclass
class Report:
    dispatched: dict[str, int] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)
    # Kinds whose whole budget was dispatched: more may be due (provisioning.heal).
    full: set[str] = field(default_factory=set)
    # Kinds for which this pass sent the one probe an open circuit allows.
    probed: set[str] = field(default_factory=set)

    def __str__(self) -> str:
        parts = [f"{kind}: {n} dispatched" for kind, n in self.dispatched.items()]
        parts += [f"{kind}: {why}" for kind, why in self.held.items()]
        return "; ".join(parts) or "nothing due"


def reconcile(*, enqueue=None) -> Report:
    """One pass. ``enqueue(kind, pk)`` defaults to the django-q2 task; the demo passes
    a function that runs the step in-process."""
    from provisioning.tasks import enqueue_step, queue_backlog

    enqueue = enqueue or enqueue_step
    now = timezone.now()
    report = Report()
    # Keep about one interval of work queued for a provider, no more: pacing spaces
    # the calls, and an overfull queue would only churn.
    budget = durable.pass_budget()
    queued = {kind.name: durable.queued_count(kind, now=now) for kind in durable.kinds()}
    limits, probing = {}, set()
    for kind in durable.kinds():
        if kind.provider and breaker.is_open(kind.provider):
            if not breaker.probe_due(kind.provider):
                report.held[kind.name] = "held: provider outage, waiting for the next probe"
                continue
            probing.add(kind.name)
            limits[kind.name] = 1  # one probe; the rest waits for the circuit to close
        else:
            limits[kind.name] = max(1, min(500, budget - queued[kind.name]))
    # A queued step whose task the broker no longer holds was lost (a Redis worker
    # died, SECRET_KEY rotated). A slow queue loses nothing: its tasks are all still
    # there, and feeding it the same steps again only makes it slower (each copy
    # costs a worker a task). So only the shortfall is dispatched again: the oldest
    # run-out marks of any kind, a budget at most.
    lost = min(max(0, sum(queued.values()) - queue_backlog()), max(1, min(500, budget)))
    again = _oldest_presumed_lost(limits, probing, now=now, count=lost)
    for kind in durable.kinds():
        if kind.name not in limits:
            continue
        limit, redo = limits[kind.name], again.get(kind.name, [])
        urgent_only = kind.not_urgent is not None and durable.setup_under_way(besides=kind, now=now)
        fresh = durable.due_steps(kind, now=now, limit=limit - len(redo) if kind.name in probing else limit,
                                  urgent_only=urgent_only)
        pks = redo + fresh
        durable.mark_dispatched(kind, pks, now=now)
        for pk in pks:
            enqueue(kind.name, pk)
        report.dispatched[kind.name] = len(pks)
        if limit > 1 and len(fresh) == limit:
            report.full.add(kind.name)
        elif pks and kind.name in probing:
            report.probed.add(kind.name)
    # Durable proof that passes run: /healthz reports the worker stale without one.
    Heartbeat.objects.update_or_create(name=SCHEDULE_NAME, defaults={"at": timezone.now()})
    return report


def _oldest_presumed_lost(limits: dict[str, int], probing: set[str], *, now, count: int) -> dict[str, list[int]]:
    """The ``count`` oldest run-out marks across the kinds being dispatched (a probing
    kind gives one at most), by kind."""
    if count <= 0:
        return {}
    candidates = sorted(
        (mark, name, pk)
        for name in limits
        for pk, mark in durable.presumed_lost_steps(durable.kind_named(name), now=now,
                                                     limit=1 if name in probing else count))
    chosen: dict[str, list[int]] = {}
    for _, name, pk in candidates[:count]:
        chosen.setdefault(name, []).append(pk)
    return chosen


def last_pass_at():
    """When the last reconcile pass finished, or None if none ever did."""
    return Heartbeat.objects.filter(name=SCHEDULE_NAME).values_list("at", flat=True).first()


def ensure_schedule() -> None:
    """Create the periodic reconcile schedule if it is missing (run by ``migrate``)."""
    from django_q.models import Schedule

    Schedule.objects.get_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": "provisioning.tasks.reconcile", "schedule_type": Schedule.MINUTES,
                  "minutes": 1, "repeats": -1},
    )


def schedule_next_pass() -> None:
    """Bring the next pass forward to RECONCILE_EVERY_SECONDS from now. django-q2
    schedules count in whole minutes; its scheduler wakes about every 30 s, which is
    the floor."""
    from django_q.models import Schedule

    Schedule.objects.filter(name=SCHEDULE_NAME).update(
        next_run=timezone.now() + timedelta(seconds=settings.RECONCILE_EVERY_SECONDS))
