"""Run the app the way production does, for tests: ``manage.py`` commands and
``gunicorn config.wsgi`` as real subprocesses with a production environment
(``DJANGO_DEBUG=0``, ``config.settings``, a long random secret key), spoken to over
real HTTP::

    env = production_env(static_root=..., DATABASE_URL="sqlite:///...")
    manage(env, "migrate", "--no-input")
    with ServedApp(env) as app:
        assert app.get("/healthz").status_code == 200
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

import requests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
# What a subprocess keeps from ours: the basics, never our Django or database settings.
_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


def production_env(*, static_root: Path | str, **overrides: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in _KEEP if key in os.environ}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STATIC_ROOT": str(static_root),
        "LOG_FORMAT": "json",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.update(overrides)
    return env


def free_port() -> int:
    """A port nothing listens on right now, for a server that cannot pick its own."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


class ServedApp:
    """``gunicorn config.wsgi`` with our gunicorn settings, on 127.0.0.1 and a port it picks itself (read back
    from its log, so there is no race for a free port). ``log`` is everything the
    server wrote to stderr (its own lines and the app's log lines)."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self._log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> Self:
        self.process = subprocess.Popen(
            [GUNICORN, "config.wsgi", "-c", "python:config.gunicorn", "--bind", "127.0.0.1:0",
             "--workers", "1", "--graceful-timeout", "2"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=self._log)
        return self

    def wait_ready(self, timeout: float = 30) -> Self:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", self.log)
            if found:
                self.url = found.group(1)
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{self.log}")

    @property
    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("allow_redirects", False)
        return requests.get(self.url + path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("allow_redirects", False)
        return requests.post(self.url + path, **kwargs)

    def stop(self) -> None:
        self.signal_stop()
        self.wait_stopped()

    def signal_stop(self) -> None:
        """Ask for a quick shutdown (SIGINT) without waiting, so several servers stop
        at once."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)

    def wait_stopped(self) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Self:
        return self.start().wait_ready()

    def __exit__(self, *exc) -> None:
        self.stop()
        os.unlink(self._log.name)
