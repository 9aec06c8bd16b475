"""Closing an incident that stranded 100,000 accounts (issue 12, item 7): the close
and its apologies go in bounded batches, each task well within the task timeout
(Q_CLUSTER's), and each person's apology is queued exactly once.

On a scratch PostgreSQL database, N accounts are built with SQL as a workspace
outage leaves them once the provider has recovered and the backlog has drained:
their workspace step failed with a 503 while the incident was open, then
succeeded; the workspace exists; the circuit is closed; the incident is still open
(its close is the sweep's or the last step's to make). The scheduled tasks are
removed, so that the close is the one this bench makes.

One real ``manage.py qcluster`` (ORM broker, production settings) runs. The bench
closes the incident through the real service (``incident_close_if_drained``, as the
sweep or the last drained step calls it), which queues the apologies task on
commit; the worker then runs ``support.tasks.apologize`` task after task
(INCIDENT_APOLOGY_BATCHES_PER_TASK batches of INCIDENT_APOLOGY_BATCH accounts each),
each batch one transaction that queues its emails and moves the incident's cursor.
The emails are owed, not each handed to the queue: the dispatcher sends them later
at the email provider's pace, as in production.

Prints, from this one run: the close's own time, batches and tasks, the longest
batch and the longest task against the task timeout, the time from the close to
the last apology queued, and the apologies queued per account (0 accounts with 2).

    .venv/bin/python bench/incident_close.py [--accounts 100000]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

STEP_COLUMNS = """status, attempts, counted_attempts, next_attempt_at, dispatched_until, last_error_code,
    last_error_detail, lease_owner, lease_expires_at, idempotency_key, created_at, updated_at, completed_at"""


def strand(cursor, n: int) -> int:
    """N accounts an outage held and that have since drained; returns the incident's id."""
    cursor.execute("""
        INSERT INTO accounts_user (password, last_login, is_superuser, email, name, phone, company,
                                   email_verified_at, is_active, is_staff, date_joined)
        SELECT '!', NULL, false, 'stranded-' || g || '@example.com', 'Person ' || g, '+14155550100',
               'Company ' || g, NULL, true, false, now() - interval '2 hours'
        FROM generate_series(1, %s) AS g""", [n])
    accounts = """(SELECT id, email, row_number() OVER (ORDER BY id) AS g FROM accounts_user
                   WHERE email LIKE 'stranded-%') AS u"""
    # Failed with a 503 during the outage (it started 100 minutes ago), done in the
    # half hour after the provider came back.
    cursor.execute(f"""
        INSERT INTO provisioning_provisioningrequest ({STEP_COLUMNS}, account_id)
        SELECT 'succeeded', 4, 1, NULL, NULL, 'http_503', 'The provider answered 503.', '', NULL,
               'workspace-' || g, now() - interval '2 hours',
               now() - interval '60 minutes' + (mod(g, 1800) || ' seconds')::interval,
               now() - interval '60 minutes' + (mod(g, 1800) || ' seconds')::interval, u.id
        FROM {accounts}""")
    cursor.execute(f"""
        INSERT INTO provisioning_workspace (owner_id, external_id, name, created_at)
        SELECT u.id, 'ws-' || g, 'Company ' || g, now() - interval '30 minutes' FROM {accounts}""")
    cursor.execute(f"""
        INSERT INTO accounts_emaildelivery ({STEP_COLUMNS}, kind, to_address, context, bounced_at, account_id)
        SELECT 'succeeded', 1, 1, NULL, NULL, '', '', '', NULL, 'verification:' || g,
               now() - interval '2 hours', now() - interval '2 hours', now() - interval '2 hours',
               'verification', u.email, '{{}}'::jsonb, NULL, u.id
        FROM {accounts}""")
    cursor.execute("""
        INSERT INTO provisioning_breaker (provider, state, opened_at, probed_at, cause)
        VALUES ('provisioning', 'closed', NULL, now() - interval '60 minutes', '')
        ON CONFLICT (provider) DO UPDATE SET state = 'closed', opened_at = NULL""")
    cursor.execute("""
        INSERT INTO support_incident (provider, status, started_at, ended_at, cause, peak_backlog, affected,
                                      drained, apologies_pending, apology_cursor)
        VALUES ('provisioning', 'open', now() - interval '100 minutes', NULL, '', %s, 0, 0, false, 0)
        RETURNING id""", [n])
    [(incident_id,)] = cursor.fetchall()
    cursor.execute("DELETE FROM django_q_schedule")  # the close is this bench's to make
    for table in ("accounts_user", "provisioning_provisioningrequest", "provisioning_workspace",
                  "accounts_emaildelivery"):
        cursor.execute(f"VACUUM ANALYZE {table}")
    return incident_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--deadline", type=float, default=3600, help="seconds to wait for the last apology")
    parser.add_argument("--stall", type=float, default=240, help="give up when no batch commits for this long")
    args = parser.parse_args()

    print(f"machine: {harness.machine()}")
    with harness.scratch_database("bench_incident_close") as database_url:
        # The worker as Procfile.production starts it (persistent connections); emails
        # "sent" by the sandbox into a sink.
        env = harness.django_env(database_url, BENCH_Q_SAVE_LIMIT="0", CONN_MAX_AGE="60",
                                 SANDBOX_EMAIL_DELIVER_TO="django.core.mail.backends.dummy.EmailBackend")
        harness.prepare(env)
        os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY", "DATABASE_URL",
                                                "STATIC_ROOT", "BENCH_Q_SAVE_LIMIT", "SANDBOX_EMAIL_DELIVER_TO")})
        import django

        django.setup()
        from django.conf import settings
        from django.db import connection
        from django.db.models import Count
        from django_q.models import Task

        from accounts.models import EmailDelivery, EmailKind
        from support.incidents import incident_close_if_drained
        from support.models import Incident

        start = time.monotonic()
        with connection.cursor() as cursor:
            incident_id = strand(cursor, args.accounts)
        size, per_task, timeout = (settings.INCIDENT_APOLOGY_BATCH, settings.INCIDENT_APOLOGY_BATCHES_PER_TASK,
                                   settings.Q_CLUSTER["timeout"])
        print(f"{args.accounts:,} stranded accounts under incident {incident_id}, built in "
              f"{time.monotonic() - start:.1f} s; batches of {size} accounts, {per_task} per task; "
              f"task timeout {timeout} s; {settings.Q_CLUSTER['workers']} workers (ORM broker)")
        connection.close()

        with harness.worker(env):
            started = time.time()
            incident = incident_close_if_drained(provider="provisioning")
            closed = time.time()
            if incident is None or incident.id != incident_id:
                print("the incident did not close")
                return 1
            print(f"close (counts, the incident's figures, the task queued): {closed - started:.2f} s; "
                  f"affected {incident.affected:,}, drained {incident.drained:,}")
            moves: list[tuple[float, int]] = []  # (when, cursor) each time a batch commits
            pending = True
            while pending and time.time() - started < args.deadline:
                pending, cursor_at = Incident.objects.filter(pk=incident_id).values_list(
                    "apologies_pending", "apology_cursor").get()
                if not moves or cursor_at != moves[-1][1]:
                    moves.append((time.time(), cursor_at))
                elif time.time() - moves[-1][0] > args.stall:
                    break
                time.sleep(0.02)
            finished = time.time()
        if pending:
            print(f"NOT DONE: the cursor stopped at account {moves[-1][1]} "
                  f"({len([m for m in moves if m[1]])} batches committed)")
            for task in Task.objects.filter(func="support.tasks.apologize", success=False):
                print(f"  task failed after {(task.stopped - task.started).total_seconds():.1f} s from its "
                      f"enqueue: {str(task.result).splitlines()[-1][:200]}")
            return 1

        tasks = sorted((t.started.timestamp(), t.stopped.timestamp(), t.success, t.result) for t in
                       Task.objects.filter(func="support.tasks.apologize"))
        batches = []  # seconds per batch: from the task's start or the previous commit to the commit
        for task_start, task_stop, _, _ in tasks:
            commits = [at for at, cursor_at in moves if task_start <= at <= task_stop + 0.05 and cursor_at]
            batches += [b - a for a, b in zip([task_start, *commits], commits, strict=False)]
        longest_task = max(stop - begin for begin, stop, _, _ in tasks)
        # How many accounts got each number of apologies.
        per_account = Counter(EmailDelivery.objects.filter(kind=EmailKind.ALL_SET).values("account_id")
                              .annotate(n=Count("pk")).values_list("n", flat=True))
        print(f"apology tasks: {len(tasks)} ({sum(1 for t in tasks if not t[2])} failed); batches that queued "
              f"apologies: {len([m for m in moves if m[1]])} (expected {math.ceil(args.accounts / size)})")
        print(f"longest batch: {max(batches):.2f} s (median {sorted(batches)[len(batches) // 2]:.2f} s) "
              f"= {max(batches) / timeout:.3f} × the {timeout} s task timeout")
        print(f"longest task (from its enqueue to its end): {longest_task:.2f} s = "
              f"{longest_task / timeout:.3f} × the task timeout")
        first_commit = next(at for at, cursor_at in moves if cursor_at)
        print(f"close → last apology queued: {finished - started:.1f} s (first batch committed "
              f"{first_commit - closed:.2f} s after the close)")
        print(f"apologies queued: {sum(n * c for n, c in per_account.items()):,} for "
              f"{sum(per_account.values()):,} accounts; accounts with 2 or more: "
              f"{sum(c for n, c in per_account.items() if n >= 2)}")
        ok = (sum(per_account.values()) == args.accounts and set(per_account) == {1}
              and longest_task < timeout and all(t[2] for t in tasks))
        print("RESULT: " + ("each apology queued once, every task within the timeout" if ok else "FAILED"))
        connection.close()
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
