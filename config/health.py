"""``/healthz``: can this instance do its job? 200 with ``{"database": "ok", "queue":
"ok"}`` when the database answers and the django-q2 broker is reachable; 503 with
the one that is down marked ``"down"`` otherwise. For load balancers and uptime
checks: no authentication, no details beyond ok/down (the reason goes to the log)."""
from __future__ import annotations

import logging

from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)

OK, DOWN = "ok", "down"


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


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@never_cache
def healthz_view(request: HttpRequest) -> JsonResponse:
    report = {"database": database_health(), "queue": queue_health()}
    healthy = all(value == OK for value in report.values())
    return JsonResponse(report, status=200 if healthy else 503)
