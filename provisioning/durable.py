"""Durable steps: work owed to a person, written in the signup transaction and
performed later by workers (DESIGN principle 2, the transactional outbox).

A step is a row, not a queue message. The queue only carries "look at row N"; the
row holds the truth: status, attempts, when to try next, the last error and a lease.
Every interface (worker task, reconciler, admin button, ``manage.py``) moves a step
through the functions below, so the state machine is written once:

    pending ──claim──▶ running ──success──▶ succeeded
       ▲                  │
       └──transient error─┤ (attempts left, or the provider's circuit is open)
                          └──permanent error / attempts exhausted──▶ failed
    failed ──retry (person or support)──▶ pending

Concurrency: ``claim`` is one compare-and-set UPDATE, so of two workers racing for
one step exactly one wins (PostgreSQL re-checks the WHERE clause after waiting for
the row lock; SQLite serialises writers). The winner holds a lease; a worker killed
mid-call leaves the step ``running`` until the lease expires and the reconciler
hands it to someone else. Results are written only by the lease holder, and every
provider call carries the step's idempotency key, so a duplicate run creates nothing
twice.
"""
from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from provisioning.errors import PermanentError, ProviderError, RateLimited, SystemicError, TransientError

logger = logging.getLogger(__name__)

# last_error_code of a step held while its provider's circuit is open, and its detail:
# what happened, not why the circuit is open (an outage of the provider's, or a refusal
# of ours: the breaker's ``opened_by`` says, and the console reads it there).
OUTAGE = "outage"
OUTAGE_DETAIL = "Its turn came while the provider's circuit was open, so no call was made."
# last_error_code of a step stopped for good without a call (step_cancel).
CANCELLED = "cancelled"
# last_error_code of a step taken over after its worker's lease ran out.
INTERRUPTED = "interrupted"
INTERRUPTED_DETAIL = "The worker performing the attempt stopped before recording its outcome."
# A step that hit an error: its last one stays on it, as history, once it succeeds.
# A cancelled one never called anyone. Steps like these are indexed by status and
# last change (*_errored_idx), for what an outage touched (provisioning.selectors).
HIT_AN_ERROR = ~Q(last_error_code__in=["", CANCELLED])


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # owed; due at next_attempt_at
    RUNNING = "running", "Running"  # a worker holds the lease
    SUCCEEDED = "succeeded", "Succeeded"  # done; never runs again
    FAILED = "failed", "Failed"  # permanent error or attempts exhausted; waits for a person


