"""Crashes, on PostgreSQL, with real processes: a worker killed (-9) in the middle of
a provider call, a process killed between commit and enqueue (Redis) or right before
or after the commit that queues the work with the account (the ORM broker), two
workers racing through the same steps. The provider is FakeProvider over real HTTP; the workers
are subprocesses on the test database (``worker_process.py``)."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from django_q.models import OrmQ

from accounts.models import EmailDelivery
from accounts.selectors import account_overview, user_by_email
from accounts.services import account_register
from provisioning.durable import StepStatus
from provisioning.models import ProvisioningRequest, Workspace
from provisioning.reconciler import reconcile
from provisioning.tests.fake_provider import FakeProvider

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 2

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="crash tests share the test database with worker processes: PostgreSQL only "
                              "(an in-memory SQLite test database is invisible to other processes)"),
]


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _worker_env(provider: FakeProvider) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": _database_url(),
        "PROVISIONING_BACKEND": "http",
        "PROVISIONING_URL": provider.url,
        "PROVISIONING_TIMEOUT": "60",
        "STEP_LEASE_SECONDS": str(LEASE_SECONDS),
        "BREAKER_FAILURE_THRESHOLD": "1000",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    return env


def _spawn(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "provisioning.tests.worker_process", *args], cwd=ROOT,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for(condition, timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def provider(settings):
    """FakeProvider over HTTP, used by this process (settings) and the workers (env)."""
    with FakeProvider() as fake:
        settings.PROVISIONING_BACKEND = "http"
        settings.PROVISIONING_URL = fake.url
        settings.STEP_LEASE_SECONDS = LEASE_SECONDS
        settings.BREAKER_FAILURE_THRESHOLD = 1000
        yield fake


def _pending_account(provider: FakeProvider, email: str) -> ProvisioningRequest:
    """Signed up; the first attempt (run inline on commit) got a 503, so the
    workspace step waits for its retry, due now."""
    provider.fail_times(1)
    account = account_register(name="Ada", email=email, company="Engines",
                               password="correct horse battery staple")
    request = ProvisioningRequest.objects.get(account=account)
    assert request.status == StepStatus.PENDING and request.attempts == 1
    return request


def test_worker_killed_mid_call_is_finished_by_another_with_one_workspace(transactional_db, provider):
    request = _pending_account(provider, "ada@example.com")
    provider.mode, provider.hang_seconds = "hang", 60

    worker = _spawn(_worker_env(provider), "run", "workspace", str(request.pk))
    assert worker.stdout.readline().strip() == "ready"
    worker.stdin.write("go\n")
    worker.stdin.flush()
    _wait_for(lambda: len(provider.requests) == 2, what="the worker's call to reach the provider")
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)

    request.refresh_from_db()
    assert request.status == StepStatus.RUNNING and request.lease_owner  # the dead worker's lease
    assert account_overview(account=request.account).state == "setting_up"

    provider.mode = "ok"
    _wait_for(lambda: timezone.now() > request.lease_expires_at, timeout=LEASE_SECONDS + 5,
              what="the lease to expire")
    report = reconcile()  # the scheduled dispatcher; tasks run inline here
    assert report.dispatched["workspace"] == 1

    request.refresh_from_db()
    assert request.status == StepStatus.SUCCEEDED and request.attempts == 3
    keys = [r["idempotency_key"] for r in provider.requests]
    assert keys == [request.idempotency_key] * 3  # 503, the killed call, the finishing call
    assert provider.created_count == 1
    [workspace] = Workspace.objects.all()
    assert workspace.external_id == provider.workspaces[request.idempotency_key]
    assert account_overview(account=request.account).workspace_status == "ready"


REDIS_URL = "redis://127.0.0.1:6379/14"


def _redis_or_skip() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        client.flushdb()
    except redis.RedisError as error:
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({error}); the crash before a Redis enqueue is untested")


def test_crash_between_commit_and_enqueue_on_redis_is_found_by_the_dispatcher(transactional_db, provider, settings):
    _redis_or_skip()
    settings.PROVISIONING_BACKEND = "sandbox"
    died = _spawn({**_worker_env(provider), "REDIS_URL": REDIS_URL}, "signup-then-die", "grace@example.com")
    died.wait(timeout=30)
    assert died.returncode == -signal.SIGKILL, died.stderr.read()

    account = user_by_email(email="grace@example.com")
    assert account is not None  # committed...
    request = ProvisioningRequest.objects.get(account=account)
    delivery = EmailDelivery.objects.get(account=account)
    assert (request.status, request.attempts, delivery.status, delivery.attempts) == (
        StepStatus.PENDING, 0, StepStatus.PENDING, 0)
    assert (request.dispatched_until, delivery.dispatched_until) == (None, None)  # ...and never enqueued

    assert reconcile().dispatched == {"workspace": 1, "workspace_removal": 0, "email": 1}
    request.refresh_from_db()
    assert request.status == StepStatus.SUCCEEDED
    assert [m.to for m in mail.outbox] == [["grace@example.com"]]
    assert account_overview(account=account).state == "unverified"


def test_on_the_orm_broker_a_crash_after_the_signup_commits_leaves_its_work_queued(transactional_db, provider,
                                                                                 settings):
    # The queue is a table of the same database: the tasks commit with the account.
    settings.PROVISIONING_BACKEND = "sandbox"
    env = {**_worker_env(provider), "PROVISIONING_BACKEND": "sandbox"}
    died = _spawn(env, "signup-then-die", "grace@example.com")
    died.wait(timeout=30)
    assert died.returncode == -signal.SIGKILL, died.stderr.read()

    account = user_by_email(email="grace@example.com")
    request = ProvisioningRequest.objects.get(account=account)
    delivery = EmailDelivery.objects.get(account=account)
    assert (request.status, delivery.status) == (StepStatus.PENDING, StepStatus.PENDING)
    assert request.dispatched_until and delivery.dispatched_until  # marked as queued...
    assert OrmQ.objects.count() == 2  # ...and queued, in the same commit
    # The next pass leaves them to the queue rather than sending them a second time.
    assert reconcile(enqueue=lambda kind, pk: pytest.fail(f"{kind} {pk} queued twice")).dispatched == {
        "workspace": 0, "workspace_removal": 0, "email": 0}

    queue = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for(lambda: not ProvisioningRequest.objects.exclude(status=StepStatus.SUCCEEDED).exists()
                  and not EmailDelivery.objects.exclude(status=StepStatus.SUCCEEDED).exists()
                  and not OrmQ.objects.exists(),  # each task acknowledged once done
                  timeout=60, what="a worker to run the queued steps")
    finally:
        os.killpg(queue.pid, signal.SIGKILL)
        queue.wait(timeout=10)
    request.refresh_from_db()
    delivery.refresh_from_db()
    assert (request.status, request.attempts, delivery.status, delivery.attempts) == (
        StepStatus.SUCCEEDED, 1, StepStatus.SUCCEEDED, 1)  # each ran once
    assert Workspace.objects.filter(owner=account).count() == 1


def test_on_the_orm_broker_a_crash_before_the_signup_commits_leaves_nothing_behind(transactional_db, provider,
                                                                                   settings):
    settings.PROVISIONING_BACKEND = "sandbox"
    died = _spawn({**_worker_env(provider), "PROVISIONING_BACKEND": "sandbox"}, "signup-dies-before-commit",
                  "grace@example.com")
    died.wait(timeout=30)
    assert died.returncode == -signal.SIGKILL, died.stderr.read()

    # The account, its owed work and the tasks for it were one transaction: none of it
    # is left, so no task runs for an account that does not exist, ...
    assert user_by_email(email="grace@example.com") is None
    assert not ProvisioningRequest.objects.exists() and not EmailDelivery.objects.exists()
    assert not OrmQ.objects.exists()
    # ... and the person, whose signup never answered, signs up again from scratch.
    account = account_register(name="Grace", email="grace@example.com", company="Engines",
                               password="correct horse battery staple")
    assert ProvisioningRequest.objects.get(account=account).status == StepStatus.SUCCEEDED


def test_two_workers_never_run_one_step_twice(transactional_db, provider):
    requests = [_pending_account(provider, f"person{n}@example.com") for n in range(4)]
    pks = [str(r.pk) for r in requests]
    provider.reset()
    provider.mode, provider.hang_seconds = "hang", 0.5  # slow calls, so the workers overlap

    env = _worker_env(provider)
    workers = [_spawn(env, "run", "workspace", *pks) for _ in range(2)]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:  # start barrier: both are booted before either begins
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outcomes = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        outcomes.append([json.loads(line) for line in out.splitlines()])

    succeeded = Counter(o["pk"] for worker in outcomes for o in worker if o["result"] == "succeeded")
    assert succeeded == Counter({int(pk): 1 for pk in pks})  # each step ran in exactly one worker
    assert all(any(o["result"] == "succeeded" for o in worker) for worker in outcomes)  # both worked
    assert Counter(r["idempotency_key"] for r in provider.requests) == Counter(
        {r.idempotency_key: 1 for r in requests})  # one provider call per step
    assert provider.created_count == 4 and Workspace.objects.count() == 4
    assert set(ProvisioningRequest.objects.values_list("status", flat=True)) == {StepStatus.SUCCEEDED}
