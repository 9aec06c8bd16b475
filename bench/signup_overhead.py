"""CPU a signup costs besides its password hash, in one process: the form and the
POST through Django's WSGI handler (the test client, CSRF enforced, as a browser
behind our TLS proxy), with production settings (bench.settings) but the MD5 hasher
in place of Argon2, on a scratch PostgreSQL database. Prints, per signup, the CPU of
this process (Django and the test client) and of the PostgreSQL backend serving it.

The throughput bench (signup_throughput.py) measures the whole, hash included, with
every process competing for two CPUs; this one measures only what is not the hash,
one signup after another, which is what the code decides and what a busy machine
blurs least. The test client's own share is small and the same for every version.

    .venv/bin/python bench/signup_overhead.py [--signups 150] [--rounds 5]
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402

_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def measure(signups: int, rounds: int) -> None:
    """In a process set up by main(): warm up, then ``rounds`` measurements."""
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    assert settings.PASSWORD_HASHERS[0].endswith("MD5PasswordHasher")
    browser = Client(enforce_csrf_checks=True, HTTP_X_FORWARDED_PROTO="https")

    def sign_up(email: str) -> None:
        browser.cookies.clear()
        form = browser.get("/signup/", secure=True)
        token = _CSRF_INPUT.search(form.content.decode()).group(1)
        answer = browser.post("/signup/", {"name": "Bench Person", "email": email, "phone": "+1 415 555 0100",
                                           "company": "Bench Co", "password": harness.PASSWORD,
                                           "csrfmiddlewaretoken": token},
                              secure=True, HTTP_ORIGIN="https://testserver", HTTP_REFERER="https://testserver/signup/")
        if answer.status_code != 302 or answer["Location"] != "/setup/":
            raise RuntimeError(f"signup answered {answer.status_code}: {answer.content[:300]!r}")

    for n in range(20):
        sign_up(f"warmup-{n}@example.com")
    backend = connection.connection.info.backend_pid
    django_ms, postgres_ms = [], []
    for r in range(rounds):
        cpu, db_cpu = time.process_time(), harness.cpu_seconds([backend])[backend]
        for n in range(signups):
            sign_up(f"r{r}-{n}@example.com")
        django_ms.append((time.process_time() - cpu) / signups * 1000)
        postgres_ms.append((harness.cpu_seconds([backend])[backend] - db_cpu) / signups * 1000)
        print(f"  round {r + 1}: {django_ms[-1]:5.1f} ms Django (and test client) + "
              f"{postgres_ms[-1]:4.1f} ms PostgreSQL per signup", flush=True)
    print(f"MEDIAN CPU per signup besides the hash = {statistics.median(django_ms):.1f} ms Django + "
          f"{statistics.median(postgres_ms):.1f} ms PostgreSQL")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signups", type=int, default=150, help="signups per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        measure(args.signups, args.rounds)
        return 0
    print(f"machine: {harness.machine()}")
    with harness.scratch_database("bench_overhead") as database_url:
        env = harness.django_env(database_url, CONN_MAX_AGE="60", BENCH_FAST_HASHER="1")
        harness.prepare(env)
        subprocess.run([harness.PYTHON, __file__, "--measure", "--signups", str(args.signups),
                        "--rounds", str(args.rounds)], cwd=harness.ROOT, env=env, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
