"""Removing a workspace at the provider (DELETE /workspaces/{id}) is a durable step:
retried through outages with one Idempotency-Key, done once, and "already gone"
counts as done. Against the real local HTTP provider and the sandbox."""
from __future__ import annotations

import pytest
from django.db import transaction

from provisioning.models import DeprovisionRequest, SandboxWorkspace, Workspace
from provisioning.removal import workspace_removal_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready(register, drive):
    """An account whose workspace exists at the provider."""
    def run(**overrides) -> Workspace:
        account, _ = register(**overrides)
        drive()
        return Workspace.objects.get(owner=account)
    return run


def remove(workspace: Workspace) -> DeprovisionRequest:
    with transaction.atomic():
        return workspace_removal_request(workspace=workspace, why="test")


def test_the_http_provider_is_asked_to_delete_with_one_key_through_failures(provider, ready, drive):
    workspace = ready()
    assert workspace.external_id in provider.workspaces.values()
    provider.fail_times(2)  # two 503s first

    request = remove(workspace)
    assert remove(workspace) == request  # owed once
    drive()

    request.refresh_from_db()
    assert (request.status, request.attempts) == ("succeeded", 3)
    assert provider.removed == [workspace.external_id]
    assert workspace.external_id not in provider.workspaces.values()
    deletes = [r for r in provider.requests if r["method"] == "DELETE"]
    assert [r["status"] for r in deletes] == [503, 503, 204]
    assert {r["path"] for r in deletes} == {f"/workspaces/{workspace.external_id}"}
    assert {r["idempotency_key"] for r in deletes} == {request.idempotency_key}
    assert not Workspace.objects.exists()


def test_a_workspace_already_gone_at_the_provider_is_removed(provider, ready, drive):
    workspace = ready()
    provider.reset()  # the provider no longer has it: DELETE answers 404

    request = remove(workspace)
    drive()

    request.refresh_from_db()
    assert request.status == "succeeded"
    assert [r["status"] for r in provider.requests if r["method"] == "DELETE"] == [404]
    assert not Workspace.objects.exists()


def test_a_refused_removal_fails_and_keeps_the_workspace(provider, ready, drive):
    workspace = ready()
    provider.mode = "reject"

    request = remove(workspace)
    drive()

    request.refresh_from_db()
    assert (request.status, request.last_error_code) == ("failed", "http_422")
    assert Workspace.objects.filter(pk=workspace.pk).exists()
    assert workspace.external_id in provider.workspaces.values()


def test_the_sandbox_removes_through_its_failure_modes(sandbox, ready, drive):
    workspace = ready()
    assert SandboxWorkspace.objects.filter(external_id=workspace.external_id).exists()
    sandbox("provisioning", "flaky", failures=2)

    request = remove(workspace)
    drive()

    request.refresh_from_db()
    assert (request.status, request.attempts) == ("succeeded", 3)
    assert not SandboxWorkspace.objects.exists() and not Workspace.objects.exists()


def test_a_late_sandbox_answer_is_retried_and_finds_the_workspace_gone(sandbox, ready, drive):
    workspace = ready()
    sandbox("provisioning", "late")  # removed, but the answer is lost

    request = remove(workspace)
    drive()

    request.refresh_from_db()
    assert (request.status, request.attempts, request.last_error_code) == ("succeeded", 2, "timeout")
    assert not SandboxWorkspace.objects.exists() and not Workspace.objects.exists()


def test_a_sandbox_refusal_keeps_the_workspace(sandbox, ready, drive):
    workspace = ready()
    sandbox("provisioning", "reject")

    request = remove(workspace)
    drive()

    request.refresh_from_db()
    assert request.status == "failed"
    assert SandboxWorkspace.objects.filter(external_id=workspace.external_id).exists()
    assert Workspace.objects.filter(pk=workspace.pk).exists()
