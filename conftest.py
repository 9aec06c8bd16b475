"""Fixtures shared by every app's tests."""
import os
import threading

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer
from django.test import Client

from provisioning.reconciler import reconcile
from provisioning.sandbox import sandbox_set

PASSWORD = "correct horse battery staple"


@pytest.fixture
def signup_data():
    return {"name": "Ada Lovelace", "email": "Ada@Example.com", "phone": "+1 415 555 0100",
            "company": "Analytical Engines", "password": PASSWORD}


@pytest.fixture(autouse=True)
def _sandbox_email_backend(settings):
    """Django's setup_test_environment() swaps EMAIL_BACKEND for locmem, which would
    silently bypass the sandbox: sandbox("email", ...) would inject nothing. Put the
    test settings' sandbox back; healthy mail still lands in mail.outbox, because the
    sandbox hands it to SANDBOX_EMAIL_DELIVER_TO (locmem in tests)."""
    settings.EMAIL_BACKEND = "accounts.email_backends.SandboxEmailBackend"


class TakingTurnsWSGIServer(ThreadedWSGIServer):
    """The live server on in-memory SQLite: its request threads share the test's one
    connection, which is not safe to use from two threads at once (a support re-run
    and the status page's poll once blocked each other for good). Threads still
    accept connections (so a browser's idle keep-alive never blocks anyone); the
    application runs one request at a time."""

    def set_app(self, application):
        turn = threading.Lock()

        def one_at_a_time(environ, start_response):
            with turn:
                response = application(environ, start_response)
                try:
                    return list(response)
                finally:
                    if hasattr(response, "close"):
                        response.close()
        super().set_app(one_at_a_time)


@pytest.fixture(scope="session")
def live_server(request):
    """pytest-django's live server, taking turns where it shares the test's in-memory
    SQLite connection; on PostgreSQL each request thread has its own connection and
    they run at once."""
    from pytest_django.live_server_helper import LiveServer

    addr = (request.config.getvalue("liveserver") or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
            or "localhost")
    server = LiveServer(addr, start=False)
    if server.thread.connections_override:
        server.thread.server_class = TakingTurnsWSGIServer
    server.start()
    yield server
    server.stop()


@pytest.fixture
def client():
    return Client()


@pytest.fixture
def sandbox(db):
    """Switch the sandbox providers: sandbox("provisioning", "error")."""
    def switch(provider: str, mode: str, failures: int = 0):
        return sandbox_set(provider=provider, mode=mode, failures=failures)
    return switch


@pytest.fixture
def drive(db, django_capture_on_commit_callbacks):
    """Run reconciler passes (tasks run inline in tests) until nothing is due, like
    the scheduled dispatcher would over time. Each pass commits as far as the test
    transaction allows: its on-commit work (signals, enqueues) runs. Returns the
    number of passes."""
    def run(max_passes: int = 30) -> int:
        for n in range(1, max_passes + 1):
            with django_capture_on_commit_callbacks(execute=True):
                report = reconcile()
            if not any(report.dispatched.values()):
                return n
        return max_passes
    return run


def _run_steps(kind: str, steps, account, times: int) -> None:
    from provisioning import durable

    for _ in range(times):
        for step in steps.filter(account=account, status__in=["pending", "running"]):
            durable.step_run(kind, step.pk)


@pytest.fixture
def mixed_accounts(db, signup_data, settings):
    """``mixed_accounts(n)`` signs up n accounts through the real services, going round
    the recipes below so that every lifecycle state appears (13 accounts cover them
    all), and returns them. Failures come from the sandbox providers, switched per
    account and left healthy; steps run as a worker would run them."""
    from django.utils import timezone

    from accounts.models import EmailDelivery, EmailKind, User
    from accounts.services import account_close, account_mark_verified, account_register
    from provisioning import durable
    from provisioning.models import ProvisioningRequest

    settings.DELAYED_AFTER_ATTEMPTS = 2
    settings.EMAIL_MAX_ATTEMPTS = 1
    # Each account's failures are its own: that many alike would read as an outage.
    settings.BREAKER_FAILURE_THRESHOLD = 10_000
    made = [0]

    def make(name: str, *, workspace: str = "ok", email: str = "ok", workspace_runs: int = 1,
             email_runs: int = 1) -> User:
        account = account_register(**{**signup_data, "email": f"{name}@example.com"})
        sandbox_set(provider="provisioning", mode=workspace)
        _run_steps("workspace", ProvisioningRequest.objects.all(), account, workspace_runs)
        sandbox_set(provider="email", mode=email)
        _run_steps("email", EmailDelivery.objects.filter(kind=EmailKind.VERIFICATION), account, email_runs)
        return account

    def running(name):
        account = make(name, workspace="error", workspace_runs=2)
        durable.claim(durable.kind_named("workspace"), ProvisioningRequest.objects.get(account=account).pk)
        return account

    def bounced(name):
        account = make(name)
        EmailDelivery.objects.filter(account=account).update(bounced_at=timezone.now())  # as the webhook would
        return account

    recipes = [
        lambda name: make(name, workspace_runs=0, email_runs=0),  # setting up
        lambda name: make(name, workspace="error", workspace_runs=1),  # retrying: still setting up
        lambda name: make(name, workspace="error", workspace_runs=2),  # delayed
        running,  # delayed, a try running
        lambda name: make(name, workspace="reject"),  # needs support: the workspace was refused
        lambda name: make(name, email="timeout"),  # needs support: the email gave up
        lambda name: make(name, email="reject"),  # email undeliverable: refused
        bounced,  # email undeliverable: bounced
        lambda name: make(name),  # unverified
        lambda name: make(name, email_runs=0),  # unverified, the email still owed
        lambda name: account_mark_verified(account=make(name), actor="test", why="test"),  # active
        lambda name: account_close(account=make(name), actor="test", reason="test"),  # disabled
        lambda name: account_close(account=make(name, workspace_runs=0), actor="test", reason="test"),  # disabled
    ]

    def run(n: int) -> list[User]:
        accounts = []
        for _ in range(n):
            recipe = recipes[made[0] % len(recipes)]
            accounts.append(recipe(f"mixed{made[0]}"))
            made[0] += 1
        sandbox_set(provider="provisioning", mode="ok")
        sandbox_set(provider="email", mode="ok")
        return accounts
    return run
