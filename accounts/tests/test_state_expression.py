"""The lifecycle state has one definition (``with_lifecycle_state``, computed by the
database): the console's lists and counts and ``account_overview`` (pages, JSON,
emails) read it, so they agree account by account, for every state, and every state
is reachable through the real services."""
from __future__ import annotations

import pytest

from accounts.models import User
from accounts.selectors import State, account_overview, with_lifecycle_state
from provisioning.models import ProvisioningRequest


@pytest.fixture
def population(mixed_accounts):
    mixed_accounts(13)  # every recipe once
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