class Step(models.Model):
    """Fields every durable step shares. Concrete steps add what they are about."""

    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Attempts made while the provider's circuit was open do not count (DESIGN).
    counted_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    # Set when the dispatcher enqueues a task; a lost task is re-enqueued after it.
    dispatched_until = models.DateTimeField(null=True, blank=True)
    # Since when the provider has answered this step with nothing but "slow down"
    # (HTTP 429); None once it answers anything else (see _record_rate_limited).
    rate_limited_since = models.DateTimeField(null=True, blank=True)
    last_error_code = models.CharField(max_length=64, blank=True)
    last_error_detail = models.CharField(max_length=500, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_open(self) -> bool:
        return self.status in (StepStatus.PENDING, StepStatus.RUNNING)


@dataclass(frozen=True)
class StepKind:
    """How to perform one kind of step, registered by the app that owns it."""

    name: str
    model: type[Step]
    perform: Callable[[Step], str]  # returns a short result; raises Transient/PermanentError
    max_attempts: Callable[[], int]
    # Called inside the transaction that records the outcome: write what follows from
    # it there, and announce it with transaction.on_commit.
    on_succeeded: Callable[[Step, str], None]
    on_failed: Callable[[Step], None]
    # The provider a circuit breaker guards for this kind, if any.
    provider: str = ""
    # Which of its steps are part of an account's setup (what a person waits for
    # before they are all set), as a filter on ``model``; None if none are (a
    # workspace removal). An outage's figures count only people waiting for setup.
    setup: Q | None = None
    # Which of its open setup steps hold nobody up any more (a verification link for
    # an address confirmed meanwhile by another), as a filter on ``model``: they are
    # still performed, but an outage's figures no longer count their person waiting.
    settled: Q | None = None
    # Which of its steps are not urgent (an apology), as a filter on ``model``: they
    # wait while another kind has a backlog of setup work (``setup_under_way``), for
    # NOT_URGENT_HOLD at most, so that after an outage the held workspaces get the
    # workers and the provider's pace first, and the apologies follow them.
    not_urgent: Q | None = None
    # Which of its not-urgent steps wait for their person's other steps, as a filter
    # on ``model`` (an Exists over the same account's open steps, the not-urgent ones
    # aside: the apology waits for the emails it apologises for). They are not handed
    # out while it holds (``due_steps``), however long: every step it waits for ends,
    # done or given up, as its attempts are limited. Read for each due not-urgent
    # step, so the Exists must be index-backed (the account's foreign key).
    waits_for: Q | None = None
    # The relations ``perform`` reads, loaded with the claim: nothing is read between
    # taking the pacing lane and the call, so the call leaves at once.
    load_with: tuple[str, ...] = ()


_kinds: dict[str, StepKind] = {}


def register(kind: StepKind) -> None:
    _kinds[kind.name] = kind


def unregister(name: str) -> None:
    _kinds.pop(name, None)


def kinds() -> list[StepKind]:
    return list(_kinds.values())


def kind_named(name: str) -> StepKind:
    return _kinds[name]


def kind_of(step: Step) -> StepKind:
    for kind in _kinds.values():
        if isinstance(step, kind.model):
            return kind
    raise LookupError(f"no step kind registered for {type(step).__name__}")


def backoff_seconds(attempt: int) -> float:
    """Full jitter: random(0, min(cap, base × 2^attempt)), in seconds."""
    ceiling = min(settings.RETRY_MAX_SECONDS, settings.RETRY_BASE_SECONDS * (2 ** attempt))
    return random.uniform(0, ceiling)


def _due(now: datetime) -> Q:
    return Q(status=StepStatus.PENDING, next_attempt_at__lte=now) | Q(
        status=StepStatus.RUNNING, lease_expires_at__lt=now
    )


def claim(kind: StepKind, pk: int, *, now: datetime | None = None) -> Step | None:
    """Take the lease on a due step. Returns the step, or None if it is not due, is
    done, or another worker holds it. One UPDATE: safe under any concurrency.

    Taking over a running step whose lease ran out counts the attempt its worker
    never recorded: a worker that dies on every attempt (killed, out of memory, the
    task timeout) must use up the step's attempts, not re-run it for ever."""
    now = now or timezone.now()
    owner = uuid.uuid4().hex
    taken_over = Q(status=StepStatus.RUNNING)
    won = kind.model.objects.filter(_due(now), pk=pk).update(
        status=StepStatus.RUNNING,
        lease_owner=owner,
        lease_expires_at=now + timedelta(seconds=settings.STEP_LEASE_SECONDS),
        attempts=F("attempts") + 1,
        # Never past the limit: a take-over of a step whose attempts are used up
        # fails it (step_run) without counting one more, so a worker that died there
        # too leaves it at the limit, and the next take-over fails it.
        counted_attempts=F("counted_attempts") + Case(
            When(taken_over & Q(counted_attempts__lt=kind.max_attempts()), then=Value(1)), default=Value(0)),
        # A step that never failed before remembers it was interrupted (the person
        # waited); an earlier error is kept, as the better clue for support.
        last_error_code=Case(When(taken_over & Q(last_error_code=""), then=Value(INTERRUPTED)),
                             default=F("last_error_code"), output_field=models.CharField()),
        last_error_detail=Case(When(taken_over & Q(last_error_code=""), then=Value(INTERRUPTED_DETAIL)),
                               default=F("last_error_detail"), output_field=models.CharField()),
        dispatched_until=None,
    )
    if not won:
        return None
    return kind.model.objects.select_related(*kind.load_with).get(pk=pk)


def _finish(step: Step, **fields) -> bool:
    """Write an outcome if we still hold the lease. False when the lease was lost
    (it expired and another worker took over): that worker's outcome wins. An
    outcome ends a run of 429s unless it says otherwise."""
    fields.setdefault("rate_limited_since", None)
    fields.setdefault("lease_owner", "")
    fields.setdefault("lease_expires_at", None)
    updated = type(step).objects.filter(
        pk=step.pk, status=StepStatus.RUNNING, lease_owner=step.lease_owner
    ).update(**fields, updated_at=timezone.now())
    if updated:
        step.refresh_from_db()
    return bool(updated)


def step_run(kind_name: str, pk: int) -> str:
    """Claim the step, call its provider once, record the outcome. Idempotent: a
    step that is not due, already running or done is left alone. Returns what
    happened, in a word, for logs and the reconciler's report."""
    from provisioning import breaker, pacing  # both import our models, which import us

    kind = kind_named(kind_name)
    # Claim first: a stale or duplicate task (the step is done, or another worker
    # holds it) must leave the breaker's probe and the pacing slots to real calls.
    step = claim(kind, pk)
    if step is None:
        return "skipped"
    if step.counted_attempts >= kind.max_attempts():
        # Only a take-over gets here: the workers of its last attempts all died. This
        # claim calls nobody, so it is not an attempt of its own.
        return _record_failed(kind, step, INTERRUPTED, INTERRUPTED_DETAIL, attempts=step.attempts - 1)
    if kind.provider:
        if not breaker.allow(kind.provider):
            # Circuit open: the step stays due, is tried once the probe succeeds, and
            # remembers it waited on the open circuit (the person is owed an apology). A run
            # of 429s ends here: the outage is announced, and the step starts afresh.
            return _release(step, "held", last_error_code=OUTAGE, last_error_detail=OUTAGE_DETAIL)
        slot = pacing.reserve(kind.provider)
        if slot is None:  # the provider's next free slot is far off: come back then
            return _release(step, "paced", next_attempt_at=pacing.next_free_slot(kind.provider),
                            rate_limited_since=step.rate_limited_since)
        pacing.leave(kind.provider, slot)
    try:
        outcome: str | ProviderError = kind.perform(step)
    except (TransientError, PermanentError) as error:
        outcome = error
    except Exception as error:
        # A bug or an unclassified error must not leave the step running for ever
        # (re-claimed at every lease expiry, never exhausted): it counts as a failed
        # attempt, so it ends in front of a person after the usual retries.
        logger.exception("step %s %s raised an unexpected error", kind.name, step.pk)
        outcome = TransientError("unexpected", f"Unexpected error: {type(error).__name__}.")
    owner = step.lease_owner
    try:
        return _record(kind, step, outcome)
    except Exception as error:
        # The provider answered but its outcome could not be recorded (say the
        # database refused what it returned). Left running, the step would call the
        # provider again at every lease expiry; instead the attempt counts as failed.
        logger.exception("step %s %s: recording the outcome failed", kind.name, step.pk)
        fresh = kind.model.objects.filter(pk=step.pk, status=StepStatus.RUNNING, lease_owner=owner).first()
        if fresh is None:
            return "lost-lease"
        unrecorded = TransientError("unrecorded", f"The provider's answer could not be recorded "
                                                  f"({type(error).__name__}).")
        return _record_transient(kind, fresh, unrecorded, counts=True)


def _release(step: Step, why: str, **fields) -> str:
    """Give back a claim that made no call: the step is due again as it was, and
    the claim is not an attempt (a take-over still counts the dead worker's)."""
    fields.setdefault("dispatched_until", None)
    if not _finish(step, status=StepStatus.PENDING, attempts=step.attempts - 1, **fields):
        return "lost-lease"
    return why


def _record(kind: StepKind, step: Step, outcome: str | ProviderError) -> str:
    """Write what the provider answered, and tell the breaker."""
    from provisioning import breaker, pacing

    if isinstance(outcome, RateLimited) and kind.provider:
        return _record_rate_limited(kind, step, outcome)
    if isinstance(outcome, SystemicError) and kind.provider:
        # Refused for us: an outage of ours. The circuit opens at once and the step
        # waits behind it, its attempt not counted against the person.
        breaker.refused_us(kind.provider, code=outcome.code, why=outcome.detail, credentials=outcome.credentials)
        return _record_transient(kind, step, outcome, counts=False)
    if isinstance(outcome, TransientError):
        if kind.provider and outcome.retry_after:
            pacing.slow_down(kind.provider, outcome.retry_after)
        counts = not (kind.provider and breaker.record_failure(kind.provider, step, outcome.code))
        return _record_transient(kind, step, outcome, counts=counts)
    if isinstance(outcome, PermanentError):
        if outcome.code == CANCELLED:
            # No longer wanted, found before any call: like a claim given back
            # (``_release``), it is no attempt, so no page counts it as a failed try.
            return _record_failed(kind, step, outcome.code, outcome.detail, attempts=step.attempts - 1)
        if kind.provider:
            if not outcome.personal and _refusal_is_systemic(kind, step, outcome):
                ours = SystemicError(outcome.code, outcome.detail)
                return _record_transient(kind, step, ours, counts=False)
            breaker.record_success(kind.provider)  # the provider answered
        return _record_failed(kind, step, outcome.code, outcome.detail)
    if kind.provider:
        breaker.record_success(kind.provider)
    with transaction.atomic():
        # The last error stays as history: it tells whether the person waited.
        if not _finish(step, status=StepStatus.SUCCEEDED, completed_at=timezone.now(), next_attempt_at=None):
            return "lost-lease"
        kind.on_succeeded(step, outcome)
    return "succeeded"


def _record_rate_limited(kind: StepKind, step: Step, error: RateLimited) -> str:
    """The provider asked us to slow down (HTTP 429): pacing, not a failure. Every
    worker waits its Retry-After (one second if it gave none: ``pacing.slow_down``)
    and the step is due again then. The call is in ``attempts`` (it was made, as a
    probe's is) but not in ``counted_attempts``, and the breaker is not told: a
    provider pacing us is not down, and a person must not run out of attempts, nor
    an outage be announced, because a backlog met the limit.

    Bounded: a step answered nothing but 429 for longer than BREAKER_WINDOW_SECONDS
    (``rate_limited_since``, cleared by any other answer, and by the step being held
    behind an open circuit or re-armed) has each further 429 counted as a transient
    failure like a 503: an attempt, and a breaker failure. A provider that answers
    429 for ever so opens the circuit (BREAKER_FAILURE_THRESHOLD accounts within the
    window: an outage incident support sees), and one account refused alone ends
    failed, in front of a person, once its attempts are used up."""
    from provisioning import breaker, pacing

    now = timezone.now()
    wait = 1.0 if error.retry_after is None else error.retry_after
    if wait:
        pacing.slow_down(kind.provider, wait)
    since = step.rate_limited_since or now
    if (now - since).total_seconds() > settings.BREAKER_WINDOW_SECONDS:
        counts = not breaker.record_failure(kind.provider, step, error.code)
        return _record_transient(kind, step, error, counts=counts, rate_limited_since=since)
    if not _finish(step, status=StepStatus.PENDING, next_attempt_at=now + timedelta(seconds=wait),
                   last_error_code=error.code, last_error_detail=error.detail[:500], rate_limited_since=since):
        return "lost-lease"
    return "slowed down"


def _refusal_is_systemic(kind: StepKind, step: Step, refusal: PermanentError) -> bool:
    """The same refusal for BREAKER_FAILURE_THRESHOLD distinct accounts within the
    window is ours (a change at the provider, or in what we send), not each person's:
    the circuit opens with the refusal as its cause, and the steps it already failed
    in the window are re-armed to wait behind it with everyone else. Both happen in
    one transaction, so whoever hears "breaker opened" finds them waiting."""
    from provisioning import breaker
    from provisioning.models import Event

    with transaction.atomic():
        if not breaker.record_refusal(kind.provider, step, refusal.code):
            return False
        now = timezone.now()
        since = now - timedelta(seconds=settings.BREAKER_WINDOW_SECONDS)
        refused = kind.model.objects.filter(status=StepStatus.FAILED, last_error_code=refusal.code,
                                            completed_at__gte=since).exclude(pk=step.pk)
        accounts = list(refused.values_list("account_id", flat=True))
        refused.update(status=StepStatus.PENDING, next_attempt_at=now, counted_attempts=0,
                       dispatched_until=None, completed_at=None, updated_at=now)
        Event.objects.bulk_create(
            Event(account_id=account_id, subject=kind.name, from_state=StepStatus.FAILED,
                  to_state=StepStatus.PENDING, why=f"the same refusal ({refusal.code}) came back for many "
                                                  "accounts: ours, not theirs; waiting for the provider")
            for account_id in accounts)
    return True


def _record_transient(kind: StepKind, step: Step, error: TransientError, *, counts: bool,
                      rate_limited_since: datetime | None = None) -> str:
    counted = step.counted_attempts + (1 if counts else 0)
    if counted >= kind.max_attempts():
        return _record_failed(kind, step, error.code, error.detail, counted=counted)
    delay = backoff_seconds(counted)
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    if not counts:
        # The circuit is open: the step waits behind the breaker (the reconciler sends
        # only probes), and is due the moment the circuit closes.
        delay = error.retry_after or 0
    if not _finish(step, status=StepStatus.PENDING, counted_attempts=counted,
                   next_attempt_at=timezone.now() + timedelta(seconds=delay),
                   last_error_code=error.code, last_error_detail=error.detail[:500],
                   rate_limited_since=rate_limited_since):
        return "lost-lease"
    return "retrying"


def _record_failed(kind: StepKind, step: Step, code: str, detail: str, *,
                   counted: int | None = None, **extra) -> str:
    fields = dict(status=StepStatus.FAILED, next_attempt_at=None, completed_at=timezone.now(),
                  last_error_code=code, last_error_detail=detail[:500], **extra)
    if counted is not None:
        fields["counted_attempts"] = counted
    with transaction.atomic():
        if not _finish(step, **fields):
            return "lost-lease"
        kind.on_failed(step)
    return "failed"


def step_retry_now(step: Step) -> bool:
    """Make a failed or waiting step due now, with a fresh allowance of attempts.
    Idempotent: a running or succeeded step is left alone. Returns True if changed."""
    updated = type(step).objects.filter(
        pk=step.pk, status__in=[StepStatus.PENDING, StepStatus.FAILED]
    ).update(status=StepStatus.PENDING, next_attempt_at=timezone.now(), counted_attempts=0,
             rate_limited_since=None, dispatched_until=None, completed_at=None, updated_at=timezone.now())
    step.refresh_from_db()
    return bool(updated)


def step_cancel(step: Step, *, why: str, unless_running: bool = False) -> bool:
    """Stop an open step for good (e.g. an email to an address no longer ours).
    ``unless_running`` leaves a step a worker holds alone: its call may already
    have done what cancelling was meant to prevent. Returns True if stopped."""
    open_now = [StepStatus.PENDING] if unless_running else [StepStatus.PENDING, StepStatus.RUNNING]
    updated = type(step).objects.filter(
        pk=step.pk, status__in=open_now
    ).update(status=StepStatus.FAILED, next_attempt_at=None, last_error_code=CANCELLED,
             last_error_detail=why[:500], completed_at=timezone.now(), lease_owner="",
             lease_expires_at=None, updated_at=timezone.now())
    step.refresh_from_db()
    return bool(updated)


def due_steps(kind: StepKind, *, now: datetime, limit: int = 500, urgent_only: bool = False) -> list[int]:
    """Ids of steps that should be running and were never handed to the queue (or
    were taken back from it), oldest first. The kind's ``not_urgent`` steps whose
    person still waits for another of its steps (``waits_for``) are left out until
    that one is done. With ``urgent_only`` (a backlog of setup work elsewhere:
    ``setup_under_way``), the other ``not_urgent`` steps are left out too while they
    may still wait (``_may_wait``), and come after every urgent one when they may
    not. Backed by an index on (status, next_attempt_at); ``waits_for`` is read only
    for the due not-urgent steps that index finds."""
    steps = kind.model.objects.filter(_due(now), dispatched_until__isnull=True)
    if kind.not_urgent is not None and kind.waits_for is not None:
        steps = steps.exclude(kind.not_urgent & kind.waits_for)
    if not urgent_only or kind.not_urgent is None:
        return _oldest(steps, limit)
    urgent = _oldest(steps.exclude(kind.not_urgent), limit)
    return urgent + _oldest(steps.filter(kind.not_urgent).exclude(_may_wait(now)), limit - len(urgent))


def _oldest(steps, limit: int) -> list[int]:
    if limit <= 0:
        return []
    return list(steps.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])


