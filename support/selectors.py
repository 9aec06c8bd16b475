"""Reads for the support console and the person's pages. Lists cost a fixed number
of queries whatever their length: the account's lifecycle state, its last message
and its email facts are computed by the database (``with_lifecycle_state`` and
subqueries), never per row."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.urls import reverse
from django.utils import timezone

from accounts import codes
from accounts.emails import NOT_URGENT, RECIPIENT_REJECTED
from accounts.messages import EmailFact, Facts
from accounts.models import EmailDelivery, EmailKind, SignInCode, User
from accounts.selectors import (
    Overview,
    State,
    account_deliveries,
    account_overview,
    accounts_with_failed_steps_query,
    latest_verification,
    latest_verification_of,
    open_breakers_opened_by,
    with_lifecycle_state,
)
from accounts.state_counts import in_flight_among, lifecycle_state_counts
from provisioning.durable import HIT_AN_ERROR, OUTAGE, StepStatus
from provisioning.models import REFUSED_OURS, Breaker, BreakerState, Event, ProvisioningRequest
from provisioning.selectors import OPEN as OWED  # a step still owed: its next try is to come, or running
from provisioning.selectors import open_circuits, outage_refused, outage_waiting_count, step_refused
from support import messages as words
from support.models import (
    UNRESOLVED,
    CallbackRequest,
    CallbackStatus,
    ConsoleAction,
    ContactMessage,
    Incident,
    IncidentStatus,
    Priority,
    Provider,
    Ticket,
    TicketEvent,
    TicketStatus,
)

# Accounts that are not fully set up and not simply waiting for a click on a link.
PARTIAL_STATES = (State.SETTING_UP, State.DELAYED, State.NEEDS_SUPPORT, State.EMAIL_UNDELIVERABLE)


def open_ticket_reference(account_id: int) -> str | None:
    """The reference of the account's unresolved ticket (registered with
    accounts.selectors, so /setup/ and its JSON show it)."""
    return (Ticket.objects.filter(account_id=account_id, status__in=UNRESOLVED)
            .values_list("reference", flat=True).first())


def open_incident_providers() -> set[str]:
    """The providers whose incident is open now, each shown on the console's
    dashboard and queue (registered with accounts.selectors: a person's page may then say our support
    team can see the problem). One query."""
    return set(Incident.objects.filter(status=IncidentStatus.OPEN).values_list("provider", flat=True))


def has_open_ticket() -> Exists:
    """For filtering accounts: one has an unresolved ticket (registered with
    accounts.selectors, so the abandoned-signup purge leaves it to support)."""
    return Exists(Ticket.objects.filter(account=OuterRef("pk"), status__in=UNRESOLVED))


def accounts_needing_a_ticket(*, limit: int = 200) -> list[User]:
    """Accounts in ``needs_support`` that no ticket speaks for, oldest first: none is
    unresolved, and none was resolved after the failure that put the account there.
    A ticket support resolved stays resolved until something new happens: a step
    failing again (its ``completed_at`` moves past the resolution) or a message,
    which opens a ticket by itself. The failure's time is the failed workspace
    step's, else the failed verification email's (the facts that make the state).
    Only the accounts in flight are searched (``in_flight_among``: every account in
    ``needs_support`` is one), so a sweep costs what is in flight, not every account."""
    verification_failed_at = latest_verification_of().values("completed_at")[:1]
    failed_at = Case(When(provisioning_request__status=StepStatus.FAILED,
                          then=F("provisioning_request__completed_at")),
                     default=Subquery(verification_failed_at), output_field=DateTimeField())
    resolved_since = Ticket.objects.filter(account=OuterRef("pk"), status=TicketStatus.RESOLVED,
                                           resolved_at__gte=OuterRef("failed_at"))
    return list(with_lifecycle_state(in_flight_among(User.objects.filter(is_staff=False)))
                .filter(lifecycle_state=State.NEEDS_SUPPORT)
                .exclude(tickets__status__in=UNRESOLVED)
                .alias(failed_at=failed_at).exclude(Exists(resolved_since))
                .order_by("date_joined", "pk")[:limit])


def ticket_queue() -> QuerySet[Ticket]:
    """Tickets with everything the queue shows, in one query: the account and its
    workspace step, the account's lifecycle state, its latest verification email,
    how many of its other emails are owed after errors and how many held behind the
    email outage, which providers have an open incident or circuit, and the person's
    last message. Ordered open first, then by priority, then
    longest waiting."""
    last_message = ContactMessage.objects.filter(ticket=OuterRef("pk")).order_by("-created_at", "-pk")
    verification = latest_verification_of("account__")
    waiting_callback = CallbackRequest.objects.filter(ticket=OuterRef("pk"), status=CallbackStatus.REQUESTED)
    queue = Ticket.objects.select_related("account", "account__provisioning_request").annotate(
        status_rank=Case(When(status=TicketStatus.OPEN, then=Value(0)),
                         When(status=TicketStatus.WAITING_ON_CUSTOMER, then=Value(1)),
                         default=Value(2), output_field=IntegerField()),
        callback_phone=Subquery(waiting_callback.values("phone")[:1]),
        # A person waiting for our call comes before everything else that is open.
        callback_rank=Case(When(Exists(waiting_callback), then=Value(0)), default=Value(1),
                           output_field=IntegerField()),
        last_message=Subquery(last_message.values("message")[:1]),
        last_message_at=Subquery(last_message.values("created_at")[:1]),
        email_status=Subquery(verification.values("status")[:1]),
        email_attempts=Subquery(verification.values("attempts")[:1]),
        email_counted=Subquery(verification.values("counted_attempts")[:1]),
        email_error_code=Subquery(verification.values("last_error_code")[:1]),
        email_error=Subquery(verification.values("last_error_detail")[:1]),
        email_bounced_at=Subquery(verification.values("bounced_at")[:1]),
        other_emails_in_trouble=Subquery(_other_emails_owed("account__pk", held=False)),
        other_emails_held=Subquery(_other_emails_owed("account__pk", held=True)),
        # Not per row: the database reads each once, whatever the queue's length.
        provisioning_incident=Exists(_open_incident(Provider.PROVISIONING)),
        # What opened each provider's circuit, None while it is closed: what holds a step.
        provisioning_held_by=Subquery(_open_circuit(Provider.PROVISIONING).values("opened_by")[:1]),
        email_incident=Exists(_open_incident(Provider.EMAIL)),
        email_held_by=Subquery(_open_circuit(Provider.EMAIL).values("opened_by")[:1]),
    )
    return with_lifecycle_state(queue, prefix="account__", name="account_state").order_by(*QUEUE_ORDER)


# Open first; within that, people waiting for our call; then priority; then longest waiting.
QUEUE_ORDER = ("status_rank", "callback_rank", "priority", "waiting_since", "pk")


def callback_promise(callback: CallbackRequest, *, now: datetime | None = None) -> str:
    """What the person is told about a waiting call-back: the stored promise while it
    holds, and that we broke it once it has passed (never a fresh promise)."""
    now = now or timezone.now()
    phone = callback.phone.as_international
    if callback.promised_by > now:
        return str(words.CALLBACK_WAITING).format(phone=phone, when=words.callback_when(callback.promised_by, now=now))
    hours = round((callback.promised_by - callback.requested_at).total_seconds() / 3600)
    return str(words.CALLBACK_LATE).format(phone=phone, ago=words.console_duration(callback.requested_at, now, depth=1),
                                           hours=hours)


def waiting_callback(*, account: User) -> CallbackRequest | None:
    """The call-back request the account is waiting on (on its unresolved ticket), if any."""
    return (CallbackRequest.objects.filter(ticket__account=account, ticket__status__in=UNRESOLVED,
                                           status=CallbackStatus.REQUESTED).first())


def failure_words(ticket: Ticket) -> str:
    """What is failing for the ticket's account, in plain words: every step of it (the
    workspace, the confirmation email, the other emails owed to the person) and the
    open incident any step still owed waits on. "Nothing is failing" only when no
    step is failing or still owed. Reads only what ``ticket_queue`` loaded (no
    query); on a plain ticket it reads the account."""
    account = ticket.account
    if account is None:
        return str(words.NO_ACCOUNT)
    if not account.is_active:
        return str(words.ACCOUNT_CLOSED_FAILURE)
    if not hasattr(ticket, "email_status"):
        _load_email_facts(ticket)
    if not hasattr(ticket, "provisioning_held_by"):
        _load_incidents(ticket)
    parts, waits_on = [], []
    request = getattr(account, "provisioning_request", None)
    if request is not None and request.status == StepStatus.FAILED:
        sentence = words.REFUSED_WORKSPACE if step_refused(request) else words.FAILED_WORKSPACE
        parts.append(str(sentence).format(tries=words.tries(request.attempts), detail=request.last_error_detail))
    elif request is not None and request.status != StepStatus.SUCCEEDED:
        if request.last_error_code:
            parts.append(_owed_words(words.HELD_WORKSPACE, words.RETRYING_WORKSPACE,
                                     held_by=ticket.provisioning_held_by, tries=request.attempts,
                                     code=request.last_error_code, detail=request.last_error_detail))
        else:
            parts.append(str(words.PENDING_WORKSPACE))
        if ticket.provisioning_incident:
            waits_on.append(Provider.PROVISIONING)
    email_owed = False
    if not account.email_verified and ticket.email_status is not None:
        code = ticket.email_error_code or ""
        if ticket.email_status == StepStatus.FAILED and code != RECIPIENT_REJECTED:
            # Why it stopped, by the one definition the person's page reads too: the
            # loaded columns are all it looks at.
            refused = step_refused(EmailDelivery(status=ticket.email_status, last_error_code=code,
                                                 counted_attempts=ticket.email_counted or 0))
            sentence = words.REFUSED_EMAIL if refused else words.FAILED_EMAIL
            parts.append(str(sentence).format(tries=words.tries(ticket.email_attempts or 0),
                                              detail=ticket.email_error))
        elif ticket.email_bounced_at or code == RECIPIENT_REJECTED:
            parts.append(str(words.UNDELIVERABLE_EMAIL).format(detail=ticket.email_error or "bounced"))
        elif ticket.email_status != StepStatus.SUCCEEDED:
            email_owed = True
            if code:
                parts.append(_owed_words(words.HELD_EMAIL, words.RETRYING_EMAIL, held_by=ticket.email_held_by,
                                         tries=ticket.email_attempts or 0, code=code, detail=ticket.email_error))
            else:
                parts.append(str(words.PENDING_EMAIL))
    if ticket.other_emails_in_trouble:
        parts.append(words.other_emails_in_trouble(ticket.other_emails_in_trouble))
        email_owed = True
    if ticket.other_emails_held:
        parts.append(words.other_emails_held(ticket.other_emails_held,
                                             circuit_open=ticket.email_held_by is not None))
        email_owed = True
    if email_owed and ticket.email_incident:
        waits_on.append(Provider.EMAIL)
    parts += [str(words.WAITS_ON_INCIDENT).format(provider=Provider(p).label.lower()) for p in waits_on]
    return " · ".join(parts) or str(words.NOTHING_FAILING)


def _owed_words(held, retrying, *, held_by: str | None, tries: int, code: str, detail: str) -> str:
    """A step still owed after an error: held behind its provider's open circuit
    (``held_by``: what opened it), until what that opening waits for; else retrying."""
    sentence = retrying if held_by is None else held
    return str(sentence).format(until=words.held_until(held_by or ""), tries=words.tries(tries),
                                detail=words.step_error(code, detail))


def _other_emails_owed(account: str, *, held: bool) -> QuerySet:
    """How many of the account's emails besides the confirmation link (replies,
    acknowledgements, password links, "you're all set") are still owed after a try
    that did not send them (durable.HIT_AN_ERROR: a cancelled one re-armed has called
    nobody since). With ``held``, those whose last try was held behind the email
    provider's open circuit (durable.OUTAGE: no call made, perhaps never one); else
    those whose last try failed with an error of its own. (One that stopped is on the
    timeline: ``support.services.ticket_note_email_failed``.)"""
    owed = (EmailDelivery.objects.filter(HIT_AN_ERROR, account=OuterRef(account), status__in=OWED)
            .exclude(kind=EmailKind.VERIFICATION))
    owed = owed.filter(last_error_code=OUTAGE) if held else owed.exclude(last_error_code=OUTAGE)
    return owed.values("account").annotate(n=Count("pk")).values("n")


def _open_incident(provider: str) -> QuerySet[Incident]:
    return Incident.objects.filter(provider=provider, status=IncidentStatus.OPEN)


def _open_circuit(provider: str) -> QuerySet[Breaker]:
    """A pending step of the provider is held behind this (``provider_health``)."""
    return Breaker.objects.filter(provider=provider, state=BreakerState.OPEN)


def _load_incidents(ticket: Ticket) -> None:
    ticket.provisioning_incident = _open_incident(Provider.PROVISIONING).exists()
    ticket.email_incident = _open_incident(Provider.EMAIL).exists()
    held_by = open_breakers_opened_by()
    ticket.provisioning_held_by = held_by.get(Provider.PROVISIONING)
    ticket.email_held_by = held_by.get(Provider.EMAIL)


def _load_email_facts(ticket: Ticket) -> None:
    latest = latest_verification(ticket.account)
    ticket.email_status = latest.status if latest else None
    ticket.email_attempts = latest.attempts if latest else 0
    ticket.email_counted = latest.counted_attempts if latest else 0
    ticket.email_error_code = latest.last_error_code if latest else ""
    ticket.email_error = latest.last_error_detail if latest else ""
    ticket.email_bounced_at = latest.bounced_at if latest else None
    ticket.other_emails_in_trouble, ticket.other_emails_held = (
        User.objects.filter(pk=ticket.account.pk)
        .values_list(Subquery(_other_emails_owed("pk", held=False)), Subquery(_other_emails_owed("pk", held=True)))
        .get())


def reply_address(ticket: Ticket) -> str:
    """Where a reply goes: the address of the person's latest message (they may have
    written from a working address while the account's bounces), else the account's.
    Not an address the account has since been corrected away from: signed in, /help/
    offers the account's address as it was, and after a typo is corrected the reply
    belongs at the corrected one (the account was sent its confirmation link there and
    then moved off it; an address it never had, typed by the person, still wins)."""
    latest = ticket.messages.order_by("-created_at", "-pk").values_list("email", flat=True).first()
    account = ticket.account
    if latest and account is not None and latest != account.email and EmailDelivery.objects.filter(
            account=account, kind=EmailKind.VERIFICATION, to_address=latest).exists():
        return account.email
    return latest or (account.email if account else ticket.email)


def signin_code_of_click(*, account: User, action_key: str) -> SignInCode | None:
    """The code one console click issued for this account (never its plain code,
    which is stored nowhere), or None if that click issued none."""
    return SignInCode.objects.filter(account=account, idempotency_key=codes.click_digest(action_key)).first()


# --- One ticket ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TimelineLine:
    at: datetime
    actor: str
    what: str
    text: str
    source: str  # "ticket", "account" or "console"


@dataclass
class TicketDetail:
    ticket: Ticket
    overview: Overview | None
    request: ProvisioningRequest | None
    deliveries: list[EmailDelivery]
    messages: list[ContactMessage]
    timeline: list[TimelineLine]
    failure: str
    reply_address: str
    state: str | None = None
    callback: CallbackRequest | None = None  # the call-back request waiting, if any
    facts: dict = field(default_factory=dict)
    provider_since: datetime | None = None  # the workspace provider's circuit open since (None: closed)
    provider_failing: bool = False
    provider_held_by: str | None = None  # what opened it (None: closed)

    @property
    def account(self) -> User | None:
        return self.ticket.account

    @property
    def provider_now(self) -> str:
        return _provider_now(self.request, failing=self.provider_failing)

    @property
    def next_retry(self) -> str:
        return _next_retry(self.request, held_by=self.provider_held_by)


def ticket_detail(*, ticket: Ticket) -> TicketDetail:
    """Everything the ticket page shows: the account's overview (the same one the
    person sees), its steps, emails, the person's messages, and one timeline merging
    the ticket's events with the account's, newest first."""
    account = ticket.account
    overview = account_overview(account=account) if account else None
    health = provider_health()
    return TicketDetail(
        ticket=ticket, overview=overview, request=overview.request if overview else None,
        deliveries=_with_next_retry(account_deliveries(account=account)[::-1] if account else [],
                                    held_by=health.pop("email_held_by")),
        messages=list(ContactMessage.objects.filter(ticket=ticket).order_by("-created_at", "-pk")),
        timeline=_timeline(account=account, tickets=TicketEvent.objects.filter(ticket=ticket),
                           actions=console_actions(account=account) if account else console_actions(ticket=ticket)),
        failure=failure_words(ticket), reply_address=reply_address(ticket),
        state=overview.state if overview else None,
        callback=ticket.callbacks.filter(status=CallbackStatus.REQUESTED).first(),
        **health,
    )


def address_trouble(*, address: str) -> list[EmailDelivery]:
    """Earlier emails to this address that bounced or were refused, newest first (the
    last five): the reply form warns before another goes the same way."""
    refused = Q(to_address__iexact=address) & (Q(bounced_at__isnull=False) | Q(status=StepStatus.FAILED))
    return list(EmailDelivery.objects.filter(refused).order_by("-created_at", "-pk")[:5])


def _next_retry(request: ProvisioningRequest | None, *, held_by: str | None) -> str:
    """The workspace step's next try, as its page says it ("—" unless pending): while
    the provider's circuit is open (``held_by``: what opened it) every pending step
    is held behind it."""
    if request is None or request.status != StepStatus.PENDING:
        return "—"
    return words.next_retry(next_attempt_at=request.next_attempt_at, held_by=held_by, now=timezone.now())


def _provider_now(request: ProvisioningRequest | None, *, failing: bool) -> str:
    """The workspace provider with its circuit closed, as the workspace panel says it:
    answering, and, when this account's last answer was a refusal for good, that."""
    refused = request.last_error_code if request is not None and step_refused(request) else ""
    return words.provider_now(failing=failing, refused_code=refused)


