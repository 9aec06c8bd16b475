"""Circuit breakers, one per provider, shared through the database.

Closed: calls flow. The circuit opens (an outage, not one person's bad luck) when
- BREAKER_FAILURE_THRESHOLD distinct accounts fail transiently within
  BREAKER_WINDOW_SECONDS;
- the provider refuses us (a ``SystemicError``: our credentials, configuration or
  relay), at once: every call would fail alike;
- the same refusal (one error code) comes back for BREAKER_FAILURE_THRESHOLD
  distinct accounts within the window: a change on the provider's side or ours, not
  each person's data. ``cause`` then holds that code, and the same refusal to a
  probe keeps the circuit open.
Open: calls are held; every BREAKER_PROBE_SECONDS exactly one call goes through as
a probe (the compare-and-set on ``probed_at`` picks one process). An answer that
is not the circuit's cause closes it, except a refusal of us for another reason
(our credentials refused while it is open for an outage): that becomes what holds
it open, and the change is announced, so the incident asks for the fix that fits.

What opened it (``opened_by``: no answer, failing, refused our credentials, refused
us otherwise, refused many alike: the backend's verdict says which refusal is which)
and the code of that failure are kept on the circuit, so the incident says what
happened rather than a guess.

Attempts made while the circuit is open do not count towards a step's exhaustion.
Opening and closing are announced with signals; the support app turns them into
an incident.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from provisioning.models import NO_ANSWER_CODES, Breaker, BreakerFailure, BreakerOpening, BreakerState, Event
from provisioning.signals import announce_on_commit, breaker_cause_changed, breaker_closed, breaker_opened


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


def _accounts_failing(provider: str, step, *, code: str) -> int:
    """Remember that this step's account failed with ``code`` ("" for a transient
    failure) and count the distinct accounts that did within the window."""
    now = timezone.now()
    account_key = str(getattr(step, "account_id", None) or f"step-{step.pk}")
    BreakerFailure.objects.create(provider=provider, account_key=account_key, code=code, at=now)
    window_start = now - timedelta(seconds=settings.BREAKER_WINDOW_SECONDS)
    BreakerFailure.objects.filter(provider=provider, at__lt=window_start).delete()
    return (BreakerFailure.objects.filter(provider=provider, code=code, at__gte=window_start)
            .values("account_key").distinct().count())


def trip(provider: str, *, cause: str = "", why: str, failure: str = "", opened_by: str = "") -> bool:
    """Open the circuit now, if it is closed, and announce it once the transaction
    commits. ``cause`` is the code of a refusal that is ours ("" for an outage);
    ``failure`` the code of the failure that opened it (default: the cause), and
    ``opened_by`` what kind of failure that was (a ``BreakerOpening``; by default a
    cause is a refusal repeated alike, and no cause a failure to answer or not by
    its code). Returns True if this call opened it."""
    now = timezone.now()
    failure = failure or cause
    if not opened_by:
        opened_by = (BreakerOpening.REFUSED_ALIKE if cause else
                     BreakerOpening.NO_ANSWER if failure in NO_ANSWER_CODES else BreakerOpening.FAILING)
    _breaker(provider)
    with transaction.atomic():
        opened = Breaker.objects.filter(provider=provider, state=BreakerState.CLOSED).update(
            state=BreakerState.OPEN, opened_at=now, probed_at=now, cause=cause, failure=failure,
            opened_by=opened_by)
        if opened:
            Event.objects.create(subject=f"breaker:{provider}", from_state="closed", to_state="open",
                                 why=why[:500])
            announce_on_commit(breaker_opened, sender=Breaker, provider=provider)
    return bool(opened)


def refused_us(provider: str, *, code: str, why: str, credentials: bool = False) -> bool:
    """The provider refused us (a ``SystemicError``: ``credentials``, ours; else our
    configuration, relay or sending policy): open the circuit at once, with the
    refusal as its cause. Already open for another reason (an outage, another
    refusal: while it is open only probes go out, so this answered a probe), the
    refusal is what holds it open now: it becomes its cause, what opened it and
    its failure, and the change is announced (``breaker_cause_changed``), so the
    incident stops saying "it passes by itself". Returns True if this call opened it."""
    opened_by = BreakerOpening.CREDENTIALS if credentials else BreakerOpening.REFUSED_US
    if trip(provider, cause=code, why=why, opened_by=opened_by):
        return True
    with transaction.atomic():
        changed = (Breaker.objects.filter(provider=provider, state=BreakerState.OPEN)
                   .exclude(cause=code, opened_by=opened_by)
                   .update(cause=code, failure=code, opened_by=opened_by))
        if changed:
            Event.objects.create(subject=f"breaker:{provider}", from_state="open", to_state="open",
                                 why=f"still open, now refused us ({code}): {why}"[:500])
            announce_on_commit(breaker_cause_changed, sender=Breaker, provider=provider)
    return False


def record_failure(provider: str, step, code: str = "") -> bool:
    """Remember a transient failure (``code``: the error's, kept on the circuit if
    this one opens it). Returns True when the circuit is open (now or already),
    meaning the attempt does not count towards exhaustion."""
    if is_open(provider):
        return True
    accounts = _accounts_failing(provider, step, code="")
    if accounts < settings.BREAKER_FAILURE_THRESHOLD:
        return False
    trip(provider, failure=code, why=f"{accounts} accounts failed within {settings.BREAKER_WINDOW_SECONDS} s")
    return True


def record_refusal(provider: str, step, code: str) -> bool:
    """Remember a refusal for one person (a PermanentError that is not about their
    own data). Returns True when it is systemic: the circuit is open because of this
    very refusal, or this one makes BREAKER_FAILURE_THRESHOLD distinct accounts
    refused alike within the window (then the circuit opens, with ``code`` as its
    cause). The caller then treats it as refused for us, not for the person."""
    if Breaker.objects.filter(provider=provider, state=BreakerState.OPEN, cause=code).exists():
        return True
    accounts = _accounts_failing(provider, step, code=code)
    if accounts < settings.BREAKER_FAILURE_THRESHOLD:
        return False
    trip(provider, cause=code,
         why=f"{accounts} accounts refused alike ({code}) within {settings.BREAKER_WINDOW_SECONDS} s")
    return True


def record_success(provider: str) -> None:
    """The provider answered: close the circuit if it was open."""
    if not is_open(provider):
        return
    with transaction.atomic():
        closed = Breaker.objects.filter(provider=provider, state=BreakerState.OPEN).update(
            state=BreakerState.CLOSED, probed_at=None, cause="")
        if closed:
            BreakerFailure.objects.filter(provider=provider).delete()
            Event.objects.create(subject=f"breaker:{provider}", from_state="open", to_state="closed",
                                 why="a probe succeeded")
            announce_on_commit(breaker_closed, sender=Breaker, provider=provider)
