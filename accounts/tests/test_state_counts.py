"""The dashboard's counts (``lifecycle_state_counts``) say exactly what counting the
one definition of the state over every account says, while computing it only for
the accounts in flight; the customer tally the database keeps agrees with the rows
whatever writes them."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from accounts.models import CustomerTally, EmailDelivery, User
from accounts.selectors import State, with_lifecycle_state, worker_stale
from accounts.services import account_change_email, account_mark_verified, account_reopen
from accounts.state_counts import accounts_in_flight, lifecycle_state_counts
from provisioning.models import ProvisioningRequest
from provisioning.reconciler import reconcile


def by_definition() -> dict[str, int]:
    counted = Counter(with_lifecycle_state(User.objects.filter(is_staff=False)).values_list(
        "lifecycle_state", flat=True))
    return {state: counted[state] for state in State.ALL}


def tally() -> tuple[int, int, int]:
    rows = CustomerTally.objects.all()
    return (sum(r.customers for r in rows), sum(r.disabled for r in rows), sum(r.unverified for r in rows))


def counted() -> tuple[int, int, int]:
    customers = User.objects.filter(is_staff=False)
    return (customers.count(), customers.filter(is_active=False).count(),
            customers.filter(is_active=True, email_verified_at__isnull=True).count())


def test_the_counts_equal_the_definition_for_every_state(mixed_accounts):
    mixed_accounts(26)
    User.objects.create_user("staff@example.com", "a staff password", is_staff=True)  # never counted
    counts = lifecycle_state_counts().states
    assert counts == by_definition()
    assert all(counts[state] for state in State.ALL), counts  # every state is there
    # Only the accounts in flight were computed: the settled ones are not among them.
    in_flight = set(User.objects.filter(pk__in=accounts_in_flight()).values_list("email", flat=True))
    settled = set(with_lifecycle_state(User.objects.filter(is_staff=False))
                  .filter(lifecycle_state__in=[State.ACTIVE, State.UNVERIFIED]).values_list("email", flat=True))
    assert in_flight and settled - in_flight


@pytest.mark.parametrize("provider", ["provisioning", "email"])
def test_they_agree_during_an_outage(mixed_accounts, provider, settings):
    from provisioning.breaker import record_failure

    mixed_accounts(13)
    settings.BREAKER_FAILURE_THRESHOLD = 1
    record_failure(provider, ProvisioningRequest.objects.first())  # one failure opens the circuit
    assert lifecycle_state_counts().states == by_definition()
    assert lifecycle_state_counts().states[State.DELAYED] > 2  # the outage delays more accounts


def test_they_agree_when_no_worker_runs(mixed_accounts):
    mixed_accounts(13)
    reconcile(enqueue=lambda kind, pk: None)  # a pass hands the work to a worker that never takes it
    with time_machine.travel(timezone.now() + timedelta(minutes=6), tick=False):
        assert worker_stale(now=timezone.now())
        assert lifecycle_state_counts().states == by_definition()


def test_signups_per_hour_count_every_customer_and_the_in_flight_ones_by_state(mixed_accounts):
    mixed_accounts(13)
    User.objects.filter(email="mixed0@example.com").update(date_joined=timezone.now() - timedelta(days=2))
    since = timezone.now() - timedelta(hours=3)
    counts = lifecycle_state_counts(joined_since=since)
    assert sum(counts.joined.values()) == 12  # the one who joined two days ago is not among them
    hours = Counter(timezone.localtime(joined).replace(minute=0, second=0, microsecond=0) for joined in
                    User.objects.filter(date_joined__gte=since).values_list("date_joined", flat=True))
    assert counts.joined == hours  # keyed by the hour, time zone and all
    assert {hour for hour, _ in counts.in_flight_joined} <= set(hours)
    # Every account in one of these states is in flight, so the chart's partial ones
    # can be read from the in-flight rows alone.
    partial = [State.SETTING_UP, State.DELAYED, State.NEEDS_SUPPORT, State.EMAIL_UNDELIVERABLE]
    states = Counter({state: n for (_, state), n in counts.in_flight_joined.items() if state in partial})
    recent = with_lifecycle_state(User.objects.filter(date_joined__gte=since, is_staff=False))
    expected = Counter(recent.filter(lifecycle_state__in=partial).values_list("lifecycle_state", flat=True))
    assert states == expected and states[State.SETTING_UP]


def test_the_tally_follows_every_kind_of_write(mixed_accounts):
    assert tally() == (0, 0, 0)
    accounts = mixed_accounts(13)
    assert tally() == counted() and tally()[0] == 13
    account_mark_verified(account=accounts[8], actor="test", why="test")
    account_reopen(account=User.objects.get(pk=accounts[11].pk), actor="test", reason="test")
    account_change_email(account=User.objects.get(pk=accounts[9].pk), email="moved@example.com")
    User.objects.filter(pk=accounts[0].pk).update(is_staff=True)  # a queryset update, as the staff page saves
    User.objects.filter(pk__in=[a.pk for a in accounts[1:4]]).update(email_verified_at=timezone.now())
    User.objects.filter(pk=accounts[5].pk).delete()  # with its steps, emails and tickets
    with connection.cursor() as cursor:  # raw SQL too
        cursor.execute("UPDATE accounts_user SET is_active = %s WHERE id = %s", [False, accounts[6].pk])
    assert tally() == counted()
    assert lifecycle_state_counts().states == by_definition()
    User.objects.filter(is_staff=False).delete()
    assert tally() == (0, 0, 0)


def test_an_unconfirmed_account_always_has_a_verification_email(mixed_accounts):
    """The one branch the in-flight set does not search: an unconfirmed customer
    without a verification email would read ``delayed`` during an email outage.
    Signup and correcting the address each queue one."""
    accounts = mixed_accounts(13)
    account_change_email(account=User.objects.get(pk=accounts[8].pk), email="corrected@example.com")
    for account in User.objects.filter(is_staff=False, is_active=True, email_verified_at__isnull=True):
        assert EmailDelivery.objects.filter(account=account, kind="verification", to_address=account.email).exclude(
            last_error_code="cancelled").exists(), account.email