def provider_health() -> dict:
    """Whether the workspace provider is failing now (its circuit is open), since
    when and what opened it: a re-run then waits behind the circuit like every other
    step; and what opened the email provider's (its pending emails are held behind
    it; None while it is closed). One query."""
    circuits = {provider: (opened_at, opened_by) for provider, opened_at, opened_by in
                Breaker.objects.filter(state=BreakerState.OPEN).values_list("provider", "opened_at", "opened_by")}
    since, held_by = circuits.get(Provider.PROVISIONING, (None, None))
    return {"provider_failing": Provider.PROVISIONING in circuits, "provider_since": since,
            "provider_held_by": held_by, "email_held_by": circuits.get(Provider.EMAIL, (None, None))[1]}


def _with_next_retry(deliveries: list[EmailDelivery], *, held_by: str | None) -> list[EmailDelivery]:
    """The account's emails, each with its ``next_retry`` in words as the workspace's
    reads ("" unless pending): held behind the email provider's open circuit, a
    not-urgent one waiting for the person's other emails still owed (the rule of
    accounts.emails._owed_first, read from these same rows: no query), due now, or
    when. A not-urgent email held behind another kind's backlog of setup work
    (durable.setup_under_way) reads by its own time: that is not decided here."""
    owed = any(d.status in OWED and d.kind not in NOT_URGENT for d in deliveries)
    now = timezone.now()
    for d in deliveries:
        if d.status != StepStatus.PENDING:
            d.next_retry = ""
        elif held_by is None and owed and d.kind in NOT_URGENT:
            d.next_retry = str(words.NEXT_RETRY_AFTER_OTHERS)
        else:
            d.next_retry = words.next_retry(next_attempt_at=d.next_attempt_at, held_by=held_by, now=now)
    return deliveries


