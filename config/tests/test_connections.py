"""Persistent database connections only where the server bounds its threads.

Django keeps one connection per thread. ``runserver`` answers each request on a new
thread, so with a max age every request left a connection open behind it (a scan
held 95 of PostgreSQL's 100); gunicorn's sync workers and qcluster's workers are a
fixed number of processes, where keeping a connection saves a reconnect per task."""
from __future__ import annotations

import os
import subprocess
import time
import uuid

import psycopg
import pytest
import requests
from django.db import connection

from config.tests.served import PYTHON, ROOT, free_port, manage, production_env

SHOW = "from django.conf import settings; print(settings.DATABASES['default']['CONN_MAX_AGE'])"


def _conn_max_age(tmp_path, **env: str) -> int:
    env.setdefault("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    done = manage(production_env(static_root=tmp_path, **env), "shell", "-c", SHOW)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])  # after the shell's own "objects imported" line


def test_no_persistent_connections_unless_asked_for(tmp_path):
    assert _conn_max_age(tmp_path) == 0
    assert _conn_max_age(tmp_path, CONN_MAX_AGE="60") == 60
    # DATABASE_URL's own ?conn_max_age= wins over both.
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}?conn_max_age=5"
    assert _conn_max_age(tmp_path, CONN_MAX_AGE="60", DATABASE_URL=url) == 5


def test_gunicorn_and_the_workers_ask_for_them_and_runserver_does_not():
    read = ("import os; os.environ.pop('CONN_MAX_AGE', None) if {clear} else None; "
            "import config.gunicorn; print(os.environ['CONN_MAX_AGE'])")
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    for clear, given, expected in ((True, None, "60"), (False, "0", "0")):
        done = subprocess.run([PYTHON, "-c", read.format(clear=clear)], cwd=ROOT, capture_output=True, text=True,
                              env={**env, **({"CONN_MAX_AGE": given} if given else {})})
        assert done.stdout.strip() == expected, done.stderr

    for procfile in ("Procfile", "Procfile.production"):
        lines = dict(line.split(":", 1) for line in (ROOT / procfile).read_text().splitlines() if line.strip())
        assert "CONN_MAX_AGE=${CONN_MAX_AGE:-60}" in lines["worker"]
        assert "CONN_MAX_AGE" not in lines["web"]  # gunicorn's config sets it; runserver must not
    assert "runserver" in (ROOT / "Procfile").read_text()


def _held(dsn: str, application_name: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                            [application_name]).fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db
def test_runserver_keeps_no_connection_after_its_requests(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL=postgres://...): connections are counted "
                    "in pg_stat_activity")
    db = connection.settings_dict
    dsn = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    name = f"runserver-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = production_env(static_root=tmp_path, DATABASE_URL=f"{dsn}?application_name={name}")
    server = subprocess.Popen([PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and server.poll() is None, "runserver did not start"
                time.sleep(0.1)
        for _ in range(20):  # each on a thread of its own, each querying the database
            health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            assert health.json()["database"] == "ok"
        time.sleep(0.5)
        assert _held(dsn, name) == 0
    finally:
        server.terminate()
        server.wait(timeout=10)
