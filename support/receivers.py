"""Hand-offs from provisioning's signals to support services (one line each).

They run after the worker's transaction commits; an error here is logged and must
not fail the worker's task (its step is already recorded). ``ticket_sweep``, on a
schedule, opens or resolves whatever a lost announcement left behind."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def on_step_exhausted(*, kind: str, step, account_id: int | None, **kwargs) -> None:
    from support.services import ticket_escalate

    try:
        ticket_escalate(kind=kind, step=step, account_id=account_id)
    except Exception:
        log.exception("escalation failed for account %s (the sweep will retry)", account_id)


def on_workspace_ready(*, account_id: int, **kwargs) -> None:
    from support.services import ticket_account_ready

    try:
        ticket_account_ready(account_id=account_id)
    except Exception:
        log.exception("automatic resolution failed for account %s (the sweep will retry)", account_id)
