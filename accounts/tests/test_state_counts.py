"""The dashboard's counts (``lifecycle_state_counts``) say exactly what counting the
one definition of the state over every account says, read from the state tally
(``accounts.state_tally``): before a fold (the changed accounts counted again from
their rows) and after it (the tally alone), whatever wrote the rows: each service,
a queryset ``update()``, raw SQL, a cascade."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.db.models import F
from django.db.models.functions import TruncHour
from django.utils import timezone

from accounts.flows.purge import abandoned_signups_purge
from accounts.models import AccountStateFacts, EmailDelivery, StateChange, StateTally, StateTallyByQuarter, User
from accounts.selectors import STATE_FACTS, State, lifecycle_facts, with_lifecycle_state, worker_stale
from accounts.services import (
    account_change_email,
    account_close,
    account_mark_verified,
    account_register,
    account_reopen,
    email_mark_bounced,
)
from accounts.state_counts import lifecycle_state_counts
from accounts.state_tally import QuarterHour, state_tally_fold, state_tally_fold_all, state_tally_rebuild
from provisioning import durable
from provisioning.models import ProvisioningRequest
from provisioning.reconciler import reconcile
from provisioning.sandbox import sandbox_set
from provisioning.services import workspace_request_retry

pytestmark = pytest.mark.django_db


def by_definition() -> dict[str, int]:
    counted = Counter(with_lifecycle_state(User.objects.filter(is_staff=False)).values_list(
        "lifecycle_state", flat=True))
    return {state: counted[state] for state in State.ALL}


def _facts(row) -> tuple:
    return tuple(bool(row[f]) if f in ("active", "unverified") else row[f] for f in STATE_FACTS)


def assert_true_before_and_after_a_fold() -> dict[str, int]:
    """The counts equal the definition's with changes waiting to be folded, and
    again after folding them all; then the tally, row by row, and each customer's
    counted facts are what reading every customer's facts gives."""
    expected = by_definition()
    assert lifecycle_state_counts().states == expected
    state_tally_fold_all()
    assert not StateChange.objects.exists()
    assert lifecycle_state_counts().states == expected
    rows = {row.pop("pk"): (_facts(row), row["quarter"]) for row in User.objects.filter(is_staff=False).values(
        "pk", **lifecycle_facts(), quarter=QuarterHour("date_joined"))}
    counted = {row.pop("account_id"): (_facts(row), row["quarter"])
               for row in AccountStateFacts.objects.values("account_id", *STATE_FACTS, "quarter")}
    assert counted == rows
    assert Counter({_facts(vars(t)): t.n for t in StateTally.objects.all()}) == Counter(f for f, _ in rows.values())
    assert (Counter({(_facts(vars(t)), t.quarter): t.n for t in StateTallyByQuarter.objects.all()})
            == Counter(rows.values()))
    assert all(t.n > 0 for t in StateTally.objects.all())  # a row that reaches zero goes
    return expected


def test_the_counts_equal_the_definition_for_every_state(mixed_accounts):
    mixed_accounts(26)
    User.objects.create_user("staff@example.com", "a staff password", is_staff=True)  # never counted
    counts = assert_true_before_and_after_a_fold()
    assert all(counts[state] for state in State.ALL), counts  # every state is there


def test_after_a_fold_the_counts_come_from_the_tally_alone(mixed_accounts):
    mixed_accounts(13)
    state_tally_fold_all()
    before = lifecycle_state_counts().states
    # Nothing changed since the fold, so no account is read: change the tally behind
    # the rows' back and the counts follow it.
    row = StateTally.objects.get(active=True, unverified=False)
    StateTally.objects.filter(pk=row.pk).update(n=F("n") + 5)
    assert lifecycle_state_counts().states == {**before, State.ACTIVE: before[State.ACTIVE] + 5}


def tallies() -> tuple[Counter, Counter]:
    return (Counter({_facts(vars(t)): t.n for t in StateTally.objects.all()}),
            Counter({(_facts(vars(t)), t.quarter): t.n for t in StateTallyByQuarter.objects.all()}))


def test_counting_every_customer_again_gives_what_folding_gives(mixed_accounts):
    """The rebuild (after 0014, or a bulk load: too many changes to fold in batches)."""
    accounts = mixed_accounts(13)
    account_close(account=User.objects.get(pk=accounts[0].pk), actor="test", reason="test")
    state_tally_fold_all()
    folded = tallies()
    assert state_tally_rebuild() == 0  # nothing was waiting...
    assert tallies() == folded  # ...and every customer counted again gives the same tallies
    account_reopen(account=User.objects.get(pk=accounts[0].pk), actor="test", reason="test")
    assert state_tally_rebuild() > 0  # the reopening's changes, taken
    assert not StateChange.objects.exists()
    assert_true_before_and_after_a_fold()
    account_mark_verified(account=User.objects.get(pk=accounts[1].pk), actor="test", why="test")
    assert state_tally_fold_all(rebuild_over=0) > 0  # over the threshold: a rebuild
    assert_true_before_and_after_a_fold()


