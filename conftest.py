"""Fixtures shared by every app's tests."""
import pytest
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
