"""Several hosts, not one (issue 12, item 3): a web process and a django-q2 worker in
two network namespaces of their own, each reaching PostgreSQL and Redis over TCP on
the host side, as two machines would. A person signs up over HTTP on the web host
and the worker host sets up the workspace. Nothing may rely on sharing a host: no
file, no local memory, no per-host secret (each host gets its own working
directory and static files; they share only the environment a deployment gives
every host: the database and Redis URLs and DJANGO_SECRET_KEY).

The test makes the namespaces itself (``ip netns``, ``ip link``: root, or
CAP_NET_ADMIN) and skips, saying why, where the machine does not allow it.
PostgreSQL and Redis here listen on 127.0.0.1 only, so a small TCP relay on each
host-side address forwards to them; the hosts see only that address.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from config.tests.served import PYTHON, ROOT, production_env

pytestmark = [pytest.mark.multihost, pytest.mark.django_db(transaction=True)]

REDIS_DB = 9
HTTPS = {"X-Forwarded-Proto": "https"}  # as our TLS-terminating proxy sends it
SUBNET = "10.231"  # 10.231.<n>.0/30 per host: .1 the host side, .2 inside


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def _namespaces_allowed() -> str:
    """'' when this machine lets us make network namespaces, else why not."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"hs_probe_{os.getpid()}"
    made = _run("ip", "netns", "add", probe)
    if made.returncode != 0:
        return f"`ip netns add` is not permitted here: {made.stderr.strip()}"
    _run("ip", "netns", "del", probe)
    return ""


class Relay:
    """Accepts TCP on (host, port) and pipes each connection to a local service."""

    def __init__(self, listen_host: str, target: tuple[str, int]):
        self.server = socket.create_server((listen_host, 0))
        self.address = self.server.getsockname()
        self.target = target
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.server.accept()
                upstream = socket.create_connection(self.target)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()


class Host:
    """A network namespace joined to this machine by a veth pair."""

    def __init__(self, name: str, n: int):
        tag = f"{os.getpid() % 10000}{n}"
        self.name = f"hs_{name}_{tag}"
        self.outside_link, inside_link = f"hs{tag}o", f"hs{tag}i"
        self.gateway, self.address = f"{SUBNET}.{n}.1", f"{SUBNET}.{n}.2"
        steps = [
            ("ip", "netns", "add", self.name),
            ("ip", "link", "add", self.outside_link, "type", "veth", "peer", "name", inside_link),
            ("ip", "link", "set", inside_link, "netns", self.name),
            ("ip", "addr", "add", f"{self.gateway}/30", "dev", self.outside_link),
            ("ip", "link", "set", self.outside_link, "up"),
            ("ip", "netns", "exec", self.name, "ip", "addr", "add", f"{self.address}/30", "dev", inside_link),
            ("ip", "netns", "exec", self.name, "ip", "link", "set", inside_link, "up"),
            ("ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"),
        ]
        for step in steps:
            done = _run(*step)
            if done.returncode != 0:
                self.remove()
                raise RuntimeError(f"{' '.join(step)}: {done.stderr.strip()}")
        self.relays: list[Relay] = []

    def relay(self, target: tuple[str, int]) -> str:
        """host:port, on this host's side of the link, that reaches ``target``."""
        relay = Relay(self.gateway, target)
        self.relays.append(relay)
        return f"{self.gateway}:{relay.address[1]}"

    def start(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *args], cwd=cwd, env=env,
                                stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)

    def remove(self) -> None:
        for relay in getattr(self, "relays", []):
            relay.close()
        _run("ip", "netns", "del", self.name)  # takes the veth pair with it
        _run("ip", "link", "del", self.outside_link)


@contextlib.contextmanager
def hosts(*names: str) -> Iterator[list[Host]]:
    made: list[Host] = []
    try:
        for n, name in enumerate(names, start=1):
            made.append(Host(name, n))
        yield made
    finally:
        for host in made:
            host.remove()


def stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 15)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()


@pytest.fixture
def machine_allows_it():
    if connection.vendor != "postgresql":
        pytest.skip("processes on other hosts need a database over TCP: run on PostgreSQL "
                    "(DATABASE_URL=postgres://...)")
    if why := _namespaces_allowed():
        pytest.skip(f"cannot make network namespaces: {why}")
    try:
        import redis

        redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_connect_timeout=2).flushdb()
    except Exception as error:
        pytest.skip(f"needs Redis on 127.0.0.1:6379 for the queue between hosts: {error}")


