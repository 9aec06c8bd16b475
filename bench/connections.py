"""Database connections per process: gunicorn (2 sync workers) and one
``manage.py qcluster`` (Q_WORKERS=2) on a scratch database, after a scheduled pass and
six signups, counted in pg_stat_activity; on the ORM broker and on Redis
(redis://127.0.0.1:6379/8), with and without the per-process pool.

Run from the repository root: .venv/bin/python bench/connections.py  (≈ 5 min)
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chaos_soak import Cluster  # noqa: E402
from bench.harness import SignupClient, django_env, gunicorn, prepare, scratch_database  # noqa: E402

REDIS = "redis://127.0.0.1:6379/8"


def count(broker: str, pool: str) -> int:
    with scratch_database("h_scale_conn") as url:
        extra = {"Q_WORKERS": "2", "LOG_LEVEL": "ERROR",
                 "SANDBOX_EMAIL_DELIVER_TO": "django.core.mail.backends.dummy.EmailBackend"}
        if pool:
            extra.update(DATABASE_POOL_MAX_SIZE=pool, DATABASE_POOL_MIN_SIZE="1")
        if broker == "redis":
            extra["REDIS_URL"] = REDIS
        env = django_env(url, **extra)
        prepare(env)
        with open("/dev/null", "w") as log, gunicorn(env, workers=2) as server:
            cluster = Cluster(env, log)
            cluster.start()
            try:
                time.sleep(40)  # django-q2's first scheduled pass
                for i in range(6):
                    SignupClient(server.url).signup(f"c{i}@example.com")
                time.sleep(5)
                with psycopg.connect(url.split("?")[0]) as conn:
                    return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                        "AND pid <> pg_backend_pid()").fetchone()[0]
            finally:
                cluster.stop()


def main() -> None:
    for broker in ("orm", "redis"):
        for pool in ("", "2"):
            print(f"broker={broker} pool={pool or 'off'}: gunicorn 2 workers + qcluster Q_WORKERS=2 "
                  f"-> {count(broker, pool)} connections", flush=True)


if __name__ == "__main__":
    main()
