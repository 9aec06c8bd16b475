"""Reads about steps that other apps need (support's incidents). Provisioning is the
lowest layer: these read only its own step registry and rows."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Q

from provisioning import durable
from provisioning.durable import StepStatus
from provisioning.models import Breaker, BreakerState

OPEN = (StepStatus.PENDING, StepStatus.RUNNING)


def open_circuits() -> dict[str, datetime | None]:
    """Providers whose circuit is open now, with when each opened. One query."""
    return dict(Breaker.objects.filter(state=BreakerState.OPEN).values_list("provider", "opened_at"))


def circuit_cause(provider: str) -> str:
    """The refusal code that holds this provider's circuit open ("" for an outage, or closed)."""
    return Breaker.objects.filter(provider=provider, state=BreakerState.OPEN).values_list(
        "cause", flat=True).first() or ""


def _kinds_of(provider: str) -> list[durable.StepKind]:
    return [kind for kind in durable.kinds() if kind.provider == provider]


def _setup_kinds_of(provider: str) -> list[durable.StepKind]:
    return [kind for kind in _kinds_of(provider) if kind.setup is not None]


def _waiting(kind: durable.StepKind):
    return kind.model.objects.filter(status__in=OPEN).exclude(last_error_code="")


def outage_backlog(provider: str) -> int:
    """Steps of this provider still waiting after an error (held by the open
    circuit, or not yet drained since it closed), of every kind: an incident closes
    once all it held has gone through. One count query per step kind."""
    return sum(_waiting(kind).count() for kind in _kinds_of(provider))


def outage_waiting(provider: str, *, account: str = "pk") -> Q:
    """For filtering rows by the account in field ``account``: the account waits for
    its setup on that backlog (a setup step of this provider is in it; a workspace
    removal is not a person waiting). An expression, not a list of ids (see
    ``outage_waited``)."""
    waiting = Q(pk__in=[])
    for kind in _setup_kinds_of(provider):
        waiting |= Q(Exists(_waiting(kind).filter(kind.setup, account_id=OuterRef(account))))
    return waiting


def _touched(kind: durable.StepKind, since: datetime, statuses):
    """Steps of one kind that hit an error and are open, or finished in ``statuses``
    since ``since``. A succeeded step keeps its last error as history (durable)."""
    return (kind.model.objects.exclude(last_error_code__in=["", "cancelled"]).filter(account_id__isnull=False)
            .filter(Q(status__in=OPEN) | Q(status__in=statuses, updated_at__gte=since)))


def outage_waited(provider: str, since: datetime, *, drained: bool = False) -> Q:
    """For filtering accounts (by ``pk``): a setup step of theirs for this provider
    waited on an error since ``since`` (still waiting, or since done); with
    ``drained``, one such step has since succeeded. An expression, not a list of ids:
    an outage can touch more accounts than a query may carry parameters (SQLite:
    32,766)."""
    waited = Q(pk__in=[])
    for kind in _setup_kinds_of(provider):
        steps = _touched(kind, since, [StepStatus.SUCCEEDED]).filter(kind.setup, account_id=OuterRef("pk"))
        waited |= Q(Exists(steps.filter(status=StepStatus.SUCCEEDED) if drained else steps))
    return waited
