"""Reads about steps that other apps need (support's incidents). Provisioning is the
lowest layer: these read only its own step registry and rows."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connections
from django.db.models import Exists, OuterRef, Q, Value

from provisioning import durable
from provisioning.durable import HIT_AN_ERROR, StepStatus
from provisioning.models import Breaker, BreakerState

OPEN = (StepStatus.PENDING, StepStatus.RUNNING)


def open_circuits() -> dict[str, datetime | None]:
    """Providers whose circuit is open now, with when each opened. One query."""
    return dict(Breaker.objects.filter(state=BreakerState.OPEN).values_list("provider", "opened_at"))


def circuit_opened_at(provider: str) -> datetime | None:
    """When the provider's circuit last opened (kept once it closes), or None if never."""
    return Breaker.objects.filter(provider=provider).values_list("opened_at", flat=True).first()


def step_refused(step: durable.Step | None) -> bool:
    """Whether a stopped step was refused (a permanent error: the provider said no to
    the request as it stands, so a retry unchanged gets the same answer; once the cause
    is fixed, a re-run from the console can pass) rather than having
    run out of attempts on transient errors. The one definition the person's page
    and the support console read. A refusal stops a step at once, before its counted
    attempts reach the limit (``durable._record_failed`` leaves them as they were);
    running out, or a take-over at the limit, leaves them at the limit. A cancelled
    step called nobody and was refused by no one. No query: the row and the limit as
    set now."""
    if step is None or step.status != StepStatus.FAILED or step.last_error_code == durable.CANCELLED:
        return False
    return step.counted_attempts < durable.kind_of(step).max_attempts()


def circuit_opening(provider: str) -> tuple[str, str, str]:
    """What opened the provider's open circuit (a ``BreakerOpening``), the code of
    that failure, and the refusal code that holds it open ("" for an outage), read
    together from the one row; ("", "", "") when it is closed."""
    return Breaker.objects.filter(provider=provider, state=BreakerState.OPEN).values_list(
        "opened_by", "failure", "cause").first() or ("", "", "")


def _kinds_of(provider: str) -> list[durable.StepKind]:
    return [kind for kind in durable.kinds() if kind.provider == provider]


def _setup_kinds_of(provider: str) -> list[durable.StepKind]:
    return [kind for kind in _kinds_of(provider) if kind.setup is not None]


def _waiting(kind: durable.StepKind):
    """Open steps that hit an error (a cancelled step re-armed by a retry never
    called anyone since), in the words of the errored steps' partial index's own
    condition (HIT_AN_ERROR), so that PostgreSQL can read that index."""
    return kind.model.objects.filter(HIT_AN_ERROR, status__in=OPEN)


def outage_has_backlog(provider: str) -> bool:
    """Whether steps of this provider still wait after an error (held by the open
    circuit, or not yet drained since it closed), of any kind: an incident closes
    once all it held has gone through. An EXISTS per step kind, which stops at the
    first step found (a count would read thousands in a heal)."""
    return any(_waiting(kind).exists() for kind in _kinds_of(provider))


def _setup_waiting(kind: durable.StepKind):
    """Setup steps of this kind waiting after an error: an account's setup waits on
    them, unless they are settled (a link for an address confirmed meanwhile)."""
    waiting = _waiting(kind).filter(kind.setup, account_id__isnull=False)
    return waiting if kind.settled is None else waiting.exclude(kind.settled)


def _setup_waited(kind: durable.StepKind, since: datetime, *, drained: bool = False,
                  codes: Iterable[str] | None = None):
    """Setup steps of this kind that hit an error and are open, or succeeded since
    ``since``; with ``drained``, only the ones that succeeded. A succeeded step keeps
    its last error as history (durable.HIT_AN_ERROR); with ``codes``, a succeeded
    step counts only if that error is one of them (the outage's own: held behind the
    circuit, or its failure), not a person's own refusal a support re-run got past,
    nor an earlier failure of another kind that merely succeeded in the window."""
    done = Q(status=StepStatus.SUCCEEDED, updated_at__gte=since)
    if codes is not None:
        done &= Q(last_error_code__in=list(codes))
    if drained:
        return kind.model.objects.filter(HIT_AN_ERROR, kind.setup, done, account_id__isnull=False)
    return (kind.model.objects.filter(HIT_AN_ERROR, kind.setup, account_id__isnull=False)
            .filter(Q(status__in=OPEN) | done))


