"""The state tally: how many customers have each combination of the facts their
lifecycle state is made of (``accounts.selectors.STATE_FACTS``), so that counting
accounts by state reads a few rows whatever the number of accounts, in flight or
not (``accounts.state_counts``).

How it stays true, whatever writes the rows:

- Triggers on the account, workspace step and email tables (migration 0014) record
  each account whose facts a write may change (``StateChange``), in the write's own
  transaction: a service, the admin, a queryset ``update()``, a cascade, raw SQL.
  Only inserts, so concurrent writers never wait on one another, or deadlock, for it.
- The fold (``state_tally_fold``) reads those accounts' facts from the rows with the
  one definition (``lifecycle_facts``), moves each changed account from the tally
  row of the facts it was counted under (``AccountStateFacts``) to the row of its
  facts now, and takes the changes it read away, all in one transaction. One fold at
  a time. A change committed while it runs is left for the next fold.
- Reading (``lifecycle_state_counts``) counts the accounts changed since the last
  fold again from their rows, in the same statement as the tally: the counts are
  exact between folds, and cost what changed since the last fold, not what exists.

The fold runs every minute (``accounts.tasks.fold_state_tally``) and after
``migrate`` (which, from 0014 on, marks every existing customer changed).
"""
from __future__ import annotations

from collections import Counter

from django.db import connection, transaction
from django.db.models import BigIntegerField, Count, Func, Model

from accounts.models import AccountStateFacts, StateChange, StateTally, StateTallyByQuarter, User
from accounts.selectors import STATE_FACTS, lifecycle_facts

QUARTER_SECONDS = 15 * 60
# Any constant: the key of the advisory lock that lets one fold run at a time.
FOLD_LOCK = 7_226_000_014


class QuarterHour(Func):
    """A datetime's quarter hour, counted since 1970-01-01 00:00 UTC. Every time zone's
    offset is a multiple of 15 minutes, so any zone's hours are whole quarters."""

    output_field = BigIntegerField()

    def as_sql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template=f"(CAST(strftime('%%%%s', %(expressions)s) AS integer)"
                                                             f" / {QUARTER_SECONDS})", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template=f"floor(extract(epoch FROM %(expressions)s)"
                                                             f" / {QUARTER_SECONDS})::bigint", **extra)


Key = tuple  # the STATE_FACTS' values, in order


