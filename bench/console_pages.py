"""What the support console's pages cost with 10,000 and then 100,000 accounts: the
dashboard (/admin/), the queue (the Ticket changelist) and the accounts list (the
User changelist). Queries per page must not grow with the number of accounts; the
server time should stay well under a second.

On a scratch PostgreSQL database (migrated, static files collected, production
settings), accounts are inserted in bulk with SQL, each with its workspace step and
verification email, spread over the last 30 days like a live table:

- 2% need support: the provider refused the workspace, the step failed, and a
  ticket is open (one in ten of those the person also wrote about: priority 1);
- 2% had a ticket that was resolved automatically once the workspace was created;
- 5% are still setting up (step and email pending);
- 20% are unverified (workspace ready, email sent, link not clicked yet);
- the rest are active (verified).

A staff member in the Support group (exactly the support person's permissions) is
logged in with Django's test client; each page is requested once counting its
queries (``CaptureQueriesContext``), then ``--repeat`` times for the median server
time (the whole Django handler: middleware, admin, templates, database). The slowest
queries of each page are printed, to show where the time goes.

    .venv/bin/python bench/console_pages.py [--sizes 10000 100000] [--repeat 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

PAGES = {"dashboard": "/admin/", "queue": "/admin/support/ticket/", "accounts": "/admin/accounts/user/"}

# g is the account's number (1..n); its share of the table is decided by g mod 100.
STEP_COLUMNS = """status, attempts, counted_attempts, next_attempt_at, dispatched_until, last_error_code,
    last_error_detail, lease_owner, lease_expires_at, idempotency_key, created_at, updated_at, completed_at"""


def seed(cursor, first: int, last: int) -> None:
    """Accounts first..last (inclusive) with their steps, emails, workspaces and tickets."""
    cursor.execute("SELECT coalesce(max(id), 0) FROM accounts_user")
    [(last_id,)] = cursor.fetchall()
    cursor.execute("""
        INSERT INTO accounts_user (password, last_login, is_superuser, email, name, phone, company,
                                   email_verified_at, is_active, is_staff, date_joined)
        SELECT '!', NULL, false, 'person-' || g || '@example.com', 'Person ' || g, '+14155550100',
               'Company ' || g, CASE WHEN mod(g, 100) >= 29 THEN now() ELSE NULL END, true, false,
               now() - (mod(g * 7919, 43200) || ' minutes')::interval
        FROM generate_series(%s, %s) AS g""", [first, last])
    # The new accounts, numbered again from first (ids follow the insert order).
    accounts = f"""(SELECT id, email, date_joined, {first - 1} + row_number() OVER (ORDER BY id) AS g
                    FROM accounts_user WHERE id > {last_id} AND NOT is_staff) AS u"""
    cursor.execute(f"""
        INSERT INTO provisioning_provisioningrequest ({STEP_COLUMNS}, account_id)
        SELECT CASE WHEN mod(g, 100) < 2 THEN 'failed' WHEN mod(g, 100) BETWEEN 4 AND 8 THEN 'pending'
                    ELSE 'succeeded' END,
               1, 1,
               CASE WHEN mod(g, 100) BETWEEN 4 AND 8 THEN now() + interval '1 minute' ELSE NULL END, NULL,
               CASE WHEN mod(g, 100) < 4 THEN 'http_422' ELSE '' END,
               CASE WHEN mod(g, 100) < 4 THEN 'The provider refused the request (HTTP 422).' ELSE '' END,
               '', NULL, 'workspace-' || g, u.date_joined, now(),
               CASE WHEN mod(g, 100) BETWEEN 4 AND 8 THEN NULL ELSE u.date_joined END, u.id
        FROM {accounts}""")
    cursor.execute(f"""
        INSERT INTO provisioning_workspace (owner_id, external_id, name, created_at)
        SELECT u.id, 'ws-' || g, 'Company ' || g, u.date_joined FROM {accounts}
        WHERE mod(g, 100) >= 2 AND mod(g, 100) NOT BETWEEN 4 AND 8""")
    cursor.execute(f"""
        INSERT INTO accounts_emaildelivery ({STEP_COLUMNS}, kind, to_address, context, bounced_at, account_id)
        SELECT CASE WHEN mod(g, 100) BETWEEN 4 AND 8 THEN 'pending' ELSE 'succeeded' END, 1, 1,
               CASE WHEN mod(g, 100) BETWEEN 4 AND 8 THEN now() + interval '1 minute' ELSE NULL END, NULL,
               '', '', '', NULL, 'email-' || g, u.date_joined, now(),
               CASE WHEN mod(g, 100) BETWEEN 4 AND 8 THEN NULL ELSE u.date_joined END,
               'verification', u.email, '{{}}'::jsonb, NULL, u.id
        FROM {accounts}""")
    cursor.execute(f"""
        INSERT INTO support_ticket (reference, account_id, email, reason, status, priority, waiting_since,
                                    created_at, resolved_at, resolved_automatically)
        SELECT 'SUP-' || g, u.id, u.email, 'workspace_failed',
               CASE WHEN mod(g, 100) < 2 THEN 'open' ELSE 'resolved' END,
               CASE WHEN mod(g, 1000) < 2 THEN 1 ELSE 2 END,
               u.date_joined, u.date_joined,
               CASE WHEN mod(g, 100) < 2 THEN NULL ELSE u.date_joined + interval '1 hour' END,
               mod(g, 100) >= 2
        FROM {accounts} WHERE mod(g, 100) < 4""")
    for table in ("accounts_user", "provisioning_provisioningrequest", "provisioning_workspace",
                  "accounts_emaildelivery", "support_ticket"):
        cursor.execute(f"VACUUM ANALYZE {table}")


def measure(client, path: str, repeat: int) -> tuple[int, float, list[tuple[float, str]]]:
    """(queries, median seconds, the slowest queries as (seconds, sql))."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    client.get(path, secure=True)  # warm: caches, template loading
    # Each request starts by emptying the query log; so must the capture (it counts
    # from where the log stood when it began).
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, secure=True)
    # captured_queries reads the connection's log when asked: copy it before the next
    # request empties the log.
    queries = list(captured.captured_queries)
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}")
    timings = []
    for _ in range(repeat):
        t = time.perf_counter()
        client.get(path, secure=True)
        timings.append(time.perf_counter() - t)
    slowest = sorted(((float(q["time"]), q["sql"]) for q in queries), reverse=True)[:2]
    return len(queries), statistics.median(timings), slowest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=7, help="requests per page for the median")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each page's slowest query")
    args = parser.parse_args()

    print(f"machine: {harness.machine()}")
    results: dict[int, dict[str, tuple[int, float]]] = {}
    with harness.scratch_database("bench_console") as database_url:
        env = harness.django_env(database_url)
        harness.prepare(env)
        os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY", "DATABASE_URL")})
        import django

        django.setup()
        from django.contrib.auth.models import Group
        from django.db import connection
        from django.test import Client

        from accounts.models import User

        staff = User.objects.create_user("support@example.com", harness.PASSWORD, name="Support",
                                         company="Acme Workspaces", is_staff=True)
        staff.groups.add(Group.objects.get(name="Support"))
        client = Client()
        client.force_login(staff)
        # Past the second factor, as after a code from the app (django_otp.login).
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice

        session = client.session
        session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.create(user=staff, name="bench").persistent_id
        session.save()

        seeded = 0
        for size in sorted(args.sizes):
            start = time.monotonic()
            with connection.cursor() as cursor:
                seed(cursor, seeded + 1, size)
            seeded = size
            print(f"\n== {size:,} accounts (seeded in {time.monotonic() - start:.1f} s; "
                  f"{size * 2 // 100:,} open tickets, {size * 2 // 100:,} resolved) ==")
            results[size] = {}
            for name, path in PAGES.items():
                queries, seconds, slowest = measure(client, path, args.repeat)
                results[size][name] = (queries, seconds)
                print(f"{name:10} {path:26} {queries:3} queries  median {seconds * 1000:8.1f} ms")
                for q_seconds, sql in slowest:
                    print(f"    {q_seconds * 1000:8.1f} ms  {sql[:160]}{'…' if len(sql) > 160 else ''}")
                if args.explain and slowest:
                    with connection.cursor() as cursor:
                        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest[0][1])
                        print("\n".join("      " + row[0] for row in cursor.fetchall()))
        connection.close()

    small, large = min(results), max(results)
    ok = True
    print(f"\nRESULT {large:,} ÷ {small:,} accounts:")
    for name in PAGES:
        (q_small, t_small), (q_large, t_large) = results[small][name], results[large][name]
        ok &= q_large <= q_small
        print(f"  {name:10} queries {q_small} → {q_large} ({'same' if q_large == q_small else 'GREW'}); "
              f"server time {t_small * 1000:.1f} → {t_large * 1000:.1f} ms (×{t_large / t_small:.2f})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
