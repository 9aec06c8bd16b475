"""What the benchmarks share: a scratch PostgreSQL database, ``manage.py`` in a
subprocess, gunicorn and the django-q2 worker as real processes, and a signup client
that speaks HTTP like a browser behind a TLS-terminating proxy.

Run the benches from the repository root with the project's Python, e.g.
``.venv/bin/python bench/signup_latency.py``. PostgreSQL is reached through
``BENCH_POSTGRES`` (default ``postgres://postgres@127.0.0.1:5432``), with
``BENCH_POSTGRES_OPTIONS`` appended to the database URL if set; each bench creates its
own database and drops it at the end.
"""
from __future__ import annotations

import contextlib
import os
import platform
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432").rstrip("/")
# Appended to the scratch database's URL, e.g. "?conn_max_age=60" (django-environ options).
POSTGRES_OPTIONS = os.environ.get("BENCH_POSTGRES_OPTIONS", "")
PASSWORD = "correct horse battery staple"


def machine() -> str:
    """One line about where the figures were measured."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs (nproc), {model}; Python {platform.python_version()}; "
            f"load average {load}")


@contextlib.contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """Create an empty database, yield its URL, drop it at the end (even on error)."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}{POSTGRES_OPTIONS}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def kept_database(name: str, *, drop: bool = False) -> Iterator[str]:
    """A database that outlives the run, for data that is slow to build (a million
    accounts): created if missing, reused as it is otherwise, dropped at the end only
    with ``drop``. The bench says what it finds there and builds only what is missing."""
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES}/{name}{POSTGRES_OPTIONS}"
    finally:
        if drop:
            with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def django_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment for every process of one bench run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "EMAIL_", "PROVISIONING_"))}
    env.update(
        # Its own static files: collectstatic --clear into the checkout's STATIC_ROOT
        # would pull files from under a test run or another bench in the same checkout.
        STATIC_ROOT=tempfile.mkdtemp(prefix="bench-static-"),
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_SECRET_KEY="bench-" + secrets.token_urlsafe(40),
        DATABASE_URL=database_url,
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args, "-v", "0"], cwd=ROOT, env=env, check=True)


def prepare(env: dict[str, str]) -> None:
    """Migrate the scratch database and collect static files (the manifest storage
    used in production needs them to render any page)."""
    manage(env, "migrate", "--no-input")
    manage(env, "collectstatic", "--no-input", "--clear")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """Run a process for the duration of the block, then stop it (SIGTERM, then KILL)."""
    proc = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=None)
    try:
        yield proc
    finally:
        proc.terminate()  # the master stops its own workers
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything left in its process group
        proc.wait()


@dataclass(frozen=True)
class Server:
    url: str
    pid: int  # gunicorn's master; its children are the workers