def outage_waiting(provider: str, *, account: str = "pk") -> Q:
    """For filtering rows by the account in field ``account``: the account waits for
    its setup on that backlog (a setup step of this provider is in it; a workspace
    removal is not a person waiting). An expression, not a list of ids (see
    ``outage_waited``)."""
    waiting = Q(pk__in=[])
    for kind in _setup_kinds_of(provider):
        waiting |= Q(Exists(_setup_waiting(kind).filter(account_id=OuterRef(account))))
    return waiting


def outage_waited(provider: str, since: datetime, *, drained: bool = False,
                  codes: Iterable[str] | None = None) -> Q:
    """For filtering accounts (by ``pk``): a setup step of theirs for this provider
    waited on an error since ``since`` (still waiting, or since done); with
    ``drained``, one such step has since succeeded (with ``codes``, a succeeded
    step's error is one of them: ``_setup_waited``). An expression, not a list of ids:
    an outage can touch more accounts than a query may carry parameters (SQLite:
    32,766)."""
    waited = Q(pk__in=[])
    for kind in _setup_kinds_of(provider):
        waited |= Q(Exists(_setup_waited(kind, since, drained=drained, codes=codes)
                           .filter(account_id=OuterRef("pk"))))
    return waited


def outage_waiting_count(provider: str) -> int:
    """How many accounts ``outage_waiting`` finds: ``outage_counts``'s ``waiting``
    alone, from the steps that wait now and nothing done. The console's banner shows
    only this, on every page, where the whole count read the steps done since the
    outage began too (26–35 ms over 10,000 stranded on a busy machine)."""
    parts = [_setup_waiting(kind).values("account_id").order_by() for kind in _setup_kinds_of(provider)]
    if not parts:
        return 0
    if len(parts) > 1:
        return parts[0].union(*parts[1:]).count()
    [kind] = _setup_kinds_of(provider)
    # One step per account (a workspace's): counting rows needs no DISTINCT's sort.
    return parts[0].count() if kind.model._meta.get_field("account").unique else parts[0].distinct().count()


def outage_refused(provider: str, since: datetime, code: str) -> tuple[int, int]:
    """For a refusal of us (``code``, the one holding the circuit open): how many
    accounts the provider really refused with it (a setup step of theirs whose last
    answer was that refusal, waiting, or done since ``since``), and how many more
    wait now with another last error (held behind the open circuit, or an earlier
    failure): the provider has not refused them with it. Two counts over the steps
    the outage touched."""
    refused = held = 0
    for kind in _setup_kinds_of(provider):
        accounts = _setup_waited(kind, since).filter(last_error_code=code).values("account_id").order_by()
        refused += accounts.distinct().count()
        held += (_setup_waiting(kind).exclude(account_id__in=accounts)
                 .values("account_id").order_by().distinct().count())
    return refused, held


@dataclass(frozen=True)
class OutageCounts:
    waited: int  # the accounts outage_waited(provider, since, codes=codes) finds
    waiting: int  # the accounts outage_waiting(provider) finds
    drained: int  # the accounts outage_waited(provider, since, drained=True) finds, less those waiting


def outage_counts(provider: str, since: datetime, codes: Iterable[str] | None = None) -> OutageCounts:
    """How many accounts ``outage_waited``, ``outage_waiting`` and the drained ones
    not waiting find, counted from the steps those definitions look for (each
    account once) rather than by testing every account: what it costs follows what
    the outage touched, found by status (open steps) and through the errored steps'
    index (done since ``since``), not the number of accounts. One statement, so the
    three come from one snapshot."""
    parts = []
    for kind in _setup_kinds_of(provider):
        for part, steps in (("waited", _setup_waited(kind, since, codes=codes)), ("waiting", _setup_waiting(kind)),
                            ("drained", _setup_waited(kind, since, drained=True, codes=codes))):
            parts.append(steps.annotate(part=Value(part)).values_list("part", "account_id").order_by())
    if not parts:
        return OutageCounts(0, 0, 0)
    steps, params = parts[0].union(*parts[1:], all=True).query.sql_with_params()
    with connections[parts[0].db].cursor() as cursor:
        cursor.execute(f"""
            WITH step AS ({steps})
            SELECT COUNT(DISTINCT CASE WHEN part = 'waited' THEN account_id END),
                   COUNT(DISTINCT CASE WHEN part = 'waiting' THEN account_id END),
                   COUNT(DISTINCT CASE WHEN part = 'drained' AND account_id NOT IN (
                       SELECT account_id FROM step WHERE part = 'waiting') THEN account_id END)
            FROM step""", params)
        return OutageCounts(*cursor.fetchone())
