"""Fixtures for the provisioning tests: a signed-up account, the real local HTTP
provider wired into settings, and a recorder for the signals this layer sends."""
from __future__ import annotations

import pytest
from django.db import connection

from accounts.services import account_register
from provisioning.models import ProvisioningRequest
from provisioning.signals import step_exhausted
from provisioning.tests.fake_provider import FakeProvider


@pytest.fixture(autouse=True)
def _postgres_only(request):
    """Tests marked ``postgres`` need PostgreSQL: races only show on a database that
    does not serialise writers, and another process cannot open the in-memory SQLite
    test database. CI runs the suite on both."""
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL=postgres://...): SQLite serialises "
                    "writers and its in-memory test database is invisible to other processes")


@pytest.fixture
def register(db, signup_data):
    """Sign a person up through the real service (one transaction: the user and the
    work owed). Returns (account, its ProvisioningRequest)."""
    def run(**overrides):
        data = {**signup_data, **overrides}
        account = account_register(name=data["name"], email=data["email"], company=data["company"],
                                   password=data["password"], phone=data["phone"])
        return account, ProvisioningRequest.objects.get(account=account)
    return run


@pytest.fixture
def provider(settings):
    """The FakeProvider, a real HTTP server on 127.0.0.1, behind the ``http`` backend
    with a short timeout so a hanging provider costs half a second."""
    with FakeProvider() as fake:
        settings.PROVISIONING_BACKEND = "http"
        settings.PROVISIONING_URL = fake.url
        settings.PROVISIONING_TIMEOUT = 0.5
        yield fake


@pytest.fixture
def exhausted():
    """Every ``step_exhausted`` announcement, as (kind, account_id)."""
    sent: list[tuple[str, int]] = []

    def receiver(*, kind, account_id, **kwargs):
        sent.append((kind, account_id))

    step_exhausted.connect(receiver, weak=False, dispatch_uid="tests.exhausted")
    yield sent
    step_exhausted.disconnect(dispatch_uid="tests.exhausted")
