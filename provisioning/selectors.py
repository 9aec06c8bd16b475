"""Reads about steps that other apps need (support's incidents). Provisioning is the
lowest layer: these read only its own step registry and rows."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from provisioning import durable
from provisioning.durable import StepStatus
from provisioning.models import Breaker, BreakerState

OPEN = (StepStatus.PENDING, StepStatus.RUNNING)


def open_circuits() -> dict[str, datetime | None]:
    """Providers whose circuit is open now, with when each opened. One query."""
    return dict(Breaker.objects.filter(state=BreakerState.OPEN).values_list("provider", "opened_at"))


def _kinds_of(provider: str) -> list[durable.StepKind]:
    return [kind for kind in durable.kinds() if kind.provider == provider]


def _waiting(kind: durable.StepKind):
    return kind.model.objects.filter(status__in=OPEN).exclude(last_error_code="")


def outage_backlog(provider: str) -> int:
    """Steps of this provider still waiting after an error (held by the open
    circuit, or not yet drained since it closed). One count query per step kind."""
    return sum(_waiting(kind).count() for kind in _kinds_of(provider))


def outage_waiting_accounts(provider: str) -> set[int]:
    """Ids of the accounts with a step of this provider in that backlog."""
    ids: set[int] = set()
    for kind in _kinds_of(provider):
        ids.update(_waiting(kind).filter(account_id__isnull=False).values_list("account_id", flat=True))
    return ids


def _touched(kind: durable.StepKind, since: datetime, statuses):
    """Steps of one kind that hit an error and are open, or finished in ``statuses``
    since ``since``. A succeeded step keeps its last error as history (durable)."""
    return (kind.model.objects.exclude(last_error_code__in=["", "cancelled"]).filter(account_id__isnull=False)
            .filter(Q(status__in=OPEN) | Q(status__in=statuses, updated_at__gte=since)))


def outage_affected_accounts(provider: str, since: datetime) -> list[int]:
    """Ids of the accounts whose steps for this provider waited on an error since
    ``since`` (still waiting, or since drained), oldest first, without repeats."""
    ids: set[int] = set()
    for kind in _kinds_of(provider):
        ids.update(_touched(kind, since, [StepStatus.SUCCEEDED]).values_list("account_id", flat=True))
    return sorted(ids)


def outage_drained_accounts(provider: str, since: datetime) -> list[int]:
    """Of those, the accounts with a step that has since succeeded."""
    ids: set[int] = set()
    for kind in _kinds_of(provider):
        ids.update(_touched(kind, since, [StepStatus.SUCCEEDED]).filter(status=StepStatus.SUCCEEDED)
                   .values_list("account_id", flat=True))
    return sorted(ids)