def _timeline(*, account: User | None, tickets: QuerySet[TicketEvent], actions) -> list[TimelineLine]:
    """One timeline, newest first: ticket events, the account's own events and what
    staff did in the console."""
    lines = [TimelineLine(e.created_at, e.actor, _event_title(e), e.text, "ticket") for e in tickets]
    if account is not None:
        lines += [TimelineLine(e.created_at, e.actor, _account_event_title(e), e.why, "account")
                  for e in Event.objects.filter(account=account)]
    return sorted(lines + console_lines(actions), key=lambda line: line.at, reverse=True)


@dataclass
class AccountDetail:
    """The person's page in the console: what the ticket page shows about the
    account, for any account, with or without a ticket."""

    account: User
    overview: Overview
    ticket: Ticket | None  # the unresolved one, which the buttons act on too
    tickets: list[Ticket]  # all of them, newest first
    deliveries: list[EmailDelivery]
    timeline: list[TimelineLine]
    failure: str
    state: str
    provider_since: datetime | None = None  # as on TicketDetail
    provider_failing: bool = False
    provider_held_by: str | None = None

    @property
    def next_retry(self) -> str:
        return _next_retry(self.request, held_by=self.provider_held_by)

    @property
    def provider_now(self) -> str:
        return _provider_now(self.request, failing=self.provider_failing)

    @property
    def request(self) -> ProvisioningRequest | None:
        return self.overview.request

    @property
    def reply_address(self) -> str:
        return reply_address(self.ticket) if self.ticket else self.account.email


