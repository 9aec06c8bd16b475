"""Production, as production runs it: ``DJANGO_DEBUG=0``, ``config.settings`` from the
environment, ``gunicorn config.wsgi`` with WhiteNoise serving ``collectstatic``'s
hashed files, spoken to over real HTTP. Includes our own database and queue being
down: a database port where nothing listens, a Redis port where nothing listens.

Servers start together (module fixture) so the file takes seconds, not minutes.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time

import pytest

from config.tests.served import ServedApp, free_port, manage, production_env

DOWN_DATABASE = "postgres://postgres@127.0.0.1:1/unreachable"  # nothing listens on port 1
DOWN_REDIS = "redis://127.0.0.1:1/0"
HTTPS = {"X-Forwarded-Proto": "https"}  # as our TLS-terminating proxy sends it
SUPPORT_EMAIL = "help@acme.test"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """collectstatic into a fresh STATIC_ROOT and a migrated SQLite file, where one
    reconcile pass has run (what a worker does on its schedule)."""
    root = tmp_path_factory.mktemp("production")
    static_root, database = root / "static", root / "db.sqlite3"
    env = production_env(static_root=static_root, DATABASE_URL=f"sqlite:///{database}")
    for args in (("collectstatic", "--no-input"), ("migrate", "--no-input"), ("reconcile",)):
        done = manage(env, *args)
        assert done.returncode == 0, done.stderr
    (root / "empty.sqlite3").touch()
    return root


@pytest.fixture(scope="module")
def redis_url():
    """A real Redis server of our own, on a free port."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def servers(prepared, redis_url):
    migrated = f"sqlite:///{prepared / 'db.sqlite3'}"
    envs = {
        "healthy": {"DATABASE_URL": migrated},
        "database_down": {"DATABASE_URL": DOWN_DATABASE},
        "database_broken": {"DATABASE_URL": f"sqlite:///{prepared / 'empty.sqlite3'}"},
        "redis_down": {"DATABASE_URL": migrated, "REDIS_URL": DOWN_REDIS},
    }
    if redis_url:
        envs["redis_up"] = {"DATABASE_URL": migrated, "REDIS_URL": redis_url}
    # The pass run while preparing stands for a worker's for the whole module.
    apps = {name: ServedApp(production_env(static_root=prepared / "static", SUPPORT_EMAIL=SUPPORT_EMAIL,
                                           RECONCILE_EVERY_SECONDS="3600", **env)).start()
            for name, env in envs.items()}
    try:
        yield {name: app.wait_ready() for name, app in apps.items()}
    finally:
        for app in apps.values():
            app.signal_stop()
        for app in apps.values():
            app.wait_stopped()


def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    env = production_env(static_root=tmp_path, ALLOWED_HOSTS="signup.acme.test")
    done = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_gunicorn_serves_health_and_hashed_static_files(servers, prepared):
    app = servers["healthy"]
    health = app.get("/healthz")  # plain HTTP: load balancers probe inside the network
    assert health.status_code == 200
    assert health.json() == {"database": "ok", "queue": "ok", "worker": "ok"}

    manifest = json.loads((prepared / "static" / "staticfiles.json").read_text())
    hashed = manifest["paths"]["css/app.css"]
    assert re.fullmatch(r"css/app\.[0-9a-f]{12}\.css", hashed)
    css = app.get(f"/static/{hashed}", headers=HTTPS)
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert "immutable" in css.headers["Cache-Control"]
    assert ":root" in css.text

    page = app.get("/login/", headers=HTTPS)
    assert page.status_code == 200
    assert f'href="/static/{hashed}"' in page.text  # pages link the hashed name
    assert app.get("/login/").headers["Location"].startswith("https://")  # HTTP goes to HTTPS


