"""The database queue hands tasks out first in first out (provisioning.broker)."""
from __future__ import annotations

import pytest
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.models import OrmQ
from django_q.tasks import async_task

from provisioning.broker import FifoORM


def _handed_out(broker) -> list[str]:
    order = []
    while batch := broker.dequeue():
        order += [OrmQ.objects.get(pk=pk).task["args"][0] for pk, _ in batch]
    return order


@pytest.mark.postgres
@pytest.mark.django_db
def test_tasks_come_out_in_the_order_they_went_in_even_after_a_row_is_rewritten():
    for name in ("first", "second", "third"):
        async_task("provisioning.tasks.reconcile_after", name, sync=False)
    first = OrmQ.objects.order_by("id").first()
    # Handed out, its worker died, and it is due again: the row is rewritten, and
    # PostgreSQL now keeps it after the others.
    OrmQ.objects.filter(pk=first.pk).update(lock=timezone.now())
    assert _handed_out(ORM(list_key=get_broker().list_key)) == ["second", "third", "first"]  # django-q2's own
    OrmQ.objects.update(lock=timezone.now())  # all due again, rewritten in that order

    assert isinstance(get_broker(), FifoORM)
    assert _handed_out(get_broker()) == ["first", "second", "third"]