def account_detail(*, account: User) -> AccountDetail:
    """Everything the account page shows: lifecycle state and the sentence the person
    sees (``account_overview``, as on /setup/), steps, emails, tickets and one
    timeline (the account's events, all its tickets' and the console's actions)."""
    overview = account_overview(account=account)
    tickets = list(Ticket.objects.filter(account=account).select_related("account").order_by("-created_at", "-pk"))
    open_ticket = next((t for t in tickets if t.status in UNRESOLVED), None)
    health = provider_health()
    return AccountDetail(
        account=account, overview=overview, ticket=open_ticket, tickets=tickets,
        deliveries=_with_next_retry(account_deliveries(account=account)[::-1], held_by=health.pop("email_held_by")),
        timeline=_timeline(account=account, tickets=TicketEvent.objects.filter(ticket__account=account),
                           actions=console_actions(account=account)),
        # What is failing reads the account's facts; an unsaved ticket carries the account.
        failure=failure_words(open_ticket or Ticket(account=account, email=account.email)),
        state=overview.state,
        **health,
    )


def console_actions(*, actor: User | None = None, account: User | None = None,
                    ticket: Ticket | None = None) -> QuerySet[ConsoleAction]:
    """What staff did in the console, newest first, narrowed to one staff member
    (what did they do, and to whom), one account or one ticket: one query, with the
    actor, the account and the ticket joined."""
    actions = ConsoleAction.objects.select_related("actor", "account", "ticket").order_by("-created_at", "-pk")
    if actor is not None:
        actions = actions.filter(actor=actor)
    if account is not None:
        actions = actions.filter(account=account)
    if ticket is not None:
        actions = actions.filter(ticket=ticket)
    return actions


