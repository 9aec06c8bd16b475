"""Heal time after an outage, end to end, with the real worker processes.

N accounts are stranded by an outage: their workspace steps are due, held behind the
provider's open circuit. A local HTTP provider (provisioning/tests/fake_provider.py,
in its own process) answers 503 and enforces a rate limit of RATE per second.
CLUSTERS × ``manage.py qcluster`` run, probing the provider every PROBE seconds.
Then the provider recovers, and we measure from that moment to the last workspace
made ready, against the bound 1.1 × N ÷ RATE + PROBE (issue 12, item 2).

Prints, from this one run: recovery → circuit closed (the probe), closed → last
ready, the whole heal time ÷ bound, the longest pause between two workspaces made
ready after the circuit closed, the busiest second ÷ limit, duplicates.

Run from the repository root:
  .venv/bin/python bench/heal_time.py [--accounts 2000] [--rate 20] [--probe 5]
It creates and drops a scratch PostgreSQL database on 127.0.0.1:5432.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chaos_soak import Cluster  # noqa: E402, I001
from bench.harness import django_env, machine, prepare, scratch_database  # noqa: E402


def serve_provider(rate: float, pipe) -> None:
    """The provider, in its own process so its work does not share our GIL."""
    from provisioning.tests.fake_provider import FakeProvider

    with FakeProvider(mode="error", rate_limit_per_second=rate) as provider:
        pipe.send(provider.url)
        pipe.recv()  # "recover"
        provider.mode = "ok"
        pipe.send(time.time())
        pipe.recv()  # "report"
        accepted = [r["idempotency_key"] for r in provider.requests if r["status"] in (200, 201)]
        pipe.send({"accepted": len(accepted), "distinct": len(set(accepted)),
                   "busiest": provider.max_requests_in_any_second(statuses=(200, 201)),
                   "created": provider.created_count,
                   "limited": sum(1 for r in provider.requests if r["status"] == 429)})


def strand(n: int) -> None:
    """N accounts whose workspace step waits behind an open circuit, as an outage
    leaves them."""
    from django.utils import timezone

    from accounts.models import User
    from provisioning.durable import OUTAGE
    from provisioning.models import Breaker, BreakerState, ProvisioningRequest

    users = User.objects.bulk_create(
        User(email=f"stranded{i}@example.com", name=f"Person {i}", company=f"Company {i}", password="!")
        for i in range(n))
    ProvisioningRequest.objects.bulk_create(
        ProvisioningRequest(account=u, idempotency_key=f"workspace-{u.pk}", last_error_code=OUTAGE)
        for u in users)
    Breaker.objects.update_or_create(provider="provisioning", defaults={
        "state": BreakerState.OPEN, "opened_at": timezone.now(), "probed_at": timezone.now()})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--probe", type=int, default=5, help="BREAKER_PROBE_SECONDS")
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--q-workers", type=int, default=2)
    parser.add_argument("--apologies-for", type=float, default=120,
                        help="seconds to wait after the last ready for the apologies to go out")
    parser.add_argument("--timeline", action="store_true", help="print every reconcile pass")
    parser.add_argument("--outage", type=float, default=45,
                        help="seconds of outage seen by the workers (django-q2's first scheduled pass "
                             "comes ~30 s after it starts)")
    args = parser.parse_args()

    ours, theirs = multiprocessing.Pipe()
    provider = multiprocessing.Process(target=serve_provider, args=(args.rate, theirs), daemon=True)
    provider.start()
    print(f"machine: {machine()}")
    print(f"{args.accounts} stranded accounts; provider limit {args.rate:g}/s; probe every {args.probe} s; "
          f"RECONCILE_EVERY_SECONDS 5; {args.clusters} qcluster × {args.q_workers} workers (ORM broker)")
    with scratch_database("h_scale_heal") as url:
        env = django_env(url, PROVISIONING_BACKEND="http", PROVISIONING_URL=ours.recv(),
                         PROVIDER_RATE_PER_SECOND=str(args.rate), BREAKER_PROBE_SECONDS=str(args.probe),
                         RECONCILE_EVERY_SECONDS="5", Q_WORKERS=str(args.q_workers), LOG_LEVEL="ERROR",
                         SANDBOX_EMAIL_DELIVER_TO="django.core.mail.backends.dummy.EmailBackend")
        if args.timeline:  # the passes are read from their stored results
            env["BENCH_Q_SAVE_LIMIT"] = "1000"
        prepare(env)
        os.environ.update(env)
        import django

        django.setup()
        strand(args.accounts)
        from django.db import connections

        connections.close_all()
        log = open(f"/tmp/heal_time_{os.getpid()}.log", "w")  # noqa: SIM115
        clusters = [Cluster(env, log) for _ in range(args.clusters)]
        for cluster in clusters:
            cluster.start()
        try:
            time.sleep(args.outage)  # the workers probe a provider that still fails
            ours.send("recover")
            recovered = ours.recv()
            report(args, recovered)
        finally:
            for cluster in clusters:
                cluster.stop()
            log.close()
            ours.send("report")
            seen = ours.recv()
            connections.close_all()
        print(f"provider: {seen['accepted']} creates accepted ({seen['distinct']} distinct keys), "
              f"{seen['limited']} refused with 429")
        print(f"busiest second ÷ limit:            {seen['busiest'] / args.rate:.3f}")
        print(f"duplicate workspaces:              {seen['accepted'] - seen['distinct']}")


def report(args, recovered: float) -> None:
    from provisioning.models import Event, ProvisioningRequest, Workspace

    deadline = recovered + 20 * (args.accounts / args.rate + args.probe) + 120
    while ProvisioningRequest.objects.exclude(status="succeeded").exists():
        if time.time() > deadline:
            print("NOT HEALED before the deadline")
            break
        time.sleep(0.5)
    ready = sorted(t.timestamp() for t in Workspace.objects.values_list("created_at", flat=True))
    closed = Event.objects.filter(subject="breaker:provisioning", to_state="closed").order_by("created_at").last()
    closed_at = closed.created_at.timestamp() if closed else recovered
    bound = 1.1 * args.accounts / args.rate + args.probe
    after_close = [t for t in ready if t >= closed_at]
    gaps = [b - a for a, b in zip([closed_at, *after_close], after_close, strict=False)]
    print(f"recovery → circuit closed:         {closed_at - recovered:.1f} s")
    print(f"circuit closed → last ready:       {ready[-1] - closed_at:.1f} s "
          f"({len(ready)} ready; drain {len(after_close) / max(ready[-1] - closed_at, 1e-9):.1f}/s)")
    print(f"recovery → last ready:             {ready[-1] - recovered:.1f} s; bound 1.1 × N ÷ rate + probe "
          f"= {bound:.1f} s; ratio {(ready[-1] - recovered) / bound:.3f}")
    print(f"longest pause after closing:       {max(gaps, default=0):.1f} s")
    apologies_sent(args, ready[-1], min(deadline, time.time() + args.apologies_for))
    if args.timeline:
        from django_q.models import Task

        for task in Task.objects.filter(func__startswith="provisioning.tasks.reconcile").order_by("started"):
            at = task.started.timestamp() - recovered
            print(f"  pass {task.func.rsplit('.', 1)[1]}{task.args or ''} at {at:+.1f} s → {task.result}")


def apologies_sent(args, last_ready: float, deadline: float) -> None:
    """Every account waited, so each is owed a "you're all set" apology: they follow
    the workspaces (accounts.emails.NOT_URGENT), and must all go out."""
    from accounts.models import EmailDelivery, EmailKind

    apologies = EmailDelivery.objects.filter(kind=EmailKind.ALL_SET)
    while apologies.filter(status="succeeded").count() < args.accounts and time.time() < deadline:
        time.sleep(0.5)
    sent = sorted(t.timestamp() for t in apologies.filter(status="succeeded").values_list("completed_at", flat=True))
    early = sum(1 for t in sent if t < last_ready)
    span = (f"first {sent[0] - last_ready:+.1f} s, last {sent[-1] - last_ready:+.1f} s "
            f"({len(sent) / max(sent[-1] - sent[0], 1e-9):.1f}/s)") if sent else "none"
    print(f"apologies sent:                    {len(sent)} of {args.accounts} "
          f"({early} before the last ready); {span} after the last ready")


if __name__ == "__main__":
    main()
