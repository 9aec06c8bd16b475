"""A way back that is not email (DESIGN principle 3): a person who is stuck asks us to
call them, and support records the calls it makes.

A call-back request rides on the person's one ticket (the same matching as /help/:
signed in, their account's ticket; logged out, the account the typed address
belongs to, else an unmatched ticket for the address), raises it to the top of the
queue while it waits, and keeps it from resolving itself until someone has called.
Its states and moves are written once in ``support.models`` (CALLBACK_TRANSITIONS);
``_callback_transition`` is the one place a request's status is assigned.
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User, email_is, normalize_email
from support import messages as words
from support.actions import ActionResult, _act, console_actor
from support.models import (
    CALLBACK_TRANSITIONS,
    Call,
    CallbackRequest,
    CallbackStatus,
    CallOutcome,
    ConsoleActionKind,
    EventKind,
    Priority,
    Reason,
    Ticket,
    TicketEvent,
)
from support.services import TicketError, ticket_open_or_update


class CallbackTransitionError(TicketError):
    """The call-back request's status does not allow this move."""

    def __init__(self, callback: CallbackRequest, to: str):
        super().__init__(f"call-back {callback.pk} is {callback.status}; it cannot become {to}")
        self.found = callback.status


class CallbackWaiting(TicketError):
    """The ticket cannot resolve: the person asked us to call, and no call to them is
    recorded yet. The message says what to do (record the call first)."""


def callback_request(*, email: str, phone: str, note: str = "", signed_in_as: User | None = None) -> CallbackRequest:
    """Someone asked us to call ``phone`` (E.164, validated by the form). Lands on the
    person's one ticket as a call-back request (opening the ticket if needed, raising
    it to "the person wrote", re-opening it if it waited on them). A request already
    waiting on that ticket is updated (the newest number wins) rather than doubled,
    and keeps its promise. Returns the request; its ``promised_by`` is what the
    person is told. The caller rate-limits and shows the same answer whether or not
    the address has an account."""
    email = normalize_email(email)
    account = signed_in_as
    if account is None:
        account = User.objects.filter(email_is(email), is_staff=False).first()
    now = timezone.now()
    text = str(words.CALLBACK_EVENT).format(phone=phone, note=note or "—")
    with transaction.atomic():
        ticket = ticket_open_or_update(
            account=account, email=account.email if account else email, reason=Reason.CALLBACK,
            priority=Priority.PERSON_WROTE, kind=EventKind.CALLBACK, text=text,
            actor="the person (signed in)" if signed_in_as else "via /help/ (not signed in)")
        waiting = (CallbackRequest.objects.select_for_update()
                   .filter(ticket=ticket, status=CallbackStatus.REQUESTED).first())
        if waiting is not None:
            CallbackRequest.objects.filter(pk=waiting.pk).update(phone=phone, note=note or waiting.note)
            waiting.refresh_from_db()
            return waiting
        return CallbackRequest.objects.create(
            ticket=ticket, account=account, phone=phone, email=email, signed_in=signed_in_as is not None,
            note=note, requested_at=now, promised_by=now + timedelta(hours=settings.SUPPORT_REPLY_HOURS))


def _callback_transition(callback: CallbackRequest, to: str) -> None:
    """Move a call-back request on, by compare-and-set on the status it was read in;
    raise CallbackTransitionError naming the state found otherwise."""
    if to not in CALLBACK_TRANSITIONS[callback.status]:
        raise CallbackTransitionError(callback, to)
    now = timezone.now()
    if not CallbackRequest.objects.filter(pk=callback.pk, status=callback.status).update(status=to, closed_at=now):
        callback.refresh_from_db()
        raise CallbackTransitionError(callback, to)
    callback.status, callback.closed_at = to, now


def callbacks_cancel_account_closed(*, account_id: int, actor: str) -> list[CallbackRequest]:
    """Staff closed the account: every call-back request waiting on its tickets is
    cancelled, each with a line on its ticket's timeline saying so, so that no ticket
    goes on promising a call nobody is to make. Reopening brings none back: the person
    can ask again, and gets a fresh promise. Runs in ``ticket_account_closed``, before
    the ticket resolves. Idempotent. Returns the requests cancelled."""
    cancelled = []
    with transaction.atomic():
        for waiting in (CallbackRequest.objects.select_for_update()
                        .filter(ticket__account_id=account_id, status=CallbackStatus.REQUESTED)):
            _callback_transition(waiting, CallbackStatus.CANCELLED)
            TicketEvent.objects.create(ticket_id=waiting.ticket_id, kind=EventKind.NOTE, actor=actor, text=str(
                words.CALLBACK_CANCELLED_CLOSED).format(phone=waiting.phone.as_international))
            cancelled.append(waiting)
    return cancelled


