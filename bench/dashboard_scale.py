"""What the console's dashboard ("Today", /admin/) costs with 10,000, 100,000 and
1,000,000 accounts: its server time against a 50 ms budget and its queries, which
must not grow. Counting every account's lifecycle state per request cost 220 ms at
100,000 and grew with them (bench/console_pages.py); counting it for the accounts
in flight only cost 80 ms with 10,000 in flight. The dashboard now reads the state
tally (accounts.state_tally, accounts.state_counts): customers by the facts their
state is made of, folded every minute from the changes triggers record; a request
counts again only the accounts changed since the last fold and those whose step is
overdue. After building or changing the accounts with SQL (which the triggers
record like any write), the bench measures the page once with the changes still
waiting (when they touch 20,000 accounts or fewer), then folds them as the
scheduled fold would, and measures.

On a PostgreSQL database (migrated, static files collected, production settings),
accounts are inserted in bulk with SQL, spread over the last 30 days, each with its
workspace step and verification email:

- settled accounts, the bulk, g numbered 1..size: 79% active (1% with a resolved
  ticket from a failed first try, 0.1% with a bounced verification email to an
  earlier address), 20% unverified (email sent, link not clicked), 1% closed;
- accounts in flight, a fixed number whatever the size (``--in-flight``, default
  1,000), joined in the last ten hours: half setting up, a fifth delayed (three
  failed tries), a fifth needing support (workspace refused, or the email gave up;
  each with an open ticket, but a fortieth of them whose ticket support resolved
  before this failure), a tenth whose email bounced.

A staff member in the Support group is signed in with Django's test client; the
page is requested once counting its queries, then ``--repeat`` times for the
median server time (the whole Django handler). At each size the dashboard's numbers
are checked against counting every account's state with the one definition (the
old way, timed too), and the ticket sweep's search (``accounts_needing_a_ticket``,
over the accounts in flight) is timed and checked against searching every account.
After the largest size, the in-flight set can be grown (``--more-in-flight 10000``)
to show what the time follows. Last, a workspace outage: ``--stranded`` accounts
(10,000) held behind an open circuit with the incident open, then half of them
drained after the provider recovered; the dashboard (with its incident banner) and
the incident's page are measured in each, and their figures checked against the
definitions' counts over every account (timed too, also without the errored steps'
index, as before it existed).

A million accounts take minutes to build: ``--database NAME`` keeps each size's
accounts in a database of its own (NAME_10000, ...) between runs, building only
what is missing (``--drop`` drops them at the end). Without it, each size gets a
scratch database, dropped after.

    .venv/bin/python bench/dashboard_scale.py [--sizes 10000 100000 1000000] [--repeat 7]
        [--in-flight 1000] [--more-in-flight 10000] [--stranded 10000] [--database bench_dash_1m] [--drop]
        [--explain]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

BUDGET_SECONDS = 0.050
PATH = "/admin/"

STEP_COLUMNS = """status, attempts, counted_attempts, next_attempt_at, dispatched_until, last_error_code,
    last_error_detail, lease_owner, lease_expires_at, idempotency_key, created_at, updated_at, completed_at"""


def settled_count(cursor) -> int:
    cursor.execute("SELECT count(*) FROM accounts_user WHERE email LIKE 'person-%'")
    return cursor.fetchone()[0]


def seed_settled(cursor, first: int, last: int) -> None:
    """Settled accounts first..last (inclusive): g mod 100 decides what each is."""
    cursor.execute("SELECT coalesce(max(id), 0) FROM accounts_user")
    [(last_id,)] = cursor.fetchall()
    cursor.execute("""
        INSERT INTO accounts_user (password, last_login, is_superuser, email, name, phone, company,
                                   email_verified_at, is_active, is_staff, date_joined)
        SELECT '!', NULL, false, 'person-' || g || '@example.com', 'Person ' || g, '+14155550100',
               'Company ' || g, CASE WHEN mod(g, 100) BETWEEN 77 AND 97 THEN NULL ELSE now() END,
               mod(g, 100) <> 97, false, now() - (mod(g::bigint * 7919, 43200) || ' minutes')::interval
        FROM generate_series(%s, %s) AS g""", [first, last])
    accounts = f"""(SELECT id, email, date_joined, {first - 1} + row_number() OVER (ORDER BY id) AS g
                    FROM accounts_user WHERE id > {last_id} AND NOT is_staff) AS u"""
    # A resolved ticket's account (g mod 100 = 0) failed its first try, then succeeded.
    cursor.execute(f"""
        INSERT INTO provisioning_provisioningrequest ({STEP_COLUMNS}, account_id)
        SELECT 'succeeded', CASE WHEN mod(g, 100) = 0 THEN 2 ELSE 1 END, 1, NULL, NULL,
               CASE WHEN mod(g, 100) = 0 THEN 'http_503' ELSE '' END,
               CASE WHEN mod(g, 100) = 0 THEN 'The provider answered 503.' ELSE '' END,
               '', NULL, 'workspace-' || g, u.date_joined, u.date_joined, u.date_joined, u.id
        FROM {accounts}""")
    cursor.execute(f"""
        INSERT INTO provisioning_workspace (owner_id, external_id, name, created_at)
        SELECT u.id, 'ws-' || g, 'Company ' || g, u.date_joined FROM {accounts}""")
    cursor.execute(f"""
        INSERT INTO accounts_emaildelivery ({STEP_COLUMNS}, kind, to_address, context, bounced_at, account_id)
        SELECT 'succeeded', 1, 1, NULL, NULL, '', '', '', NULL, 'email-' || g, u.date_joined, u.date_joined,
               u.date_joined, 'verification', u.email, '{{}}'::jsonb, NULL, u.id
        FROM {accounts}""")
    # 0.1% corrected their address after the first link bounced: history that stays.
    cursor.execute(f"""
        INSERT INTO accounts_emaildelivery ({STEP_COLUMNS}, kind, to_address, context, bounced_at, account_id)
        SELECT 'succeeded', 1, 1, NULL, NULL, '', '', '', NULL, 'email-old-' || g,
               u.date_joined - interval '1 minute', u.date_joined, u.date_joined - interval '1 minute',
               'verification', 'old-' || g || '@example.net', '{{}}'::jsonb, u.date_joined, u.id
        FROM {accounts} WHERE mod(g, 1000) = 1""")
    cursor.execute(f"""
        INSERT INTO support_ticket (reference, account_id, email, reason, status, priority, waiting_since,
                                    created_at, resolved_at, resolved_automatically)
        SELECT 'SUP-' || g, u.id, u.email, 'workspace_failed', 'resolved', 2, u.date_joined, u.date_joined,
               u.date_joined + interval '1 hour', true
        FROM {accounts} WHERE mod(g, 100) = 0""")


def _add_accounts(cursor, prefix: str, label: str, *, first: int, last: int) -> str:
    """Insert accounts ``prefix-<g>@example.com`` for g in first..last, each with a
    pending workspace step; return a subquery (alias ``u``) of the new ones, with
    their g, for the rows the caller adds to them."""
    cursor.execute("SELECT coalesce(max(id), 0) FROM accounts_user")
    [(last_id,)] = cursor.fetchall()
    cursor.execute(f"""
        INSERT INTO accounts_user (password, last_login, is_superuser, email, name, phone, company,
                                   email_verified_at, is_active, is_staff, date_joined)
        SELECT '!', NULL, false, '{prefix}-' || g || '@example.com', '{label} ' || g, '+14155550100',
               'Company ' || g, NULL, true, false, now()
        FROM generate_series(%s, %s) AS g""", [first, last])
    new = f"""(SELECT id, email, {first - 1} + row_number() OVER (ORDER BY id) AS g FROM accounts_user
               WHERE id > {last_id}) AS u"""
    cursor.execute(f"""
        INSERT INTO provisioning_provisioningrequest ({STEP_COLUMNS}, account_id)
        SELECT 'pending', 0, 0, now(), NULL, '', '', '', NULL, 'workspace-{prefix}-' || g, now(), now(), NULL, u.id
        FROM {new}""")
    return new


def set_in_flight(cursor, level: int) -> None:
    """Make the first ``level`` flight accounts in flight (g mod 20 decides how) and
    park any beyond it as settled active accounts, joined over the last 30 days like
    the others: building them once, then only updating, lets one database serve
    every in-flight level. Times are set from now, so a kept database reads the same
    on a later day."""
    cursor.execute("SELECT count(*) FROM accounts_user WHERE email LIKE 'flight-%'")
    have = cursor.fetchone()[0]
    if have < level:
        new = _add_accounts(cursor, "flight", "Flight", first=have + 1, last=level)
        cursor.execute(f"""
            INSERT INTO accounts_emaildelivery ({STEP_COLUMNS}, kind, to_address, context, bounced_at, account_id)
            SELECT 'pending', 0, 0, now(), NULL, '', '', '', NULL, 'email-flight-' || g, now(), now(), NULL,
                   'verification', u.email, '{{}}'::jsonb, NULL, u.id
            FROM {new}""")
        cursor.execute(f"""
            INSERT INTO support_ticket (reference, account_id, email, reason, status, priority, waiting_since,
                                        created_at, resolved_at, resolved_automatically)
            SELECT 'FLT-' || g, u.id, u.email,
                   CASE WHEN mod(g, 20) = 19 THEN 'email_failed' ELSE 'workspace_failed' END,
                   'resolved', CASE WHEN mod(g, 3) = 0 THEN 1 ELSE 2 END, now(), now(), now(), true
            FROM {new} WHERE mod(g, 20) IN (14, 15, 16, 19)""")
    flight = """(SELECT id, substring(email from 8 for position('@' in email) - 8)::int AS g
                  FROM accounts_user WHERE email LIKE 'flight-%') AS f"""
    # What each flight account is: 'parked' beyond the level, else its share of g mod 20.
    kind = f"""CASE WHEN f.g > {level} THEN 'parked' WHEN mod(f.g, 20) < 10 THEN 'setting_up'
                    WHEN mod(f.g, 20) < 14 THEN 'delayed' WHEN mod(f.g, 20) < 17 THEN 'refused'
                    WHEN mod(f.g, 20) < 19 THEN 'bounced' ELSE 'email_gave_up' END"""
    cursor.execute(f"""
        UPDATE accounts_user AS a SET
            date_joined = now() - (mod(f.g::bigint * 7919, CASE WHEN {kind} = 'parked' THEN 43200 ELSE 600 END)
                                   || ' minutes')::interval,
            email_verified_at = CASE WHEN {kind} = 'parked' THEN now() END
        FROM {flight} WHERE a.id = f.id""")
    cursor.execute(f"""
        UPDATE provisioning_provisioningrequest AS s SET
            status = CASE {kind} WHEN 'setting_up' THEN 'pending' WHEN 'delayed' THEN 'pending'
                                 WHEN 'refused' THEN 'failed' ELSE 'succeeded' END,
            attempts = CASE {kind} WHEN 'setting_up' THEN 0 WHEN 'delayed' THEN 3 ELSE 1 END,
            counted_attempts = CASE {kind} WHEN 'setting_up' THEN 0 WHEN 'delayed' THEN 3 ELSE 1 END,
            next_attempt_at = CASE {kind} WHEN 'setting_up' THEN now() + interval '20 seconds'
                                          WHEN 'delayed' THEN now() + interval '5 minutes' END,
            last_error_code = CASE {kind} WHEN 'delayed' THEN 'http_503' WHEN 'refused' THEN 'http_422' ELSE '' END,
            last_error_detail = CASE {kind} WHEN 'delayed' THEN 'The provider answered 503.'
                                            WHEN 'refused' THEN 'The provider refused the request (HTTP 422).'
                                            ELSE '' END,
            completed_at = CASE WHEN {kind} IN ('setting_up', 'delayed') THEN NULL ELSE now() END,
            updated_at = now()
        FROM {flight} WHERE s.account_id = f.id""")
    cursor.execute(f"""
        UPDATE accounts_emaildelivery AS e SET
            status = CASE {kind} WHEN 'setting_up' THEN 'pending' WHEN 'email_gave_up' THEN 'failed'
                                 ELSE 'succeeded' END,
            attempts = CASE {kind} WHEN 'setting_up' THEN 0 WHEN 'email_gave_up' THEN 6 ELSE 1 END,
            next_attempt_at = CASE {kind} WHEN 'setting_up' THEN now() + interval '20 seconds' END,
            last_error_code = CASE {kind} WHEN 'email_gave_up' THEN 'smtp_timeout' ELSE '' END,
            bounced_at = CASE {kind} WHEN 'bounced' THEN now() END,
            completed_at = CASE {kind} WHEN 'setting_up' THEN NULL ELSE now() END,
            updated_at = now()
        FROM {flight} WHERE e.account_id = f.id""")
    cursor.execute(f"""
        UPDATE support_ticket AS t SET
            status = CASE WHEN {kind} = 'parked' OR mod(f.g, 40) = 15 THEN 'resolved' ELSE 'open' END,
            resolved_at = CASE WHEN {kind} = 'parked' THEN now()
                               WHEN mod(f.g, 40) = 15 THEN now() - interval '1 hour' END,
            waiting_since = now() - (mod(f.g, 300) || ' minutes')::interval
        FROM {flight} WHERE t.account_id = f.id""")


def set_stranded(cursor, n: int, drained: int) -> int | None:
    """Accounts an open workspace outage holds: the first ``n`` stranded accounts
    joined in its twenty minutes, their workspace step held after an error (the
    circuit open) or, the last ``drained`` of them, gone through since it closed
    (the incident still open until the rest drain). ``n`` = 0 parks them all as
    settled active accounts of 40 days ago, closes the circuit and removes the
    incident, as a kept database is expected. Returns the open incident's id."""
    cursor.execute("SELECT count(*) FROM accounts_user WHERE email LIKE 'stranded-%'")
    have = cursor.fetchone()[0]
    if have < n:
        new = _add_accounts(cursor, "stranded", "Stranded", first=have + 1, last=n)
        cursor.execute(f"""
            INSERT INTO accounts_emaildelivery ({STEP_COLUMNS}, kind, to_address, context, bounced_at, account_id)
            SELECT 'succeeded', 1, 1, NULL, NULL, '', '', '', NULL, 'email-stranded-' || g, now(), now(), now(),
                   'verification', u.email, '{{}}'::jsonb, NULL, u.id
            FROM {new}""")
    stranded = """(SELECT id, substring(email from 10 for position('@' in email) - 10)::int AS g
                   FROM accounts_user WHERE email LIKE 'stranded-%') AS s"""
    kind = f"CASE WHEN s.g > {n} THEN 'parked' WHEN s.g > {n - drained} THEN 'drained' ELSE 'held' END"
    cursor.execute(f"""
        UPDATE accounts_user AS a SET
            date_joined = CASE WHEN {kind} = 'parked' THEN now() - interval '40 days'
                               ELSE now() - (mod(s.g, 1200) || ' seconds')::interval END,
            email_verified_at = CASE WHEN {kind} = 'parked' THEN now() - interval '40 days' END
        FROM {stranded} WHERE a.id = s.id""")
    # Held: a 503, then "outage" while the circuit is open, due again at once. Drained:
    # that error kept as history, done in the minutes since the circuit closed.
    cursor.execute(f"""
        UPDATE provisioning_provisioningrequest AS r SET
            status = CASE WHEN {kind} = 'held' THEN 'pending' ELSE 'succeeded' END,
            attempts = 2, counted_attempts = 1,
            next_attempt_at = CASE WHEN {kind} = 'held' THEN now() END,
            last_error_code = 'outage',
            last_error_detail = 'Its turn came while the provider''s circuit was open, so no call was made.',
            completed_at = CASE {kind} WHEN 'held' THEN NULL
                                       WHEN 'drained' THEN now() - (mod(s.g, 300) || ' seconds')::interval
                                       ELSE now() - interval '40 days' END,
            updated_at = CASE {kind} WHEN 'held' THEN now() - (mod(s.g, 1200) || ' seconds')::interval
                                     WHEN 'drained' THEN now() - (mod(s.g, 300) || ' seconds')::interval
                                     ELSE now() - interval '40 days' END
        FROM {stranded} WHERE r.account_id = s.id""")
    cursor.execute("DELETE FROM support_incidentevent")
    cursor.execute("DELETE FROM support_incident")
    state = "open" if n and not drained else "closed"
    cursor.execute("""
        INSERT INTO provisioning_breaker (provider, state, opened_at, probed_at, cause)
        VALUES ('provisioning', %s, now() - interval '20 minutes', now() - interval '1 minute', '')
        ON CONFLICT (provider) DO UPDATE SET state = EXCLUDED.state, opened_at = EXCLUDED.opened_at,
                                             probed_at = EXCLUDED.probed_at""", [state])
    if not n:
        return None
    cursor.execute("""
        INSERT INTO support_incident (provider, status, started_at, ended_at, cause, peak_backlog, affected,
                                      drained, apologies_pending, apology_cursor)
        VALUES ('provisioning', 'open', now() - interval '20 minutes', NULL, '', %s, 0, 0, false, 0)
        RETURNING id""", [n])
    return cursor.fetchone()[0]


