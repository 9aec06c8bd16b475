"""How many accounts are in each lifecycle state, at a cost that follows neither the
accounts nor the accounts in flight (the console's dashboard, at a million accounts:
bench/dashboard_scale.py).

Computing the state of every account per request cost 220 ms at 100,000 accounts
and grew with them; computing it for the accounts in flight only cost 80 ms at a
million with 10,000 in flight (an outage's backlog). The counts now come from the
state tally (``accounts.state_tally``): customers by the facts their state is made
of, kept as the rows change. See ``lifecycle_state_counts``.

The accounts in flight (``accounts_in_flight``) are still what the ticket sweep
searches: a workspace step not done (pending, running or stopped), or, for an
unconfirmed address, a verification email not simply sent (owed, running, stopped
or bounced; a cancelled one never speaks), found through partial indexes that hold
those rows only. Every account needing support is among them.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from django.conf import settings
from django.db import connection
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.expressions import RawSQL
from django.utils import timezone

from accounts.models import (
    VERIFICATION_UNSETTLED,
    AccountStateFacts,
    EmailDelivery,
    StateChange,
    StateTally,
    StateTallyByQuarter,
    User,
)
from accounts.selectors import (
    STATE_FACTS,
    State,
    lifecycle_facts,
    open_breakers,
    step_overdue,
    with_state_of_facts,
    worker_stale,
)
from accounts.state_tally import QUARTER_SECONDS, QuarterHour
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
    joined: dict[datetime, int]  # customers who joined since ``since_hour``, by hour
    joined_states: dict[tuple[datetime, str], int]  # the same, by (hour, state); states with none left out


def lifecycle_state_counts(*, since_hour: datetime | None = None, now: datetime | None = None,
                           breakers: set[str] | None = None, stale: bool | None = None) -> StateCounts:
    """Customers (not staff) in each lifecycle state, exactly what counting
    ``with_lifecycle_state`` over all of them would say, and, with ``since_hour`` (the
    start of an hour in the current time zone), the customers who joined since then
    by hour, also by state. One statement, so the figures come from one snapshot and
    always add up; the state's inputs (open breakers, a stale worker) are read first,
    two queries unless given.

    The state tally (``accounts.state_tally``) gives the counts by facts as of its
    last fold, each row's state decided by the one definition
    (``with_state_of_facts``, compiled once over rows of facts). The accounts
    changed since the last fold are moved from the facts they were counted under to
    their facts now, read from their rows (``lifecycle_facts``); the unchanged ones
    whose workspace step is overdue now (the one input that moves with the clock
    alone) are counted again as overdue, unless an outage or a missing worker delays
    every pending step anyway. What a request costs follows those, not the accounts,
    nor the accounts in flight."""
    now = now or timezone.now()
    breakers = open_breakers() if breakers is None else breakers
    stale = worker_stale(now=now) if stale is None else stale
    first = None
    if since_hour is not None:
        first, rest = divmod(int(since_hour.timestamp()), QUARTER_SECONDS)
        if rest:
            raise ValueError(f"counting by the hour from {since_hour}, which is not the start of a quarter hour")
    sql, params = _counting_statement(now=now, first=first, breakers=breakers, stale=stale)
    states: Counter[str] = Counter()
    quarters: Counter[tuple[int, str]] = Counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for part, state, quarter, n in cursor.fetchall():
            if part != "quarter":
                states[state] += int(n)
            if part != "tally" and first is not None and quarter >= first:
                quarters[quarter, state] += int(n)
    joined: Counter[datetime] = Counter()
    joined_states: Counter[tuple[datetime, str]] = Counter()
    hours: dict[int, datetime] = {}
    for (quarter, state), n in quarters.items():
        if quarter not in hours:
            hours[quarter] = timezone.localtime(datetime.fromtimestamp(quarter * QUARTER_SECONDS, UTC)).replace(
                minute=0, second=0, microsecond=0)
        joined[hours[quarter]] += n
        joined_states[hours[quarter], state] += n
    return StateCounts(states={state: states[state] for state in State.ALL},
                       joined={hour: n for hour, n in joined.items() if n},
                       joined_states={key: n for key, n in joined_states.items() if n})


# The clock the cached statements are compiled at (any fixed time will do).
COMPILED_AT = datetime(2000, 1, 1, tzinfo=UTC)


def _counting_statement(*, now: datetime, first: int | None, breakers: set[str], stale: bool) -> tuple[str, tuple]:
    """The counting statement's SQL and parameters. Compiling it costs more CPU than
    running it (~15 ms of Python here), so on PostgreSQL it is compiled once per
    shape (the circuits and heartbeat it depends on, the hours asked for, the settings
    it reads) at ``COMPILED_AT``, and its clock moved to ``now``: every datetime among
    its parameters is ``now`` or a fixed interval before it (``step_overdue``).
    SQLite's backend hands datetimes over as text, so there it is compiled each time."""
    if connection.vendor != "postgresql":
        return _compile_counting(now=now, first=first, breakers=breakers, stale=stale)
    sql, params = _compiled_counting(frozenset(breakers & {"provisioning", "email"}), stale, first,
                                     settings.DELAYED_AFTER_ATTEMPTS, settings.RECONCILE_EVERY_SECONDS,
                                     connection.alias)
    shift = now - COMPILED_AT
    return sql, tuple(p + shift if isinstance(p, datetime) else p for p in params)


