"""Writes for workspaces: owing one, performing the step, retrying it."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from provisioning import durable
from provisioning.backends import WorkspaceOrder, get_backend
from provisioning.durable import StepKind, StepStatus
from provisioning.models import Event, ProvisioningRequest, Workspace
from provisioning.signals import announce_on_commit, step_exhausted, workspace_ready
from provisioning.transactions import commit_without_waiting_for_disk

KIND = "workspace"


def event_record(*, account_id: int | None, subject: str, from_state: str = "",
                 to_state: str = "", why: str = "", actor: str = "system") -> Event:
    """Append a line to an account's timeline."""
    return Event.objects.create(account_id=account_id, subject=subject, from_state=from_state[:32],
                                to_state=to_state[:32], why=why[:500], actor=actor[:100])


def provisioning_request_create(*, account) -> ProvisioningRequest:
    """Owe this account a workspace. Call inside the signup transaction; the first
    attempt is enqueued with it (``steps_enqueued_together`` on the ORM broker) or
    when it commits."""
    queued = queued_on_creation()
    request = ProvisioningRequest.objects.create(
        account=account, idempotency_key=f"workspace-{account.pk}-{account.date_joined:%Y%m%d%H%M%S%f}",
        **queued)
    event_record(account_id=account.pk, subject="workspace", to_state=StepStatus.PENDING,
                 why="signup: a workspace is owed")
    dispatch_on_commit(KIND, request.pk, marked=bool(queued))
    return request


# The steps dispatched inside ``steps_enqueued_together`` (kind, id, created marked
# as queued), or None outside it.
_together: ContextVar[list[tuple[str, int, bool]] | None] = ContextVar("steps_enqueued_together", default=None)


def dispatch_on_commit(kind: str, pk: int, *, marked: bool = False) -> None:
    """Enqueue the first attempt once the row is committed (a task enqueued earlier
    could run before the row exists, or for a row that is rolled back). Inside
    ``steps_enqueued_together``, with the block's other steps; ``marked``: the row
    was created with the fields of ``queued_on_creation()`` (so not marked again).

    A queue that cannot be reached (Redis down) is logged and never fails the request
    or task that committed: the row is already due, and the reconciler dispatches it
    on its next pass."""
    together = _together.get()
    if together is not None:
        together.append((kind, pk, marked))
    else:
        _enqueue_on_commit([(kind, pk)])


def queued_on_creation() -> dict:
    """Fields for a step row to be dispatched as soon as it is created: inside
    ``steps_enqueued_together`` on the ORM broker, where its task is written in the
    same transaction (below), the row is created with the mark that says it is
    queued, rather than updated with it when the block ends (an UPDATE fewer per
    step). Elsewhere none: the mark comes with the enqueue, on commit. Pass
    ``marked=bool(fields)`` to ``dispatch_on_commit``."""
    if _together.get() is not None and _queue_in_transaction():
        return {"dispatched_until": durable.queued_until(timezone.now())}
    return {}


@contextmanager
def steps_enqueued_together() -> Iterator[None]:
    """Enqueue the steps dispatched in the block together. Use it inside a
    transaction that rolls back as a whole on error (signup owes two steps).

    On the ORM broker the queue is a table of the same database, so the steps are
    marked as queued and their tasks written when the block ends, inside that
    transaction: the rows that owe the work and the tasks that perform it commit
    together or not at all, and a signup commits once instead of twice. Nothing a
    worker can see exists before the commit (it reads only committed tasks), and
    nothing is left behind by a rollback. Otherwise (Redis, or the sync mode of
    tests, where enqueuing runs the step at once) they are enqueued once the
    transaction commits, as ``dispatch_on_commit`` does, in one go."""
    steps: list[tuple[str, int, bool]] = []
    token = _together.set(steps)
    try:
        yield
    finally:
        _together.reset(token)
    if not steps:
        return
    if _queue_in_transaction():
        _mark_and_enqueue([(kind, pk) for kind, pk, _ in steps],
                          unmarked=[(kind, pk) for kind, pk, marked in steps if not marked])
    else:
        _enqueue_on_commit([(kind, pk) for kind, pk, _ in steps])


def _queue_in_database() -> bool:
    """Tasks are rows of our database (django-q2's ORM broker), not sent elsewhere."""
    return "orm" in settings.Q_CLUSTER and not settings.Q_CLUSTER.get("sync")


def _queue_in_transaction() -> bool:
    """Tasks can be written in the transaction that is open now."""
    return _queue_in_database() and transaction.get_connection().in_atomic_block


