"""Writes about incidents: a provider outage recognised as one thing (issue 4).

The provisioning layer announces that a provider's circuit breaker opened or closed
(``provisioning.signals``); here that becomes an ``Incident``: opened by itself,
noted when the provider recovers, closed by itself once the steps that waited on it
have all been done, and then each person who waited gets one "you're all set —
sorry for the wait" email. The close check runs from four places (the
workspace_ready, breaker_closed and reconciled receivers, and the scheduled sweep);
it is idempotent, so any of them may run it any number of times.

Status changes only here, on a locked row, each writing an IncidentEvent.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.emails import email_queue_bulk
from accounts.models import EmailKind, User
from provisioning import breaker
from provisioning.durable import kind_of
from provisioning.selectors import (
    circuit_opened_at,
    circuit_opening,
    open_circuits,
    outage_counts,
    outage_has_backlog,
    outage_waiting,
    outage_waiting_count,
)
from support import messages as words
from support.models import (
    UNRESOLVED,
    ContactMessage,
    Incident,
    IncidentEvent,
    IncidentEventKind,
    IncidentStatus,
    Provider,
    Reason,
    Ticket,
    TicketStatus,
)
from support.selectors import apology_recipients, incident_error_codes

log = logging.getLogger(__name__)


def open_incident(provider: str) -> Incident | None:
    return Incident.objects.filter(provider=provider, status=IncidentStatus.OPEN).first()


def incident_open(*, provider: str, started_at: datetime | None = None) -> Incident:
    """The provider's circuit opened (at ``started_at``, default now): open its
    incident, or return the one already open (idempotent; the partial unique
    constraint settles two racing callers)."""
    with transaction.atomic():
        existing = open_incident(provider)
        if existing is not None:
            return existing
        try:
            opened_by, failure, cause = circuit_opening(provider)
            with transaction.atomic():  # a savepoint: a lost race leaves the outer transaction usable
                incident = Incident.objects.create(provider=provider, started_at=started_at or timezone.now(),
                                                   cause=cause, opened_by=opened_by,
                                                   failure=failure)
                IncidentEvent.objects.create(
                    incident=incident, kind=IncidentEventKind.OPENED, text=words.incident_opening(
                        provider=Provider(provider).label.lower(), opened_by=opened_by, code=failure))
        except IntegrityError:
            return Incident.objects.get(provider=provider, status=IncidentStatus.OPEN)
    log.warning("incident opened: %s outage", provider)
    return incident


def incident_note_cause(*, provider: str, incident: Incident | None = None) -> Incident | None:
    """The provider's open circuit is held open by a refusal other than the one its
    open incident says (its probe was refused for us for another reason, say our
    credentials during an outage; or it opened again for such a refusal while the
    incident drained): the incident takes the circuit's cause and what it is, and its
    timeline says so, so its to-do is the one that fits (check the credentials, not
    "nothing to do"). Its ``failure`` stays: the steps that failed with it waited on
    this incident all the same. A circuit open for an outage (no cause) changes
    nothing: the refusal the incident had may still have steps to re-run.
    Idempotent; one query when nothing changed. Returns the incident if it changed now."""
    incident = incident or open_incident(provider)
    if incident is None:
        return None
    opened_by, _failure, cause = circuit_opening(provider)
    if not cause or (opened_by, cause) == (incident.opened_by, incident.cause):
        return None
    with transaction.atomic():
        changed = (Incident.objects.filter(pk=incident.pk, status=IncidentStatus.OPEN)
                   .exclude(opened_by=opened_by, cause=cause).update(opened_by=opened_by, cause=cause))
        if not changed:  # another caller noted it first
            return None
        IncidentEvent.objects.create(incident=incident, kind=IncidentEventKind.CAUSE, text=words.incident_new_cause(
            provider=Provider(provider).label.lower(), opened_by=opened_by, code=cause))
    incident.opened_by, incident.cause = opened_by, cause
    log.warning("incident %s: %s circuit now held open by %s (%s)", incident.pk, provider, opened_by, cause)
    return incident


def incident_absorb_tickets(*, incident: Incident) -> int:
    """A refusal that came back for many accounts is ours: the engine re-armed the
    steps it had already failed, to wait behind the open circuit with everyone else
    (provisioning.durable). The tickets automation opened for them are this
    incident's matter now: each is resolved automatically and noted on the incident,
    unless the person wrote since our last reply. Idempotent. Returns how many."""
    from support.services import ticket_account_ready  # services imports this module

    reason = {Provider.PROVISIONING: Reason.WORKSPACE_FAILED, Provider.EMAIL: Reason.EMAIL_FAILED}[incident.provider]
    tickets = Ticket.objects.filter(outage_waiting(incident.provider, account="account_id"),
                                    status__in=UNRESOLVED, reason=reason)
    absorbed = 0
    for ticket in tickets.select_related("account").order_by("pk"):
        with transaction.atomic():
            done = ticket_account_ready(account_id=ticket.account_id, note=False,
                                        why=str(words.TICKET_JOINED_INCIDENT))
            if done is None or done.status != TicketStatus.RESOLVED:
                continue
            IncidentEvent.objects.create(incident=incident, kind=IncidentEventKind.ATTACHED, account=ticket.account,
                                         text=str(words.INCIDENT_TICKET_JOINED).format(
                                             email=ticket.account.email, reference=ticket.reference))
            absorbed += 1
    return absorbed


@dataclass(frozen=True)
class IncidentFigures:
    """An incident's numbers, defined once: its page, the list, the banner and its
    timeline lines all read these, so they cannot disagree.

    affected: accounts whose step for the provider waits after an error now, or went
        through during the incident (the window before it opened included) after
        this incident's own error (held behind its circuit, or its failure:
        ``support.selectors.incident_error_codes``; not a person's own refusal nor
        an earlier failure of another kind);
    waiting: of those, the accounts whose step is still waiting now (0 once closed);
    drained: of those, the accounts whose step has since gone through (and none waiting);
    peak: the most accounts seen waiting at once, never less than waiting now.
    So waiting <= peak <= affected, and waiting + drained <= affected (the rest
    stopped for another reason: a ticket's matter, or a closed account)."""

    affected: int
    waiting: int
    drained: int
    peak: int


def _window_start(incident: Incident) -> datetime:
    # The failures that opened the circuit happened up to a window before it opened.
    return incident.started_at - timedelta(seconds=settings.BREAKER_WINDOW_SECONDS)


def incident_figures(incident: Incident) -> IncidentFigures:
    """The figures of one incident: those stored when it closed, or live while it is
    open (one statement, over the steps the outage touched rather than every
    account: ``provisioning.selectors.outage_counts``)."""
    if incident.status == IncidentStatus.CLOSED:
        return IncidentFigures(affected=incident.affected, waiting=0, drained=incident.drained,
                               peak=min(incident.peak_backlog, incident.affected))
    counts = outage_counts(incident.provider, _window_start(incident), incident_error_codes(incident))
    return IncidentFigures(affected=counts.waited, waiting=counts.waiting, drained=counts.drained,
                           peak=min(max(incident.peak_backlog, counts.waiting), counts.waited))


def _sample_peak(incident: Incident, *, also_waited: int = 0) -> None:
    """Remember the most accounts seen waiting at once: those waiting now, plus
    ``also_waited`` that were waiting with them a moment ago. It runs at each
    reconcile pass while the incident is open (``incidents_match_circuits``), when
    the circuit closes (the most that waited) and when the incident closes: one
    statement, over what waits. The figures never show less than what waits now."""
    waiting = outage_waiting_count(incident.provider) + also_waited
    Incident.objects.filter(pk=incident.pk).update(peak_backlog=Greatest(F("peak_backlog"), waiting))


def incident_note_recovered(*, provider: str) -> Incident | None:
    """The provider's circuit closed: say how many of those affected still wait."""
    incident = open_incident(provider)
    if incident is None:
        return None
    with transaction.atomic():
        # The step whose success closed the circuit (the probe) was waiting with the
        # others until a moment ago: while the circuit was open, only probes go through.
        probes = outage_counts(provider, incident.started_at, incident_error_codes(incident)).drained
        _sample_peak(incident, also_waited=probes)
        figures = incident_figures(incident)
        IncidentEvent.objects.create(incident=incident, kind=IncidentEventKind.RECOVERED, text=words.incident_recovered(
            provider=incident.get_provider_display().lower(), opened_by=incident.opened_by, code=incident.cause,
            waiting=figures.waiting, affected=figures.affected, drained=figures.drained))
    return incident


def incident_close_if_drained(*, provider: str) -> Incident | None:
    """Close the provider's open incident if its circuit is closed and nothing waits
    on it any more; then queue one apology for each person whose step was done after
    waiting (idempotent: the email's key is the account, shared with
    accounts.receivers, so nobody gets it twice). Returns the incident if it closed
    now; None if there was none open or it still has a backlog."""
    if open_incident(provider) is None:  # the common case: one cheap query
        return None
    # Each step that drains asks, many a second in a heal: while some still wait, the
    # answer costs an EXISTS, neither the incident's lock nor its counts.
    if breaker.is_open(provider) or outage_has_backlog(provider):
        return None
    with transaction.atomic():
        incident = (Incident.objects.select_for_update()
                    .filter(provider=provider, status=IncidentStatus.OPEN).first())
        if incident is None:  # another caller closed it while we waited for the lock
            return None
        _sample_peak(incident)
        if outage_has_backlog(provider) or breaker.is_open(provider):
            return None
        now = timezone.now()
        since = _window_start(incident)
        # Nothing waits any more (no backlog), so every account drained counts.
        counts = outage_counts(provider, since, incident_error_codes(incident))
        affected, drained = counts.waited, counts.drained
        Incident.objects.filter(pk=incident.pk).update(
            status=IncidentStatus.CLOSED, ended_at=now, affected=affected, drained=drained,
            apologies_pending=True, apology_cursor=0)
        IncidentEvent.objects.create(incident=incident, kind=IncidentEventKind.CLOSED, text=words.incident_closed(
            started=words.console_time(incident.started_at), ended=words.console_time(now),
            affected=affected, drained=drained))
        # The apologies go in batches, each its own short transaction, from a task of
        # their own: an outage can strand more people than one transaction (or one
        # task's 90 s) should hold. If the enqueue fails, the sweep picks them up.
        transaction.on_commit(lambda: enqueue_apologies(incident.pk), robust=True)
    incident.refresh_from_db()
    log.warning("incident closed: %s outage, %d affected, %d drained", provider, affected, drained)
    return incident


def enqueue_apologies(incident_id: int) -> None:
    from django_q.tasks import async_task

    async_task("support.tasks.apologize", incident_id, group="apologies")


def incident_apologize(*, incident_id: int, batches: int | None = None) -> bool:
    """Queue the closed incident's "you're all set — sorry for the wait" emails, at
    most ``batches`` batches (INCIDENT_APOLOGY_BATCHES_PER_TASK) of
    INCIDENT_APOLOGY_BATCH accounts (``apology_recipients``), starting no batch
    after the first once INCIDENT_APOLOGY_SECONDS_PER_TASK have passed. Each batch
    is one transaction that owes its emails in one statement (``email_queue_bulk``:
    the dispatcher sends them at the provider's pace) and moves the incident's cursor
    past them, so a task killed between batches resumes after the last one done, and
    one killed inside a batch leaves nothing of it. Each person gets the email once
    whatever happens: its key is the account, shared with accounts.receivers.
    Returns True if some remain (call again), False when none do."""
    size = max(1, settings.INCIDENT_APOLOGY_BATCH)
    stop_at = time.monotonic() + settings.INCIDENT_APOLOGY_SECONDS_PER_TASK
    for n in range(batches or settings.INCIDENT_APOLOGY_BATCHES_PER_TASK):
        if n and time.monotonic() > stop_at:
            return True  # the next task carries on
        with transaction.atomic():
            incident = Incident.objects.select_for_update().filter(pk=incident_id, apologies_pending=True).first()
            if incident is None:
                return False
            batch = list(apology_recipients(incident=incident).filter(pk__gt=incident.apology_cursor)[:size])
            email_queue_bulk(accounts=batch, kind=EmailKind.ALL_SET, key=lambda account: str(account.pk))
            done = len(batch) < size
            Incident.objects.filter(pk=incident.pk).update(
                apologies_pending=not done, apology_cursor=batch[-1].pk if batch else incident.apology_cursor)
        if done:
            return False
    return True


def incidents_apologize() -> int:
    """Carry on with the apologies of every closed incident that still owes some
    (their task was lost or killed). Returns how many incidents still owe some."""
    pending = Incident.objects.filter(apologies_pending=True).order_by("pk").values_list("pk", flat=True)
    return sum(incident_apologize(incident_id=pk) for pk in list(pending))


def incidents_close_if_drained() -> list[Incident]:
    """Run the close check for every provider with an open incident. One query when
    there is none."""
    providers = set(Incident.objects.filter(status=IncidentStatus.OPEN).values_list("provider", flat=True))
    return [closed for provider in sorted(providers) if (closed := incident_close_if_drained(provider=provider))]


def incidents_match_circuits() -> dict[str, int]:
    """Make open incidents and open circuits agree, whatever announcement was lost:
    open the incident of every provider whose circuit is open without one (dated
    from the opening), and run the close check for every open incident. Run after
    every reconcile pass (support.receivers) and by the scheduled sweep; on the way,
    it samples the peak of each open incident, and notes the recovery of one whose
    circuit closed unheard (which samples the peak with those drained since: they
    were all waiting when it closed), and gives an incident the cause its open
    circuit has now (``incident_note_cause``) if that announcement was lost.
    Idempotent. Three queries when no circuit and no incident is open. Returns the
    counts."""
    opened, circuits = 0, open_circuits()
    for provider, since in sorted(circuits.items()):
        if provider in Provider.values and open_incident(provider) is None:
            incident_open(provider=provider, started_at=since)
            opened += 1
    for incident in Incident.objects.filter(status=IncidentStatus.OPEN):
        if incident.provider not in circuits and not _recovery_noted(incident):
            incident_note_recovered(provider=incident.provider)  # "circuit closed" was lost
        else:
            if incident.provider in circuits:  # in case "its cause changed" was lost
                incident_note_cause(provider=incident.provider, incident=incident)
            _sample_peak(incident)
    return {"incidents_opened": opened, "incidents_closed": len(incidents_close_if_drained())}


def _recovery_noted(incident: Incident) -> bool:
    """Whether the incident's timeline says the provider recovered since its circuit
    last opened (an incident stays open across a circuit that opens again)."""
    since = circuit_opened_at(incident.provider) or incident.started_at
    return incident.events.filter(kind=IncidentEventKind.RECOVERED, created_at__gte=since).exists()


def incidents_match_breakers() -> dict[str, int]:
    """The sweep's share: ``incidents_match_circuits``, and carrying on with the
    apologies a lost or killed task left owed (``incidents_apologize``)."""
    return incidents_match_circuits() | {"incidents_owing_apologies": incidents_apologize()}


def incident_attach_exhausted(*, step, account_id: int | None) -> Incident | None:
    """A step ran out of retries. If its provider's circuit is open now, the outage
    explains it: note it on the incident, re-arm the account's steps so they wait
    for the recovery with everyone else, and return the incident (the caller opens
    no ticket). Otherwise return None and the caller escalates as usual.

    This is rare: attempts made while the circuit is open do not count, so only a
    step that used its last counted attempts just before the circuit opened gets
    here. A refusal for good (a permanent error) is never the outage's doing."""
    from accounts.services import account_resume  # accounts is above provisioning, beside us

    try:
        kind = kind_of(step)
    except LookupError:
        return None
    if not kind.provider or step.counted_attempts < kind.max_attempts() or not breaker.is_open(kind.provider):
        return None
    incident = open_incident(kind.provider) or incident_open(provider=kind.provider)
    account = User.objects.filter(pk=account_id).first() if account_id else None
    with transaction.atomic():
        if account is not None:
            account_resume(account=account, actor=f"incident {incident.pk}",
                           why="ran out of retries during the outage: waits for the recovery with the others")
        IncidentEvent.objects.create(incident=incident, kind=IncidentEventKind.ATTACHED, account=account, text=str(
            words.INCIDENT_STEP_EXHAUSTED).format(what=words.STEP_NAMES.get(kind.name, kind.name),
                                                  email=account.email if account else "-"))
    return incident


def incident_attach_message(*, contact: ContactMessage) -> Incident | None:
    """Someone wrote to /help/ while an incident is open: attach their message to the
    longest-running one. Call inside the transaction that stores the message."""
    incident = Incident.objects.filter(status=IncidentStatus.OPEN).order_by("started_at", "pk").first()
    if incident is None:
        return None
    ContactMessage.objects.filter(pk=contact.pk).update(incident=incident)
    contact.incident = incident
    IncidentEvent.objects.create(incident=incident, kind=IncidentEventKind.ATTACHED, account=contact.account,
                                 text=str(words.INCIDENT_MESSAGE).format(email=contact.email,
                                                                         reference=contact.ticket.reference))
    return incident
