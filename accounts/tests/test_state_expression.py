"""The lifecycle state has one definition (``with_lifecycle_state``, computed by the
database): the console's lists and counts and ``account_overview`` (pages, JSON,
emails) read it, so they agree account by account, for every state, and every state
is reachable through the real services."""
from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import EmailDelivery, EmailKind, User
from accounts.selectors import State, account_overview, with_lifecycle_state
from accounts.services import account_mark_verified, account_register
from provisioning import durable
from provisioning.models import ProvisioningRequest
from provisioning.sandbox import sandbox_set


def _run(kind: str, steps, account: User, times: int = 1) -> None:
    for _ in range(times):
        for step in steps.filter(account=account, status__in=["pending", "running"]):
            durable.step_run(kind, step.pk)


@pytest.fixture
def population(db, signup_data, settings):
    settings.DELAYED_AFTER_ATTEMPTS = 2
    settings.EMAIL_MAX_ATTEMPTS = 1

    def make(name: str, *, workspace: str = "ok", email: str = "ok", workspace_runs: int = 1,
             email_runs: int = 1) -> User:
        account = account_register(**{**signup_data, "email": f"{name}@example.com"})
        sandbox_set(provider="provisioning", mode=workspace)
        _run("workspace", ProvisioningRequest.objects.all(), account, workspace_runs)
        sandbox_set(provider="email", mode=email)
        verification = EmailDelivery.objects.filter(kind=EmailKind.VERIFICATION)
        _run("email", verification, account, email_runs)
        return account

    make("setting_up", workspace_runs=0, email_runs=0)
    make("retrying", workspace="error", workspace_runs=1)
    make("delayed", workspace="error", workspace_runs=2)
    running = make("running", workspace="error", workspace_runs=2)
    durable.claim(durable.kind_named("workspace"), ProvisioningRequest.objects.get(account=running).pk)
    make("workspace_failed", workspace="reject")
    make("email_exhausted", email="timeout")
    make("undeliverable", email="reject")
    bounced = make("bounced")
    # No bounce webhook yet (it is part of the hardening work): record the bounce as it would.
    EmailDelivery.objects.filter(account=bounced).update(bounced_at=timezone.now())
    make("unverified")
    make("email_pending", email_runs=0)
    account_mark_verified(account=make("active"), actor="test", why="test")
    User.objects.filter(pk=make("disabled").pk).update(is_active=False)
    sandbox_set(provider="provisioning", mode="ok")
    sandbox_set(provider="email", mode="ok")
    return User.objects.all()


def _both(accounts) -> tuple[dict, dict]:
    in_sql = {a.email: a.lifecycle_state for a in with_lifecycle_state(accounts)}
    in_python = {a.email: account_overview(account=a).state for a in accounts}
    return in_sql, in_python


def test_the_database_and_python_agree_on_every_state(population):
    in_sql, in_python = _both(population)
    assert in_sql == in_python
    assert set(in_python.values()) == set(State.ALL)  # every state is covered


@pytest.mark.parametrize("provider", ["provisioning", "email"])
def test_they_agree_during_an_outage(population, provider, settings):
    from provisioning.breaker import record_failure

    settings.BREAKER_FAILURE_THRESHOLD = 1
    record_failure(provider, ProvisioningRequest.objects.first())  # one failure opens the circuit
    in_sql, in_python = _both(population)
    assert in_sql == in_python
    assert State.DELAYED in in_python.values()