# A not-urgent step waits behind setup work at most this long after it was owed: a
# backlog that does not end (signups faster than a provider takes them) must not
# hold an apology for ever.
NOT_URGENT_HOLD = timedelta(minutes=15)


def _may_wait(now: datetime) -> Q:
    """A not-urgent step that may wait behind a backlog: owed less than
    NOT_URGENT_HOLD ago (from ``created_at``: pacing or a retry moves its due time,
    and must not start the hold again), and never held up by its own provider (one
    with an error has waited already: held, it would also keep its provider's
    incident open with nobody waiting)."""
    return Q(created_at__gt=now - NOT_URGENT_HOLD, last_error_code="")


def pass_budget() -> int:
    """About one reconcile interval of work for a provider: what a pass keeps queued
    for a kind, no more (pacing spaces the calls; an overfull queue only churns)."""
    return max(1, int(settings.PROVIDER_RATE_PER_SECOND * settings.RECONCILE_EVERY_SECONDS))


def setup_under_way(*, besides: StepKind, now: datetime | None = None) -> bool:
    """Whether another kind has a backlog of setup work: at least a pass's budget of
    setup steps due and waiting for a worker (queued or not) at a provider whose
    circuit is closed. A heal draining what an outage held has one; the steps of a
    few signups, or a retry waiting for the next pass, are not one. ``besides``'s
    not-urgent steps wait meanwhile (``due_steps``: at most NOT_URGENT_HOLD). Work
    held behind an open circuit does not count: it is not competing for the workers,
    and an outage of one provider must not hold another's apologies. Per other kind
    with setup steps: whether its circuit is open, then one indexed count of at most
    a budget of rows."""
    from provisioning import breaker  # it imports our models, which import us

    now = now or timezone.now()
    backlog = pass_budget()
    return any(
        not (kind.provider and breaker.is_open(kind.provider))
        and kind.model.objects.filter(_due(now), kind.setup)[:backlog].count() >= backlog
        for kind in _kinds.values() if kind is not besides and kind.setup is not None)



