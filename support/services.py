"""Writes about tickets: escalation, the contact form and automatic resolution.
Every status change goes through ``ticket_transition`` on a locked row and writes a
TicketEvent; emails go through the durable outbox. The console's buttons are in
``support.actions``."""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.emails import email_queue
from accounts.models import EmailDelivery, EmailKind, User, email_is, normalize_email
from accounts.selectors import State, account_overview, latest_verification, with_lifecycle_state
from provisioning.durable import StepStatus
from provisioning.models import ProvisioningRequest
from provisioning.selectors import step_refused
from support import messages as words
from support.incidents import incident_attach_exhausted, incident_attach_message
from support.models import (
    TRANSITIONS,
    UNRESOLVED,
    CallbackStatus,
    ContactMessage,
    EventKind,
    Priority,
    Reason,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from support.selectors import accounts_needing_a_ticket, help_answer

log = logging.getLogger(__name__)


class TicketError(Exception):
    """Base of what ticket services refuse to do."""


class TicketTransitionError(TicketError):
    """The ticket's status does not allow this move."""

    def __init__(self, ticket: Ticket, to: str):
        super().__init__(f"{ticket.reference} is {ticket.status}; it cannot become {to}")
        self.found = ticket.status


# --- Opening, joining, moving -------------------------------------------------------------

def _locked_unresolved(*, account: User | None, email: str) -> Ticket | None:
    tickets = Ticket.objects.select_for_update().filter(status__in=UNRESOLVED)
    if account is not None:
        return tickets.filter(account=account).first()
    return tickets.filter(account__isnull=True, email=email).first()


def ticket_transition(ticket: Ticket, to: str, *, actor: str, why: str = "", automatically: bool = False) -> None:
    """Move a locked ticket to ``to``, or raise TicketTransitionError naming the state
    it found. The one place a ticket's status is assigned. Resolving settles a
    call-back request still waiting on it first, or raises CallbackWaiting
    (``support.callbacks.callback_settle_for_resolve``)."""
    # Imported here: support.callbacks builds on this module.
    from support.callbacks import callback_settle_for_resolve

    if to not in TRANSITIONS[ticket.status]:
        raise TicketTransitionError(ticket, to)
    if to == TicketStatus.RESOLVED:
        callback_settle_for_resolve(ticket=ticket, actor=actor)
    now = timezone.now()
    fields = {"status": to}
    if to == TicketStatus.RESOLVED:
        fields.update(resolved_at=now, resolved_automatically=automatically)
    if to == TicketStatus.OPEN:
        fields["waiting_since"] = now
    Ticket.objects.filter(pk=ticket.pk).update(**fields)
    TicketEvent.objects.create(ticket=ticket, kind=EventKind.STATUS, actor=actor, from_status=ticket.status,
                               to_status=to, text=why)
    for name, value in fields.items():
        setattr(ticket, name, value)


def ticket_open_or_update(*, account: User | None, email: str, reason: str, priority: int,
                          kind: str, text: str, actor: str = "system") -> Ticket:
    """Add an event to the unresolved ticket of ``account`` (or, without one, of the
    address), or open one. Never a second ticket: two racing callers both try to
    insert, the partial unique constraint lets one win, and the other joins its
    ticket. A more urgent fact raises the priority; a ticket waiting on the customer
    is re-opened. Returns the (locked, if in a transaction) ticket."""
    email = normalize_email(email)
    with transaction.atomic():
        for _ in range(5):
            ticket = _locked_unresolved(account=account, email=email)
            if ticket is not None:
                break
            try:
                with transaction.atomic():  # a savepoint: a lost race leaves the outer transaction usable
                    ticket = Ticket.objects.create(account=account, email=email, reason=reason, priority=priority)
                    TicketEvent.objects.create(ticket=ticket, kind=EventKind.OPENED, actor=actor,
                                               to_status=TicketStatus.OPEN,
                                               text=str(words.OPENED).format(reason=Reason(reason).label))
                break
            except IntegrityError:  # another caller opened it first (or, rarely, the reference was taken)
                continue
        else:
            raise TicketError("could not open or find the ticket")
        if priority < ticket.priority:
            Ticket.objects.filter(pk=ticket.pk).update(priority=priority)
            ticket.priority = priority
        if ticket.status == TicketStatus.WAITING_ON_CUSTOMER:
            ticket_transition(ticket, TicketStatus.OPEN, actor=actor, why=text[:200])
        TicketEvent.objects.create(ticket=ticket, kind=kind, actor=actor, text=text)
    return ticket


def ticket_escalate(*, kind: str, step, account_id: int | None) -> Ticket | None:
    """Automation gave up on a step: open the account's ticket, or add to it, with
    what the step saw. Workspace steps and verification emails escalate; our own
    replies that fail are noted on their ticket; other emails are only logged.
    Returns the ticket touched, if any.

    During an outage (the step's provider has its circuit open) the step is attached
    to the incident instead and re-armed: nobody affected opens a ticket of their own
    (support.incidents.incident_attach_exhausted says when that can happen at all)."""
    if kind == "email" and getattr(step, "kind", "") in (EmailKind.SUPPORT, EmailKind.ACKNOWLEDGEMENT):
        return ticket_note_email_failed(delivery=step)
    if account_id is None or (kind == "email" and step.kind != EmailKind.VERIFICATION):
        log.info("step exhausted without escalation: %s %s", kind, getattr(step, "pk", None))
        return None
    if incident_attach_exhausted(step=step, account_id=account_id) is not None:
        return None
    account = User.objects.get(pk=account_id)
    if not account.is_active:  # closed by staff: nothing more is done for it
        return None
    reason = Reason.WORKSPACE_FAILED if kind == "workspace" else Reason.EMAIL_FAILED
    text = str(words.DIAGNOSTICS_REFUSED if step_refused(step) else words.DIAGNOSTICS).format(
        what=words.STEP_NAMES.get(kind, kind), tries=words.tries(step.attempts), counted=step.counted_attempts,
        code=step.last_error_code or "-", detail=step.last_error_detail or "-",
        button=words.BUTTONS[words.STEP_BUTTONS[kind]][0])
    return ticket_open_or_update(account=account, email=account.email, reason=reason,
                                 priority=Priority.AUTOMATION_EXHAUSTED, kind=EventKind.DIAGNOSTICS, text=text)


def ticket_note_email_failed(*, delivery: EmailDelivery) -> Ticket | None:
    """One of our support emails (a reply, or the automatic acknowledgement) could not
    be delivered: note which on its ticket and put the ticket back in front of the
    support person."""
    reference = (delivery.context or {}).get("reference")
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().filter(reference=reference).first()
        if ticket is None:
            return None
        failed = words.OUR_ACK_FAILED if delivery.kind == EmailKind.ACKNOWLEDGEMENT else words.OUR_EMAIL_FAILED
        TicketEvent.objects.create(ticket=ticket, kind=EventKind.NOTE, text=str(failed).format(
            address=delivery.to_address, code=delivery.last_error_code or "-"))
        if ticket.status == TicketStatus.WAITING_ON_CUSTOMER:
            ticket_transition(ticket, TicketStatus.OPEN, actor="system", why="our email was not delivered")
    return ticket


def contact_message_receive(*, email: str, message: str, signed_in_as: User | None = None) -> ContactMessage:
    """Someone wrote to /help/. Signed in, the message joins their account's ticket
    (whatever address they typed: it is where we reply). Logged out, a registered
    address joins that account's ticket and an unknown one opens (or joins) an
    unmatched ticket for the address. Either way the caller shows the same answer
    with the ticket's reference (random, so it reveals nothing). An automatic
    acknowledgement (its own kind: nobody in support wrote it) goes to the typed
    address through the outbox. While an incident is open the
    message is attached to it (``contact.incident``), whoever wrote it. What the
    caller is to answer (``contact.answer``, ``support.selectors.help_answer``) is
    written on the ticket's timeline, so support sees what the person was told."""
    email = normalize_email(email)
    account = signed_in_as
    if account is None:
        account = User.objects.filter(email_is(email), is_staff=False).first()
    with transaction.atomic():
        ticket = ticket_open_or_update(
            account=account, email=account.email if account else email, reason=Reason.CONTACT,
            priority=Priority.PERSON_WROTE, kind=EventKind.MESSAGE, text=message,
            actor="the person (signed in)" if signed_in_as else "via /help/ (not signed in)")
        contact = ContactMessage.objects.create(ticket=ticket, account=account, email=email, message=message,
                                                signed_in=signed_in_as is not None)
        incident_attach_message(contact=contact)
        contact.answer = help_answer(contact=contact, signed_in_as=signed_in_as)
        TicketEvent.objects.create(ticket=ticket, kind=EventKind.NOTE,
                                   text=str(words.HELP_TOLD).format(answer=contact.answer.text))
        email_queue(account=account, kind=EmailKind.ACKNOWLEDGEMENT, key=f"ack:{contact.pk}", to_address=email,
                    context={"body": str(words.ACK_BODY).format(reply_hours=settings.SUPPORT_REPLY_HOURS),
                             "reference": ticket.reference})
    return contact


def ticket_account_ready(*, account_id: int, why: str = "", note: bool = True) -> Ticket | None:
    """The account healed (its workspace now exists): resolve its ticket
    automatically, unless the account still needs a person (another fact is
    failing), the person asked us to call (the call is kept: a healed setup does
    not answer a request to talk) or wrote since our last reply (a question
    automation cannot answer); then, if ``note``, say so on the timeline. A kept
    call-back is said even without ``note`` (the sweep's backstop) whenever the
    account is healed, once: not again while nothing happened since. The
    "you're all set" email is queued by accounts.receivers, once. Returns the
    ticket, if any."""
    account = User.objects.get(pk=account_id)
    with transaction.atomic():
        ticket = _locked_unresolved(account=account, email=account.email)
        if ticket is None:
            return None
        state = account_overview(account=account).state
        if state in (State.NEEDS_SUPPORT, State.EMAIL_UNDELIVERABLE, State.DISABLED):
            if note:
                TicketEvent.objects.create(ticket=ticket, kind=EventKind.NOTE, text=str(
                    words.READY_KEPT_OPEN_STATE).format(state=words.STATE_LABELS[state]))
        elif (waiting := ticket.callbacks.filter(status=CallbackStatus.REQUESTED).first()) is not None:
            said = str(words.READY_KEPT_OPEN_CALLBACK).format(phone=waiting.phone.as_international)
            last = ticket.events.order_by("-created_at", "-pk").first()
            if state in (State.UNVERIFIED, State.ACTIVE) and not (last and last.kind == EventKind.NOTE
                                                                 and last.text == said):
                TicketEvent.objects.create(ticket=ticket, kind=EventKind.NOTE, text=said)
        elif _awaiting_reply(ticket):
            if note:
                TicketEvent.objects.create(ticket=ticket, kind=EventKind.NOTE, text=str(words.READY_KEPT_OPEN_MESSAGE))
        else:
            ticket_transition(ticket, TicketStatus.RESOLVED, actor="system", why=why or str(words.READY_RESOLVED),
                        automatically=True)
    return ticket


def ticket_sweep(*, limit: int = 200) -> dict[str, int]:
    """The backstop for announcements that never arrived (a process died between
    committing a step's outcome and announcing it): open a ticket for each account
    that needs support and has none, unless support resolved one after the failure
    (``accounts_needing_a_ticket``: only a new failure or a new message reopens
    what a person closed), and resolve automation's tickets whose account
    has healed. Idempotent; runs on a schedule (with the incidents' close check,
    support.tasks.sweep). Returns the counts."""
    opened = 0
    for account in accounts_needing_a_ticket(limit=limit):
        request = ProvisioningRequest.objects.filter(account=account, status=StepStatus.FAILED).first()
        if request is not None:
            opened += bool(ticket_escalate(kind="workspace", step=request, account_id=account.pk))
        elif (delivery := latest_verification(account)) is not None:
            opened += bool(ticket_escalate(kind="email", step=delivery, account_id=account.pk))
    healed = (with_lifecycle_state(Ticket.objects.filter(status__in=UNRESOLVED,
                                                         reason__in=[Reason.WORKSPACE_FAILED, Reason.EMAIL_FAILED]),
                                   prefix="account__", name="state")
              .filter(state__in=[State.UNVERIFIED, State.ACTIVE]).order_by("pk")[:limit])
    resolved = 0
    for ticket in healed:
        done = ticket_account_ready(account_id=ticket.account_id, note=False, why=str(
            words.HEALED_RESOLVED).format(state=words.STATE_LABELS[ticket.state]))
        resolved += bool(done and done.status == TicketStatus.RESOLVED)
    return {"opened": opened, "resolved": resolved}


def _awaiting_reply(ticket: Ticket) -> bool:
    """The person is owed an answer: a call they asked for, or a reply to their last message."""
    if ticket.callbacks.filter(status=CallbackStatus.REQUESTED).exists():
        return True
    last_message = ticket.messages.order_by("-created_at").values_list("created_at", flat=True).first()
    if last_message is None:
        return False
    return not ticket.events.filter(kind=EventKind.REPLY, created_at__gte=last_message).exists()


def ticket_resolve(*, ticket: Ticket, actor: str, why: str = "", automatically: bool = False) -> Ticket:
    """Resolve a ticket. Raises TicketTransitionError if it is already resolved."""
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        ticket_transition(locked, TicketStatus.RESOLVED, actor=actor, why=why, automatically=automatically)
    return locked


def ticket_account_closed(*, account_id: int, actor: str, reason: str) -> Ticket | None:
    """Staff closed the account: cancel the call-backs it waits for
    (``support.callbacks.callbacks_cancel_account_closed``), then resolve its
    unresolved ticket, if any, saying why (nothing more will be done for it).
    Idempotent. Returns the ticket resolved."""
    # Imported here: support.callbacks builds on this module.
    from support.callbacks import callbacks_cancel_account_closed

    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().filter(account_id=account_id, status__in=UNRESOLVED).first()
        callbacks_cancel_account_closed(account_id=account_id, actor=actor)
        if ticket is None:
            return None
        ticket_transition(ticket, TicketStatus.RESOLVED, actor=actor,
                    why=str(words.CLOSED_RESOLVED).format(reason=reason))
    return ticket