def test_request_id_is_echoed_and_every_log_line_is_json(servers):
    app = servers["healthy"]
    kept = app.get("/login/", headers={**HTTPS, "X-Request-ID": "lb-7f3a.42"})
    assert kept.headers["X-Request-ID"] == "lb-7f3a.42"
    forged = app.get("/login/", headers={**HTTPS, "X-Request-ID": "x\ty <script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["X-Request-ID"])

    time.sleep(0.2)
    lines = [json.loads(line) for line in app.log.splitlines()]  # gunicorn's own lines too
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines)
    mine = [line for line in lines if line["request_id"] == "lb-7f3a.42"]
    assert mine and mine[0]["message"].startswith("GET /login/ 200")
    assert set(mine[0]) >= {"time", "level", "logger", "message", "request_id", "account_id"}
    assert any(line["request_id"] == forged.headers["X-Request-ID"] for line in lines)


UNAVAILABLE_TEXT = "Nothing you just sent was saved"


def _assert_unavailable_page(response):
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert UNAVAILABLE_TEXT in response.text
    assert "try again in a minute" in response.text
    assert f"mailto:{SUPPORT_EMAIL}" in response.text
    assert "Traceback" not in response.text and "OperationalError" not in response.text


SIGNUP = {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+1 415 555 0100",
          "company": "Analytical Engines", "password": "correct horse battery staple"}


@pytest.mark.parametrize(("method", "path", "data"), [
    ("get", "/signup/", None),
    ("post", "/signup/", SIGNUP),
    ("get", "/login/", None),
    ("post", "/login/", {"email": SIGNUP["email"], "password": SIGNUP["password"]}),
    ("get", "/help/", None),
    ("post", "/help/", {"email": SIGNUP["email"], "message": "I can't log in"}),
])
def test_database_down_answers_503_in_our_voice(servers, method, path, data):
    app = servers["database_down"]
    response = getattr(app, method)(path, headers=HTTPS, data=data)
    _assert_unavailable_page(response)
    assert response.headers["X-Request-ID"]


def test_database_down_fails_health_and_is_logged_without_personal_data(servers):
    app = servers["database_down"]
    health = app.get("/healthz")
    assert health.status_code == 503
    # The ORM broker lives there too, and so does the worker's last pass.
    assert health.json() == {"database": "down", "queue": "down", "worker": "unknown"}

    app.post("/signup/", headers={**HTTPS, "X-Request-ID": "signup-while-down"}, data=SIGNUP)
    time.sleep(0.2)
    lines = [json.loads(line) for line in app.log.splitlines() if line.startswith("{")]
    mine = [line for line in lines if line["request_id"] == "signup-while-down"]
    assert any(line["level"] == "ERROR" and "database unavailable" in line["message"] for line in mine)
    assert "ada@example.com" not in app.log and "555 0100" not in app.log


def test_database_error_inside_a_view_answers_503(servers):
    """The connection opens but queries fail (here: a database with no tables): the
    login view's query raises, and the person still gets the 503 page."""
    app = servers["database_broken"]
    form = app.get("/login/", headers=HTTPS)
    assert form.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    response = app.post("/login/", cookies={"csrftoken": form.cookies["csrftoken"]},
                        headers={**HTTPS, "Origin": app.url.replace("http://", "https://")},
                        data={"csrfmiddlewaretoken": token, "email": "ada@example.com",
                              "password": "correct horse battery staple"})
    _assert_unavailable_page(response)


def test_unreachable_redis_fails_health_on_the_queue(servers):
    health = servers["redis_down"].get("/healthz")
    assert health.status_code == 503
    assert health.json() == {"database": "ok", "queue": "down", "worker": "ok"}


def test_reachable_redis_passes_health(servers):
    if "redis_up" not in servers:
        pytest.skip("redis-server is not installed")
    health = servers["redis_up"].get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"database": "ok", "queue": "ok", "worker": "ok"}


def _csrf_post(app, path, data):
    """POST a form the way a browser does: the page's CSRF token and cookie, over HTTPS."""
    form = app.get(path, headers=HTTPS)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    return app.post(path, cookies={"csrftoken": form.cookies["csrftoken"]},
                    headers={**HTTPS, "Origin": app.url.replace("http://", "https://")},
                    data={"csrfmiddlewaretoken": token, **data})


def test_unreachable_redis_still_signs_people_up_and_the_reconciler_dispatches_later(servers, prepared):
    """The queue is down when the signup commits: the person still gets their setup
    page, the account and the work it is owed are saved, and the next reconciler
    pass (here with the queue on the database) dispatches both steps."""
    app = servers["redis_down"]
    email = "queue-down@example.com"
    response = _csrf_post(app, "/signup/", {**SIGNUP, "email": email})

    assert response.status_code == 302, response.text[:500]
    assert response.headers["Location"] == "/setup/"
    time.sleep(0.2)
    lines = [json.loads(line) for line in app.log.splitlines() if line.startswith("{")]
    assert any(line["level"] == "ERROR" and "enqueue_or_leave_to_the_reconciler" in line["message"]
               for line in lines)  # logged for us, not shown to the person

    healthy = production_env(static_root=prepared / "static", DATABASE_URL=f"sqlite:///{prepared / 'db.sqlite3'}")
    status = manage(healthy, "account_status", email)
    assert status.returncode == 0, status.stderr
    assert "workspace: pending (step pending, 0 attempts" in status.stdout
    assert re.search(r"verification +pending +0 attempts", status.stdout), status.stdout

    dispatched = manage(healthy, "reconcile")
    assert dispatched.returncode == 0, dispatched.stderr
    assert "workspace: 1 dispatched" in dispatched.stdout
    assert "email: 1 dispatched" in dispatched.stdout
