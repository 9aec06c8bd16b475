"""Chaos soak: signups through the real web and worker processes while the sandbox
providers change failure mode at random and worker processes are killed with
SIGKILL at random; then the faults stop and we wait for everything to converge.

What runs (all real processes, on a scratch PostgreSQL database):
- gunicorn serving the site (bench.settings: production settings);
- CLUSTERS × ``manage.py qcluster`` (Q_WORKERS worker processes each), on the ORM
  broker, or on Redis with ``--redis redis://127.0.0.1:6379/8``;
- SIGNUP_CLIENTS threads posting the signup form like a browser;
- the chaos loop: every few seconds either ``manage.py sandbox <provider> <mode>``
  (ok, error, timeout, late = created but the answer lost, flaky) or a SIGKILL, of one
  process of a cluster (django-q2's sentinel replaces it) or of a whole cluster
  (restarted a moment later, as a supervisor would).

After the last signup the chaos goes on for ``--tail`` seconds, then it heals
(``manage.py sandbox all ok``, every cluster running) and the clock starts: time to
converge is from that last fault until no step is open.

Prints: accounts converged (workspace ready and verification email sent), stuck
(a step still open at the deadline), failed steps in front of a person and their
codes, duplicate workspaces at the provider, tickets, incidents, provider calls.

Run from the repository root (a quick run, then the full one):
  .venv/bin/python bench/chaos_soak.py --signups 100
  .venv/bin/python bench/chaos_soak.py              # 1,000 signups
"""
from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    PYTHON,
    ROOT,
    SignupClient,
    django_env,
    gunicorn,
    machine,
    prepare,
    scratch_database,
)

MODES = ("ok", "error", "timeout", "late", "flaky")
PROVIDERS = ("provisioning", "email")


def group_members(pgid: int) -> list[int]:
    """Processes in a process group (a qcluster started in its own session)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            raw = (entry / "stat").read_text()
            fields = raw[raw.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


class Cluster:
    """One ``manage.py qcluster``: started in its own process group so that killing
    it takes its sentinel, pusher, monitor and workers down together, like a host
    that dies."""

    def __init__(self, env: dict[str, str], log):
        self.env, self.log, self.proc = env, log, None

    def start(self) -> None:
        # As the Procfiles start it: each process keeps its database connection.
        env = {"CONN_MAX_AGE": "60", **self.env}
        self.proc = subprocess.Popen([PYTHON, "manage.py", "qcluster"], cwd=ROOT, env=env,
                                     start_new_session=True, stdout=self.log, stderr=self.log)

    def kill_all(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def kill_one(self) -> bool:
        """SIGKILL one process of the cluster other than its leader (a worker, the
        pusher or the monitor); django-q2's sentinel starts a replacement."""
        members = [pid for pid in group_members(self.proc.pid) if pid != self.proc.pid]
        if not members:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(random.choice(members), signal.SIGKILL)
        return True

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        if self.proc:
            self.kill_all()


