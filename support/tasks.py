"""django-q2 tasks: "just another interface" calling one service."""
from __future__ import annotations


def sweep() -> str:
    from support.services import ticket_sweep

    return str(ticket_sweep())
