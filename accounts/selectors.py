"""Reads about accounts: where an account stands and why.

The overall lifecycle state is derived, never stored: two facts (the workspace step
and the email) decide it, in the order of DESIGN's table. The status page, the
status JSON, ``manage.py account_status`` and the support console all read it here.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, CharField, Exists, F, OuterRef, Q, QuerySet, Subquery, Value, When

from accounts.emails import RECIPIENT_REJECTED
from accounts.messages import STATES, in_words
from accounts.models import EmailDelivery, EmailKind, User, normalize_email
from accounts.tokens import split_verification_token, verification_tokens
from provisioning import breaker
from provisioning.durable import StepStatus
from provisioning.models import Breaker, BreakerState, DeprovisionRequest, Event, ProvisioningRequest


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
    message: str = ""
    title: str = ""
    steps: list = field(default_factory=list)

    def as_json(self) -> dict:
        """The `/setup/status.json` contract, exactly as in DESIGN."""
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
        }


def user_by_email(*, email: str) -> User | None:
    return User.objects.filter(email=normalize_email(email)).first()


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


def latest_verification(account: User) -> EmailDelivery | None:
    """The verification email that speaks for the account's address now. Cancelled ones
    (a link no longer wanted) never do: the one before them still tells the truth."""
    return (EmailDelivery.objects.filter(account=account, kind=EmailKind.VERIFICATION,
                                         to_address=account.email)
            .exclude(last_error_code="cancelled")
            .order_by("-created_at", "-pk").first())


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


def _state(account: User, request, delivery, delivery_status: str, outage: bool) -> str:
    workspace = _workspace_status(request)
    unverified = not account.email_verified
    email_exhausted = (unverified and delivery is not None and delivery.status == StepStatus.FAILED
                       and delivery.last_error_code not in (RECIPIENT_REJECTED, "cancelled"))
    if not account.is_active:
        return State.DISABLED
    if workspace == "pending":
        failed_attempts = request.attempts - (1 if request.status == StepStatus.RUNNING else 0)
        slow = request.last_error_code and failed_attempts >= settings.DELAYED_AFTER_ATTEMPTS
        return State.DELAYED if (slow or outage) else State.SETTING_UP
    if workspace == "failed" or email_exhausted:
        return State.NEEDS_SUPPORT
    if unverified and (delivery_status == "bounced" or (
            delivery is not None and delivery.status == StepStatus.FAILED
            and delivery.last_error_code == RECIPIENT_REJECTED)):
        return State.EMAIL_UNDELIVERABLE
    if unverified and outage:
        return State.DELAYED
    return State.UNVERIFIED if unverified else State.ACTIVE


def account_overview(*, account: User) -> Overview:
    """Everything the status page, the status JSON and the console show about one
    account. Three queries (request, latest verification email, breakers) plus the
    ticket lookup."""
    request = ProvisioningRequest.objects.filter(account=account).first()
    delivery = latest_verification(account)
    delivery_status = _delivery_status(account, delivery)
    workspace = _workspace_status(request)
    outage = ((workspace == "pending" and breaker.is_open("provisioning"))
              or (workspace == "ready" and delivery_status == "pending"
                  and not account.email_verified and breaker.is_open("email")))
    ticket = next(filter(None, (lookup(account.pk) for lookup in _ticket_lookups)), None)
    state = _state(account, request, delivery, delivery_status, outage)
    next_at = request.next_attempt_at if request and workspace == "pending" else None
    if state == State.DELAYED and outage:  # the words name the provider that is down
        entry = STATES["outage" if workspace == "pending" else "email_outage"]
    else:
        entry = STATES[state]
    message = entry.sentence(
        when=in_words(next_at), address=account.email, reply_hours=settings.SUPPORT_REPLY_HOURS,
        reference=f" (reference {ticket})" if ticket else "")
    return Overview(
        account=account, state=state, workspace_status=workspace,
        workspace_attempts=request.attempts if request else 0, next_attempt_at=next_at,
        request=request, delivery=delivery, delivery_status=delivery_status, outage=outage,
        ticket=ticket, message=message, title=str(entry.title),
    )


def with_lifecycle_state(queryset: QuerySet, *, prefix: str = "", name: str = "lifecycle_state") -> QuerySet:
    """Annotate each row with its account's overall state, computed by the database,
    so lists, filters and counts over many accounts cost one query whatever their
    number (the console's queue, user list and dashboard). ``prefix`` reaches the
    account from another model ("account__" from a ticket); rows without an account
    get None.

    The same rules as ``_state`` above, in the same order; change both together
    (accounts/tests/test_state_expression.py checks that they agree)."""
    p = prefix
    open_breakers = set(Breaker.objects.filter(state=BreakerState.OPEN).values_list("provider", flat=True))
    # The latest verification email to the current address (as latest_verification
    # picks it), reduced to what decides the state: exhausted (needs support),
    # undeliverable, sent, other, else pending.
    latest = (EmailDelivery.objects
              .filter(account=OuterRef(f"{p}pk"), kind=EmailKind.VERIFICATION, to_address=OuterRef(f"{p}email"))
              .exclude(last_error_code="cancelled")
              .order_by("-created_at", "-pk")
              .annotate(verdict=Case(
                  When(Q(status=StepStatus.FAILED) & ~Q(last_error_code__in=[RECIPIENT_REJECTED, "cancelled"]),
                       then=Value("exhausted")),
                  When(Q(bounced_at__isnull=False) | Q(status=StepStatus.FAILED, last_error_code=RECIPIENT_REJECTED),
                       then=Value("undeliverable")),
                  When(status=StepStatus.SUCCEEDED, then=Value("sent")),
                  When(status=StepStatus.FAILED, then=Value("other")),
                  default=Value("pending"), output_field=CharField()))
              .values("verdict")[:1])
    ws = f"{p}provisioning_request__"
    pending = Q(**{f"{ws}status__in": [StepStatus.PENDING, StepStatus.RUNNING]})
    # A running attempt has not failed yet, so it takes one more attempt to be "slow".
    slow = ~Q(**{f"{ws}last_error_code": ""}) & (
        Q(**{f"{ws}status": StepStatus.PENDING, f"{ws}attempts__gte": settings.DELAYED_AFTER_ATTEMPTS})
        | Q(**{f"{ws}status": StepStatus.RUNNING, f"{ws}attempts__gte": settings.DELAYED_AFTER_ATTEMPTS + 1}))
    unverified = Q(**{f"{p}email_verified_at__isnull": True})
    verdict = f"_{name}_email"
    email_pending = Q(**{f"{verdict}__isnull": True}) | Q(**{verdict: "pending"})
    whens = [When(Q(**{f"{p}pk__isnull": True}), then=Value(None))] if p else []
    whens += [When(Q(**{f"{p}is_active": False}), then=Value(State.DISABLED)),
             When(pending & (Q() if "provisioning" in open_breakers else slow), then=Value(State.DELAYED)),
             When(pending, then=Value(State.SETTING_UP)),
             When(Q(**{f"{ws}status": StepStatus.FAILED}) | (unverified & Q(**{verdict: "exhausted"})),
                  then=Value(State.NEEDS_SUPPORT)),
             When(unverified & Q(**{verdict: "undeliverable"}), then=Value(State.EMAIL_UNDELIVERABLE))]
    if "email" in open_breakers:
        whens.append(When(unverified & email_pending, then=Value(State.DELAYED)))
    whens.append(When(unverified, then=Value(State.UNVERIFIED)))
    return queryset.alias(**{verdict: Subquery(latest, output_field=CharField())}).annotate(**{name: Case(
        *whens,
        default=Value(State.ACTIVE), output_field=CharField())})


def deliveries_sent_to(*, address: str) -> QuerySet[EmailDelivery]:
    """Emails that went out (sent, or given up on) to ``address``, lowercased, and
    are not yet marked bounced: what a bounce webhook marks. Emails still queued are
    sent later and speak for themselves. Backed by the index on ``to_address``."""
    return EmailDelivery.objects.filter(to_address=address, bounced_at__isnull=True,
                                        status__in=[StepStatus.SUCCEEDED, StepStatus.FAILED])


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
    failed = StepStatus.FAILED
    latest = (EmailDelivery.objects.filter(account=OuterRef("pk"), kind=EmailKind.VERIFICATION,
                                           to_address=OuterRef("email"))
              .exclude(last_error_code="cancelled")
              .order_by("-created_at", "-pk"))
    workspace = Q(provisioning_request__status=failed)
    email = Q(email_verified_at__isnull=True, latest_verification_status=failed)
    if code is not None:
        workspace &= Q(provisioning_request__last_error_code=code)
        email &= Q(latest_verification_code=code)
    return list(
        User.objects.annotate(latest_verification_status=Subquery(latest.values("status")[:1]),
                              latest_verification_code=Subquery(latest.values("last_error_code")[:1]))
        .filter(workspace | email)
        .order_by("date_joined")
    )


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
    a registered hold keeps (an open ticket: support is handling them)."""
    live = (StepStatus.PENDING, StepStatus.RUNNING)
    queryset = (
        User.objects.filter(email_verified_at__isnull=True, is_active=True, is_staff=False,
                            is_superuser=False, date_joined__lt=joined_before)
        .filter(Q(last_login__isnull=True) | Q(last_login__lte=F("date_joined") + SIGNUP_SESSION))
        .exclude(provisioning_request__status__in=[StepStatus.FAILED, *live])
        .exclude(Exists(EmailDelivery.objects.filter(account=OuterRef("pk"), status__in=live)))
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
    return (User.objects.filter(is_active=False, workspace_removals__isnull=False).distinct()
            .annotate(removal_status=Subquery(latest)).order_by("date_joined", "pk"))
