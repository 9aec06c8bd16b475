"""Reads about accounts: where an account stands and why.

The overall lifecycle state is derived, never stored: two facts (the workspace step
and the email) decide it, in the order of DESIGN's table. The status page, the
status JSON, ``manage.py account_status`` and the support console all read it here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Exists,
    Expression,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from accounts.emails import CANCELLED, RECIPIENT_REJECTED
from accounts.messages import EmailFact, Facts, Said, say
from accounts.models import EmailDelivery, EmailKind, User, email_is, normalize_email
from accounts.tokens import read_email_change_token, split_verification_token, verification_tokens
from provisioning.durable import StepStatus
from provisioning.models import (
    OPENINGS_OURS,
    Breaker,
    BreakerState,
    DeprovisionRequest,
    Event,
    ProvisioningRequest,
)
from provisioning.selectors import step_refused


class State:
    SETTING_UP = "setting_up"
    DELAYED = "delayed"
    NEEDS_SUPPORT = "needs_support"
    EMAIL_UNDELIVERABLE = "email_undeliverable"
    UNVERIFIED = "unverified"
    ACTIVE = "active"
    DISABLED = "disabled"

    ALL = (SETTING_UP, DELAYED, NEEDS_SUPPORT, EMAIL_UNDELIVERABLE, UNVERIFIED, ACTIVE, DISABLED)


# The support app tells us an account's open ticket reference (it sits above us, so
# it registers a lookup instead of being imported).
_ticket_lookups: list[Callable[[int], str | None]] = []


def register_ticket_lookup(lookup: Callable[[int], str | None]) -> None:
    if lookup not in _ticket_lookups:
        _ticket_lookups.append(lookup)


# The support app tells us which providers have an open incident (shown on its
# console's dashboard and queue): only then may a page say our support team can see the problem.
_incident_lookups: list[Callable[[], set[str]]] = []


def register_incident_lookup(lookup: Callable[[], set[str]]) -> None:
    if lookup not in _incident_lookups:
        _incident_lookups.append(lookup)


def open_incidents() -> set[str]:
    """The providers whose incident is open now (none without the support app). One query."""
    return set().union(*(lookup() for lookup in _incident_lookups))


@dataclass
class Overview:
    account: User
    state: str
    workspace_status: str  # pending | ready | failed
    workspace_attempts: int
    next_attempt_at: datetime | None
    request: ProvisioningRequest | None
    delivery: EmailDelivery | None
    delivery_status: str  # pending | sent | failed | bounced
    outage: bool
    ticket: str | None
    facts: Facts
    said: Said

    @property
    def message(self) -> str:
        return self.said.message

    @property
    def title(self) -> str:
        return self.said.title

    def as_json(self) -> dict:
        """The `/setup/status.json` contract, exactly as in DESIGN, extended with
        ``said``: the page's other words, so live updates need no words of their own."""
        return {
            "state": self.state,
            "workspace": {
                "status": self.workspace_status,
                "attempts": self.workspace_attempts,
                "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            },
            "email": {
                "address": self.account.email,
                "verified": self.account.email_verified,
                "delivery": self.delivery_status,
            },
            "ticket": self.ticket,
            "message": self.message,
            "said": self.said.as_json(),
        }


def user_by_email(*, email: str) -> User | None:
    return User.objects.filter(email_is(normalize_email(email))).first()


def verification_link_account(*, token: str, lock: bool = False) -> User | None:
    """The active account a verification link is good for now, or None for a link that
    is malformed, expired, used or replaced. Never raises. ``lock`` takes the account's
    row lock (inside the caller's transaction), for the service that confirms."""
    parsed = split_verification_token(token)
    if parsed is None:
        return None
    pk, raw = parsed
    accounts = User.objects.select_for_update() if lock else User.objects
    account = accounts.filter(pk=pk, is_active=True).first()
    return account if account is not None and verification_tokens.check_token(account, raw) else None


def email_change_link_account(*, token: str, lock: bool = False) -> tuple[User, str] | None:
    """(the active account, the new address) a strict-mode change link is good for
    now, or None for a link that is tampered with, expired, used or overtaken: the
    account must still have the address it had when the change was asked for, and
    still be unverified (confirming verifies it, so a link works once). Never raises.
    ``lock`` takes the account's row lock, for the service that confirms."""
    parsed = read_email_change_token(token)
    if parsed is None:
        return None
    pk, old, new = parsed
    accounts = User.objects.select_for_update() if lock else User.objects
    account = accounts.filter(pk=pk, is_active=True, email=old, email_verified_at__isnull=True).first()
    return None if account is None else (account, new)


# --- The facts, each defined once --------------------------------------------------------

def verification_emails(*, account, address) -> QuerySet[EmailDelivery]:
    """The verification emails that speak for an account's address now, newest first:
    the one definition every page, the JSON, the emails and the console read
    (``account`` and ``address`` may be ``OuterRef``s, for subqueries). Cancelled ones
    (a link no longer wanted) never speak: the one before them still tells the truth."""
    return (EmailDelivery.objects.filter(account=account, kind=EmailKind.VERIFICATION, to_address=address)
            .exclude(last_error_code=CANCELLED).order_by("-created_at", "-pk"))


def latest_verification_of(prefix: str = "") -> QuerySet[EmailDelivery]:
    """``verification_emails`` for the account of each row of an outer query, for
    ``Subquery(latest_verification_of("account__").values(...)[:1])``."""
    return verification_emails(account=OuterRef(f"{prefix}pk"), address=OuterRef(f"{prefix}email"))


def latest_verification(account: User, *, now: datetime | None = None) -> EmailDelivery | None:
    """The verification email that speaks for the account's address now, with its
    ``overdue`` flag."""
    return (verification_emails(account=account, address=account.email)
            .annotate(overdue=_flag(step_overdue(now=now or timezone.now()))).first())


# The scheduler wakes about every 30 s (django-q2): the floor under any interval.
SCHEDULER_TICK_SECONDS = 30


def step_overdue(*, prefix: str = "", now: datetime) -> Q:
    """A step no worker picked up in time: due for longer than one reconcile interval
    (plus the scheduler's tick), or running past its lease (its worker died). Whatever
    the cause (no worker, a stopped scheduler, a long queue), no page may promise a
    time for it then."""
    late = now - timedelta(seconds=settings.RECONCILE_EVERY_SECONDS + SCHEDULER_TICK_SECONDS)
    return (Q(**{f"{prefix}status": StepStatus.PENDING, f"{prefix}next_attempt_at__lt": late})
            | Q(**{f"{prefix}status": StepStatus.RUNNING, f"{prefix}lease_expires_at__lt": now}))


def worker_stale(*, now: datetime) -> bool:
    """No reconcile pass has finished for two intervals (plus the scheduler's tick):
    no worker is consuming the queue, so nothing due will run on time. Unknown (no
    pass ever recorded) is not claimed to be stale. One query."""
    from provisioning.reconciler import last_pass_at  # the reconciler imports our models' app

    last = last_pass_at()
    late = timedelta(seconds=2 * settings.RECONCILE_EVERY_SECONDS + SCHEDULER_TICK_SECONDS)
    return last is not None and now - last > late


def _flag(q: Q) -> ExpressionWrapper:
    return ExpressionWrapper(q, output_field=BooleanField())


def open_breakers() -> set[str]:
    """The providers whose circuit is open (an outage) now. One query."""
    return set(open_breakers_opened_by())


def open_breakers_opened_by() -> dict[str, str]:
    """Each provider whose circuit is open now, with what opened it (a
    ``BreakerOpening``: those in ``OPENINGS_OURS`` are our fault). One query."""
    return dict(Breaker.objects.filter(state=BreakerState.OPEN).values_list("provider", "opened_by"))


def email_outage() -> tuple[bool, bool]:
    """Whether the email provider's circuit is open now (an email owed waits behind
    it), and whether what opened it is ours (``OPENINGS_OURS``: then the provider is
    not what is down). One query."""
    opened_by = open_breakers_opened_by().get("email")
    return opened_by is not None, opened_by in OPENINGS_OURS


def _workspace_status(request: ProvisioningRequest | None) -> str:
    if request is None or request.status == StepStatus.SUCCEEDED:
        return "ready"
    return "failed" if request.status == StepStatus.FAILED else "pending"


def _delivery_status(account: User, delivery: EmailDelivery | None) -> str:
    if delivery is None:
        return "sent" if account.email_verified else "pending"
    if delivery.bounced_at:
        return "bounced"
    return {StepStatus.SUCCEEDED: "sent", StepStatus.FAILED: "failed"}.get(delivery.status, "pending")


def _failures(step) -> int:
    """Tries that failed: a try still running has not (yet), nor the one that
    succeeded (its last error stays as history)."""
    if step is None or not step.last_error_code:
        return 0
    not_failed = 1 if step.status in (StepStatus.RUNNING, StepStatus.SUCCEEDED) else 0
    return max(0, step.attempts - not_failed)


def _email_fact(account: User, delivery: EmailDelivery | None, email_down: bool, stale: bool) -> str:
    if account.email_verified:
        return EmailFact.VERIFIED
    if delivery is None:
        return EmailFact.NONE
    if delivery.bounced_at or (delivery.status == StepStatus.FAILED and delivery.last_error_code == RECIPIENT_REJECTED):
        return EmailFact.UNDELIVERABLE
    if delivery.status == StepStatus.FAILED:
        return EmailFact.STOPPED
    if delivery.status == StepStatus.SUCCEEDED:
        return EmailFact.SENT
    if email_down:
        return EmailFact.HELD
    if delivery.overdue or stale:
        return EmailFact.LATE
    return EmailFact.RETRYING if _failures(delivery) else EmailFact.SENDING


def _previous_link_failed(account: User, delivery: EmailDelivery) -> bool:
    """The account's verification email before this one failed on our side and was
    never sent: a try of ours failed (timeouts, the provider down, our credentials
    refused, our retries ran out), or it was cancelled by a corrected address while
    still retrying. A fresh link on time is then no promise that it will arrive
    within a minute. Not when the address refused it (rejected at once, or reported
    bounced): that failure was the address's, not ours, and the page said so. Nor
    while its first try is still running: it has not failed. One query."""
    previous = (EmailDelivery.objects.filter(account=account, kind=EmailKind.VERIFICATION)
                .exclude(pk=delivery.pk).order_by("-created_at", "-pk")
                .only("status", "attempts", "last_error_code", "bounced_at").first())
    return (previous is not None and previous.status != StepStatus.SUCCEEDED and previous.bounced_at is None
            and previous.last_error_code != RECIPIENT_REJECTED and _failures(previous) > 0)


def account_overview(*, account: User) -> Overview:
    """Everything the status page, the status JSON, the home page and the console show
    about one account: its facts, derived here once, and the words chosen from them
    (``accounts.messages.say``). The lifecycle state is the database's
    (``with_lifecycle_state``), so lists and this page can never disagree. Six
    queries (breakers, last reconcile pass, request, latest verification email,
    state, ticket), and one more while a fresh link is on its way (the one before it)."""
    now = timezone.now()
    # What opened each open circuit: a refusal of us (our credentials, configuration
    # or relay), or the same refusal for many accounts, is our fault (OPENINGS_OURS),
    # and the page says so rather than blame the provider.
    opened_by = open_breakers_opened_by()
    breakers = set(opened_by)
    stale = worker_stale(now=now)
    request = (ProvisioningRequest.objects.filter(account=account)
               .annotate(overdue=_flag(step_overdue(now=now))).first())
    delivery = latest_verification(account, now=now)
    state = (with_lifecycle_state(User.objects.filter(pk=account.pk), now=now, breakers=breakers, stale=stale)
             .values_list("lifecycle_state", flat=True).get())
    delivery_status = _delivery_status(account, delivery)
    workspace = _workspace_status(request)
    outage = ""
    if workspace == "pending" and "provisioning" in breakers:
        outage = "provisioning"
    elif workspace == "ready" and delivery_status == "pending" and not account.email_verified and "email" in breakers:
        outage = "email"
    ticket = next(filter(None, (lookup(account.pk) for lookup in _ticket_lookups)), None)
    next_at = request.next_attempt_at if request and workspace == "pending" else None
    open_delivery = delivery is not None and delivery.is_open
    email = _email_fact(account, delivery, open_delivery and "email" in breakers, stale)
    outage_ours = bool(outage) and opened_by.get(outage) in OPENINGS_OURS
    email_held_ours = email == EmailFact.HELD and opened_by.get("email") in OPENINGS_OURS
    # Only a problem of ours is told with who can see it: one more query, then.
    incidents = frozenset(open_incidents()) if outage_ours or email_held_ours else frozenset()
    facts = Facts(
        state=state, address=account.email, verified=account.email_verified, workspace=workspace,
        workspace_attempts=request.attempts if request else 0, workspace_failures=_failures(request),
        workspace_next=next_at, workspace_overdue=workspace == "pending" and (stale or bool(request.overdue)),
        outage=outage, outage_ours=outage_ours, email=email, email_held_ours=email_held_ours, incidents=incidents,
        email_refused=email == EmailFact.STOPPED and step_refused(delivery),
        email_after_failure=email == EmailFact.SENDING and _previous_link_failed(account, delivery),
        email_failures=_failures(delivery), email_next=delivery.next_attempt_at if open_delivery else None,
        email_sent_at=delivery.completed_at if delivery and delivery.status == StepStatus.SUCCEEDED else None,
        ticket=ticket, reply_hours=settings.SUPPORT_REPLY_HOURS, now=now, workspace_refused=step_refused(request),
        workspace_waited=bool(request and request.last_error_code))
    return Overview(
        account=account, state=state, workspace_status=workspace,
        workspace_attempts=request.attempts if request else 0, next_attempt_at=next_at,
        request=request, delivery=delivery, delivery_status=delivery_status, outage=bool(outage),
        ticket=ticket, facts=facts, said=say(facts),
    )


# The facts an account's state is made of that do not depend on the clock or on
# the providers: the lifecycle state is these, plus whether its workspace step is
# overdue, which providers are in an outage and whether a worker runs. The state
# tally (accounts.state_tally) counts accounts by these facts.
STATE_FACTS = ("active", "unverified", "ws_status", "ws_attempts", "ws_error", "verdict")


def lifecycle_facts(*, prefix: str = "") -> dict[str, Expression]:
    """``STATE_FACTS`` as expressions over accounts (``prefix`` reaches the account
    from another model), for ``alias()`` or ``values()``: the one place they are read
    from the rows. The state tally stores what they give: a change here (not to the
    state's Case) is a change to stored facts, deployed with a migration that counts
    every customer again (``accounts.state_tally.state_tally_rebuild``), and one to
    the rows they read needs the tally's triggers to watch those columns too
    (migration 0014's ``WATCHED``)."""
    p = prefix
    ws = f"{p}provisioning_request__"
    # The latest verification email, reduced to what decides the state: exhausted
    # (needs support), undeliverable, sent, else pending; None without one.
    latest = (latest_verification_of(p)
              .annotate(verdict=Case(
                  When(Q(status=StepStatus.FAILED) & ~Q(last_error_code=RECIPIENT_REJECTED),
                       then=Value("exhausted")),
                  When(Q(bounced_at__isnull=False) | Q(status=StepStatus.FAILED, last_error_code=RECIPIENT_REJECTED),
                       then=Value("undeliverable")),
                  When(status=StepStatus.SUCCEEDED, then=Value("sent")),
                  default=Value("pending"), output_field=CharField()))
              .values("verdict")[:1])
    return {
        "active": F(f"{p}is_active"),
        "unverified": _flag(Q(**{f"{p}email_verified_at__isnull": True})),
        "ws_status": F(f"{ws}status"),
        "ws_attempts": F(f"{ws}attempts"),
        "ws_error": _flag(~Q(**{f"{ws}last_error_code": ""})),
        "verdict": Subquery(latest, output_field=CharField()),
    }


def with_lifecycle_state(queryset: QuerySet, *, prefix: str = "", name: str = "lifecycle_state",
                         now: datetime | None = None, breakers: set[str] | None = None,
                         stale: bool | None = None) -> QuerySet:
    """Annotate each row with its account's overall state, computed by the database:
    the one definition of the lifecycle state (DESIGN's table, in its order), read by
    ``account_overview`` for one account and by the console's lists, filters and
    counts over many (one query whatever their number). ``prefix`` reaches the account
    from another model ("account__" from a ticket); rows without an account get None."""
    now = now or timezone.now()
    breakers = open_breakers() if breakers is None else breakers
    stale = worker_stale(now=now) if stale is None else stale
    return with_state_of_facts(queryset, facts=lifecycle_facts(prefix=prefix), name=name,
                               overdue=step_overdue(prefix=f"{prefix}provisioning_request__", now=now),
                               breakers=breakers, stale=stale, no_account=Q(**{f"{prefix}pk__isnull": True})
                               if prefix else None)


def with_state_of_facts(queryset: QuerySet, *, facts: dict[str, Expression], overdue: Q | None,
                        breakers: set[str], stale: bool, name: str = "lifecycle_state",
                        no_account: Q | None = None) -> QuerySet:
    """Annotate each row with the state its ``STATE_FACTS`` (``facts``: expressions
    over the row) make, given whether its workspace step is overdue (``overdue``; None:
    it is not) and the providers in an outage: DESIGN's table, in its order, written
    once. ``with_lifecycle_state`` reads the facts from the accounts; the state tally
    from the columns it keeps them in."""
    def q(fact: str, lookup: str = "", value=True) -> Q:
        return Q(**{f"_{name}_{fact}{lookup}": value})

    pending = q("ws_status", "__in", [StepStatus.PENDING, StepStatus.RUNNING])
    # Slow: several tries failed (a running try has not failed yet, so it takes one
    # more). Overdue: no worker picked the step up in time. Either breaks the promise
    # of "under a minute".
    slow = q("ws_error") & (
        (q("ws_status", "", StepStatus.PENDING) & q("ws_attempts", "__gte", settings.DELAYED_AFTER_ATTEMPTS))
        | (q("ws_status", "", StepStatus.RUNNING) & q("ws_attempts", "__gte", settings.DELAYED_AFTER_ATTEMPTS + 1)))
    # No worker (no reconcile pass for a while) delays every pending step alike.
    delayed = Q() if "provisioning" in breakers or stale else (slow | overdue if overdue is not None else slow)
    unverified = q("unverified")
    email_pending = q("verdict", "__isnull") | q("verdict", "", "pending")
    whens = [When(no_account, then=Value(None))] if no_account is not None else []
    whens += [When(q("active", "", False), then=Value(State.DISABLED)),
              When(pending & delayed, then=Value(State.DELAYED)),
              When(pending, then=Value(State.SETTING_UP)),
              When(q("ws_status", "", StepStatus.FAILED) | (unverified & q("verdict", "", "exhausted")),
                   then=Value(State.NEEDS_SUPPORT)),
              When(unverified & q("verdict", "", "undeliverable"), then=Value(State.EMAIL_UNDELIVERABLE))]
    if "email" in breakers:
        whens.append(When(unverified & email_pending, then=Value(State.DELAYED)))
    whens.append(When(unverified, then=Value(State.UNVERIFIED)))
    return queryset.alias(**{f"_{name}_{fact}": facts[fact] for fact in STATE_FACTS}).annotate(**{name: Case(
        *whens, default=Value(State.ACTIVE), output_field=CharField())})


def deliveries_sent_to(*, address: str) -> QuerySet[EmailDelivery]:
    """Emails that went out (sent, or given up on) to ``address``, lowercased, and
    are not yet marked bounced: what a bounce webhook marks. Emails still queued are
    sent later and speak for themselves. Backed by the index on ``to_address``."""
    return EmailDelivery.objects.filter(to_address=address, bounced_at__isnull=True,
                                        status__in=[StepStatus.SUCCEEDED, StepStatus.FAILED])


def emails_sent_after_waiting(*, account: User) -> list[str]:
    """The kinds of the account's emails (the apology aside) that waited on an error
    and that a server has since accepted, oldest first."""
    return list(EmailDelivery.objects.filter(account=account, status=StepStatus.SUCCEEDED)
                .exclude(last_error_code="").exclude(kind=EmailKind.ALL_SET)
                .order_by("created_at", "pk").values_list("kind", flat=True))


def account_timeline(*, account: User) -> list[Event]:
    return list(Event.objects.filter(account=account).order_by("created_at", "pk"))


def account_deliveries(*, account: User) -> list[EmailDelivery]:
    return list(EmailDelivery.objects.filter(account=account).order_by("created_at", "pk"))


def accounts_with_failed_steps(*, code: str | None = None) -> list[User]:
    """Accounts with a stopped workspace step, or whose latest verification email (the
    one ``latest_verification`` reads) stopped; with ``code``, only steps stopped with
    that error (support's "re-run all" after a refusal that was ours). Older
    deliveries are history: a link cancelled because the address was corrected, or
    one refused before a resend succeeded, leaves nothing to retry."""
    return list(accounts_with_failed_steps_query(code=code))


def accounts_with_failed_steps_query(*, code: str | None = None) -> QuerySet[User]:
    """``accounts_with_failed_steps`` as a query: ``.exists()`` asks whether any is
    stopped without loading them (the incident page's "Re-run all")."""
    failed = StepStatus.FAILED
    latest = latest_verification_of()
    workspace = Q(provisioning_request__status=failed)
    email = Q(email_verified_at__isnull=True, latest_verification_status=failed)
    # The candidates first, from the stopped steps (found by status through the due
    # indexes): the exact test reads each account's latest link, which over every
    # account would cost a read per account (the console's banner asks on every page).
    stopped = [ProvisioningRequest.objects.filter(status=failed),
               EmailDelivery.objects.filter(kind=EmailKind.VERIFICATION, status=failed)]
    if code is not None:
        workspace &= Q(provisioning_request__last_error_code=code)
        email &= Q(latest_verification_code=code)
        stopped = [steps.filter(last_error_code=code) for steps in stopped]
    candidates = stopped[0].values("account_id").union(stopped[1].values("account_id"))
    # A closed account's steps stopped because it was closed: nothing to re-run.
    return (User.objects.filter(pk__in=candidates, is_active=True)
            .annotate(latest_verification_status=Subquery(latest.values("status")[:1]),
                      latest_verification_code=Subquery(latest.values("last_error_code")[:1]))
            .filter(workspace | email)
            .order_by("date_joined"))


# The signup page logs the new account in; a login this soon after joining is that
# one, not the person coming back.
SIGNUP_SESSION = timedelta(minutes=10)


# What keeps an account from the purge, registered by the apps above us (support:
# an open ticket), each a filter expression on accounts.
_purge_holds: list[Callable[[], Exists | Q]] = []


def register_purge_hold(hold: Callable[[], Exists | Q]) -> None:
    if hold not in _purge_holds:
        _purge_holds.append(hold)


def abandoned_signups(*, joined_before: datetime) -> QuerySet[User]:
    """Accounts never verified and never used, that joined before ``joined_before``:
    no login since the one signup makes. Never included: staff, closed accounts,
    accounts something is still happening to (a workspace step or an email pending
    or running), accounts waiting on our team (workspace step failed), and accounts
    a registered hold keeps (an open ticket: support is handling them), and accounts
    support reopened while their removal was under way."""
    live = (StepStatus.PENDING, StepStatus.RUNNING)
    queryset = (
        User.objects.filter(email_verified_at__isnull=True, is_active=True, is_staff=False,
                            is_superuser=False, date_joined__lt=joined_before)
        .filter(Q(last_login__isnull=True) | Q(last_login__lte=F("date_joined") + SIGNUP_SESSION))
        .exclude(provisioning_request__status__in=[StepStatus.FAILED, *live])
        .exclude(Exists(EmailDelivery.objects.filter(account=OuterRef("pk"), status__in=live)))
        # Reopened by support while its removal was owed: a person decided to keep it.
        .exclude(Exists(DeprovisionRequest.objects.filter(account=OuterRef("pk"))))
    )
    for hold in _purge_holds:
        queryset = queryset.exclude(hold())
    return queryset.order_by("date_joined", "pk")


def abandon_warning_sent() -> Exists:
    """For filtering accounts: an abandoned-signup warning was queued for the
    account's current address (whatever became of it: it is queued once)."""
    return Exists(EmailDelivery.objects.filter(account=OuterRef("pk"), kind=EmailKind.ABANDON_WARNING,
                                               to_address=OuterRef("email")))


def abandon_warning_delivered(*, sent_before: datetime) -> Exists:
    """For filtering accounts: the warning reached the account's current address
    before ``sent_before``: sent and not bounced since. A warning that failed or
    bounced warned nobody, so it never starts the clock."""
    return Exists(EmailDelivery.objects.filter(
        account=OuterRef("pk"), kind=EmailKind.ABANDON_WARNING, to_address=OuterRef("email"),
        status=StepStatus.SUCCEEDED, bounced_at__isnull=True, completed_at__lte=sent_before))


def accounts_being_removed() -> QuerySet[User]:
    """Abandoned signups whose removal has begun (closed, their workspace's removal
    at the provider owed), oldest first, with their latest removal step's status as
    ``removal_status``."""
    latest = (DeprovisionRequest.objects.filter(account=OuterRef("pk"))
              .order_by("-created_at", "-pk").values("status")[:1])
    # A removal stopped because support reopened the account is over: closing that
    # account again later must not take the removal up again.
    under_way = DeprovisionRequest.objects.filter(account=OuterRef("pk")).exclude(last_error_code=CANCELLED)
    return (User.objects.filter(Exists(under_way), is_active=False)
            .annotate(removal_status=Subquery(latest)).order_by("date_joined", "pk"))