def console_lines(actions) -> list[TimelineLine]:
    """Console actions as timeline lines: "Sam Support — closed the account"."""
    return [TimelineLine(a.created_at, a.actor.get_full_name() or a.actor.email, str(a.get_kind_display()),
                         a.detail, "console") for a in actions]


def _event_title(event: TicketEvent) -> str:
    if event.kind == "status":
        return f"{event.from_status or '·'} → {event.to_status}"
    return str(event.get_kind_display())


def _account_event_title(event: Event) -> str:
    move = f"{event.from_state or '·'} → {event.to_state}" if event.to_state else ""
    return f"{event.subject} {move}".strip()


def _needs_support_key(facts: Facts | None) -> str | None:
    """What stopped for an account that needs support, and why (``NEEDS_SUPPORT_REPLIES``):
    the workspace, else the confirmation email; refused, or out of retries."""
    if facts is None:
        return None
    if facts.workspace == "failed":
        return "workspace_refused" if facts.workspace_refused else "workspace_retries"
    if facts.workspace == "ready" and facts.email == EmailFact.STOPPED:
        return "email_refused" if facts.email_refused else "email_retries"
    return None


def _delayed_reply(facts: Facts) -> str:
    """"Delayed" while the workspace is not made, from the facts the person's page
    reads (``DELAYED_REPLIES``): what holds it, then an email promised only where
    the "you're all set" email will follow."""
    if facts.outage == Provider.PROVISIONING:
        key = "held_ours" if facts.outage_ours else "held"
    else:
        key = "late" if facts.workspace_overdue else "retrying"
    emails = facts.workspace_waited and facts.email != EmailFact.UNDELIVERABLE
    return " ".join((str(words.DELAYED_REPLIES[key]),
                     str(words.DELAYED_EMAIL_AFTER if emails else words.DELAYED_LOG_IN)))