def test_a_fold_in_small_steps_keeps_them_true(mixed_accounts):
    mixed_accounts(13)
    expected = by_definition()
    while state_tally_fold(limit=3):
        assert lifecycle_state_counts().states == expected
    assert not StateChange.objects.exists()


@pytest.mark.parametrize("provider", ["provisioning", "email"])
def test_they_agree_during_an_outage(mixed_accounts, provider, settings):
    from provisioning.breaker import record_failure

    mixed_accounts(13)
    state_tally_fold_all()
    settings.BREAKER_FAILURE_THRESHOLD = 1
    record_failure(provider, ProvisioningRequest.objects.first())  # one failure opens the circuit
    assert lifecycle_state_counts().states == by_definition()
    assert lifecycle_state_counts().states[State.DELAYED] > 2  # the outage delays more accounts


def test_they_agree_when_no_worker_runs(mixed_accounts):
    mixed_accounts(13)
    reconcile(enqueue=lambda kind, pk: None)  # a pass hands the work to a worker that never takes it
    state_tally_fold_all()
    with time_machine.travel(timezone.now() + timedelta(minutes=6), tick=False):
        assert worker_stale(now=timezone.now())
        assert lifecycle_state_counts().states == by_definition()


def test_a_step_no_worker_picked_up_in_time_delays_the_account_with_nothing_written(mixed_accounts, settings):
    """Overdue is the one fact that changes with the clock alone: no trigger sees it,
    and the counts still do."""
    mixed_accounts(13)
    reconcile(enqueue=lambda kind, pk: None)  # a pass ran (the worker is not stale)...
    state_tally_fold_all()
    before = lifecycle_state_counts().states
    # ...and one interval and the scheduler's tick later, the due steps are overdue.
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.RECONCILE_EVERY_SECONDS + 45), tick=False):
        assert not worker_stale(now=timezone.now())
        assert not StateChange.objects.exists()
        after = lifecycle_state_counts().states
        assert after == by_definition()
        assert after[State.DELAYED] > before[State.DELAYED]
        # Overdue and changed since the fold: counted once.
        overdue = ProvisioningRequest.objects.filter(status="pending").values_list("account_id", flat=True)
        User.objects.filter(pk__in=list(overdue)[:2]).update(email_verified_at=timezone.now())
        assert StateChange.objects.exists()
        assert lifecycle_state_counts().states == by_definition()
        state_tally_fold_all()
        assert lifecycle_state_counts().states == by_definition()


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "Asia/Kathmandu"])
def test_signups_per_hour_by_state_in_the_support_persons_hours(mixed_accounts, zone):
    """Hours of the current time zone, whole or not in UTC (+5:30, +5:45)."""
    mixed_accounts(13)
    User.objects.filter(email="mixed0@example.com").update(date_joined=timezone.now() - timedelta(days=2))
    User.objects.filter(email="mixed1@example.com").update(date_joined=timezone.now() - timedelta(minutes=50))
    with timezone.override(ZoneInfo(zone)):
        since = timezone.localtime(timezone.now() - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
        recent = with_lifecycle_state(User.objects.filter(date_joined__gte=since, is_staff=False)).annotate(
            hour=TruncHour("date_joined"))
        expected = Counter(recent.values_list("hour", "lifecycle_state"))
        for fold in (False, True):
            if fold:
                state_tally_fold_all()
            counts = lifecycle_state_counts(since_hour=since)
            assert counts.joined_states == expected
            assert sum(counts.joined.values()) == 12  # the one who joined two days ago is not among them
            assert counts.joined == Counter(recent.values_list("hour", flat=True))
        with pytest.raises(ValueError):
            lifecycle_state_counts(since_hour=since + timedelta(minutes=7))


def test_the_counts_stay_true_through_every_service(signup_data, settings, django_capture_on_commit_callbacks):
    settings.DELAYED_AFTER_ATTEMPTS = 2
    settings.BREAKER_FAILURE_THRESHOLD = 10_000
    settings.EMAIL_MAX_ATTEMPTS = 1

    def run(kind: str, account: User) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            steps = (ProvisioningRequest.objects.all() if kind == "workspace"
                     else EmailDelivery.objects.filter(kind="verification"))
            for step in steps.filter(account=account, status__in=["pending", "running"]):
                durable.step_run(kind, step.pk)

    def signup(name: str) -> User:
        return account_register(**{**signup_data, "email": f"{name}@example.com"})

    ada, bob, cy, dee = (signup(name) for name in ("ada", "bob", "cy", "dee"))
    assert_true_before_and_after_a_fold()
    run("workspace", ada)  # ready
    run("email", ada)
    assert_true_before_and_after_a_fold()
    sandbox_set(provider="provisioning", mode="error")
    run("workspace", bob)  # a failed try: retrying
    assert_true_before_and_after_a_fold()
    run("workspace", bob)  # delayed
    assert_true_before_and_after_a_fold()
    sandbox_set(provider="provisioning", mode="reject")
    run("workspace", cy)  # refused: needs support
    assert_true_before_and_after_a_fold()
    workspace_request_retry(request=ProvisioningRequest.objects.get(account=cy), actor="support")  # retry
    assert_true_before_and_after_a_fold()
    # An outage: the circuit opens and holds the step.
    settings.BREAKER_FAILURE_THRESHOLD = 1
    sandbox_set(provider="provisioning", mode="error")
    run("workspace", cy)
    run("workspace", dee)
    assert lifecycle_state_counts().states[State.DELAYED] >= 3
    assert_true_before_and_after_a_fold()
    sandbox_set(provider="provisioning", mode="ok")
    settings.BREAKER_FAILURE_THRESHOLD = 10_000
    from provisioning.models import Breaker

    Breaker.objects.update(state="closed")  # the provider recovered
    for account in (bob, cy, dee):
        run("workspace", account)  # ready
    assert_true_before_and_after_a_fold()
    sandbox_set(provider="email", mode="timeout")
    run("email", bob)  # the email gave up: needs support
    sandbox_set(provider="email", mode="reject")
    run("email", cy)  # refused: email undeliverable
    sandbox_set(provider="email", mode="ok")
    run("email", dee)
    assert_true_before_and_after_a_fold()
    email_mark_bounced(esp="test", event_id="b1", recipient="dee@example.com", event_type="bounced")
    assert_true_before_and_after_a_fold()
    account_change_email(account=User.objects.get(pk=dee.pk), email="dee.new@example.com")  # corrected
    assert_true_before_and_after_a_fold()
    account_mark_verified(account=User.objects.get(pk=ada.pk), actor="support", why="on the phone")
    account_close(account=User.objects.get(pk=bob.pk), actor="support", reason="asked to")
    assert_true_before_and_after_a_fold()
    account_reopen(account=User.objects.get(pk=bob.pk), actor="support", reason="asked again")
    assert_true_before_and_after_a_fold()
    User.objects.filter(pk=cy.pk).update(is_staff=True)  # a queryset update: no longer a customer
    with connection.cursor() as cursor:  # raw SQL too
        cursor.execute("UPDATE accounts_user SET email_verified_at = %s WHERE id = %s", [timezone.now(), dee.pk])
    assert_true_before_and_after_a_fold()
    User.objects.filter(pk=ada.pk).delete()  # with its steps and emails
    assert_true_before_and_after_a_fold()


def test_the_counts_stay_true_through_the_purge(signup_data, drive):
    """An abandoned signup is closed while its workspace goes, then deleted."""
    from accounts.tests.test_purge import days_pass

    account_register(**{**signup_data, "email": "gone@example.com"})
    account_register(**{**signup_data, "email": "stays@example.com"})
    drive()
    User.objects.filter(email="stays@example.com").update(email_verified_at=timezone.now())
    assert_true_before_and_after_a_fold()
    days_pass(23)
    abandoned_signups_purge()  # warned
    drive()
    days_pass(7)
    assert abandoned_signups_purge().removing  # closed, its workspace going
    assert_true_before_and_after_a_fold()
    drive()  # removed
    assert not User.objects.filter(email="gone@example.com").exists()
    assert sum(assert_true_before_and_after_a_fold().values()) == 1


def test_the_command_counts_every_customer_again_after_writes_the_triggers_missed(mixed_accounts):
    from django.core.management import call_command

    mixed_accounts(13)
    state_tally_fold_all()
    StateTally.objects.filter(active=True, unverified=False).update(n=F("n") + 5)  # as a restore without triggers
    assert lifecycle_state_counts().states != by_definition()
    call_command("fold_state_tally", "--rebuild")
    assert_true_before_and_after_a_fold()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_folds_running_while_accounts_change_lose_nothing(signup_data, settings):
    """Writers never wait on the tally (they only record changes), two folds queue on
    one lock, and a change committed while a fold runs is left for the next one."""
    from accounts.tests.factories import at_once

    settings.BREAKER_FAILURE_THRESHOLD = 10_000

    def sign_up(start: int):
        def run():
            for n in range(start, start + 8):
                account = account_register(**{**signup_data, "email": f"p{n}@example.com"})
                for step in ProvisioningRequest.objects.filter(account=account):
                    durable.step_run("workspace", step.pk)
                if n % 3 == 0:
                    User.objects.filter(pk=account.pk).update(email_verified_at=timezone.now())
        return run

    def fold():
        return sum(state_tally_fold(limit=4) for _ in range(20))

    at_once(sign_up(0), sign_up(100), fold, fold)
    assert_true_before_and_after_a_fold()
    assert sum(lifecycle_state_counts().states.values()) == 16