@contextlib.contextmanager
def gunicorn(env: dict[str, str], *, workers: int) -> Iterator[Server]:
    """gunicorn with ``workers`` sync workers, yielded once it answers. Each worker
    keeps its database connection, as in production (config/gunicorn.py sets
    CONN_MAX_AGE=60 there); otherwise every request would pay for a new PostgreSQL
    connection, a cost no deployment has."""
    env = {**env}
    env.setdefault("CONN_MAX_AGE", "60")
    port = free_port()
    args = [PYTHON, "-m", "gunicorn", "config.wsgi", "--workers", str(workers),
            "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--timeout", "120"]
    with process(args, env) as proc:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited before answering")
            # A busy machine may take longer than the timeout for the first answer.
            with contextlib.suppress(requests.ConnectionError, requests.Timeout):
                if requests.get(base + "/login/", headers=PROXY_HEADERS, timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer within 60 s")
            time.sleep(0.2)
        yield Server(base, proc.pid)


@contextlib.contextmanager
def worker(env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """The django-q2 cluster (``manage.py qcluster``), as the Procfiles start it (with
    persistent database connections)."""
    env = {**env}
    env.setdefault("CONN_MAX_AGE", "60")
    with process([PYTHON, "manage.py", "qcluster"], env) as proc:
        time.sleep(3)  # let the cluster fork its workers
        if proc.poll() is not None:
            raise RuntimeError("qcluster exited at start")
        yield proc


# A TLS-terminating proxy in front of gunicorn: production settings trust this header
# (SECURE_PROXY_SSL_HEADER), so no HTTPS redirect, and cookies are Secure.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}
_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class SignupClient:
    """One browser-like client: loads the form, then posts it. Cookies are handled by
    hand because they are Secure (HTTPS-only) and this client speaks plain HTTP to
    gunicorn, as the proxy would."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()
        self.origin = "https://" + base.split("://", 1)[1]

    def signup(self, email: str) -> tuple[float, float]:
        """Sign up once; returns (seconds for the form, seconds for the POST). Raises
        if the answer is not the redirect to the status page."""
        t0 = time.perf_counter()
        form = self.http.get(self.base + "/signup/", headers=PROXY_HEADERS, timeout=60)
        t1 = time.perf_counter()
        form.raise_for_status()
        csrf_cookie = form.cookies.get("csrftoken")
        token = _CSRF_INPUT.search(form.text)
        if not csrf_cookie or not token:
            raise RuntimeError("the signup form carried no CSRF token")
        data = {"name": "Bench Person", "email": email, "phone": "+1 415 555 0100",
                "company": "Bench Co", "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)}
        headers = {**PROXY_HEADERS, "Cookie": f"csrftoken={csrf_cookie}", "Origin": self.origin,
                   "Referer": self.origin + "/signup/"}
        t2 = time.perf_counter()
        answer = self.http.post(self.base + "/signup/", data=data, headers=headers,
                                allow_redirects=False, timeout=60)
        t3 = time.perf_counter()
        if answer.status_code != 302 or answer.headers.get("Location") != "/setup/":
            raise RuntimeError(f"signup answered {answer.status_code} {answer.headers.get('Location')!r}: "
                               f"{answer.text[:300]}")
        return t1 - t0, t3 - t2



class LeanSignupClient:
    """The same journey as ``SignupClient`` (load the form, post it, expect the
    redirect to the status page), written straight to a socket, one connection per
    request (gunicorn's sync workers close each one after answering). For the
    throughput bench, whose client runs on the CPUs it measures: requests spends
    about 1.5 ms of CPU per request on its sessions, cookie jar and connection pool,
    CPU the bare Argon2 side never has beside it and no deployment's server pays
    for. Here a request costs the client a socket, a write and a read."""

    def __init__(self, base: str):
        host, port = base.split("://", 1)[1].rsplit(":", 1)
        self.address, self.host = (host, int(port)), f"{host}:{port}"
        self.origin = f"https://{self.host}"

    def _request(self, head: str, body: bytes = b"") -> tuple[int, dict[str, list[str]], bytes]:
        with socket.create_connection(self.address, timeout=60) as sock:
            sock.sendall(head.encode("latin-1") + body)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        header_block, _, content = b"".join(chunks).partition(b"\r\n\r\n")
        status_line, *lines = header_block.decode("latin-1").split("\r\n")
        headers: dict[str, list[str]] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return int(status_line.split()[1]), headers, content

    def signup(self, email: str) -> None:
        """Sign up once. Raises if the answer is not the redirect to the status page."""
        common = f"Host: {self.host}\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n"
        status, headers, page = self._request(f"GET /signup/ HTTP/1.1\r\n{common}\r\n")
        cookie = next((c.split(";", 1)[0] for c in headers.get("set-cookie", []) if c.startswith("csrftoken=")), "")
        token = _CSRF_INPUT.search(page.decode())
        if status != 200 or not cookie or not token:
            raise RuntimeError(f"the signup form answered {status} without a CSRF token")
        body = urlencode({"name": "Bench Person", "email": email, "phone": "+1 415 555 0100",
                          "company": "Bench Co", "password": PASSWORD,
                          "csrfmiddlewaretoken": token.group(1)}).encode()
        status, headers, page = self._request(
            f"POST /signup/ HTTP/1.1\r\n{common}Cookie: {cookie}\r\nOrigin: {self.origin}\r\n"
            f"Referer: {self.origin}/signup/\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n", body)
        if status != 302 or headers.get("location") != ["/setup/"]:
            raise RuntimeError(f"signup answered {status} {headers.get('location')!r}: {page[:300]!r}")

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone
        return None
    return raw[raw.rindex(")") + 2:].split()  # the fields after "(comm)"


def children(pid: int) -> list[int]:
    """Direct children of a process (gunicorn's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def postgres_backends(database_url: str) -> list[int]:
    """The server processes serving a database (other than the one asking)."""
    with psycopg.connect(database_url.split("?", 1)[0]) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid()").fetchall()
    return [pid for (pid,) in rows]


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds each process has used so far (Linux /proc)."""
    used = {}
    for pid in pids:
        if fields := _stat(pid):
            used[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return used


class ServerCpu:
    """CPU the server side spends between start() and stop(): gunicorn's workers and
    the PostgreSQL backends serving the scratch database (measured, so it holds on a
    machine busy with other work)."""

    def __init__(self, server: Server, database_url: str):
        self.server, self.database_url = server, database_url

    def _pids(self) -> dict[str, list[int]]:
        return {"gunicorn": children(self.server.pid), "postgres": postgres_backends(self.database_url)}

    def start(self) -> None:
        self.before = {side: cpu_seconds(pids) for side, pids in self._pids().items()}

    def stop(self) -> dict[str, float]:
        """CPU seconds spent since start(), per side ("gunicorn", "postgres")."""
        return {side: sum(used - self.before[side].get(pid, 0.0) for pid, used in cpu_seconds(pids).items())
                for side, pids in self._pids().items()}


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def percentile_ms(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000
