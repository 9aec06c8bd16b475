"""``/healthz``: can this instance do its job? 200 with ``{"database": "ok", "queue":
"ok", "worker": "ok"}`` when the database answers, the django-q2 broker is reachable
and a worker consumes it (a reconcile pass ran within 2 × RECONCILE_EVERY_SECONDS);
503 otherwise, with the one that is not marked ``"down"`` (``"stale"`` for the
worker; ``"unknown"`` when the database cannot say). For load balancers and uptime
checks: no authentication, no details beyond that (the reason goes to the log)."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)

OK, DOWN, STALE, UNKNOWN = "ok", "down", "stale", "unknown"


def database_health() -> str:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any failure to answer is "down"; the reason is logged
        logger.error("health: database down: %s", _first_line(error))
        return DOWN
    return OK


def queue_health() -> str:
    """The ORM broker's ``ping`` always says yes, so it gets a real query on its
    table; the Redis broker is pinged."""
    from django_q.brokers import get_broker
    from django_q.brokers.orm import ORM

    try:
        broker = get_broker()
        if isinstance(broker, ORM):
            broker.queue_size()
        elif not broker.ping():
            raise ConnectionError("the broker did not answer the ping")
    except Exception as error:
        logger.error("health: queue down: %s", _first_line(error))
        return DOWN
    return OK


def worker_health() -> str:
    """A reachable queue is no use if no worker consumes it: every reconcile pass
    (run by a worker on its schedule) records when it ran."""
    from provisioning.reconciler import last_pass_at

    try:
        last = last_pass_at()
    except Exception as error:
        logger.error("health: cannot read the last reconcile pass: %s", _first_line(error))
        return UNKNOWN
    allowed = timedelta(seconds=2 * settings.RECONCILE_EVERY_SECONDS)
    if last is None or timezone.now() - last > allowed:
        logger.error("health: worker stale: no reconcile pass since %s", last.isoformat() if last else "ever")
        return STALE
    return OK


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@never_cache
def healthz_view(request: HttpRequest) -> JsonResponse:
    report = {"database": database_health(), "queue": queue_health()}
    report["worker"] = worker_health() if report["database"] == OK else UNKNOWN
    healthy = all(value == OK for value in report.values())
    return JsonResponse(report, status=200 if healthy else 503)
