"""Outage mode: people sign up while the workspace provider is down. Nobody is
exhausted, nobody is forgotten; when it recovers the backlog drains under the
provider's rate limit and each person gets one apology."""
from collections import Counter

import pytest
from django.core import mail
from django.test import Client

from accounts.messages import EMAIL_SUBJECTS
from provisioning import breaker
from provisioning.models import ProvisioningRequest, Workspace
from provisioning.tests.fake_provider import FakeProvider

# The smallest numbers that still prove each property: more people than the calls
# allowed during the outage (20), so a circuit that did not hold them would show; and
# 2.5 × the provider's per-second limit, so the drain has to be paced to stay under it.
PEOPLE = 25
RATE = 10


@pytest.fixture
def provider(settings):
    with FakeProvider(mode="error", rate_limit_per_second=RATE) as fake:
        settings.PROVISIONING_BACKEND = "http"
        settings.PROVISIONING_URL = fake.url
        settings.PROVISIONING_TIMEOUT = 2
        settings.PROVIDER_RATE_PER_SECOND = RATE
        yield fake


@pytest.mark.django_db
def test_signups_during_an_outage_drain_after_recovery(provider, settings, signup_data, drive):
    for i in range(PEOPLE):
        response = Client().post("/signup/", {**signup_data, "email": f"p{i}@example.com"})
        assert response.status_code == 302
    drive(max_passes=5)

    assert breaker.is_open("provisioning")
    assert ProvisioningRequest.objects.filter(status="failed").count() == 0  # nobody exhausted
    assert ProvisioningRequest.objects.filter(status="pending").count() == PEOPLE
    calls_during_outage = len(provider.requests)
    # Five distinct accounts open the circuit; then nothing until the probe is due.
    assert calls_during_outage < 20

    provider.mode = "ok"
    provider.reset()
    settings.BREAKER_PROBE_SECONDS = 0  # the probe interval has passed
    drive()

    assert not breaker.is_open("provisioning")
    assert Workspace.objects.count() == PEOPLE
    assert provider.created_count == PEOPLE  # one per idempotency key, none twice
    assert provider.max_requests_in_any_second() <= RATE
    assert not [r for r in provider.requests if r["status"] == 429]  # never over the limit
    apologies = Counter(m.to[0] for m in mail.outbox if m.subject == str(EMAIL_SUBJECTS["all_set"]))
    assert len(apologies) == PEOPLE and set(apologies.values()) == {1}
