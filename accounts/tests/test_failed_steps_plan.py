"""The accounts with a stopped step (support's "Re-run all", and the console's banner
on every page during a refusal many accounts got alike) are found from the stopped
steps, never by reading every account."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.selectors import accounts_with_failed_steps_query

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("code", [None, "http_422"])
def test_accounts_with_a_stopped_step_are_read_by_id_from_the_stopped_steps(db, code):
    with CaptureQueriesContext(connection) as queries:
        accounts_with_failed_steps_query(code=code).count()
    [query] = queries.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # as with a million accounts
        cursor.execute(f"EXPLAIN {query['sql']}")
        plan = [row[0] for row in cursor.fetchall()]
    reads = [n for n, line in enumerate(plan) if re.search(r"Scan .*\bon accounts_user(\s|$)", line)]
    assert reads, "\n".join(plan)
    for n in reads:  # each read of the accounts looks one up by id
        assert "Index Cond: (id = " in plan[n + 1], "\n".join(plan)
