"""Events the provisioning layer announces. Upper layers (accounts, support) listen;
this app never imports them (DESIGN: lower layers announce, upper layers react).

Every announcement goes out after the announcing transaction commits, through
``announce_on_commit``, and every receiver is wrapped in ``logged_receiver``: what
was recorded stays recorded whatever a listener does, and one listener's error never
stops another's (support's auto-resolve must not depend on the "all set" email).
"""
from __future__ import annotations

import functools
import logging

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

# A step ran out of automatic attempts or was refused for good.
# Sent with: kind (str), step, account_id.
step_exhausted = Signal()
# An account's workspace now exists. Sent with: account_id, workspace, waited (bool:
# the person saw at least one failure first).
workspace_ready = Signal()
# A provider's circuit opened (an outage began) or closed. Sent with: provider.
breaker_opened = Signal()
breaker_closed = Signal()
# A provider's open circuit is held open by another cause now: its probe was refused
# for us for another reason (our credentials, while it was open for an outage).
# Sent with: provider.
breaker_cause_changed = Signal()
# A scheduled or chained reconcile pass finished (provisioning.tasks.reconcile): a
# moment to put right what a lost announcement left out of step, well before the
# next sweep. Sent with: report (provisioning.reconciler.Report).
reconciled = Signal()
# A workspace was removed at the provider and its row deleted (an abandoned signup
# being purged). Sent with: account_id.
workspace_removed = Signal()


def announce_on_commit(signal: Signal, *, sender, **kwargs) -> None:
    """Send ``signal`` once the current transaction commits (at once outside one).

    ``send_robust``: a receiver that raises is logged by Django (``django.dispatch``)
    and the next receiver still runs, even one that forgot ``logged_receiver``.
    ``robust=True``: nothing an announcement does can fail the request or task that
    committed; the sweeps and the reconciler repair a lost announcement."""
    transaction.on_commit(lambda: signal.send_robust(sender=sender, **kwargs), robust=True)


def logged_receiver(failure: str):
    """Decorate a receiver: on error, log ``failure`` (formatted with the signal's
    keyword arguments, so it can name the account and say what repairs it) and return,
    instead of failing the worker's task or the other receivers."""
    def decorate(receiver):
        @functools.wraps(receiver)
        def run(**kwargs) -> None:
            try:
                receiver(**kwargs)
            except Exception:
                log.exception(failure.format(**kwargs))
        return run
    return decorate
