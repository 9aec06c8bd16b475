"""Signup latency with both providers hanging ÷ with both healthy. Aim: ≤ 1.1.

No provider is on the request path (DESIGN principle 2): signup writes the account
and the work it owes in one transaction and answers; workers call the providers
later. So a workspace provider and a mail server that hang must not slow signup.

Setup, all real: gunicorn (production settings, Argon2) on a scratch PostgreSQL
database; the ``http`` provisioning backend against FakeProvider and SMTP
(``EMAIL_URL=smtp://…``) against FakeSMTP, both local servers in this process;
the django-q2 worker running, so while the providers hang the worker's calls really
hang (until PROVISIONING_TIMEOUT and EMAIL_TIMEOUT, 5 s each) and its retries pile up.
With ``--no-worker`` nothing calls the providers: both sides run the same code, which
shows how much the machine alone moves the figure. One client signs up one person
after another; the providers switch between healthy and hanging in alternating
blocks, so drift on a busy machine hits both sides alike.

    .venv/bin/python bench/signup_latency.py [--per-block 15] [--blocks 6] [--no-worker]
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from accounts.tests.fake_smtp import FakeSMTP  # noqa: E402
from bench import harness  # noqa: E402
from provisioning.tests.fake_provider import FakeProvider  # noqa: E402

HANG_SECONDS = 60.0  # far beyond the clients' timeouts: a call only ends by timing out
CLIENT_TIMEOUT = "5"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-block", type=int, default=15, help="signups per block")
    parser.add_argument("--blocks", type=int, default=6, help="healthy/hanging block pairs")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--no-worker", action="store_true", help="do not run the django-q2 worker")
    args = parser.parse_args()

    print(f"machine: {harness.machine()}")
    with (FakeProvider(hang_seconds=HANG_SECONDS) as provider,
          FakeSMTP(hang_seconds=HANG_SECONDS) as smtp,
          harness.scratch_database("bench_latency") as database_url):
        env = harness.django_env(
            database_url, PROVISIONING_BACKEND="http", PROVISIONING_URL=provider.url,
            PROVISIONING_TIMEOUT=CLIENT_TIMEOUT, EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            EMAIL_TIMEOUT=CLIENT_TIMEOUT)
        harness.prepare(env)
        running_worker = contextlib.nullcontext() if args.no_worker else harness.worker(env)
        with harness.gunicorn(env, workers=args.workers) as server, running_worker:
            client = harness.SignupClient(server.url)
            for i in range(5):  # warm up: imports, template and password-list caches
                client.signup(f"warmup-{i}@example.com")

            latency: dict[str, list[float]] = {"healthy": [], "hanging": []}
            provider_calls = {"healthy": 0, "hanging": 0}
            smtp_messages = {"healthy": 0, "hanging": 0}
            n = 0
            for block in range(args.blocks):
                order = ("healthy", "hanging") if block % 2 == 0 else ("hanging", "healthy")
                for phase in order:
                    provider.mode = "ok" if phase == "healthy" else "hang"
                    smtp.mode = "ok" if phase == "healthy" else "hang"
                    calls_before, messages_before = len(provider.requests), len(smtp.messages)
                    for _ in range(args.per_block):
                        n += 1
                        _form, post = client.signup(f"person-{n}@example.com")
                        latency[phase].append(post)
                    provider_calls[phase] += len(provider.requests) - calls_before
                    smtp_messages[phase] += len(smtp.messages) - messages_before
                    block_median = harness.median_ms(latency[phase][-args.per_block:])
                    print(f"  block {block + 1} {phase:8} median {block_median:7.1f} ms")

    healthy, hanging = latency["healthy"], latency["hanging"]
    ratio = harness.median_ms(hanging) / harness.median_ms(healthy)
    print(f"worker: {'not running' if args.no_worker else 'running (django-q2 qcluster)'}; "
          f"gunicorn workers: {args.workers}; signups per side: {len(healthy)}")
    for name, values in (("healthy", healthy), ("hanging", hanging)):
        print(f"  {name:8} median {harness.median_ms(values):7.1f} ms"
              f"   p90 {harness.percentile_ms(values, 0.9):7.1f} ms"
              f"   provider calls {provider_calls[name]:4}   smtp messages {smtp_messages[name]:4}")
    if args.no_worker:
        print("  (no worker: nothing calls the providers, so both sides run the same code and the "
              "ratio shows this machine's noise)")
    print(f"RATIO signup latency hanging/healthy (median) = {ratio:.3f}   (aim ≤ 1.1)")
    return 0 if ratio <= 1.1 else 1


if __name__ == "__main__":
    sys.exit(main())