def analyze(cursor) -> None:
    for table in ("accounts_user", "provisioning_provisioningrequest", "provisioning_workspace",
                  "accounts_emaildelivery", "support_ticket", "accounts_statechange", "accounts_accountstatefacts",
                  "accounts_statetally", "accounts_statetallybyquarter"):
        cursor.execute(f"VACUUM ANALYZE {table}")


def fold(client=None, repeat: int = 5) -> None:
    """Fold the changes the seeding SQL made into the state tally, as the scheduled
    fold does within a minute (accounts.state_tally), timing it; with ``client``,
    first measure the dashboard with them still waiting (a small enough number)."""
    from django.db import connection

    from accounts.models import StateChange
    from accounts.state_tally import state_tally_fold_all

    waiting = StateChange.objects.count()
    accounts = StateChange.objects.values("account_id").distinct().count()
    if client is not None and 0 < accounts <= 20_000:
        _, timings, _, _ = measure(client, repeat)
        print(f"    before the fold, {waiting:,} changes to {accounts:,} accounts waiting: dashboard median "
              f"{statistics.median(timings) * 1000:.1f} ms (fastest {min(timings) * 1000:.1f} ms)")
    start = time.perf_counter()
    state_tally_fold_all(limit=20_000)
    if waiting:
        print(f"    the fold: {waiting:,} changes to {accounts:,} accounts in {time.perf_counter() - start:.1f} s")
    with connection.cursor() as cursor:
        analyze(cursor)