def sandbox(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", "sandbox", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


class Chaos:
    """Faults at random intervals until stopped; remembers the last one."""

    def __init__(self, env, clusters: list[Cluster], *, every: float, seed: int):
        self.env, self.clusters, self.every = env, clusters, every
        self.random = random.Random(seed)
        self.stopping = threading.Event()
        self.counts: dict[str, int] = {}
        self.thread = threading.Thread(target=self.run, daemon=True)

    def note(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def run(self) -> None:
        while not self.stopping.wait(self.random.uniform(0.5, 1.5) * self.every):
            roll = self.random.random()
            if roll < 0.5:
                provider, mode = self.random.choice(PROVIDERS), self.random.choice(MODES)
                extra = ["--failures", str(self.random.randint(1, 20))] if mode == "flaky" else []
                sandbox(self.env, provider, mode, *extra)
                self.note(f"{provider} → {mode}")
            elif roll < 0.85:
                if self.random.choice(self.clusters).kill_one():
                    self.note("SIGKILL one worker process")
            else:
                cluster = self.random.choice(self.clusters)
                cluster.kill_all()
                self.note("SIGKILL a whole cluster")
                time.sleep(self.random.uniform(0.5, 3))
                cluster.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


COUNTS = {
    "accounts": "SELECT count(*) FROM accounts_user",
    "workspace ready": """SELECT count(*) FROM provisioning_provisioningrequest r
                          JOIN provisioning_workspace w ON w.owner_id = r.account_id
                          WHERE r.status = 'succeeded'""",
    "verification sent": """SELECT count(DISTINCT account_id) FROM accounts_emaildelivery
                            WHERE kind = 'verification' AND status = 'succeeded'""",
    "converged": """SELECT count(*) FROM accounts_user u
                    WHERE EXISTS (SELECT 1 FROM provisioning_provisioningrequest r
                                  JOIN provisioning_workspace w ON w.owner_id = r.account_id
                                  WHERE r.account_id = u.id AND r.status = 'succeeded')
                      AND EXISTS (SELECT 1 FROM accounts_emaildelivery e WHERE e.account_id = u.id
                                  AND e.kind = 'verification' AND e.status = 'succeeded')""",
    "open steps": """SELECT (SELECT count(*) FROM provisioning_provisioningrequest
                             WHERE status IN ('pending', 'running'))
                          + (SELECT count(*) FROM accounts_emaildelivery WHERE status IN ('pending', 'running'))""",
    # A workspace the provider made for a key we do not know, or not the one we
    # recorded for its key: either is a duplicate (one per key is the provider's own
    # constraint, as with the real API's idempotency keys).
    "duplicate workspaces": """SELECT (SELECT count(*) FROM provisioning_sandboxworkspace s
                                     WHERE NOT EXISTS (SELECT 1 FROM provisioning_provisioningrequest r
                                                       WHERE r.idempotency_key = s.idempotency_key))
                                    + (SELECT count(*) FROM provisioning_workspace w
                                       JOIN provisioning_provisioningrequest r ON r.account_id = w.owner_id
                                       JOIN provisioning_sandboxworkspace s ON s.idempotency_key = r.idempotency_key
                                       WHERE s.external_id <> w.external_id)""",
    "tasks queued": "SELECT count(*) FROM django_q_ormq",
    "repeat calls answered idempotently": "SELECT coalesce(sum(calls - 1), 0) FROM provisioning_sandboxworkspace",
    "tickets": "SELECT count(*) FROM support_ticket",
    "tickets unresolved": "SELECT count(*) FROM support_ticket WHERE status <> 'resolved'",
    "incidents": "SELECT count(*) FROM support_incident",
    "incidents open": "SELECT count(*) FROM support_incident WHERE status = 'open'",
}
DETAILS = {
    "failed steps by code": """SELECT 'workspace ' || last_error_code, count(*) FROM provisioning_provisioningrequest
                               WHERE status = 'failed' GROUP BY 1
                               UNION ALL SELECT kind || ' email ' || last_error_code, count(*)
                               FROM accounts_emaildelivery WHERE status = 'failed' GROUP BY 1""",
    "tickets by reason": "SELECT reason || ' ' || status, count(*) FROM support_ticket GROUP BY 1",
    "incidents by provider": "SELECT provider || ' ' || status, count(*) FROM support_incident GROUP BY 1",
    "provider calls": "SELECT provider, calls FROM provisioning_sandboxswitch",
}


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url.split("?", 1)[0]) as conn:
        return {name: conn.execute(sql).fetchone()[0] for name, sql in COUNTS.items()}


def details(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url.split("?", 1)[0]) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in DETAILS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signups", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4, help="concurrent signup clients")
    parser.add_argument("--clusters", type=int, default=2, help="qcluster processes")
    parser.add_argument("--q-workers", type=int, default=2, help="worker processes per qcluster")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--fault-every", type=float, default=4.0, help="mean seconds between faults")
    parser.add_argument("--tail", type=float, default=20.0, help="seconds of chaos after the last signup")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds to wait for convergence")
    parser.add_argument("--redis", default="", help="REDIS_URL for the broker (default: the ORM broker)")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(f"{args.signups} signups by {args.clients} clients; {args.web_workers} gunicorn workers; "
          f"{args.clusters} qcluster × {args.q_workers} workers on {'Redis' if args.redis else 'the ORM broker'}; "
          f"a fault every ~{args.fault_every:g} s; seed {args.seed}")
    with scratch_database("h_scale_soak") as url:
        env = django_env(
            url, PROVISIONING_BACKEND="sandbox",
            SANDBOX_EMAIL_DELIVER_TO="django.core.mail.backends.dummy.EmailBackend",
            Q_WORKERS=str(args.q_workers), RECONCILE_EVERY_SECONDS="5", BREAKER_PROBE_SECONDS="5",
            RETRY_BASE_SECONDS="1", RETRY_MAX_SECONDS="20", PROVIDER_RATE_PER_SECOND="50",
            LOG_LEVEL="ERROR",
        )
        if args.redis:
            env["REDIS_URL"] = args.redis
            import redis

            redis.Redis.from_url(args.redis).flushdb()
        prepare(env)
        log = open(Path("/tmp") / f"chaos_soak_{os.getpid()}.log", "w")  # noqa: SIM115
        clusters = [Cluster(env, log) for _ in range(args.clusters)]
        try:
            with gunicorn(env, workers=args.web_workers) as server:
                for cluster in clusters:
                    cluster.start()
                soak(args, env, url, server, clusters)
        finally:
            for cluster in clusters:
                cluster.stop()
            kill_leftovers(url)
            log.close()


def kill_leftovers(database_url: str) -> None:
    """SIGKILL every process still working on this run's database: a worker orphaned
    by a kill mid-fork can outlive its process group, and would keep polling (and
    taking CPU from the next run) after the database is gone."""
    needle = f"DATABASE_URL={database_url}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    os.kill(int(entry.name), signal.SIGKILL)


def soak(args, env, url, server, clusters) -> None:
    chaos = Chaos(env, clusters, every=args.fault_every, seed=args.seed)
    started = time.monotonic()
    chaos.thread.start()
    errors: list[str] = []
    clients = threading.local()

    def one(i: int) -> None:
        if not hasattr(clients, "c"):
            clients.c = SignupClient(server.url)
        try:
            clients.c.signup(f"soak{i}@example.com")
        except Exception as error:  # counted and shown: a refused signup is a finding
            errors.append(f"{type(error).__name__}: {str(error)[:120]}")

    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(one, range(args.signups)))
    signed_up = time.monotonic()
    print(f"signups done in {signed_up - started:.0f} s ({len(errors)} not accepted); "
          f"chaos for {args.tail:g} s more")
    time.sleep(args.tail)
    chaos.stop()
    for cluster in clusters:  # every cluster running again: the last fault is over
        if cluster.proc.poll() is not None:
            cluster.start()
    sandbox(env, "all", "ok")
    healed = time.monotonic()
    print("faults: " + ", ".join(f"{what} ×{n}" for what, n in sorted(chaos.counts.items())))

    converged_after = None
    while time.monotonic() - healed < args.deadline:
        now = counts(url)
        if now["open steps"] == 0:
            converged_after = time.monotonic() - healed
            break
        time.sleep(1)
    # Incidents close once their backlog has drained, and closing one owes apologies:
    # wait for both, then for those emails.
    settled_after = None
    while converged_after is not None and time.monotonic() - healed < args.deadline:
        now = counts(url)
        if now["incidents open"] == 0 and now["open steps"] == 0:
            settled_after = time.monotonic() - healed
            break
        time.sleep(2)
    final = counts(url)
    print(f"accepted signups: {final['accounts']} of {args.signups}")
    for name in ("converged", "workspace ready", "verification sent", "open steps", "tasks queued",
                 "duplicate workspaces",
                 "repeat calls answered idempotently", "tickets", "tickets unresolved", "incidents",
                 "incidents open"):
        print(f"  {name + ':':<38}{final[name]}")
    print(f"  {'stuck (open at the deadline):':<38}{final['open steps'] if converged_after is None else 0}")
    if converged_after is None:
        print(f"NOT CONVERGED within {args.deadline:g} s of the last fault")
    else:
        print(f"time to converge after the last fault: {converged_after:.1f} s")
    if settled_after is not None:
        print(f"incidents closed, apologies sent after: {settled_after:.1f} s")
    for name, rows in details(url).items():
        print(f"{name}: " + (", ".join(f"{k} {v}" for k, v in rows) or "none"))
    for error in sorted(set(errors))[:5]:
        print(f"  signup error: {error}")


if __name__ == "__main__":
    main()
