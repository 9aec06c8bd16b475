"""django-q2 tasks: "just another interface" calling services."""
from __future__ import annotations


def sweep() -> str:
    """The scheduled backstop for lost announcements: tickets, and incidents that
    disagree with the circuits (one missing for an open circuit, or one whose
    backlog drained without a receiver noticing)."""
    from support.incidents import incidents_match_breakers
    from support.services import ticket_sweep

    return str(ticket_sweep() | incidents_match_breakers())


def apologize(incident_id: int) -> str:
    """Queue a closed incident's apologies, a bounded number of batches per task;
    hand the rest to a fresh task (the sweep also carries on if this one is lost)."""
    from support.incidents import enqueue_apologies, incident_apologize

    more = incident_apologize(incident_id=incident_id)
    if more:
        enqueue_apologies(incident_id)
    return "more to come" if more else "done"