def by_definition() -> tuple[dict[str, int], float]:
    """Every customer's state counted with the one definition (the old way), and how
    long that took."""
    from django.db.models import Count

    from accounts.models import User
    from accounts.selectors import with_lifecycle_state

    start = time.perf_counter()
    states = Counter(dict(with_lifecycle_state(User.objects.filter(is_staff=False))
                          .values_list("lifecycle_state").annotate(n=Count("pk")).order_by()))
    return states, time.perf_counter() - start


def in_flight_states_seconds() -> float:
    """How long the previous design's costly query takes now, here: computing the
    state of every account in flight (accounts.state_counts.in_flight_among), which
    the page ran on each request before the state tally. The median of three."""
    from django.db.models import Count

    from accounts.models import User
    from accounts.selectors import with_lifecycle_state
    from accounts.state_counts import in_flight_among

    timings = []
    for _ in range(3):
        start = time.perf_counter()
        list(with_lifecycle_state(in_flight_among(User.objects.filter(is_staff=False, is_active=True)))
             .values_list("lifecycle_state").annotate(n=Count("pk")).order_by())
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def sweep_by_definition() -> tuple[list[int], float]:
    """The ticket sweep's search as it was, over every customer (the old way): the
    ids it finds, and how long that took."""
    from django.db.models import Case, DateTimeField, Exists, F, OuterRef, Subquery, When

    from accounts.models import User
    from accounts.selectors import State, latest_verification_of, with_lifecycle_state
    from provisioning.durable import StepStatus
    from support.models import UNRESOLVED, Ticket, TicketStatus

    start = time.perf_counter()
    failed_at = Case(When(provisioning_request__status=StepStatus.FAILED, then=F("provisioning_request__completed_at")),
                     default=Subquery(latest_verification_of().values("completed_at")[:1]),
                     output_field=DateTimeField())
    resolved_since = Ticket.objects.filter(account=OuterRef("pk"), status=TicketStatus.RESOLVED,
                                           resolved_at__gte=OuterRef("failed_at"))
    found = list(with_lifecycle_state(User.objects.filter(is_staff=False))
                 .filter(lifecycle_state=State.NEEDS_SUPPORT).exclude(tickets__status__in=UNRESOLVED)
                 .alias(failed_at=failed_at).exclude(Exists(resolved_since))
                 .order_by("date_joined", "pk").values_list("pk", flat=True)[:200])
    return found, time.perf_counter() - start