def suggested_reply(*, ticket: Ticket, state: str | None, facts: Facts | None = None) -> str:
    """The reply the console suggests for the account's lifecycle state, to edit; for
    "needs support", by what stopped and why, from the account's ``facts``
    (``accounts.selectors.account_overview``). No signature: the email adds the
    sender's (``support.actions.reply``)."""
    key = _needs_support_key(facts) if state == "needs_support" else None
    if state == "delayed" and facts is not None and facts.workspace == "ready":
        state = "delayed_email"  # the workspace is made: what waits is the confirmation email
    if key:
        template = words.NEEDS_SUPPORT_REPLIES[key]
    elif state == "delayed" and facts is not None and facts.workspace == "pending":
        template = _delayed_reply(facts)
    else:
        template = words.SUGGESTED_REPLIES.get(state, words.SUGGESTED_REPLIES[None])
    text = str(template).format(
        email=ticket.account.email if ticket.account else ticket.email,
        login_url=settings.SITE_URL + reverse("accounts:login"),
        signup_url=settings.SITE_URL + reverse("accounts:signup"))
    return text


# --- The dashboard --------------------------------------------------------------------------

@dataclass(frozen=True)
class HourBar:
    start: datetime
    total: int
    partial: int


@dataclass
class Dashboard:
    state_counts: list[tuple[str, str, int]]  # (state, label, accounts)
    priority_counts: list[tuple[int, str, int]]  # (priority, label, open tickets)
    waiting_on_customer: int
    open_total: int
    oldest: Ticket | None
    hours: list[HourBar]


