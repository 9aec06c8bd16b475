"""Commits that need not wait for the disk (``provisioning.transactions``): only the
transaction that asks, and only when it is a whole transaction of its own, whether an
``atomic()`` block or one statement sent on its own."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django_q.models import OrmQ

from provisioning.transactions import commit_without_waiting_for_disk, execute_without_waiting_for_disk

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _waits() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_a_transaction_of_its_own_commits_without_waiting_and_the_next_one_waits_again():
    with transaction.atomic():
        commit_without_waiting_for_disk()
        assert _waits() == "off"
    assert _waits() == "on"


def test_inside_a_larger_transaction_nothing_changes():
    with transaction.atomic():
        with transaction.atomic():  # e.g. a rate limit counted by a service in its transaction
            commit_without_waiting_for_disk()
        assert _waits() == "on"


def test_a_statement_of_its_own_commits_without_waiting_in_one_query_and_the_next_one_waits_again():
    assert execute_without_waiting_for_disk("SELECT current_setting('synchronous_commit')", []) == ("off",)
    assert _waits() == "on"


def test_a_statement_inside_a_larger_transaction_joins_it_unchanged_and_a_refusal_leaves_it_usable():
    with transaction.atomic():
        assert execute_without_waiting_for_disk("SELECT current_setting('synchronous_commit')", []) == ("on",)
        row = OrmQ.objects.create(key="k", payload="p", lock=None)
        with pytest.raises(IntegrityError):  # the same primary key again
            execute_without_waiting_for_disk(
                f"INSERT INTO {OrmQ._meta.db_table} (id, key, payload) VALUES (%s, 'k', 'p')", [row.pk])
        assert OrmQ.objects.count() == 1  # the transaction still answers
        assert _waits() == "on"