def report_sweep(repeat: int) -> bool:
    """The ticket sweep's search (support.selectors.accounts_needing_a_ticket), timed,
    and checked against the old way's answer."""
    from support.selectors import accounts_needing_a_ticket

    accounts_needing_a_ticket()  # warm
    timings = []
    for _ in range(repeat):
        t = time.perf_counter()
        found = [account.pk for account in accounts_needing_a_ticket()]
        timings.append(time.perf_counter() - t)
    old, old_seconds = sweep_by_definition()
    same = found == old
    print(f"    ticket sweep's search: median {statistics.median(timings) * 1000:.1f} ms, {len(found)} accounts "
          f"need a ticket, {'the same as' if same else 'NOT THE SAME AS'} searching every account "
          f"({old_seconds * 1000:.0f} ms)")
    return same


def figures_by_definition(incident) -> tuple[tuple[int, int, int], float]:
    """The incident's affected, waiting and drained as the definitions find them by
    testing every account (the old way), and how long that took."""
    from datetime import timedelta

    from django.conf import settings

    from accounts.models import User
    from provisioning.selectors import outage_waited, outage_waiting

    start = time.perf_counter()
    provider, since = incident.provider, incident.started_at - timedelta(seconds=settings.BREAKER_WINDOW_SECONDS)
    figures = (User.objects.filter(outage_waited(provider, since)).count(),
               User.objects.filter(outage_waiting(provider)).count(),
               User.objects.filter(outage_waited(provider, since, drained=True)).exclude(
                   outage_waiting(provider)).count())
    return figures, time.perf_counter() - start


