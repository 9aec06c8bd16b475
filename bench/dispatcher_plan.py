"""One dispatcher pass over 1,000,000 step rows of which 100 are due: the query plan
must use the due index, and the pass must stay fast.

On a scratch PostgreSQL database (migrated), each step table gets ``--rows`` rows
(default 1,000,000 each): email deliveries (``accounts.EmailDelivery``, no account
needed) and, unless ``--email-only``, workspace requests
(``provisioning.ProvisioningRequest``, one per account, so as many accounts too).
Like a real table, nearly all are done: succeeded or failed, a few pending in the
future, a few running under a live lease, and exactly 100 due per table (90 pending
whose time has come, 10 running whose lease expired: a worker died).

It prints EXPLAIN ANALYZE of the exact queries a pass makes per kind
(``provisioning.durable.due_steps`` and, where the dispatcher keeps a bounded queue,
``queued_count``; captured from the connection, not rewritten), their median time, and the time of
whole reconciler passes (``provisioning.reconciler.reconcile``: due query, mark
dispatched, enqueue to the django-q2 ORM broker). Exits non-zero if a plan does not
use the index.

    .venv/bin/python bench/dispatcher_plan.py [--rows 1000000] [--email-only]
"""
from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

DUE = 100
EXPIRED_LEASES = 10  # of the due ones
FUTURE = 1_000
LIVE_LEASES = 50
FAILED_EVERY = 200  # one in 200 of the rest stopped for good

# Columns every step shares (provisioning.durable.Step), filled from g = 1..rows:
# g ≤ 90 pending and due; 90 < g ≤ 100 running with an expired lease; then pending
# in the future, running under a live lease, and the rest succeeded or failed.
STEP_COLUMNS = """
    status, attempts, counted_attempts, next_attempt_at, dispatched_until,
    last_error_code, last_error_detail, lease_owner, lease_expires_at,
    idempotency_key, created_at, updated_at, completed_at"""
STEP_VALUES = f"""
    CASE WHEN g <= {DUE - EXPIRED_LEASES} THEN 'pending'
         WHEN g <= {DUE} THEN 'running'
         WHEN g <= {DUE + FUTURE} THEN 'pending'
         WHEN g <= {DUE + FUTURE + LIVE_LEASES} THEN 'running'
         WHEN mod(g, {FAILED_EVERY}) = 0 THEN 'failed'
         ELSE 'succeeded' END,
    1 + mod(g, 3), 1 + mod(g, 3),
    CASE WHEN g <= {DUE - EXPIRED_LEASES} THEN now() - (g || ' seconds')::interval
         WHEN g <= {DUE + FUTURE + LIVE_LEASES} THEN now() + (g || ' seconds')::interval
         ELSE NULL END,
    NULL,
    CASE WHEN mod(g, {FAILED_EVERY}) = 0 THEN 'http_503' ELSE '' END, '', '',
    CASE WHEN g > {DUE - EXPIRED_LEASES} AND g <= {DUE} THEN now() - interval '5 minutes'
         WHEN g > {DUE + FUTURE} AND g <= {DUE + FUTURE + LIVE_LEASES} THEN now() + interval '2 minutes'
         ELSE NULL END,
    '{{kind}}-' || g,
    now() - ((mod(g, 100000)) || ' minutes')::interval, now(),
    CASE WHEN g > {DUE + FUTURE + LIVE_LEASES} THEN now() ELSE NULL END"""


