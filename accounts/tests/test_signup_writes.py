"""What a signup writes, in how many commits and round trips. Beyond the password
hash, a signup's cost is mostly its round trips to the database, each a few hundred
microseconds of CPU on both ends, and its commits, each waiting for the disk while
the hash waits for the CPU (docs/benchmarks.md, "Signup throughput").

A signup's POST commits its rate-limit counts (one statement each, a transaction of
its own sent in one round trip), then the account with the durable records of the
work it is owed (the transactional outbox) and, on the ORM broker, the queue entries
for that work with the marks that say they are queued (one commit: both or neither),
then the new session, written once in one round trip. Only the account's commit
waits for the disk. ``last_login`` is saved with the account, not updated after it."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import EmailDelivery, User
from accounts.selectors import user_by_email
from accounts.tests.factories import PASSWORD, sign_up
from provisioning.durable import StepStatus
from provisioning.models import ProvisioningRequest
from provisioning.reconciler import reconcile

WRITES = ("INSERT", "UPDATE", "DELETE")
# provisioning.transactions.execute_without_waiting_for_disk: a one-statement
# transaction that does not wait for the disk, sent as one query string.
NO_WAIT = "SET LOCAL synchronous_commit TO OFF; "


def _tables(statements: list[str]) -> list[str]:
    """``INSERT accounts_user``, ``UPDATE django_session``...: what each write touched."""
    touched = []
    for sql in statements:
        sql = sql.removeprefix(NO_WAIT)
        verb = sql.split(None, 1)[0].upper()
        if verb in WRITES:
            table = sql.split('"')[1] if '"' in sql else sql.split()[2]
            touched.append(f"{verb} {table}")
    return touched


def _transactions(statements: list[str]) -> list[list[str]]:
    """The statements of each commit that wrote, in order, from a process that really
    commits: a BEGIN ... COMMIT block, or a write outside one (autocommit)."""
    commits, block = [], None
    for sql in statements:
        verb = sql.split(None, 1)[0].upper()
        if verb == "BEGIN":
            block = []
        elif verb == "COMMIT":
            if _tables(block):
                commits.append(block)
            block = None
        elif block is not None:
            block.append(sql)
        elif _tables([sql]):
            commits.append([sql])
    return commits


def _committed(statements: list[str]) -> list[list[str]]:
    """The writes of each commit, in order."""
    return [_tables(block) for block in _transactions(statements)]


def _waits_for_disk(statements: list[str]) -> list[bool]:
    """For each commit, in order: does it wait for the disk (provisioning.transactions)?"""
    return [not any(sql.startswith(("SET LOCAL synchronous_commit TO OFF", NO_WAIT)) for sql in block)
            for block in _transactions(statements)]


def _top_level_writes(statements: list[str]) -> list[list[str]]:
    """The same inside a test's transaction, where each of the request's transactions
    is a top-level savepoint and a write outside any would have been its own commit."""
    commits, block, depth = [], [], 0
    for sql in statements:
        if sql.startswith("SAVEPOINT"):
            depth += 1
        elif sql.startswith("RELEASE SAVEPOINT"):
            depth -= 1
            if depth == 0 and _tables(block):
                commits.append(_tables(block))
                block = []
        elif sql.startswith("ROLLBACK TO SAVEPOINT"):
            continue
        elif depth:
            block.append(sql)
        elif _tables([sql]):
            commits.append(_tables([sql]))
    return commits


def _counts_then(commits: list[list[str]]) -> list[list[str]]:
    """The commits after the rate-limit counts (one per key, and now and then the
    sweep of windows that are over), which come first."""
    counts = 0
    while counts < len(commits) and {w.split()[1] for w in commits[counts]} == {"accounts_ratelimitcounter"}:
        counts += 1
    assert counts >= 2, commits  # the client's address and the email address
    return commits[counts:]


@pytest.mark.django_db
def test_a_signup_writes_the_account_with_its_work_and_then_its_session(
        client, signup_data, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as after_commit, CaptureQueriesContext(connection) as queries:
        response = client.post("/signup/", signup_data)

    assert response.status_code == 302
    account, session = _counts_then(_top_level_writes([q["sql"] for q in queries.captured_queries]))
    assert account[0] == "INSERT accounts_user"
    assert {"INSERT provisioning_provisioningrequest", "INSERT accounts_emaildelivery"} <= set(account)
    assert session == ["INSERT django_session"]
    # One callback enqueues both owed steps (tasks run inline in tests: it runs them).
    assert len(after_commit) == 1
    after_commit[0]()
    assert ProvisioningRequest.objects.get().status == StepStatus.SUCCEEDED
    assert EmailDelivery.objects.get().status == StepStatus.SUCCEEDED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_the_production_settings_the_account_and_its_queued_work_commit_once():
    # PostgreSQL only (accounts/tests/conftest.py): a second process works on the test
    # database, which SQLite keeps in this one's memory.
    db = connection.settings_dict
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    done = subprocess.run([sys.executable, "-m", "accounts.tests.signup_process", "ada@example.com"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])

    assert (answer["status"], answer["location"]) == (302, "/setup/")
    statements = answer["statements"]
    commits = _committed(statements)
    account, session = _counts_then(commits)
    counts = len(commits) - 2
    assert account[0] == "INSERT accounts_user"  # the outbox commits with the account
    # ... and so do the queue entries for that work, both or neither, whatever crashes
    # when; the steps are created marked as queued (so a reconcile pass before a
    # worker comes does not queue them a second time), with no UPDATE after.
    assert account[1:] == ["INSERT provisioning_provisioningrequest", "INSERT provisioning_event",
                           "INSERT accounts_emaildelivery", "INSERT provisioning_event",
                           "INSERT django_q_ormq", "INSERT django_q_ormq"]
    assert session == ["INSERT django_session"]
    # The account, which the person is told is saved, waits for the disk; counts and
    # the new session (lost, the person logs in again) need not survive a crash of
    # the database, and do not wait.
    assert _waits_for_disk(statements) == [False] * counts + [True, False]
    # Each count and the session are one round trip, with no BEGIN, SET or COMMIT of
    # their own; the account's transaction has no savepoint.
    assert [sql.split(None, 1)[0] for sql in statements if not sql.startswith(NO_WAIT)] == [
        "SELECT", "BEGIN", *["INSERT"] * 7, "COMMIT"]
    assert reconcile(enqueue=lambda kind, pk: pytest.fail(f"{kind} {pk} queued twice")).dispatched == {
        "workspace": 0, "workspace_removal": 0, "email": 0}


@pytest.mark.django_db
def test_signup_saves_its_login_with_the_account_and_later_logins_update_it(signup_data):
    client, account = sign_up()
    assert account.last_login == account.date_joined  # the signup's own login
    assert client.get("/setup/status.json").status_code == 200

    User.objects.filter(pk=account.pk).update(last_login=account.date_joined - timedelta(days=1))
    assert Client().post("/login/", {"email": account.email, "password": PASSWORD}).status_code == 302
    account.refresh_from_db()
    assert account.last_login > account.date_joined  # Django's update_last_login, as before


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("lookup", ["signup", "login"])
def test_the_address_is_looked_up_in_its_index_not_by_reading_every_account(lookup):
    sign_up(email="ada@example.com")
    with CaptureQueriesContext(connection) as queries:
        if lookup == "signup":
            assert user_by_email(email="ADA@example.com") is not None
        else:
            assert User.objects.get_by_natural_key("ADA@example.com") is not None
    [select] = [q["sql"] for q in queries.captured_queries]
    with connection.cursor() as cursor:
        # With a few rows PostgreSQL would read the table whatever the indexes; the
        # question is whether it can avoid it once there are a million.
        cursor.execute("SET LOCAL enable_seqscan TO off")
        cursor.execute(f"EXPLAIN {select}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using user_email_ci_unique" in plan, plan


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("form", ["contact", "callback", "sign-in code", "bounce"])
def test_the_public_forms_look_the_address_up_in_its_index(form):
    """Every public form that takes an address finds its account through the index: a
    form anyone can post must not read every account per request."""
    from accounts.services import email_mark_bounced, signin_code_redeem
    from support.callbacks import callback_request
    from support.services import contact_message_receive

    sign_up(email="ada@example.com")
    calls = {
        "contact": lambda: contact_message_receive(email="ADA@example.com", message="Hello"),
        "callback": lambda: callback_request(email="ADA@example.com", phone="+1 415 555 0100"),
        "sign-in code": lambda: signin_code_redeem(email="ADA@example.com", code="000000"),
        "bounce": lambda: email_mark_bounced(esp="test", event_id="e1", recipient="ADA@example.com",
                                             event_type="bounced"),
    }
    with CaptureQueriesContext(connection) as queries:
        calls[form]()
    lookups = [q["sql"] for q in queries.captured_queries
               if q["sql"].startswith("SELECT") and 'FROM "accounts_user"' in q["sql"] and '"email"' in q["sql"]]
    assert lookups
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan TO off")  # as with a million rows
        for select in lookups:
            cursor.execute(f"EXPLAIN {select}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Index Scan using user_email_ci_unique" in plan, plan