def callback_settle_for_resolve(*, ticket: Ticket, actor: str) -> CallbackRequest | None:
    """The locked ``ticket`` is about to resolve (``support.services.ticket_transition``,
    whoever resolves it: the Resolve button, a reply that resolves, ``ticket_resolve``).
    A promise to call must not vanish with it: while a call-back request waits and no
    call to it is recorded, raise CallbackWaiting (record the call first: the ticket
    stays as it is). Once we have called and nobody answered ("No answer" leaves a
    request waiting), resolving is how support stops trying: the request closes as
    UNANSWERED with a line on the timeline saying so, and the person can ask again.
    Returns the request closed, if any. Closing the account cancels its requests
    before its ticket resolves (``callbacks_cancel_account_closed``)."""
    waiting = CallbackRequest.objects.select_for_update().filter(ticket=ticket, status=CallbackStatus.REQUESTED).first()
    if waiting is None:
        return None
    phone = waiting.phone.as_international
    calls = waiting.calls.count()  # each one "No answer": the other outcomes close the request
    if not calls:
        raise CallbackWaiting(str(words.CALLBACK_RESOLVE_REFUSED).format(
            phone=phone, button=words.BUTTONS["record_call"][0],
            outcomes=" / ".join(str(outcome.label) for outcome in CallOutcome)))
    _callback_transition(waiting, CallbackStatus.UNANSWERED)
    TicketEvent.objects.create(ticket=ticket, kind=EventKind.NOTE, actor=actor, text=str(
        words.CALLBACK_CLOSED_UNANSWERED).format(phone=phone, calls=words.calls_made(calls)))
    return waiting


# What each outcome does to a waiting request: reached closes it, a wrong number closes
# it (the person can ask again with another), no answer leaves it at the top of the queue.
_OUTCOME_MOVES = {CallOutcome.REACHED: CallbackStatus.REACHED, CallOutcome.WRONG_NUMBER: CallbackStatus.WRONG_NUMBER}


def record_call(*, actor: User, account: User | None, ticket: Ticket | None, action_key: str, outcome: str,
                note: str = "") -> ActionResult:
    """The console's "Record a call": support called the person. Records who (``actor``,
    the staff member, as a key on the Call and its ConsoleAction), when, the number, the
    outcome and a note, on the ticket's timeline, and moves a waiting call-back request
    on (see ``_OUTCOME_MOVES``). The number is the waiting request's, else the
    account's. Idempotent per click. Raises TicketError when there is no ticket or no
    number to have called. The caller checks the ``support.record_call`` permission."""
    def run(locked: Ticket | None) -> ActionResult:
        if locked is None:
            raise TicketError(str(words.CALL_NO_TICKET))
        waiting = (CallbackRequest.objects.select_for_update()
                   .filter(ticket=locked, status=CallbackStatus.REQUESTED).first())
        phone = waiting.phone if waiting else (locked.account.phone if locked.account else None)
        if not phone:
            raise TicketError(str(words.CALL_NO_NUMBER))
        Call.objects.create(ticket=locked, callback=waiting, staff=actor, phone=phone, outcome=outcome, note=note)
        label = CallOutcome(outcome).label
        TicketEvent.objects.create(ticket=locked, kind=EventKind.CALL, actor=console_actor(actor),
                                   text=str(words.CALL_EVENT).format(phone=phone, outcome=label, note=note or "—"))
        if waiting is not None and outcome in _OUTCOME_MOVES:
            _callback_transition(waiting, _OUTCOME_MOVES[outcome])
        return ActionResult(True, str(words.RESULTS["call_recorded"]).format(phone=phone, outcome=label))
    return _act(kind=ConsoleActionKind.RECORD_CALL, actor=actor, account=account, ticket=ticket,
                action_key=action_key, run=run)