def triage_dashboard(*, now: datetime | None = None) -> Dashboard:
    """The console's home page: does anything need a human today? The same queries
    whatever the number of accounts and tickets, and none reads every account, nor
    every account in flight: the states and the signups per hour come from the
    state tally (``lifecycle_state_counts``)."""
    now = now or timezone.now()
    # The support team's hours (TIME_ZONE), as TruncHour groups them: a zone half an
    # hour off UTC has its own hour boundaries. Stepped in UTC, so a change of clocks
    # neither skips nor repeats an hour.
    this_hour = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    first_hour = this_hour.astimezone(UTC) - timedelta(hours=23)
    counts = lifecycle_state_counts(since_hour=first_hour, now=now)
    by_status_priority = {(row["status"], row["priority"]): row["n"] for row in
                          Ticket.objects.filter(status__in=UNRESOLVED).values("status", "priority")
                          .annotate(n=Count("pk")).order_by()}
    oldest = (Ticket.objects.filter(status=TicketStatus.OPEN).select_related("account")
              .order_by("waiting_since", "pk").first())
    hours = []
    for n in range(24):
        start = timezone.localtime(first_hour + timedelta(hours=n))
        partial = sum(counts.joined_states.get((start, state), 0) for state in PARTIAL_STATES)
        hours.append(HourBar(start, counts.joined.get(start, 0), partial))
    return Dashboard(
        state_counts=[(state, str(words.STATE_LABELS[state]), counts.states[state]) for state in State.ALL],
        priority_counts=[(p.value, str(p.label), by_status_priority.get((TicketStatus.OPEN, p.value), 0))
                         for p in Priority],
        waiting_on_customer=sum(n for (status, _), n in by_status_priority.items()
                                if status == TicketStatus.WAITING_ON_CUSTOMER),
        open_total=sum(n for (status, _), n in by_status_priority.items() if status == TicketStatus.OPEN),
        oldest=oldest, hours=hours,
    )


# --- Incidents ------------------------------------------------------------------------------

@dataclass(frozen=True)
class OpenIncident:
    incident: Incident
    what: str  # what the outage stops, in words
    waiting: int  # live: the incident's figures' "waiting now"
    # Whether the provider's circuit is open now: an incident stays open after the
    # provider recovered, while what it held drains.
    stopped: bool = True
    # Accounts whose step its refusal stopped for good: they need a re-run, not a wait.
    steps_stopped: int = 0

    @property
    def state(self) -> str:
        """Stopped, or recovered and catching up, with how many wait."""
        return words.incident_state(what=self.what, provider=self.incident.get_provider_display().lower(),
                                    stopped=self.stopped, waiting=self.waiting)

    @property
    def nothing_to_do(self) -> str:
        """What support does about it: by what holds the circuit open (the incident's
        ``opened_by``), and a re-run for the steps its refusal stopped."""
        return words.incident_to_do(stopped=self.stopped, opened_by=self.incident.opened_by,
                                    code=self.incident.cause, provider=self.incident.provider,
                                    steps_stopped=self.steps_stopped)


def incident_error_codes(incident: Incident) -> list[str]:
    """The errors a step that went through carries as history if it waited on this
    incident: held behind its circuit (durable.OUTAGE), or the failure that opened it
    (the refusal that is its cause, else the code of the failure that tripped it).
    Anything else on a step done in the window (a person's own 422 that a support
    re-run got past, a 503 of before) is no wait of this incident's."""
    return [OUTAGE, *{code for code in (incident.cause, incident.failure) if code}]


def incident_steps_stopped(incident: Incident) -> int:
    """How many accounts have a step stopped for good with the incident's refusal
    (its ``cause``; 0 for an outage): what "Re-run all" re-arms. One query, none
    without a cause."""
    return accounts_with_failed_steps_query(code=incident.cause).count() if incident.cause else 0