def _env(host: Host, *, static_root: Path, secret: str) -> dict[str, str]:
    db = settings.DATABASES["default"]
    database = host.relay((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    redis = host.relay(("127.0.0.1", 6379))
    return production_env(
        static_root=static_root,
        DATABASE_URL=f"postgres://{db['USER']}@{database}/{db['NAME']}",
        REDIS_URL=f"redis://{redis}/{REDIS_DB}",
        DJANGO_SECRET_KEY=secret,
        ALLOWED_HOSTS=f"{SUBNET}.1.2",
        PROVISIONING_BACKEND="sandbox",
        SANDBOX_EMAIL_DELIVER_TO="django.core.mail.backends.dummy.EmailBackend",
        Q_WORKERS="1",
        PATH=os.environ.get("PATH", ""),
    )


def test_a_signup_on_the_web_host_is_set_up_by_the_worker_host(machine_allows_it, tmp_path, signup_data):
    secret = secrets.token_urlsafe(50)  # the one secret a deployment gives every host
    with hosts("web", "worker") as (web, worker):
        web_dir, worker_dir = tmp_path / "web", tmp_path / "worker"
        web_dir.mkdir()
        worker_dir.mkdir()
        web_env = _env(web, static_root=web_dir / "static", secret=secret)
        worker_env = _env(worker, static_root=worker_dir / "static", secret=secret)
        collected = subprocess.run([PYTHON, str(ROOT / "manage.py"), "collectstatic", "--no-input", "-v", "0"],
                                   cwd=web_dir, env=web_env, capture_output=True, text=True, timeout=120)
        assert collected.returncode == 0, collected.stderr
        for env in (web_env, worker_env):
            env["PYTHONPATH"] = str(ROOT)
        site = web.start([PYTHON, "-m", "gunicorn", "config.wsgi", "-c", "python:config.gunicorn",
                          "--bind", f"{web.address}:8000", "--workers", "1"],
                         web_env, web_dir, tmp_path / "web.log")
        queue = worker.start([PYTHON, str(ROOT / "manage.py"), "qcluster"], worker_env, worker_dir,
                             tmp_path / "worker.log")
        try:
            state = _sign_up_and_wait(f"http://{web.address}:8000", signup_data)
        finally:
            stop(site)
            stop(queue)
        logs = {name: (tmp_path / f"{name}.log").read_text(errors="replace") for name in ("web", "worker")}
        assert state["workspace"]["status"] == "ready", logs
        assert state["email"]["delivery"] == "sent", logs
        # Nothing was written where the other host could have read it.
        assert not list(worker_dir.iterdir())


def _sign_up_and_wait(base: str, signup_data: dict) -> dict:
    http = requests.Session()
    deadline = time.monotonic() + 60
    while True:  # the web host is up once it answers
        with contextlib.suppress(requests.ConnectionError):
            form = http.get(f"{base}/signup/", headers=HTTPS, timeout=10)
            break
        assert time.monotonic() < deadline, "the web host did not answer within 60 s"
        time.sleep(0.3)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    # Cookies are Secure (HTTPS only) and we speak HTTP behind the "proxy": carry them by hand.
    cookies = {"csrftoken": form.cookies["csrftoken"]}
    origin = "https://" + base.split("://", 1)[1]
    answer = http.post(f"{base}/signup/", data={**signup_data, "csrfmiddlewaretoken": token},
                       headers={**HTTPS, "Origin": origin, "Referer": f"{origin}/signup/",
                                "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())},
                       allow_redirects=False, timeout=30)
    assert (answer.status_code, answer.headers.get("Location")) == (302, "/setup/"), answer.text[:500]
    session = answer.cookies["sessionid"]
    deadline = time.monotonic() + 90
    while True:
        state = http.get(f"{base}/setup/status.json", headers={**HTTPS, "Cookie": f"sessionid={session}"},
                         timeout=10).json()
        if state["workspace"]["status"] == "ready" and state["email"]["delivery"] == "sent":
            return state
        if time.monotonic() > deadline:
            return state
        time.sleep(0.5)
