"""Every sandbox email mode × every provisioning mode reaches the state DESIGN's
table gives it, with never more than one workspace per account.

A person signs up through ``/signup/`` with the sandboxes switched, the dispatcher
runs until nothing is due (attempts are few and retries due at once), and the state
is read where the person reads it: ``/setup/status.json``.
"""
from __future__ import annotations

import pytest
from django.db.models import Count

from provisioning.models import SandboxWorkspace, Workspace

EMAIL_MODES = ["ok", "timeout", "error", "reject"]  # error = SMTP 451, try later
PROVISIONING_MODES = ["ok", "timeout", "error", "late", "reject"]  # error = 503, late =
# created, but the answer timed out; reject = 422


def expected(provisioning: str, email: str) -> dict:
    """DESIGN's table, top row first: a workspace that cannot be made needs a
    person; so does an email we gave up retrying; an address that refuses mail is
    undeliverable; a ready workspace with a delivered, unclicked link is unverified."""
    workspace = "ready" if provisioning in ("ok", "late") else "failed"
    delivery = {"ok": "sent", "timeout": "failed", "error": "failed", "reject": "failed"}[email]
    if workspace == "failed" or email in ("timeout", "error"):
        state = "needs_support"
    elif email == "reject":
        state = "email_undeliverable"
    else:
        state = "unverified"
    return {"state": state, "workspace": workspace, "delivery": delivery}


@pytest.fixture(autouse=True)
def _few_attempts(settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 3
    settings.EMAIL_MAX_ATTEMPTS = 3
    settings.BREAKER_FAILURE_THRESHOLD = 1000  # this test is about one account, not outages


@pytest.mark.parametrize("email", EMAIL_MODES)
@pytest.mark.parametrize("provisioning", PROVISIONING_MODES)
def test_every_failure_combination_settles_in_the_right_state(
        provisioning, email, client, signup_data, sandbox, drive, django_capture_on_commit_callbacks):
    sandbox("provisioning", provisioning)
    sandbox("email", email)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/signup/", signup_data)
    assert response.status_code == 302 and response["Location"] == "/setup/"
    drive()

    status = client.get("/setup/status.json").json()
    want = expected(provisioning, email)
    assert (status["state"], status["workspace"]["status"], status["email"]["delivery"]) == (
        want["state"], want["workspace"], want["delivery"])
    assert status["email"] == {"address": "ada@example.com", "verified": False,
                               "delivery": want["delivery"]}
    assert status["message"]
    assert not Workspace.objects.values("owner").annotate(n=Count("pk")).filter(n__gt=1).exists()
    workspaces = Workspace.objects.count()
    assert workspaces == (1 if want["workspace"] == "ready" else 0)
    if provisioning in ("ok", "late"):
        # The provider made exactly one, even when its first answer was lost.
        assert SandboxWorkspace.objects.count() == 1
        assert Workspace.objects.get().external_id == SandboxWorkspace.objects.get().external_id
    if want["workspace"] == "failed":
        assert status["workspace"]["attempts"] == (1 if provisioning == "reject" else 3)
