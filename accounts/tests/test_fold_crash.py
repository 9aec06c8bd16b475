"""A fold of the state tally killed (-9) in the middle of its transaction, on
PostgreSQL, with real processes: ``manage.py fold_state_tally`` on the test database,
held by a lock this test takes before its first write to one of the tables it writes,
and killed there. The counts stay what the definition says, the changes it had read
stay recorded, and the fold queued behind it on the advisory lock (``FOLD_LOCK``)
then takes them all."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.db.models.functions import TruncHour
from django.utils import timezone

from accounts.models import AccountStateFacts, StateChange, StateTally, StateTallyByQuarter, User
from accounts.selectors import with_lifecycle_state
from accounts.services import account_close, account_mark_verified
from accounts.state_counts import lifecycle_state_counts
from accounts.state_tally import FOLD_LOCK, state_tally_fold_all
from accounts.tests.test_state_counts import assert_true_before_and_after_a_fold, by_definition
from provisioning.tests.test_crashes import ROOT, _database_url, _wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="the fold runs in another process on the test database: PostgreSQL only "
                              "(an in-memory SQLite test database is invisible to other processes)"),
]

# The tables the fold writes, in the order it first writes them: the accounts' counted
# facts, the tally, the tally by quarter hour, and last the changes it took.
WRITTEN_IN_ORDER = [model._meta.db_table for model in (AccountStateFacts, StateTally, StateTallyByQuarter,
                                                       StateChange)]


@pytest.fixture
def spawn_fold():
    """``spawn_fold()`` starts ``manage.py fold_state_tally`` on the test database,
    configured like production (``config.settings``); any still running at the end
    is killed."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                "DATABASE_URL": _database_url(), "PYTHONDONTWRITEBYTECODE": "1"})
    started: list[subprocess.Popen] = []

    def spawn() -> subprocess.Popen:
        started.append(subprocess.Popen([sys.executable, "manage.py", "fold_state_tally"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        return started[-1]

    yield spawn
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _counts(since) -> tuple[dict, dict]:
    counts = lifecycle_state_counts(since_hour=since)
    return counts.states, counts.joined_states


def _by_definition(since) -> tuple[dict, dict]:
    """What counting the one definition over every customer gives: by state, and
    (the signups chart, read from the tally by quarter hour) by hour joined and state."""
    joined = with_lifecycle_state(User.objects.filter(date_joined__gte=since, is_staff=False))
    return by_definition(), dict(Counter(joined.annotate(hour=TruncHour("date_joined"))
                                         .values_list("hour", "lifecycle_state")))


def _waiting(*, blocked_by: int, wait_event: str | None = None) -> tuple[int, str, str | None] | None:
    """The backend waiting for a lock that backend ``blocked_by`` holds, as (pid,
    query, transaction id: set once it has written a row), or None."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid, query, backend_xid::text FROM pg_stat_activity"
                       " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                       " AND %s = ANY(pg_blocking_pids(pid)) AND (%s::text IS NULL OR wait_event = %s)",
                       [blocked_by, wait_event, wait_event])
        rows = cursor.fetchall()
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("table", WRITTEN_IN_ORDER)
def test_a_fold_killed_before_it_writes_a_table_changes_no_count_and_loses_no_change(mixed_accounts, spawn_fold,
                                                                                      table):
    """Killed before its first write to ``table``, having written the tables before it:
    were the fold not one transaction, the facts written without the tally (or the
    tally without the tally by quarter hour) would move the counts, and changes taken
    away before the tally was moved would be lost."""
    accounts = mixed_accounts(4)
    state_tally_fold_all()
    # Changed since that fold: two accounts counted under other facts now (the fold
    # deletes their counted facts), and two new ones (it inserts theirs).
    account_mark_verified(account=User.objects.get(pk=accounts[0].pk), actor="test", why="test")
    account_close(account=User.objects.get(pk=accounts[1].pk), actor="test", reason="test")
    mixed_accounts(2)
    since = timezone.localtime(timezone.now() - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    expected = _by_definition(since)
    assert _counts(since) == expected
    changes = set(StateChange.objects.values_list("pk", flat=True))
    assert changes

    # A write to the table waits for this lock (EXCLUSIVE); reads, the fold's and the
    # counts', do not.
    with psycopg.connect(_database_url()) as locker:
        locker.execute(f'LOCK TABLE "{table}" IN EXCLUSIVE MODE')
        killed = spawn_fold()
        _wait_for(lambda: _waiting(blocked_by=locker.info.backend_pid), timeout=10,
                  what=f"the fold to wait to write {table}")
        pid, query, xid = _waiting(blocked_by=locker.info.backend_pid)
        assert f'"{table}"' in query and not query.lstrip().upper().startswith("SELECT"), query
        # Mid-transaction: it has written rows already (a transaction id), unless the
        # table it waits for is the first it writes.
        assert (xid is not None) == (table != WRITTEN_IN_ORDER[0]), (table, xid)
        queued = spawn_fold()  # the next fold, waiting for the killed one's FOLD_LOCK
        _wait_for(lambda: _waiting(blocked_by=pid, wait_event="advisory"), timeout=10,
                  what=f"the next fold to wait for lock {FOLD_LOCK}")

        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        assert killed.returncode == -signal.SIGKILL
        # Its backend still waits, holding what it wrote, which no one will commit.
        assert _waiting(blocked_by=locker.info.backend_pid)[0] == pid
        assert _counts(since) == expected
        assert set(StateChange.objects.values_list("pk", flat=True)) == changes
    # The lock released: the killed fold's backend finds its client gone and rolls
    # back, which frees FOLD_LOCK for the queued fold.

    out, err = queued.communicate(timeout=20)
    assert queued.returncode == 0, err
    assert out.strip() == f"state tally: {len(changes)} changes taken"  # every change the killed fold read
    assert not StateChange.objects.exists()
    assert _counts(since) == expected
    assert_true_before_and_after_a_fold()  # the tally row by row, each account's counted facts
