"""Circuit breakers, one per provider, shared through the database.

Closed: calls flow. Transient failures are remembered per account; when
BREAKER_FAILURE_THRESHOLD distinct accounts fail within BREAKER_WINDOW_SECONDS the
circuit opens (an outage, not one person's bad luck). Open: calls are held; every
BREAKER_PROBE_SECONDS exactly one call goes through as a probe (the compare-and-set
on ``probed_at`` picks one process). A success closes the circuit.

Attempts made while the circuit is open do not count towards a step's exhaustion.
Opening and closing are announced with signals; the support app turns them into
an incident.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from provisioning.models import Breaker, BreakerFailure, BreakerState, Event
from provisioning.signals import announce_on_commit, breaker_closed, breaker_opened


def _breaker(provider: str) -> Breaker:
    try:
        return Breaker.objects.get_or_create(provider=provider)[0]
    except IntegrityError:  # created by another process at the same moment
        return Breaker.objects.get(provider=provider)


def is_open(provider: str) -> bool:
    return Breaker.objects.filter(provider=provider, state=BreakerState.OPEN).exists()


def _probe_due_before() -> datetime:
    return timezone.now() - timedelta(seconds=settings.BREAKER_PROBE_SECONDS)


def probe_due(provider: str) -> bool:
    return Breaker.objects.filter(
        provider=provider, state=BreakerState.OPEN, probed_at__lte=_probe_due_before()
    ).exists()


def allow(provider: str) -> bool:
    """May a call to this provider go out now? Closed: yes. Open: only the one
    caller that wins this probe slot."""
    if not is_open(provider):
        return True
    return bool(Breaker.objects.filter(
        provider=provider, state=BreakerState.OPEN, probed_at__lte=_probe_due_before()
    ).update(probed_at=timezone.now()))


def record_failure(provider: str, step) -> bool:
    """Remember a transient failure. Returns True when the circuit is open (now or
    already), meaning the attempt does not count towards exhaustion."""
    now = timezone.now()
    if is_open(provider):
        return True
    account_key = str(getattr(step, "account_id", None) or f"step-{step.pk}")
    BreakerFailure.objects.create(provider=provider, account_key=account_key, at=now)
    window_start = now - timedelta(seconds=settings.BREAKER_WINDOW_SECONDS)
    BreakerFailure.objects.filter(provider=provider, at__lt=window_start).delete()
    accounts = (BreakerFailure.objects.filter(provider=provider, at__gte=window_start)
                .values("account_key").distinct().count())
    if accounts < settings.BREAKER_FAILURE_THRESHOLD:
        return False
    _breaker(provider)
    with transaction.atomic():
        opened = Breaker.objects.filter(provider=provider, state=BreakerState.CLOSED).update(
            state=BreakerState.OPEN, opened_at=now, probed_at=now)
        if opened:
            Event.objects.create(subject=f"breaker:{provider}", from_state="closed", to_state="open",
                                 why=f"{accounts} accounts failed within {settings.BREAKER_WINDOW_SECONDS} s")
            announce_on_commit(breaker_opened, sender=Breaker, provider=provider)
    return True


def record_success(provider: str) -> None:
    """The provider answered: close the circuit if it was open."""
    if not is_open(provider):
        return
    with transaction.atomic():
        closed = Breaker.objects.filter(provider=provider, state=BreakerState.OPEN).update(
            state=BreakerState.CLOSED, probed_at=None)
        if closed:
            BreakerFailure.objects.filter(provider=provider).delete()
            Event.objects.create(subject=f"breaker:{provider}", from_state="open", to_state="closed",
                                 why="a probe succeeded")
            announce_on_commit(breaker_closed, sender=Breaker, provider=provider)