def figures_without_the_index(incident) -> float:
    """How long the old way takes without the errored steps' index, as before it
    existed: dropped in a transaction that is rolled back. The median of three."""
    from django.db import connection, transaction

    timings = []
    for _ in range(3):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("DROP INDEX prov_errored_idx")
            timings.append(figures_by_definition(incident)[1])
            transaction.set_rollback(True)
    return statistics.median(timings)


def report_incident(label: str, client, args, incident_id: int) -> tuple[int, float]:
    """The incident's page: its queries, its median server time, and its figures
    (and the dashboard's banner, just measured) against the definitions'."""
    import re

    from support.models import Incident

    incident = Incident.objects.get(pk=incident_id)
    path = f"/admin/support/incident/{incident_id}/change/"
    queries, timings, slowest, page = measure(client, args.repeat, path)
    seconds = statistics.median(timings)
    shown = {name: int(n) for name, n in re.findall(r'id="figure-(\w+)">(\d+)', page)}
    banner = re.search(r"(\d+) signups? (?:is|are) waiting on it", client.get(PATH, secure=True).content.decode())
    expected, old_seconds = figures_by_definition(incident)
    agree = ((shown["affected"], shown["waiting"], shown["drained"]) == expected and banner
             and int(banner.group(1)) == expected[1])
    print(f"{label}, the incident's page: {queries} queries, median {seconds * 1000:.1f} ms "
          f"(fastest {min(timings) * 1000:.1f} ms); figures " + ", ".join(f"{k} {v:,}" for k, v in shown.items())
          + f"; these and the banner's {'equal' if agree else 'DIFFER FROM'} the definitions' "
          f"(testing every account: {old_seconds * 1000:.0f} ms; without the errored steps' index, as "
          f"before it: {figures_without_the_index(incident) * 1000:.0f} ms)")
    for q_seconds, sql in slowest:
        sql = " ".join(sql.split())
        print(f"    {q_seconds * 1000:8.1f} ms  {sql[:150]}{'…' if len(sql) > 150 else ''}")
    return queries, seconds if agree else float("inf")


