"""Commits that need not wait for the disk (``provisioning.transactions``): only the
transaction that asks, and only when it is a whole transaction of its own."""
from __future__ import annotations

import pytest
from django.db import connection, transaction

from provisioning.transactions import commit_without_waiting_for_disk

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