def _mark_queued(steps: list[tuple[str, int]], *, now) -> dict[str, list[int]]:
    """Mark the steps as queued before a worker can see their tasks, so a reconcile
    pass that comes before a worker does not send them again (under load the queue
    held each signup's steps twice). Returns the ids marked, by kind."""
    by_kind = {kind: [pk for k, pk in steps if k == kind] for kind, _ in steps}
    for kind, pks in by_kind.items():
        durable.mark_dispatched(durable.kind_named(kind), pks, now=now)
    return by_kind


def _mark_and_enqueue(steps: list[tuple[str, int]], *, unmarked: list[tuple[str, int]]) -> None:
    """The ORM broker: marks (of the steps not created marked) and tasks in the
    caller's transaction, both or neither."""
    from provisioning.tasks import enqueue_step

    if unmarked:
        _mark_queued(unmarked, now=timezone.now())
    for kind, pk in steps:
        enqueue_step(kind, pk)


def _enqueue_on_commit(steps: list[tuple[str, int]]) -> None:
    from provisioning.tasks import enqueue_step

    def enqueue_or_leave_to_the_reconciler() -> None:  # named: Django's error log shows it
        # On the ORM broker the marks and the tasks' rows are one commit. Otherwise
        # (Redis, or the sync mode of tests) the marks commit first, so no
        # transaction of ours waits on the broker, and an enqueue that fails (Redis
        # down) takes them back: the next pass dispatches the steps. That commit need
        # not wait for the disk: marks and rows lost in a crash of the database are a
        # lost enqueue, which the next pass repairs.
        with transaction.atomic():
            commit_without_waiting_for_disk()
            if _queue_in_database():
                _mark_and_enqueue(steps, unmarked=steps)
                return
            now = timezone.now()
            by_kind = _mark_queued(steps, now=now)
        try:
            for kind, pk in steps:
                enqueue_step(kind, pk)
        except Exception:
            for kind, pks in by_kind.items():
                durable.unmark_dispatched(durable.kind_named(kind), pks, now=now)
            raise

    transaction.on_commit(enqueue_or_leave_to_the_reconciler, robust=True)


def workspace_request_retry(*, request: ProvisioningRequest, actor: str = "system",
                            why: str = "retry requested") -> bool:
    """Make the workspace step due now with fresh attempts and enqueue it. Safe to
    call twice; a step that is running or done is left alone. Returns True if the
    step was re-armed."""
    before = request.status
    changed = durable.step_retry_now(request)
    if changed:
        event_record(account_id=request.account_id, subject="workspace", from_state=before,
                     to_state=StepStatus.PENDING, why=why, actor=actor)
        dispatch_on_commit(KIND, request.pk)
    return changed


def _perform(request: ProvisioningRequest) -> str:
    account = request.account
    order = WorkspaceOrder(account_id=str(account.pk), company=account.company,
                           owner_email=account.email, idempotency_key=request.idempotency_key)
    return get_backend().create_workspace(order)


def _succeeded(request: ProvisioningRequest, external_id: str) -> None:
    account = request.account
    workspace, created = Workspace.objects.get_or_create(
        owner=account, defaults={"external_id": external_id, "name": account.company})
    if created:
        waited = bool(request.last_error_code)  # it failed or was held at least once
        event_record(account_id=account.pk, subject="workspace", from_state=StepStatus.RUNNING,
                     to_state=StepStatus.SUCCEEDED,
                     why=f"workspace {external_id} created after {request.attempts} attempt(s)")
        announce_on_commit(workspace_ready, sender=Workspace, account_id=account.pk,
                           workspace=workspace, waited=waited)


def _failed(request: ProvisioningRequest) -> None:
    event_record(account_id=request.account_id, subject="workspace", from_state=StepStatus.RUNNING,
                 to_state=StepStatus.FAILED,
                 why=f"{request.last_error_code}: {request.last_error_detail}")
    announce_on_commit(step_exhausted, sender=ProvisioningRequest, kind=KIND, step=request,
                       account_id=request.account_id)


def register_step_kind() -> None:
    durable.register(StepKind(
        name=KIND, model=ProvisioningRequest, perform=_perform,
        max_attempts=lambda: settings.PROVISIONING_MAX_ATTEMPTS,
        on_succeeded=_succeeded, on_failed=_failed, provider="provisioning", setup=Q(),
        load_with=("account",),
    ))
