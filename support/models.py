"""Tickets: one person's queue (DESIGN principle 7).

A ticket is opened when automation gives up on an account's setup, or when someone
writes to /help/. An account has at most one ticket that is not resolved (a
database constraint), so repeated failures and messages gather on one ticket and
the support person never answers the same person twice.

References are random ("SUP-482193"), not derived from the row id: /help/ shows the
reference of the ticket a message joined, and a sequential number would tell an
outsider whether that ticket is new (unknown address) or older (an account that
already has an open ticket). A random one says nothing.
"""
from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField


class TicketStatus(models.TextChoices):
    OPEN = "open", _("Open")  # needs the support person
    WAITING_ON_CUSTOMER = "waiting_on_customer", _("Waiting on customer")  # we asked; their reply re-opens it
    RESOLVED = "resolved", _("Resolved")  # done, by a person or automatically; final


# The allowed moves, written once. A resolved ticket stays resolved: a new problem
# opens a new ticket (the constraint allows one unresolved ticket per account).
TRANSITIONS: dict[str, frozenset[str]] = {
    TicketStatus.OPEN: frozenset({TicketStatus.WAITING_ON_CUSTOMER, TicketStatus.RESOLVED}),
    TicketStatus.WAITING_ON_CUSTOMER: frozenset({TicketStatus.OPEN, TicketStatus.RESOLVED}),
    TicketStatus.RESOLVED: frozenset(),
}
UNRESOLVED = (TicketStatus.OPEN, TicketStatus.WAITING_ON_CUSTOMER)


class Priority(models.IntegerChoices):
    """Derived from facts, most urgent first; within one priority the longest
    waiting ticket comes first. Services only ever raise it (lower number)."""

    PERSON_WROTE = 1, _("The person wrote to us")
    # Automation stopped on a step: its retries ran out, or the provider refused it
    # (no retry could help). Both need a person; the queue's row says which.
    AUTOMATION_EXHAUSTED = 2, _("Automation stopped")
    OTHER = 3, _("Other")


class Reason(models.TextChoices):
    WORKSPACE_FAILED = "workspace_failed", _("Workspace setup stopped")
    EMAIL_FAILED = "email_failed", _("Verification email could not be sent")
    CONTACT = "contact", _("The person wrote to us")
    CALLBACK = "callback", _("The person asked us to call")


def new_reference() -> str:
    return f"SUP-{100000 + secrets.randbelow(900000)}"


class Ticket(models.Model):
    reference = models.CharField(max_length=16, unique=True, default=new_reference, editable=False)
    # None for a message from an address no account uses (an "unmatched" ticket).
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                                related_name="tickets")
    # The address the ticket came from, lowercased (the account's at the time, or the
    # one typed into /help/); searchable even after the account's address changes.
    email = models.EmailField(max_length=254)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    status = models.CharField(max_length=24, choices=TicketStatus.choices, default=TicketStatus.OPEN)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.OTHER)
    # When the ticket last started needing us: opened, or re-opened by the person.
    waiting_since = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_automatically = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account"], condition=~Q(status=TicketStatus.RESOLVED),
                                    name="one_unresolved_ticket_per_account"),
            models.UniqueConstraint(fields=["email"],
                                    condition=Q(account__isnull=True) & ~Q(status=TicketStatus.RESOLVED),
                                    name="one_unresolved_unmatched_ticket_per_email"),
        ]
        indexes = [models.Index(fields=["status", "priority", "waiting_since"], name="ticket_queue_idx")]
        permissions = [
            ("rerun_provisioning", "Can re-run provisioning now"),
            ("resend_verification", "Can resend the verification email"),
            ("correct_email", "Can correct an account's email address"),
            ("mark_verified", "Can mark an email verified after confirming identity by phone"),
            ("issue_signin_code", "Can issue a one-time sign-in code"),
            ("reply", "Can reply to the person"),
            ("resolve", "Can resolve a ticket"),
            ("close_account", "Can close and reopen an account"),
            ("record_call", "Can record a phone call to the person"),
        ]

    def __str__(self) -> str:
        return self.reference


class EventKind(models.TextChoices):
    OPENED = "opened", _("Opened")
    DIAGNOSTICS = "diagnostics", _("Automation gave up")  # what the failed step saw
    MESSAGE = "message", _("The person wrote")
    REPLY = "reply", _("We replied")
    STATUS = "status", _("Status changed")
    NOTE = "note", _("Note")  # something the system noticed (e.g. the account became ready)
    CALLBACK = "callback", _("The person asked us to call")
    CALL = "call", _("We called")


