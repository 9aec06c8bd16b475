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


def on_workspace_ready_close_incidents(**kwargs) -> None:
    from support.incidents import incidents_close_if_drained

    try:
        incidents_close_if_drained()
    except Exception:
        log.exception("incident close check failed (the sweep will retry)")


def on_breaker_opened(*, provider: str, **kwargs) -> None:
    from support.incidents import incident_open

    try:
        incident_open(provider=provider)
    except Exception:
        log.exception("could not open the %s incident (the next opening or the console will show it)", provider)


def on_breaker_closed(*, provider: str, **kwargs) -> None:
    from support.incidents import incident_close_if_drained, incident_note_recovered

    try:
        incident_note_recovered(provider=provider)
        incident_close_if_drained(provider=provider)
    except Exception:
        log.exception("incident update failed for %s (the sweep will retry)", provider)
