"""How many accounts are in each lifecycle state, at a cost bounded by what is in
flight, not by how many accounts there are (the console's dashboard, at a million
accounts: bench/dashboard_scale.py).

Computing the state of every account per request is what cost 220 ms at 100,000
accounts and grew with them. Most accounts are settled: their workspace is there,
their verification email went out, and their state follows from one column: a
customer who is not closed and is *not in flight* is ``active`` if the address is
confirmed, else ``unverified``. Only accounts in flight can read otherwise, so only
they go through the one definition of the state (``with_lifecycle_state``); the
settled rest are counted from the customer tally the database keeps
(``CustomerTally``), less the in-flight accounts it also counts.

In flight (``accounts_in_flight``): a workspace step not done (pending, running or
stopped), or, for an unconfirmed address, a verification email not simply sent
(owed, running, stopped or bounced; a cancelled one never speaks). Both are found
through partial indexes that hold those rows only. That covers every branch of
``with_lifecycle_state`` but one: an unconfirmed account with no verification email
at all reads ``delayed`` during an email outage. Signup and address correction
queue that email in the same transaction that makes the address unconfirmed, so a
customer account never lacks one (``test_state_counts`` holds the counts to the
definition, outage included).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DateTimeField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import TruncHour

from accounts.models import VERIFICATION_UNSETTLED, CustomerTally, EmailDelivery, User
from accounts.selectors import State, with_lifecycle_state
from provisioning.durable import StepStatus
from provisioning.models import ProvisioningRequest

UNFINISHED_STEP = (StepStatus.PENDING, StepStatus.RUNNING, StepStatus.FAILED)


class AmongIds(Func):
    """``field IN (subquery)``, written ``field = ANY(ARRAY(subquery))`` on PostgreSQL.
    With IN, the planner sizes the ids from its estimate and, for a thousand ids among
    100,000 accounts, chose to read and hash the whole account table (18 ms) rather
    than look the ids up one by one; an array is looked up one by one, so the cost
    follows the ids at every size."""

    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template="%(expressions)s", arg_joiner=" IN ", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        # The subquery renders in its own parentheses: "id = ANY(ARRAY" "(SELECT ...)" ")".
        return super().as_sql(compiler, connection, template="%(expressions)s)", arg_joiner=" = ANY(ARRAY",
                              **extra)

def accounts_in_flight() -> QuerySet:
    """Ids of the accounts whose state is not simply read from their confirmed
    address (see the module's docstring), for ``pk__in``: one UNION of two
    partial-index scans, as a subquery."""
    workspace = ProvisioningRequest.objects.filter(status__in=UNFINISHED_STEP).values("account_id")
    # Only for an unconfirmed address: the bounces before a corrected address stay
    # in the index after the account is confirmed. EXISTS, so that the probe is an
    # index-only look-up in the unconfirmed accounts' own index.
    unconfirmed = User.objects.filter(pk=OuterRef("account_id"), email_verified_at__isnull=True)
    email = EmailDelivery.objects.filter(VERIFICATION_UNSETTLED, Exists(unconfirmed)).values("account_id")
    return workspace.union(email)


def in_flight_among(accounts: QuerySet[User]) -> QuerySet[User]:
    """``accounts`` narrowed to the ones in flight (``accounts_in_flight``), looked up
    id by id: what a search then costs follows the accounts in flight, not the table.
    A search for accounts setting up, needing support or whose email is undeliverable
    loses none by starting here: every account in those states is in flight, and so
    is every delayed one but the one exception the module's docstring names."""
    return accounts.filter(AmongIds(F("pk"), Subquery(accounts_in_flight())))


@dataclass(frozen=True)
class StateCounts:
    states: dict[str, int]  # every state in State.ALL, customers only (no staff)
    joined: dict[datetime, int]  # customers who joined since ``joined_since``, by hour
    in_flight_joined: dict[tuple[datetime, str], int]  # of those, the ones in flight, by (hour, state)


def lifecycle_state_counts(*, joined_since: datetime | None = None, now: datetime | None = None,
                           breakers: set[str] | None = None, stale: bool | None = None) -> StateCounts:
    """Customers (not staff) in each lifecycle state, exactly what counting
    ``with_lifecycle_state`` over all of them would say, plus the customers who
    joined since ``joined_since`` by hour (in flight or not). One statement, so the
    figures come from one snapshot and always add up; the state's inputs (open
    breakers, a stale worker) are read first, two queries unless given."""
    in_flight = with_lifecycle_state(in_flight_among(User.objects.filter(is_staff=False, is_active=True)),
                                     now=now, breakers=breakers, stale=stale)
    no_hour = Value(None, output_field=DateTimeField())
    # TruncHour outermost: a union's rows go through its first part's converters (the
    # time zone is put back there), and None stays None.
    hour = (TruncHour(Case(When(date_joined__gte=joined_since, then=F("date_joined")), output_field=DateTimeField()))
            if joined_since else no_hour)
    zero = Value(0, output_field=IntegerField())
    # Rows of three kinds in one UNION ALL: (part, state, hour, a, b, c).
    parts = [
        in_flight.annotate(part=Value("flight"), hour=hour).values("part", "lifecycle_state", "hour")
        .annotate(a=Count("pk"), b=Count("pk", filter=Q(email_verified_at__isnull=True)), c=zero)
        .values_list("part", "lifecycle_state", "hour", "a", "b", "c").order_by(),
        CustomerTally.objects.annotate(part=Value("tally"), state=Value(None, output_field=CharField()),
                                       hour=no_hour)
        .values_list("part", "state", "hour", "customers", "unverified", "disabled").order_by(),
    ]
    if joined_since:
        parts.append(
            User.objects.filter(is_staff=False, date_joined__gte=joined_since)
            .annotate(part=Value("joined"), state=Value(None, output_field=CharField()),
                      hour=TruncHour("date_joined")).values("part", "state", "hour")
            # COUNT(*), not of the id: the date alone is in the index, which then answers alone.
            .annotate(a=Count("*"), b=zero, c=zero).values_list("part", "state", "hour", "a", "b", "c").order_by())
    states: Counter[str] = Counter()
    joined: Counter[datetime] = Counter()
    in_flight_joined: Counter[tuple[datetime, str]] = Counter()
    customers = disabled = unverified = flight_unverified = 0
    for part, state, at, a, b, c in parts[0].union(*parts[1:], all=True):
        if part == "tally":
            customers, unverified, disabled = customers + a, unverified + b, disabled + c
        elif part == "joined":
            joined[at] += a
        else:
            states[state] += a
            flight_unverified += b
            if at is not None:
                in_flight_joined[at, state] += a
    flight = sum(states.values())
    states[State.DISABLED] += disabled
    states[State.UNVERIFIED] += unverified - flight_unverified
    states[State.ACTIVE] += (customers - disabled - unverified) - (flight - flight_unverified)
    return StateCounts(states={state: states[state] for state in State.ALL}, joined=dict(joined),
                       in_flight_joined=dict(in_flight_joined))
