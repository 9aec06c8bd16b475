"""django-q2 tasks for accounts: "just another interface" over one flow each."""
from __future__ import annotations


def purge_abandoned_signups() -> str:
    from accounts.flows.purge import abandoned_signups_purge

    return str(abandoned_signups_purge())
