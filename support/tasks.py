"""django-q2 tasks: "just another interface" calling services."""
from __future__ import annotations


def sweep() -> str:
    """The scheduled backstop for lost announcements: tickets, and incidents that
    disagree with the circuits (one missing for an open circuit, or one whose
    backlog drained without a receiver noticing)."""
    from support.incidents import incidents_match_breakers
    from support.services import ticket_sweep

    return str(ticket_sweep() | incidents_match_breakers())
