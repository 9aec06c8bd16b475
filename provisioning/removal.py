"""Writes for removing a workspace at the provider: a durable step like creating one
(same engine, retries, breaker and pacing), so a removal survives a crash, an
outage or a lost answer, and is never done twice (the Idempotency-Key, and "already
gone" counts as done).

Only the abandoned-signup purge (accounts.flows.purge) removes workspaces. It
deletes the account once this step has succeeded, on the ``workspace_removed``
announcement; a failed removal leaves the account in place and the purge re-arms
it on its next run.
"""
from __future__ import annotations

import hashlib
import logging

from django.conf import settings

from provisioning import durable
from provisioning.backends import WorkspaceRemoval, get_backend
from provisioning.durable import StepKind, StepStatus
from provisioning.models import DeprovisionRequest, Workspace
from provisioning.services import dispatch_on_commit, event_record
from provisioning.signals import announce_on_commit, workspace_removed

logger = logging.getLogger(__name__)

KIND = "workspace_removal"


def workspace_removal_request(*, workspace: Workspace, actor: str = "system", why: str = "") -> DeprovisionRequest:
    """Owe the removal of this workspace at the provider. Idempotent: the key is the
    workspace's provider id, so asking twice returns the first request. Call inside
    the transaction that decides it; the first attempt is enqueued on commit."""
    key = "workspace-removal-" + hashlib.sha256(workspace.external_id.encode()).hexdigest()[:32]
    request, created = DeprovisionRequest.objects.get_or_create(
        idempotency_key=key, defaults={"account_id": workspace.owner_id, "external_id": workspace.external_id})
    if created:
        event_record(account_id=workspace.owner_id, subject="workspace", from_state="ready",
                     to_state="removing", why=why or f"removing workspace {workspace.external_id}", actor=actor)
        dispatch_on_commit(KIND, request.pk)
    return request


def workspace_removal_retry(*, request: DeprovisionRequest, actor: str = "system") -> bool:
    """Make a failed or waiting removal due now with fresh attempts. Safe to call
    twice. Returns True if it was re-armed."""
    before = request.status
    changed = durable.step_retry_now(request)
    if changed:
        event_record(account_id=request.account_id, subject="workspace", from_state=before,
                     to_state="removing", why="removal retried", actor=actor)
        dispatch_on_commit(KIND, request.pk)
    return changed


def workspace_removal_cancel(*, account_id: int, actor: str, why: str) -> str | None:
    """Stop the account's workspace removal if no worker has called the provider
    yet (the account was reopened). Returns the removal's status afterwards: None
    when none is owed; ``failed`` when it is stopped (now, or refused earlier: the
    workspace is still there); ``running`` when a worker is calling the provider
    (the outcome is not known yet); ``succeeded`` when the workspace is gone."""
    request = (DeprovisionRequest.objects.filter(account_id=account_id)
               .order_by("-created_at", "-pk").first())
    if request is None:
        return None
    stopped = durable.step_cancel(request, why=why, unless_running=True)
    if not stopped and request.status == StepStatus.FAILED and request.last_error_code != durable.CANCELLED:
        # Refused by the provider earlier: the workspace is still there. Marked as
        # stopped too, so the purge never takes it up again if the account is closed
        # later (the refusal itself stays on the timeline).
        stopped = bool(DeprovisionRequest.objects.filter(pk=request.pk, status=StepStatus.FAILED).update(
            last_error_code=durable.CANCELLED, last_error_detail=why[:500]))
        request.refresh_from_db()
    if stopped:
        event_record(account_id=account_id, subject="workspace", from_state="removing", to_state="ready",
                     why=f"removal of workspace {request.external_id} stopped: {why}", actor=actor)
    return request.status


def _perform(request: DeprovisionRequest) -> str:
    return get_backend().delete_workspace(
        WorkspaceRemoval(external_id=request.external_id, idempotency_key=request.idempotency_key))


def _succeeded(request: DeprovisionRequest, result: str) -> None:
    Workspace.objects.filter(owner_id=request.account_id, external_id=request.external_id).delete()
    event_record(account_id=request.account_id, subject="workspace", from_state="removing", to_state="removed",
                 why=f"workspace {request.external_id} removed at the provider ({result})")
    if request.account_id is not None:
        announce_on_commit(workspace_removed, sender=Workspace, account_id=request.account_id)


def _failed(request: DeprovisionRequest) -> None:
    # Not the person's failure and nothing for them to do: no ticket. The account
    # stays until the removal succeeds; the purge re-arms it on its next run.
    event_record(account_id=request.account_id, subject="workspace", from_state="removing",
                 to_state=StepStatus.FAILED, why=f"{request.last_error_code}: {request.last_error_detail}")
    logger.warning("workspace %s could not be removed at the provider: %s (the purge retries it daily)",
                   request.external_id, request.last_error_code)


def register_step_kind() -> None:
    durable.register(StepKind(
        name=KIND, model=DeprovisionRequest, perform=_perform,
        max_attempts=lambda: settings.PROVISIONING_MAX_ATTEMPTS,
        on_succeeded=_succeeded, on_failed=_failed, provider="provisioning",
    ))
