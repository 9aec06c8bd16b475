"""Hand-offs from provisioning's signals to support services (one line each).

They run after the worker's transaction commits; an error here is logged and must
not fail the worker's task (its step is already recorded) nor stop the other
receivers (``provisioning.signals.logged_receiver``). ``ticket_sweep``, on a schedule,
opens or resolves whatever a lost announcement left behind."""
from __future__ import annotations

from provisioning.signals import logged_receiver


@logged_receiver("escalation failed for account {account_id} (the sweep will retry)")
def on_step_exhausted(*, kind: str, step, account_id: int | None, **kwargs) -> None:
    from support.services import ticket_escalate

    ticket_escalate(kind=kind, step=step, account_id=account_id)


@logged_receiver("automatic resolution failed for account {account_id} (the sweep will retry)")
def on_workspace_ready(*, account_id: int, **kwargs) -> None:
    from support.services import ticket_account_ready

    ticket_account_ready(account_id=account_id)


@logged_receiver("incident close check failed (the sweep will retry)")
def on_workspace_ready_close_incidents(**kwargs) -> None:
    from support.incidents import incidents_close_if_drained

    incidents_close_if_drained()


@logged_receiver("could not open the {provider} incident (the next opening or the console will show it)")
def on_breaker_opened(*, provider: str, **kwargs) -> None:
    from support.incidents import incident_absorb_tickets, incident_note_cause, incident_open

    incident = incident_open(provider=provider)
    incident_note_cause(provider=provider, incident=incident)  # open already, and it opened again for another cause
    incident_absorb_tickets(incident=incident)


@logged_receiver("could not note the new cause of the {provider} incident (the next reconcile pass will)")
def on_breaker_cause_changed(*, provider: str, **kwargs) -> None:
    from support.incidents import incident_note_cause

    incident_note_cause(provider=provider)


@logged_receiver("incident update failed for {provider} (the sweep will retry)")
def on_breaker_closed(*, provider: str, **kwargs) -> None:
    from support.incidents import incident_close_if_drained, incident_note_recovered

    incident_note_recovered(provider=provider)
    incident_close_if_drained(provider=provider)


@logged_receiver("could not match incidents to the circuits after a pass (the sweep will retry)")
def on_reconciled(**kwargs) -> None:
    from support.incidents import incidents_match_circuits

    incidents_match_circuits()


@logged_receiver("could not resolve the ticket of closed account {account_id} (resolve it by hand)")
def on_account_closed(*, account_id: int, actor: str, reason: str, **kwargs) -> None:
    from support.services import ticket_account_closed

    ticket_account_closed(account_id=account_id, actor=actor, reason=reason)
