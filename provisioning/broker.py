"""The task broker on the database: django-q2's ORM broker, first in first out.

django-q2's ORM broker hands out queued tasks with no ORDER BY, so PostgreSQL returns
them in whatever order the table's pages hold them; a row rewritten (a task handed
out again after its worker died) moves. The engine relies on the order: a reconcile
pass that continues a drain is queued behind the steps it dispatched
(provisioning.heal), and run ahead of them it found the queue still full, sent a
trickle and ended the chain (the heal bench drained 600 stranded accounts at 12.8
a second against a limit of 20). Ordered by id, tasks come out in the order they
went in. Selected in config.settings (``Q_CLUSTER["broker_class"]``) when the queue
is on the database.
"""
from __future__ import annotations

from django_q.brokers.orm import ORM


class FifoORM(ORM):
    @staticmethod
    def get_connection(list_key: str | None = None):
        return ORM.get_connection(list_key).order_by("id")