class TicketEvent(models.Model):
    """One line of a ticket's timeline. The ticket page shows these together with the
    account's own timeline (``provisioning.Event``)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    actor = models.CharField(max_length=100, default="system")
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24, blank=True)
    text = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class ConsoleActionKind(models.TextChoices):
    """Every action the console can take: one per button, and the accounts list's
    bulk retry. Labels read as a timeline line ("Sam Support re-ran provisioning")."""

    RERUN = "rerun", _("re-ran provisioning")
    RESEND = "resend", _("resent the verification email")
    CORRECT_EMAIL = "correct_email", _("corrected the email address")
    MARK_VERIFIED = "mark_verified", _("marked the email verified")
    SIGNIN_CODE = "signin_code", _("issued a one-time sign-in code")
    REPLY = "reply", _("replied")
    RESOLVE = "resolve", _("resolved the ticket")
    CLOSE = "close", _("closed the account")
    REOPEN = "reopen", _("reopened the account")
    RETRY_SETUP = "retry_setup", _("retried setup")
    RERUN_ALL = "rerun_all", _("re-ran every step refused alike")
    RECORD_CALL = "record_call", _("recorded a call")


class ConsoleAction(models.Model):
    """One thing a staff member did in the console, and to whom (Zulip's
    RealmAuditLog is the model): the actor is a key and the action a kind, so "what
    did this staff member do, and to whom" is one query
    (``support.selectors.console_actions``). Written by the service a button calls,
    in the transaction that does the work: an action that fails leaves no row."""

    # PROTECT: a staff member with a history is deactivated, never deleted.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="console_actions")
    kind = models.CharField(max_length=32, choices=ConsoleActionKind.choices)
    # SET_NULL: the purge of abandoned signups may remove an account; what was done stays.
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="console_actions_received")
    ticket = models.ForeignKey(Ticket, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="console_actions")
    # SHA-256 of the click's key: a second submission of the same click hits the
    # unique constraint and does nothing twice. Hashed because a sign-in code is
    # derived from the key: its clear form is stored nowhere.
    click = models.CharField(max_length=64, null=True, blank=True, unique=True)
    detail = models.TextField(blank=True)  # what came of it, in the console's words
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["actor", "created_at"], name="console_action_actor_idx"),
                   models.Index(fields=["account", "created_at"], name="console_action_account_idx")]

    def __str__(self) -> str:
        return f"{self.actor_id} {self.kind} account {self.account_id} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class Provider(models.TextChoices):
    PROVISIONING = "provisioning", _("Workspace provider")
    EMAIL = "email", _("Email provider")


class IncidentStatus(models.TextChoices):
    OPEN = "open", _("Open")  # the provider's circuit opened; its backlog has not drained yet
    CLOSED = "closed", _("Closed")  # the backlog drained and everyone was told; final


class Incident(models.Model):
    """A provider outage, recognised as one thing (issue 4): opened by itself when the
    provider's circuit breaker opens, closed by itself when the steps that waited on
    it have all been done. Affected people open no tickets of their own; messages to
    /help/ during it are attached to it. At most one open incident per provider."""

    provider = models.CharField(max_length=32, choices=Provider.choices)
    status = models.CharField(max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.OPEN)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The refusal code when the outage is one refusal of ours for many accounts
    # (the breaker's cause when it opened), "" for an outage: what "Re-run all" re-arms.
    cause = models.CharField(max_length=64, blank=True)
    # What opened the circuit (provisioning.models.BreakerOpening) and the code of that
    # failure, as the breaker held them when the incident opened. ``opened_by`` and
    # ``cause`` follow the circuit when a refusal of ours holds it open instead
    # (support.incidents.incident_note_cause); ``failure`` stays: the steps that
    # waited on it still count.
    opened_by = models.CharField(max_length=16, blank=True)
    failure = models.CharField(max_length=64, blank=True)
    # The most steps seen waiting at once (sampled whenever the incident is looked at).
    peak_backlog = models.PositiveIntegerField(default=0)
    # Set when it closes: the accounts that waited, and those whose step has since succeeded.
    affected = models.PositiveIntegerField(default=0)
    drained = models.PositiveIntegerField(default=0)
    # The apologies owed once it closed, queued in batches of accounts in id order
    # (support.incidents.incident_apologize): whether some remain, and the last account
    # id done, so a task killed between batches resumes where it stopped.
    apologies_pending = models.BooleanField(default=False)
    apology_cursor = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider"], condition=Q(status=IncidentStatus.OPEN),
                                    name="one_open_incident_per_provider"),
        ]
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} outage since {self.started_at:%Y-%m-%d %H:%M}"


class IncidentEventKind(models.TextChoices):
    OPENED = "opened", _("Opened")
    RECOVERED = "recovered", _("Provider recovered")
    CAUSE = "cause", _("New cause")  # the circuit is held open by another refusal of ours now
    ATTACHED = "attached", _("Attached")  # a person wrote, or a step ran out, during the incident
    CLOSED = "closed", _("Closed")


class IncidentEvent(models.Model):
    """One line of an incident's timeline."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=IncidentEventKind.choices)
    text = models.TextField(blank=True)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.kind} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class ContactMessage(models.Model):
    """What someone wrote to /help/. ``signed_in`` says whether they were logged in as
    the account; a logged-out message only claims an address, which is not proof."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                                related_name="contact_messages")
    email = models.EmailField(max_length=254)
    message = models.TextField()
    signed_in = models.BooleanField(default=False)
    # The outage that was open when they wrote (they were told about it).
    incident = models.ForeignKey(Incident, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="messages")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"message from {self.email} at {self.created_at:%Y-%m-%d %H:%M}"


# --- A way back that is not email: call-back requests and the calls we make ----------------

class CallbackStatus(models.TextChoices):
    REQUESTED = "requested", _("Waiting for our call")  # sorts the ticket to the top of the queue
    REACHED = "reached", _("We called and spoke to them")  # final
    WRONG_NUMBER = "wrong_number", _("The number was wrong")  # final: they can ask again with another
    # Final: the account was closed (support.callbacks.callbacks_cancel_account_closed).
    # Reopening brings none back: its promise was made to an account that then closed,
    # and may have passed; the person can ask again.
    CANCELLED = "cancelled", _("Cancelled: the account was closed")
    # Final: every call we made went unanswered, and support then resolved the ticket
    # (support.callbacks.callback_settle_for_resolve); the person can ask again.
    UNANSWERED = "unanswered", _("We called, nobody answered, and the ticket was resolved")


# The allowed moves, written once. "No answer" is not a move: the request stays
# waiting (and at the top of the queue) until someone reaches them.
CALLBACK_TRANSITIONS: dict[str, frozenset[str]] = {
    CallbackStatus.REQUESTED: frozenset({CallbackStatus.REACHED, CallbackStatus.WRONG_NUMBER,
                                         CallbackStatus.CANCELLED, CallbackStatus.UNANSWERED}),
    CallbackStatus.REACHED: frozenset(),
    CallbackStatus.WRONG_NUMBER: frozenset(),
    CallbackStatus.CANCELLED: frozenset(),
    CallbackStatus.UNANSWERED: frozenset(),
}


class CallbackRequest(models.Model):
    """Someone asked us to call them (from /setup/ while stuck, or from /help/). It
    rides on the person's one ticket; at most one waits per ticket (asking again
    updates the number). ``promised_by`` is the promise the person was shown, stored
    so every later page says the same thing."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="callbacks")
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                                related_name="callback_requests")
    phone = PhoneNumberField()
    # The address typed (logged out) or the account's; logged out, it only claims an
    # address: support confirms who they are on the call.
    email = models.EmailField(max_length=254)
    signed_in = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=CallbackStatus.choices, default=CallbackStatus.REQUESTED)
    requested_at = models.DateTimeField(default=timezone.now)
    promised_by = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ticket"], condition=Q(status="requested"),
                                    name="one_waiting_callback_per_ticket"),
        ]
        ordering = ["-requested_at", "-pk"]

    def __str__(self) -> str:
        return f"call-back to {self.phone} ({self.status})"


class CallOutcome(models.TextChoices):
    REACHED = "reached", _("Reached them")
    NO_ANSWER = "no_answer", _("No answer")
    WRONG_NUMBER = "wrong_number", _("Wrong number")


class Call(models.Model):
    """A call support made, recorded from the ticket page: who (the staff user, as a
    key), when, to which number, how it went and a note."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="calls")
    callback = models.ForeignKey(CallbackRequest, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="calls")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="calls_made")
    phone = PhoneNumberField()
    outcome = models.CharField(max_length=16, choices=CallOutcome.choices)
    note = models.TextField(blank=True)
    called_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-called_at", "-pk"]

    def __str__(self) -> str:
        return f"call to {self.phone}: {self.outcome}"