def incident_refused(incident: Incident) -> tuple[int, int]:
    """For an incident whose cause is a refusal of us: the accounts the provider
    really refused with it, and those waiting behind the circuit that it has not
    refused (``provisioning.selectors.outage_refused``), since the failures that
    opened it (a breaker window before)."""
    since = incident.started_at - timedelta(seconds=settings.BREAKER_WINDOW_SECONDS)
    return outage_refused(incident.provider, since, incident.cause)


def apology_recipients(*, incident: Incident) -> QuerySet[User]:
    """Who is owed "you're all set — sorry for the wait" for a closed incident: open
    accounts whose workspace exists now, and whose setup really waited on this
    outage: their workspace step (a workspace outage) or their verification email (an
    email outage) hit this outage's error (``incident_error_codes``) and then succeeded between the failures that opened
    the circuit (a breaker window before it opened) and the close. Not someone whose
    workspace failed for good (that is a ticket's matter), nor a long-active person
    whose password-reset email was late (their setup never waited). In account id
    order, for batching."""
    since = incident.started_at - timedelta(seconds=settings.BREAKER_WINDOW_SECONDS)
    steps = (EmailDelivery.objects.filter(kind=EmailKind.VERIFICATION) if incident.provider == "email"
             else ProvisioningRequest.objects.all())
    waited = steps.filter(account=OuterRef("pk"), status=StepStatus.SUCCEEDED, completed_at__gte=since,
                          completed_at__lte=incident.ended_at, last_error_code__in=incident_error_codes(incident))
    return (User.objects.filter(Exists(waited), is_active=True, is_staff=False, workspace__isnull=False)
            .order_by("pk"))


def open_incident_state(incident: Incident, *, circuits: dict | None = None, waiting: int | None = None,
                        steps_stopped: int | None = None) -> OpenIncident:
    """One open incident as the banner and its page say it: whether its provider's
    circuit is open now, how many wait on it and how many its refusal stopped
    (``waiting``, ``steps_stopped``, when the caller has already counted them: the
    incident page)."""
    circuits = open_circuits() if circuits is None else circuits
    waiting = outage_waiting_count(incident.provider) if waiting is None else waiting
    if steps_stopped is None:
        # A refusal of us never stops a step (its attempts do not count): the banner on
        # every page asks only for a refusal many accounts got alike.
        steps_stopped = 0 if incident.opened_by in REFUSED_OURS else incident_steps_stopped(incident)
    return OpenIncident(incident, str(words.OUTAGE_WHAT.get(incident.provider, incident.provider)),
                        waiting, stopped=incident.provider in circuits, steps_stopped=steps_stopped)


def open_incidents() -> list[OpenIncident]:
    """Open incidents, oldest first, each with how many wait on it now (the banner on
    every console page): one query, plus, when any is open, one for the open
    circuits and one count per incident (two for a refusal many accounts got alike). The same number as
    ``incident_figures(...).waiting``, without the rest."""
    incidents = list(Incident.objects.filter(status=IncidentStatus.OPEN).order_by("started_at", "pk"))
    circuits = open_circuits() if incidents else {}
    return [open_incident_state(incident, circuits=circuits) for incident in incidents]


# --- What /help/ answers --------------------------------------------------------------------

@dataclass(frozen=True)
class HelpAnswer:
    happened: str
    next: str
    incident: str  # about an open outage, or ""

    @property
    def text(self) -> str:
        return " ".join(part for part in (self.happened, self.next, self.incident) if part)


def help_answer(*, contact: ContactMessage, signed_in_as: User | None) -> HelpAnswer:
    """What /help/ tells the person who wrote ``contact``, chosen from facts. Logged
    out, the answer is the same whatever the address typed (only the random
    reference differs). The outage wording that says the account is saved and will
    go through by itself is said only to a signed-in person whose account really
    waits on that outage."""
    entry = words.HELP_RECEIVED
    incident = ""
    if contact.incident is not None:
        provider = contact.incident.provider
        what = words.OUTAGE_WHAT.get(provider, provider)
        waiting = False
        if signed_in_as is not None:
            facts = account_overview(account=signed_in_as).facts
            waiting = facts.outage == provider or (provider == "email" and facts.email == EmailFact.HELD)
        notice = words.HELP_INCIDENT_NOTICE if signed_in_as is None else words.HELP_INCIDENT_NOTICE_SIGNED_IN
        incident = str(words.HELP_DURING_INCIDENT if waiting else notice).format(what=what)
    return HelpAnswer(happened=str(entry.happened), incident=incident, next=str(entry.next).format(
        email=contact.email, reply_hours=settings.SUPPORT_REPLY_HOURS))