def presumed_lost_steps(kind: StepKind, *, now: datetime, limit: int) -> list[tuple[int, datetime]]:
    """Steps handed to the queue whose mark ran out and that no worker has taken,
    as (id, mark) pairs, oldest mark first: the reconciler dispatches them again
    only as many as the broker can no longer be holding (provisioning.reconciler)."""
    if limit <= 0:
        return []
    return list(
        kind.model.objects.filter(_due(now), dispatched_until__lt=now)
        .order_by("dispatched_until", "pk")
        .values_list("pk", "dispatched_until")[:limit]
    )


def _awaiting_worker(now: datetime) -> Q:
    """Open and held by no live worker: pending, or running on a lease that ran out."""
    return Q(status=StepStatus.PENDING) | Q(status=StepStatus.RUNNING, lease_expires_at__lt=now)


def queued_count(kind: StepKind, *, now: datetime) -> int:
    """Steps handed to the queue and not yet taken by a worker, however long ago:
    a mark that ran out says the queue is slow or the task was lost, and only the
    broker's own backlog tells which. A running step whose worker died counts too
    once it is handed out again: its task can be lost like any other."""
    return kind.model.objects.filter(_awaiting_worker(now), dispatched_until__isnull=False).count()


def mark_dispatched(kind: StepKind, pks: list[int], *, now: datetime) -> None:
    """Remember that tasks were enqueued, so the next pass does not enqueue them
    again. Until the mark runs out a task counts as queued whatever the broker
    says (it may still be on its way: enqueued after this mark, or pulled by a
    cluster and waiting for a worker); after, only if the broker still holds it.
    A step a live worker holds is not marked: its worker records the outcome."""
    kind.model.objects.filter(_awaiting_worker(now), pk__in=pks).update(dispatched_until=_mark(now))


def unmark_dispatched(kind: StepKind, pks: list[int], *, now: datetime) -> None:
    """The enqueue after ``mark_dispatched(..., now=now)`` failed: the steps are due
    for the next pass again. A step claimed or marked again since is left alone."""
    kind.model.objects.filter(pk__in=pks, dispatched_until=_mark(now)).update(dispatched_until=None)


def queued_until(now: datetime) -> datetime:
    """The mark ``mark_dispatched`` sets at ``now``, for a step row created queued."""
    return _mark(now)


def _mark(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.STEP_LEASE_SECONDS)