def state_tally_fold(*, limit: int = 5000) -> int:
    """Count again up to ``limit`` recorded changes' accounts (the oldest first):
    their facts now from the rows, the tally and each account's counted facts
    moved to match, the changes taken away, in one transaction. Returns how many
    changes it took (0: the tally is up to date as of now). Safe to run at any time
    and concurrently: folds queue on a lock (on SQLite, on the database's one writer)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        # Read after the lock: under READ COMMITTED each statement sees what the
        # previous fold committed.
        changes = list(StateChange.objects.order_by("pk").values_list("pk", "account_id")[:limit])
        if not changes:
            return 0
        ids = {account_id for _, account_id in changes}
        now = {row.pop("pk"): row for row in User.objects.filter(pk__in=ids, is_staff=False)
               .values("pk", **lifecycle_facts(), quarter=QuarterHour("date_joined"))}
        then = {row.pop("account_id"): row for row in AccountStateFacts.objects.filter(account_id__in=ids)
                .values("account_id", *STATE_FACTS, "quarter")}
        totals: Counter[Key] = Counter()
        quarters: Counter[tuple[Key, int]] = Counter()
        gone, counted = [], []
        for account_id in ids:
            old, new = then.get(account_id), now.get(account_id)
            if old is not None and new is not None and _key(old) == _key(new) and old["quarter"] == new["quarter"]:
                continue
            if old is not None:
                totals[_key(old)] -= 1
                quarters[_key(old), old["quarter"]] -= 1
                gone.append(account_id)
            if new is not None:
                totals[_key(new)] += 1
                quarters[_key(new), new["quarter"]] += 1
                counted.append(AccountStateFacts(account_id=account_id, **new))
        AccountStateFacts.objects.filter(account_id__in=gone).delete()
        AccountStateFacts.objects.bulk_create(counted, batch_size=1000)
        _add(StateTally, StateTally.objects.all(), {(key,): n for key, n in totals.items() if n})
        _add(StateTallyByQuarter, StateTallyByQuarter.objects.filter(quarter__in={q for _, q in quarters}),
             {(key, q): n for (key, q), n in quarters.items() if n})
        StateChange.objects.filter(pk__in=[pk for pk, _ in changes]).delete()
        return len(changes)


def state_tally_fold_all(*, limit: int = 5000, rebuild_over: int | None = None) -> int:
    """Fold until no change is left (as of each fold's start); with more changes
    waiting than ``rebuild_over`` (``REBUILD_OVER``: the first fold after 0014, a
    bulk load), count every customer again instead. Returns the changes taken."""
    if StateChange.objects.count() > (REBUILD_OVER if rebuild_over is None else rebuild_over):
        return state_tally_rebuild()
    total = 0
    while taken := state_tally_fold(limit=limit):
        total += taken
    return total


# Counting every customer again in a few statements is quicker than folding this
# many changes a batch at a time (a million accounts: about a minute, against ten).
REBUILD_OVER = 200_000


def state_tally_rebuild() -> int:
    """Count every customer again from the rows: the changes visible now taken away
    first (one statement), then every account's facts and both tallies written
    anew from the one definition (``lifecycle_facts``, its SQL run inside INSERT ...
    SELECT), in one transaction. A change committed meanwhile stays recorded, for
    the next fold. Returns the changes taken."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        cursor.execute(f"DELETE FROM {StateChange._meta.db_table}")
        taken = cursor.rowcount
        for model in (AccountStateFacts, StateTally, StateTallyByQuarter):
            cursor.execute(f"DELETE FROM {model._meta.db_table}")
        columns = ", ".join(STATE_FACTS)
        facts = (User.objects.filter(is_staff=False)
                 .values("pk", **lifecycle_facts(), quarter=QuarterHour("date_joined")).order_by())
        _insert_select(cursor, AccountStateFacts, f"account_id, {columns}, quarter",
                       f"pk, {columns}, quarter", facts)
        _insert_select(cursor, StateTally, f"{columns}, n", f"{columns}, n",
                       AccountStateFacts.objects.values(*STATE_FACTS).annotate(n=Count("*")).order_by())
        _insert_select(cursor, StateTallyByQuarter, f"{columns}, quarter, n", f"{columns}, quarter, n",
                       AccountStateFacts.objects.values(*STATE_FACTS, "quarter").annotate(n=Count("*")).order_by())
        return taken


def _insert_select(cursor, model: type[Model], into: str, select: str, queryset) -> None:
    sql, params = queryset.query.sql_with_params()
    cursor.execute(f"INSERT INTO {model._meta.db_table} ({into}) SELECT {select} FROM ({sql}) AS rows", params)


def _key(facts: dict) -> Key:
    # bool(): SQLite gives a flag computed by the query as 1 or 0 and a stored one as a bool.
    return tuple(bool(facts[f]) if f in ("active", "unverified") else facts[f] for f in STATE_FACTS)


def _add(model: type[Model], rows, deltas: dict[tuple, int]) -> None:
    """Add ``deltas`` (by (facts,) or (facts, quarter)) to the tally rows in ``rows``,
    creating the missing ones and deleting the ones that reach zero."""
    if not deltas:
        return
    quartered = model is StateTallyByQuarter
    existing = {((_key(vars(row)), row.quarter) if quartered else (_key(vars(row)),)): row for row in rows}
    changed, emptied, created = [], [], []
    for where, n in deltas.items():
        row = existing.get(where)
        if row is None:
            if n < 0:
                raise AssertionError(f"the state tally would count {n} accounts with {where}")
            facts = dict(zip(STATE_FACTS, where[0], strict=True))
            created.append(model(n=n, **facts, **({"quarter": where[1]} if quartered else {})))
        elif row.n + n < 0:
            raise AssertionError(f"the state tally would count {row.n + n} accounts with {where}")
        elif row.n + n == 0:
            emptied.append(row.pk)
        else:
            row.n += n
            changed.append(row)
    model.objects.filter(pk__in=emptied).delete()
    model.objects.bulk_update(changed, ["n"], batch_size=1000)
    model.objects.bulk_create(created, batch_size=1000)


SCHEDULE_NAME = "fold the state tally"


def ensure_schedule() -> None:
    """Create the fold's schedule (every minute) if it is missing, and fold what is
    owed (run by ``migrate``: after 0014, every customer there is)."""
    from django_q.models import Schedule

    Schedule.objects.get_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": "accounts.tasks.fold_state_tally", "schedule_type": Schedule.MINUTES, "minutes": 1,
                  "repeats": -1},
    )
    # Migrating back past 0014 leaves no tally to fold.
    if StateChange._meta.db_table in connection.introspection.table_names():
        state_tally_fold_all()
