"""The per-process connection pool (DATABASE_POOL_MAX_SIZE, Django 5.2 with
psycopg_pool): a process never holds more connections than the pool's size, however
many threads serve requests, and it reuses them between requests."""
from __future__ import annotations

import pytest
from django.db import connection

from config.tests.served import manage, production_env

# Four threads, each serving two "requests" that hold a connection for a moment.
SCRIPT = """
import threading, time
from django.core.signals import request_finished, request_started
from django.db import connection
pids = []
def serve():
    for _ in range(2):
        request_started.send(sender=None)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids.append(cursor.fetchone()[0])
        time.sleep(0.2)
        request_finished.send(sender=None)
threads = [threading.Thread(target=serve) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(pids), len(set(pids)), connection.settings_dict["CONN_MAX_AGE"])
"""


@pytest.fixture
def database_url(db):
    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's (set DATABASE_URL=postgres://...)")
    conf = connection.settings_dict
    return f"postgres://{conf['USER']}@{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}/{conf['NAME']}"


def served(database_url, tmp_path, **env) -> tuple[int, int, int]:
    done = manage(production_env(static_root=tmp_path, DATABASE_URL=database_url, **env), "shell", "-c", SCRIPT)
    assert done.returncode == 0, done.stderr
    return tuple(int(x) for x in done.stdout.splitlines()[-1].split())


def test_a_pool_of_two_serves_four_threads_with_two_connections(database_url, tmp_path):
    requests, connections, conn_max_age = served(database_url, tmp_path, DATABASE_POOL_MAX_SIZE="2")
    assert requests == 8
    assert connections <= 2
    assert conn_max_age == 0  # persistent connections and a pool exclude each other


def test_without_a_pool_each_thread_keeps_its_own_connection(database_url, tmp_path):
    # Persistent connections, as gunicorn and qcluster set them (CONN_MAX_AGE=60).
    requests, connections, _ = served(database_url, tmp_path, CONN_MAX_AGE="60")
    assert requests == 8
    assert connections == 4