# CPU seconds per request, of this process (Python: the whole handler) and of its
# PostgreSQL backend (read from /proc): unlike the wall time, barely moved by other
# work on a shared machine. Filled by measure(), printed by report().
CPU: dict[str, float] = {}


def backend_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def measure(client, repeat: int, path: str = PATH) -> tuple[int, list[float], list[tuple[float, str]], str]:
    """(queries, the server times in seconds, the slowest queries as (seconds, sql), the page)."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    client.get(path, secure=True)  # warm: caches, template loading
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, secure=True)
    queries = list(captured.captured_queries)
    if response.status_code != 200:
        raise RuntimeError(f"{path} answered {response.status_code}")
    with connection.cursor() as cursor:  # the test client keeps the connection between requests
        cursor.execute("SELECT pg_backend_pid()")
        [(pid,)] = cursor.fetchall()
    timings, cpu = [], []
    backend = backend_cpu_seconds(pid)
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        client.get(path, secure=True)
        timings.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    CPU.update(web=statistics.median(cpu), database=(backend_cpu_seconds(pid) - backend) / repeat)
    slowest = sorted(((float(q["time"]), q["sql"]) for q in queries), reverse=True)[:3]
    return len(queries), timings, slowest, response.content.decode()


def tiles(page: str) -> dict[str, int]:
    import re

    return {state: int(n) for state, n in
            re.findall(r'href="/admin/accounts/user/\?state=(\w+)"><span class="n">(\d+)</span>', page)}


def report(label: str, client, args, connection) -> tuple[int, float]:
    queries, timings, slowest, page = measure(client, args.repeat)
    seconds = statistics.median(timings)
    states, old_seconds = by_definition()
    shown = tiles(page)
    agree = all(shown.get(state, 0) == states.get(state, 0) for state in set(shown) | set(states))
    print(f"{label}: {queries} queries, median {seconds * 1000:.1f} ms = {seconds / BUDGET_SECONDS:.2f} × 50 ms "
          f"(fastest {min(timings) * 1000:.1f} ms); "
          f"numbers {'equal' if agree else 'DIFFER FROM'} the definition's (counting every account: "
          f"{old_seconds * 1000:.0f} ms)")
    print(f"    CPU per request: this process {CPU['web'] * 1000:.1f} ms (median) + its PostgreSQL backend "
          f"{CPU['database'] * 1000:.1f} ms (mean, in clock ticks of {1000 / os.sysconf('SC_CLK_TCK'):.0f} ms) "
          f"= {(CPU['web'] + CPU['database']) * 1000:.1f} ms")
    print(f"    the previous design's query, the states of the accounts in flight: "
          f"{in_flight_states_seconds() * 1000:.1f} ms (median of 3)")
    print("    tiles: " + ", ".join(f"{state} {n:,}" for state, n in shown.items()))
    if not agree:
        print("    definition: " + ", ".join(f"{state} {n:,}" for state, n in states.items()))
    for q_seconds, sql in slowest:
        sql = " ".join(sql.split())
        print(f"    {q_seconds * 1000:8.1f} ms  {sql[:150]}{'…' if len(sql) > 150 else ''}")
    if args.explain and slowest:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest[0][1])
            print("\n".join("      " + row[0] for row in cursor.fetchall()))
    agree = report_sweep(args.repeat) and agree
    return queries, seconds if agree else float("inf")


def signed_in_client():
    """A browser signed in to the console as a member of the Support group, past
    the second factor (as after a code from the app: django_otp.login)."""
    from django.contrib.auth.models import Group
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.models import User

    staff = User.objects.filter(email="support@example.com").first() or User.objects.create_user(
        "support@example.com", harness.PASSWORD, name="Support", company="Acme Workspaces", is_staff=True)
    staff.groups.add(Group.objects.get(name="Support"))
    client = Client()
    client.force_login(staff)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get_or_create(user=staff, name="bench")[0].persistent_id
    session.save()
    return client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--in-flight", type=int, default=1_000)
    parser.add_argument("--more-in-flight", type=int, nargs="*", default=[], help="at the largest size, after")
    parser.add_argument("--repeat", type=int, default=7, help="requests for the median")
    parser.add_argument("--database", help="keep each size's accounts in database NAME_<size> between runs")
    parser.add_argument("--drop", action="store_true", help="drop the --database ones at the end")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest query")
    parser.add_argument("--stranded", type=int, default=10_000,
                        help="at the largest size, last: an incident open over this many stranded accounts (0: none)")
    args = parser.parse_args()

    print(f"machine: {harness.machine()}")
    results: dict[str, tuple[int, float]] = {}
    incidents: dict[str, tuple[int, float]] = {}
    static = harness.django_env("")["STATIC_ROOT"]
    for size in sorted(args.sizes):
        # One database per size, so that a kept million does not stop a run measuring 10,000.
        database = (harness.kept_database(f"{args.database}_{size}", drop=args.drop) if args.database
                    else harness.scratch_database(f"bench_dashboard_{size}"))
        with database as database_url:
            env = harness.django_env(database_url, STATIC_ROOT=static)
            harness.manage(env, "migrate", "--no-input")
            if not results:  # the first: set Django up, static files collected once
                harness.manage(env, "collectstatic", "--no-input", "--clear")
                os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY", "DATABASE_URL",
                                                        "STATIC_ROOT")})
                import django

                django.setup()
            from django.db import connection

            connection.close()
            connection.settings_dict["NAME"] = database_url.rsplit("/", 1)[1].split("?")[0]
            client = signed_in_client()
            start = time.monotonic()
            with connection.cursor() as cursor:
                seeded = settled_count(cursor)
                if seeded < size:
                    seed_settled(cursor, seeded + 1, size)
                set_in_flight(cursor, args.in_flight)
                analyze(cursor)
            print(f"\n== {size:,} settled accounts + {args.in_flight:,} in flight "
                  f"(built or brought up to date in {time.monotonic() - start:.1f} s; "
                  f"load average {os.getloadavg()[0]:.1f}) ==")
            fold(client, args.repeat)
            results[f"{size:,}"] = report(f"{size:,}", client, args, connection)
            if size == max(args.sizes):
                for level in args.more_in_flight:
                    with connection.cursor() as cursor:
                        set_in_flight(cursor, level)
                        analyze(cursor)
                    print(f"\n== {size:,} settled accounts + {level:,} in flight "
                          f"(load average {os.getloadavg()[0]:.1f}) ==")
                    fold(client, args.repeat)
                    results[f"{size:,} + {level:,} in flight"] = report(f"{level:,} in flight", client, args,
                                                                         connection)
                with connection.cursor() as cursor:
                    set_in_flight(cursor, args.in_flight)  # a kept database is left as a next run expects
                    analyze(cursor)
                fold()
                if args.stranded:
                    for drained, what in ((0, "circuit open"), (args.stranded // 2, "recovered, half drained")):
                        with connection.cursor() as cursor:
                            incident_id = set_stranded(cursor, args.stranded, drained)
                            analyze(cursor)
                        print(f"\n== {size:,} settled accounts + {args.in_flight:,} in flight + a workspace "
                              f"outage's incident open over {args.stranded:,} stranded, {what} "
                              f"(load average {os.getloadavg()[0]:.1f}) ==")
                        label = f"incident, {what}"
                        fold(client, args.repeat)
                        incidents[f"{label}: dashboard"] = report(f"{label}: dashboard", client, args, connection)
                        incidents[f"{label}: its page"] = report_incident(label, client, args, incident_id)
                    with connection.cursor() as cursor:
                        set_stranded(cursor, 0, 0)  # parked, as a next run expects
                        analyze(cursor)
                    fold()
            connection.close()

    print("\nRESULT (median server time ÷ 50 ms; queries):")
    counts = {queries for queries, _ in results.values()}
    for label, (queries, seconds) in results.items():
        print(f"  {label:>28}: {seconds * 1000:7.1f} ms = {seconds / BUDGET_SECONDS:.2f} × budget, {queries} queries")
    print(f"  queries {'the same at every size' if len(counts) == 1 else 'GREW'}")
    if incidents:
        print(f"  with an incident open over {args.stranded:,} stranded accounts, at {max(args.sizes):,}:")
        for label, (queries, seconds) in incidents.items():
            print(f"  {label:>46}: {seconds * 1000:7.1f} ms = {seconds / BUDGET_SECONDS:.2f} × budget, "
                  f"{queries} queries")
    agree = all(s != float("inf") for _, s in incidents.values())
    return 0 if agree and len(counts) == 1 and all(s <= BUDGET_SECONDS for _, s in results.values()) else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
