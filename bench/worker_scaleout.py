"""Worker scale-out with the real processes: N × ``manage.py qcluster`` drain a
backlog of workspace steps from an HTTP provider that answers slowly.

A local HTTP provider (provisioning/tests/fake_provider.py, ``FakeProvider`` in its
own process) holds every answer LATENCY seconds and enforces a rate limit. Each round
bulk-builds a fresh backlog of STEPS accounts whose workspace step is due, starts N
clusters (Q_WORKERS worker processes each) on the chosen broker (ORM on the scratch
PostgreSQL database, or Redis), waits until every cluster has forked its workers, then
enqueues one reconcile pass (``provisioning.heal.enqueue_reconcile``, as a closing
circuit does): the real reconciler dispatches the steps, chaining passes while a
whole budget was due.

Rounds:
- latency-bound, N = 1, 2, 4: the provider's limit (and PROVIDER_RATE_PER_SECOND)
  is far above what the workers can ask for, so the drain is bounded by
  workers ÷ latency. Prints the drain for each N and the ratios 2÷1 (aim ≥ 1.8)
  and 4÷1 (aim ≥ 3.2).
- limit-bound: LIMIT_CLUSTERS clusters, enough workers that latency alone would allow
  well over the limit; PROVIDER_RATE_PER_SECOND = the provider's limit. Prints
  drain ÷ limit (aim ≥ 0.98), the busiest second ÷ limit (must be ≤ 1.0) counting
  every call, refused or not (the accepted ones alone never exceed it: the provider
  refuses the rest), the shortest time in which limit + 1 calls arrived, the answers
  429 and the duplicate workspaces (must be 0).

Q_WORKERS is 2 per qcluster unless ``--q-workers`` says otherwise; the latency 0.3 s.

The drain is measured from the first to the last workspace made ready in a round
((STEPS − 1) ÷ that span), from the rows' ``created_at``. The provider counts the
workspaces it created per account (answers 201, by ``account_id``): more than one for
an account is a duplicate. CPU per step is what the clusters' processes and the
PostgreSQL backends used during the round (Redis's own CPU is not counted), ÷ STEPS.

Run from the repository root, once per broker (60 steps a round: a quick run; the
figures in docs/benchmarks.md use ``--steps 300``, about 3 minutes a broker):
  .venv/bin/python bench/worker_scaleout.py --broker orm
  .venv/bin/python bench/worker_scaleout.py --broker redis   # REDIS_URL db 11, flushed first
  .venv/bin/python bench/worker_scaleout.py --steps 300 --clusters ''   # the limit-bound round alone
It creates and drops a scratch PostgreSQL database on 127.0.0.1:5432.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chaos_soak import Cluster, group_members  # noqa: E402, I001
from bench.harness import cpu_seconds, django_env, machine, manage, postgres_backends, scratch_database  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/11"
# The provider's limit in the latency-bound rounds: out of reach of the workers.
UNBOUNDED_RATE = 500.0


def serve_provider(pipe) -> None:
    """The provider, in its own process so its work does not share our GIL. Takes
    ("round", limit, latency) to start a round afresh and ("report",) to count it."""
    from provisioning.tests.fake_provider import FakeProvider

    with FakeProvider(mode="hang") as provider:
        pipe.send(provider.url)
        while (command := pipe.recv())[0] != "stop":
            if command[0] == "round":
                provider.reset()
                provider.rate_limit_per_second, provider.hang_seconds = command[1], command[2]
                pipe.send("ready")
                continue
            creates = [r for r in provider.requests if r["path"] == "/workspaces"]
            created = Counter(r["json"]["account_id"] for r in creates if r["status"] == 201)
            pipe.send({
                "requests": len(creates),
                "created": sum(created.values()),
                "accounts": len(created),
                "duplicates": sum(n - 1 for n in created.values()),
                "limited": sum(1 for r in creates if r["status"] == 429),
                "busiest_all": provider.max_requests_in_any_second(),
                "busiest_accepted": provider.max_requests_in_any_second(statuses=(200, 201)),
                "tightest": tightest([r["time"] for r in creates], provider.rate_limit_per_second),
                "arrivals": sorted(r["time"] for r in creates),
            })


def tightest(times: list[float], limit: float) -> float:
    """The shortest time in which LIMIT + 1 calls arrived: under 1 s means the limit
    was exceeded, and how far above 1 s it is tells the margin pacing kept."""
    n = max(1, math.floor(limit))
    return min((b - a for a, b in zip(times, times[n:], strict=False)), default=float("inf"))


def build_backlog(tag: str, n: int) -> list[int]:
    """N accounts whose workspace step is due now, bulk-built as the other benches do."""
    from accounts.models import User
    from provisioning.models import ProvisioningRequest

    users = User.objects.bulk_create(
        User(email=f"{tag}-{i}@example.com", name=f"Person {i}", company=f"Company {i}", password="!")
        for i in range(n))
    ProvisioningRequest.objects.bulk_create(
        ProvisioningRequest(account=u, idempotency_key=f"workspace-{u.pk}") for u in users)
    return [u.pk for u in users]


def start_clusters(env: dict[str, str], n: int, q_workers: int, log) -> list[Cluster]:
    """N clusters, returned once each has its sentinel, pusher, monitor and workers."""
    clusters = [Cluster(env, log) for _ in range(n)]
    for cluster in clusters:
        cluster.start()
    deadline = time.monotonic() + 90
    # qcluster's own process, the sentinel, the pusher, the monitor and the workers.
    while any(len(group_members(c.proc.pid)) < q_workers + 4 for c in clusters):
        if time.monotonic() > deadline or any(c.proc.poll() is not None for c in clusters):
            raise RuntimeError("a qcluster did not start its processes")
        time.sleep(0.2)
    time.sleep(1)  # let each pusher make its first connection to the broker
    return clusters


def cluster_cpu(clusters: list[Cluster], database_url: str) -> float:
    pids = [pid for c in clusters for pid in group_members(c.proc.pid)] + postgres_backends(database_url)
    return sum(cpu_seconds(pids).values())


def run_round(args, env, url, pipe, *, label: str, clusters_n: int, limit: float, log) -> dict:
    from django.db import connections

    from provisioning.heal import enqueue_reconcile
    from provisioning.models import Event, ProvisioningRequest, Workspace

    pipe.send(("round", limit, args.latency))
    pipe.recv()
    opened_before = Event.objects.filter(subject="breaker:provisioning", from_state="closed",
                                         to_state="open").count()
    accounts = build_backlog(f"{label}-n{clusters_n}", args.steps)
    round_env = {**env, "PROVIDER_RATE_PER_SECOND": f"{limit:g}"}
    connections.close_all()
    clusters = start_clusters(round_env, clusters_n, args.q_workers, log)
    try:
        cpu_before = cluster_cpu(clusters, url)
        enqueue_reconcile()  # the real reconciler dispatches the backlog
        open_steps = ProvisioningRequest.objects.filter(account_id__in=accounts).exclude(status="succeeded")
        deadline = time.monotonic() + args.deadline
        while open_steps.exists():
            if time.monotonic() > deadline:
                print(f"  NOT DRAINED within {args.deadline:g} s: {open_steps.count()} steps open")
                break
            time.sleep(0.5)
        cpu_used = cluster_cpu(clusters, url) - cpu_before
    finally:
        for cluster in clusters:
            cluster.proc.terminate()
        for cluster in clusters:
            cluster.stop()
    ready = sorted(t.timestamp() for t in
                   Workspace.objects.filter(owner_id__in=accounts).values_list("created_at", flat=True))
    span = ready[-1] - ready[0] if len(ready) > 1 else float("nan")
    # The pace of the bulk of the drain, without its first and last twentieth (a
    # step sent back to wait for its retry shows in the whole span, not here).
    lo, hi = len(ready) // 20, len(ready) - 1 - len(ready) // 20
    pipe.send(("report",))
    seen = pipe.recv()
    gaps = [(b - a, i + 1) for i, (a, b) in enumerate(zip(ready, ready[1:], strict=False))] or [(float("nan"), 0)]
    return {"drain": (len(ready) - 1) / span, "span": span, "ready": len(ready), "pause": max(gaps),
            "bulk_drain": (hi - lo) / (ready[hi] - ready[lo]) if hi > lo else float("nan"),
            "opened": Event.objects.filter(subject="breaker:provisioning", from_state="closed",
                                           to_state="open").count() - opened_before,
            "cpu_ms": 1000 * cpu_used / max(len(ready), 1), "load": os.getloadavg()[0], **seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=("orm", "redis"), default="orm")
    parser.add_argument("--steps", type=int, default=60, help="backlog per round")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds the provider holds each answer")
    parser.add_argument("--q-workers", type=int, default=2, help="Q_WORKERS per qcluster")
    parser.add_argument("--clusters", default="1,2,4", help="N for the latency-bound rounds ('' for none)")
    parser.add_argument("--limit", type=float, default=10, help="the provider's limit in the limit-bound round")
    parser.add_argument("--limit-clusters", type=int, default=4)
    parser.add_argument("--limit-steps", type=int, default=0, help="backlog of the limit-bound round (default STEPS)")
    parser.add_argument("--deadline", type=float, default=240, help="seconds a round may take")
    args = parser.parse_args()
    counts = [int(n) for n in args.clusters.split(",") if n]

    ours, theirs = multiprocessing.Pipe()
    provider = multiprocessing.Process(target=serve_provider, args=(theirs,), daemon=True)
    provider.start()
    print(f"machine: {machine()}  (before)")
    print(f"broker {args.broker}; provider answers in {args.latency:g} s; {args.q_workers} worker processes per "
          f"qcluster; backlog {args.steps} workspace steps per round; RECONCILE_EVERY_SECONDS 5")
    with scratch_database("h_scale_out") as url:
        env = django_env(url, PROVISIONING_BACKEND="http", PROVISIONING_URL=ours.recv(),
                         PROVISIONING_TIMEOUT="10", RECONCILE_EVERY_SECONDS="5", Q_WORKERS=str(args.q_workers),
                         LOG_LEVEL="ERROR",
                         SANDBOX_EMAIL_DELIVER_TO="django.core.mail.backends.dummy.EmailBackend")
        if args.broker == "redis":
            import redis

            env["REDIS_URL"] = REDIS_URL
            redis.Redis.from_url(REDIS_URL).flushdb()
        manage(env, "migrate", "--no-input")
        os.environ.update(env)
        import django

        django.setup()
        from django.db import connections

        log = open(f"/tmp/worker_scaleout_{os.getpid()}.log", "w")  # noqa: SIM115
        try:
            drains = {}
            if counts:
                print(f"latency-bound (provider limit {UNBOUNDED_RATE:g}/s, out of reach):")
            for n in counts:
                r = run_round(args, env, url, ours, label="latency", clusters_n=n, limit=UNBOUNDED_RATE, log=log)
                drains[n] = r["drain"]
                print(f"  N={n} ({n * args.q_workers} workers): drain {r['drain']:6.2f}/s over {r['span']:.1f} s; "
                      f"ceiling workers ÷ latency {n * args.q_workers / args.latency:.1f}/s; "
                      f"CPU {r['cpu_ms']:.0f} ms/step; {r['ready']} ready, {r['requests']} calls, "
                      f"{r['limited']} × 429, {r['duplicates']} duplicates; load {r['load']:.1f}")
            for n in counts[1:]:
                aim = {2: " (aim ≥ 1.8)", 4: " (aim ≥ 3.2)"}.get(n, "")
                print(f"  drain N={n} ÷ N={counts[0]}: {drains[n] / drains[counts[0]]:.2f}{aim}")
            if args.limit > 0:
                steps = args.steps
                args.steps = args.limit_steps or args.steps
                r = run_round(args, env, url, ours, label="limit", clusters_n=args.limit_clusters,
                              limit=args.limit, log=log)
                args.steps = steps
                workers = args.limit_clusters * args.q_workers
                print(f"limit-bound: provider limit {args.limit:g}/s = PROVIDER_RATE_PER_SECOND; "
                      f"{args.limit_clusters} qcluster × {args.q_workers} workers (latency allows "
                      f"{workers / args.latency:.1f}/s)")
                print(f"  drain {r['drain']:.2f}/s over {r['span']:.1f} s; CPU {r['cpu_ms']:.0f} ms/step; "
                      f"{r['ready']} ready, {r['requests']} calls; load {r['load']:.1f}")
                print(f"  drain ÷ limit:                     {r['drain'] / args.limit:.3f} (aim ≥ 0.98)")
                print(f"  the same without the first and last 5 % of the backlog: {r['bulk_drain'] / args.limit:.3f}")
                t = r["arrivals"]
                at_provider = (len(t) - 1) / (t[-1] - t[0]) / args.limit
                print(f"  the same at the provider, first to last call: {at_provider:.3f}")
                pause, after = r["pause"]
                print(f"  longest pause between two workspaces made ready: {pause:.3f} s (after the {after}th; "
                      f"the pace is {1 / args.limit:.3f} s)")
                print(f"  busiest second ÷ limit, all calls: {r['busiest_all'] / args.limit:.3f} (must be ≤ 1.0); "
                      f"calls accepted: {r['busiest_accepted'] / args.limit:.3f}")
                print(f"  shortest time for limit + 1 calls: {r['tightest']:.3f} s (over 1 s: under the limit)")
                print(f"  answers 429:                       {r['limited']} (the circuit opened {r['opened']} times)")
                print(f"  duplicate workspaces:              {r['duplicates']} "
                      f"({r['accounts']} accounts, {r['created']} created at the provider)")
        finally:
            log.close()
            connections.close_all()
            ours.send(("stop",))
    print(f"machine: {machine()}  (after)")


if __name__ == "__main__":
    main()
