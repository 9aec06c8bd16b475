"""``/healthz`` names a stale worker (issue 10, fault 11): a queue that answers is no
use if no worker consumes it, and every reconcile pass (a worker's scheduled job)
records when it ran."""
from __future__ import annotations

import pytest

from provisioning.reconciler import reconcile

pytestmark = pytest.mark.django_db


def test_a_recent_reconcile_pass_means_a_worker_is_there(client, settings):
    settings.RECONCILE_EVERY_SECONDS = 60
    reconcile()

    health = client.get("/healthz")

    assert health.status_code == 200
    assert health.json() == {"database": "ok", "queue": "ok", "worker": "ok"}


def test_no_reconcile_pass_ever_is_a_stale_worker(client):
    health = client.get("/healthz")

    assert health.status_code == 503
    assert health.json() == {"database": "ok", "queue": "ok", "worker": "stale"}


def test_no_reconcile_pass_within_two_intervals_is_a_stale_worker(client, settings):
    reconcile()
    settings.RECONCILE_EVERY_SECONDS = 0  # two intervals are over the moment the pass ends

    health = client.get("/healthz")

    assert health.status_code == 503
    assert health.json()["worker"] == "stale"
