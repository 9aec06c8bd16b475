"""django-q2 tasks for accounts: "just another interface" over one flow each."""
from __future__ import annotations


def purge_abandoned_signups() -> str:
    from accounts.flows.purge import abandoned_signups_purge

    return str(abandoned_signups_purge())


def fold_state_tally() -> str:
    from accounts.state_tally import state_tally_fold_all

    return str(state_tally_fold_all())
