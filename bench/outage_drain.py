"""Benchmark: drain 10,000 stranded accounts after a provider outage.

A local HTTP provider (provisioning/tests/fake_provider.py) enforces a rate limit of
RATE requests per second and answers 429 beyond it. The accounts' workspace steps
are all due at once, as after the circuit closes. A dispatcher thread runs
reconciler passes; WORKERS processes (each with its own PostgreSQL connection) run
the steps, paced by provisioning.pacing under PROVIDER_RATE_PER_SECOND = RATE.

Prints, measured in this one run:
  drain rate ÷ configured rate       (aim: close to 1, never above)
  busiest one-second window ÷ limit  (aim: ≤ 1)
  duplicate workspaces               (must be 0)

Run from the repository root:
  .venv/bin/python bench/outage_drain.py [--accounts 10000] [--rate 100] [--workers 6]
It creates and drops a scratch PostgreSQL database on 127.0.0.1:5432.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def serve_provider(rate: float, pipe) -> None:
    """The provider runs in its own process, so its work does not share our GIL."""
    from provisioning.tests.fake_provider import FakeProvider

    with FakeProvider(mode="ok", rate_limit_per_second=rate) as provider:
        pipe.send(provider.url)
        pipe.recv()  # "report"
        requests = provider.requests
        pipe.send({
            "accepted_keys": [r["idempotency_key"] for r in requests if r["status"] in (200, 201)],
            "limited": sum(1 for r in requests if r["status"] == 429),
            "busiest": provider.max_requests_in_any_second(),
            "created": provider.created_count,
        })


def work(tasks) -> None:
    """A worker process: runs the steps the dispatcher hands it."""
    import django

    django.setup()
    from provisioning.durable import step_run

    while (item := tasks.get()) is not None:
        step_run(*item)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--workers", type=int, default=6)
    args = parser.parse_args()

    db = f"bench_drain_{os.getpid()}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", db], check=True)
    ours, theirs = multiprocessing.Pipe()
    provider = multiprocessing.Process(target=serve_provider, args=(args.rate, theirs))
    provider.start()
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db}",
        "PROVISIONING_BACKEND": "http", "PROVISIONING_URL": ours.recv(),
        "PROVIDER_RATE_PER_SECOND": str(args.rate), "RECONCILE_EVERY_SECONDS": "2",
        "SANDBOX_EMAIL_DELIVER_TO": "django.core.mail.backends.dummy.EmailBackend",
        "LOG_LEVEL": "WARNING",
    })
    try:
        run(args, ours)
    finally:
        provider.terminate()
        from django.db import connections

        connections.close_all()
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", db], check=False)


def run(args, pipe) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from accounts.models import User
    from provisioning.models import ProvisioningRequest, Workspace
    from provisioning.reconciler import reconcile

    call_command("migrate", verbosity=0)
    users = User.objects.bulk_create(
        User(email=f"stranded{i}@example.com", name=f"Person {i}", company=f"Company {i}", password="!")
        for i in range(args.accounts))
    ProvisioningRequest.objects.bulk_create(
        ProvisioningRequest(account=u, idempotency_key=f"workspace-{u.pk}", last_error_code="outage")
        for u in users)
    print(f"{args.accounts} stranded accounts; provider limit {args.rate:g}/s; {args.workers} worker processes")

    connections.close_all()  # the workers open their own
    tasks: multiprocessing.Queue = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=work, args=(tasks,)) for _ in range(args.workers)]
    for w in workers:
        w.start()
    started = time.monotonic()
    while ProvisioningRequest.objects.exclude(status="succeeded").exists():
        reconcile(enqueue=lambda kind, pk: tasks.put((kind, pk)) if kind == "workspace" else None)
        time.sleep(1)
    elapsed = time.monotonic() - started
    for _ in workers:
        tasks.put(None)
    for w in workers:
        w.join()

    pipe.send("report")
    seen = pipe.recv()
    accepted = seen["accepted_keys"]
    duplicates = (Workspace.objects.count() - seen["created"]) + (len(accepted) - len(set(accepted)))
    print(f"drained in {elapsed:.1f} s: {len(accepted)} calls accepted, {seen['limited']} refused with 429")
    print(f"drain rate ÷ configured rate:      {args.accounts / elapsed / args.rate:.3f}")
    print(f"busiest one-second window ÷ limit: {seen['busiest'] / args.rate:.3f}")
    print(f"duplicate workspaces:              {duplicates}")


if __name__ == "__main__":
    main()