@lru_cache(maxsize=32)
def _compiled_counting(breakers: frozenset[str], stale: bool, first: int | None, _delayed_after: int,
                       _reconcile_every: int, _alias: str) -> tuple[str, tuple]:
    return _compile_counting(now=COMPILED_AT, first=first, breakers=set(breakers), stale=stale)


def _compile_counting(*, now: datetime, first: int | None, breakers: set[str], stale: bool) -> tuple[str, tuple]:
    changed = StateChange.objects.values("account_id")
    # Rows of facts, each with how many accounts it stands for: (part, the facts,
    # overdue, quarter, n). Named a_*: a union's parts must all be annotations to
    # keep one column order.
    no = Value(False, output_field=BooleanField())
    stored = {f"a_{fact}": F(fact) for fact in STATE_FACTS} | {"a_overdue": no}
    counted = ["part", *(f"a_{fact}" for fact in STATE_FACTS), "a_overdue", "a_quarter", "a_n"]
    parts = [
        StateTally.objects.annotate(part=Value("tally"), **stored,
                                    a_quarter=Value(None, output_field=BigIntegerField()), a_n=F("n")),
        StateTallyByQuarter.objects.filter(quarter__gte=first if first is not None else 2**62)
        .annotate(part=Value("quarter"), **stored, a_quarter=F("quarter"), a_n=F("n")),
        # Changed since the last fold: out of the tally, the facts they were counted
        # under...
        AccountStateFacts.objects.filter(AmongIds(F("account_id"), Subquery(changed)))
        .annotate(part=Value("out"), **stored, a_quarter=F("quarter"), a_n=Value(-1)),
        # ...and in, their facts now, from their rows.
        User.objects.filter(AmongIds(F("pk"), Subquery(changed)), is_staff=False)
        .annotate(part=Value("in"), **{f"a_{fact}": e for fact, e in lifecycle_facts().items()},
                  a_overdue=ExpressionWrapper(step_overdue(prefix="provisioning_request__", now=now),
                                              output_field=BooleanField()),
                  a_quarter=QuarterHour("date_joined"), a_n=Value(1)),
    ]
    if not ("provisioning" in breakers or stale):
        # Unchanged, but overdue now: their counted facts are their facts; only the
        # clock moved them (an outage or a missing worker delays them anyway).
        overdue = AccountStateFacts.objects.filter(
            AmongIds(F("account_id"), Subquery(ProvisioningRequest.objects.filter(step_overdue(now=now))
                                               .values("account_id")))).exclude(
            AmongIds(F("account_id"), Subquery(changed)))
        yes = Value(True, output_field=BooleanField())
        parts += [overdue.annotate(part=Value("out"), **stored, a_quarter=F("quarter"), a_n=Value(-1)),
                  overdue.annotate(part=Value("in"), **{**stored, "a_overdue": yes}, a_quarter=F("quarter"),
                                   a_n=Value(1))]
    rows = parts[0].values_list(*counted).union(*(part.values_list(*counted) for part in parts[1:]), all=True)
    rows_sql, rows_params = rows.query.sql_with_params()
    # Each row's state, by the one definition over a row of facts: compiled over the
    # tally's columns, then read from the rows above under the tally's name.
    table = connection.ops.quote_name(StateTally._meta.db_table)
    overdue = RawSQL(f"{table}.{connection.ops.quote_name('ws_overdue')}", (), output_field=BooleanField())
    states_of = with_state_of_facts(StateTally.objects.alias(overdue_now=overdue),
                                    facts={fact: F(fact) for fact in STATE_FACTS}, overdue=Q(overdue_now=True),
                                    breakers=breakers, stale=stale, name="st")
    compiler = states_of.query.get_compiler(connection=connection)
    state_sql, state_params = compiler.compile(states_of.query.annotations["st"])
    columns = ", ".join(["part", *STATE_FACTS, "ws_overdue", "quarter", "n"])
    return (f"WITH state_rows ({columns}) AS ({rows_sql}) "
            f"SELECT part, {state_sql}, quarter, SUM(n) FROM state_rows AS {table} GROUP BY 1, 2, 3",
            (*rows_params, *state_params))
