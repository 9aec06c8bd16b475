"""django-q2 tasks: "just another interface" calling services."""
from __future__ import annotations


def sweep() -> str:
    """The scheduled backstop: tickets for lost announcements, and incidents whose
    backlog drained without a receiver noticing."""
    from support.incidents import incidents_close_if_drained
    from support.services import ticket_sweep

    report = ticket_sweep()
    report["incidents_closed"] = len(incidents_close_if_drained())
    return str(report)