def fill(cursor, rows: int, *, email_only: bool) -> None:
    cursor.execute(f"""
        INSERT INTO accounts_emaildelivery ({STEP_COLUMNS}, kind, to_address, context, bounced_at, account_id)
        SELECT {STEP_VALUES.replace('{kind}', 'email')}, 'verification', 'person-' || g || '@example.com',
               '{{}}'::jsonb, NULL, NULL
        FROM generate_series(1, %s) AS g""", [rows])
    if email_only:
        return
    cursor.execute("""
        INSERT INTO accounts_user (password, last_login, is_superuser, email, name, phone, company,
                                   email_verified_at, is_active, is_staff, date_joined)
        SELECT '!', NULL, false, 'person-' || g || '@example.com', 'Person ' || g, '', 'Company ' || g,
               NULL, true, false, now()
        FROM generate_series(1, %s) AS g""", [rows])
    cursor.execute(f"""
        INSERT INTO provisioning_provisioningrequest ({STEP_COLUMNS}, account_id)
        SELECT {STEP_VALUES.replace('{kind}', 'workspace')}, u.id
        FROM (SELECT id, row_number() OVER (ORDER BY id) AS g FROM accounts_user) AS u""")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per step table")
    parser.add_argument("--email-only", action="store_true", help="fill only the email deliveries")
    args = parser.parse_args()

    print(f"machine: {harness.machine()}")
    with harness.scratch_database("bench_dispatcher") as database_url:
        env = harness.django_env(database_url)
        harness.manage(env, "migrate", "--no-input")
        os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY", "DATABASE_URL")})
        import django

        django.setup()
        from django.db import connection
        from django.test.utils import CaptureQueriesContext
        from django.utils import timezone

        from provisioning import durable
        from provisioning.reconciler import reconcile

        kinds = [k for k in durable.kinds() if not (args.email_only and k.name != "email")]
        start = time.monotonic()
        with connection.cursor() as cursor:
            fill(cursor, args.rows, email_only=args.email_only)
            for kind in durable.kinds():
                cursor.execute(f"VACUUM ANALYZE {kind.model._meta.db_table}")
        print(f"filled {args.rows:,} rows per table ({', '.join(k.model.__name__ for k in kinds)}) "
              f"in {time.monotonic() - start:.1f} s; {DUE} due per table")

        def explain(call) -> tuple[object, str, str, float]:
            """Run ``call`` once capturing its one query, EXPLAIN ANALYZE that query,
            and time ``call`` (median of 7). Returns (result, sql, plan, seconds)."""
            with CaptureQueriesContext(connection) as captured:
                result = call()
            [query] = captured.captured_queries
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                plan = "\n".join(row[0] for row in cursor.fetchall())
            timings = []
            for _ in range(7):
                t = time.perf_counter()
                call()
                timings.append(time.perf_counter() - t)
            return result, query["sql"], plan, statistics.median(timings)

        # The queries a pass makes per kind: the due steps and, where the dispatcher
        # tops up a bounded queue, how many are queued already.
        queries = [("due_steps", durable.due_steps)]
        if hasattr(durable, "queued_count"):
            queries.append(("queued_count", durable.queued_count))
        ok = True
        for kind in kinds:
            index = next(i.name for i in kind.model._meta.indexes if "next_attempt_at" in i.fields)
            now = timezone.now()
            print(f"\n== {kind.name}: {kind.model._meta.db_table} ({args.rows:,} rows) ==")
            for name, function in queries:
                result, sql, plan, seconds = explain(functools.partial(function, kind, now=now))
                uses_index = index in plan
                ok &= uses_index and (name != "due_steps" or len(result) == DUE)
                found = f"found {len(result)} (expected {DUE})" if name == "due_steps" else f"= {result}"
                print(f"-- {name}\n{sql}\n{plan}")
                print(f"{name} {found}; uses {index}: {'yes' if uses_index else 'NO'}; "
                      f"median over 7 calls {seconds * 1000:.2f} ms\n")

        passes = []
        for label in ("first pass (dispatches the due steps)", "second pass (nothing left to dispatch)"):
            t = time.perf_counter()
            report = reconcile()
            passes.append(time.perf_counter() - t)
            print(f"\nreconcile {label}: {report} in {passes[-1] * 1000:.1f} ms")
        connection.close()

    print(f"RESULT index used by every due query: {'yes' if ok else 'NO'}; "
          f"dispatcher pass {passes[0] * 1000:.1f} ms (100 due per table), {passes[1] * 1000:.1f} ms (none due)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
