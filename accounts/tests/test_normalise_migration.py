"""accounts 0011: addresses stored before ``normalize_email`` are brought to its form,
so the person is found again however they type the address, except where that would
give one address to two accounts: those keep theirs, are logged with the addresses
masked, and the migration carries on. Rows in the old state are made the only way
old code left them: the address written as it was typed (lower-cased)."""
from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

from accounts.models import EmailDelivery, EmailKind, User
from accounts.selectors import user_by_email, verification_emails
from accounts.tests.factories import PASSWORD, sign_up

migration = importlib.import_module("accounts.migrations.0011_normalise_stored_emails")

pytestmark = pytest.mark.django_db

MAILBOX = "ada@bücher.de"
ASCII_DOMAIN = "ada@xn--bcher-kva.de"
FULL_WIDTH = "\uff41da@bücher.de"


def _stored_before_normalising(address: str, *, as_typed: str) -> User:
    """An account signed up as ``address``, then put back in the state old code left
    it in: the address (and its emails') as typed."""
    _, account = sign_up(email=address)
    User.objects.filter(pk=account.pk).update(email=as_typed)
    EmailDelivery.objects.filter(account=account).update(to_address=as_typed)
    account.refresh_from_db()
    return account


def _migrate() -> None:
    migration.normalise_stored_emails(apps, None)


def test_it_runs_with_migrate_and_cannot_fail_on_the_way_back():
    [operation] = migration.Migration.operations
    assert operation.code is migration.normalise_stored_emails
    assert operation.reversible
    assert MigrationRecorder(connection).migration_qs.filter(
        app="accounts", name="0011_normalise_stored_emails").exists()


def test_an_old_address_is_normalised_with_its_emails_and_the_person_is_found_again():
    account = _stored_before_normalising("ada@example.com", as_typed=ASCII_DOMAIN)
    assert user_by_email(email=MAILBOX) is None  # stranded: every lookup normalises

    _migrate()

    account.refresh_from_db()
    assert account.email == MAILBOX
    assert user_by_email(email=ASCII_DOMAIN) == account
    assert verification_emails(account=account, address=account.email).exists()  # still paired
    assert Client().post("/login/", {"email": FULL_WIDTH, "password": PASSWORD}).status_code == 302


def test_emails_to_an_address_without_an_account_are_normalised():
    _, account = sign_up(email="grace@example.com")
    delivery = EmailDelivery.objects.create(account=account, kind=EmailKind.EMAIL_CHANGE,
                                            idempotency_key="change:old", to_address=FULL_WIDTH)
    _migrate()

    delivery.refresh_from_db()
    assert delivery.to_address == MAILBOX


def test_an_address_another_account_holds_is_kept_and_logged_masked(caplog):
    _, holder = sign_up(email=MAILBOX)  # signed up since: normalised
    old = _stored_before_normalising("old@example.com", as_typed=ASCII_DOMAIN)

    with caplog.at_level("WARNING", logger="accounts.migrations"):
        _migrate()

    old.refresh_from_db()
    holder.refresh_from_db()
    assert (old.email, holder.email) == (ASCII_DOMAIN, MAILBOX)  # nobody merged, nothing failed
    assert set(EmailDelivery.objects.filter(account=old).values_list("to_address", flat=True)) == {ASCII_DOMAIN}
    [record] = [r for r in caplog.records if r.name == "accounts.migrations"]
    assert str(old.pk) in record.getMessage() and "another account has it" in record.getMessage()
    assert "ada@" not in record.getMessage()  # masked: a***@...


def test_two_old_addresses_that_would_become_one_both_keep_theirs(caplog):
    first = _stored_before_normalising("one@example.com", as_typed=ASCII_DOMAIN)
    second = _stored_before_normalising("two@example.com", as_typed=FULL_WIDTH)
    other = _stored_before_normalising("grace@example.com", as_typed="grace@xn--bcher-kva.de")

    with caplog.at_level("WARNING", logger="accounts.migrations"):
        _migrate()

    for account, address in ((first, ASCII_DOMAIN), (second, FULL_WIDTH), (other, "grace@bücher.de")):
        account.refresh_from_db()
        assert account.email == address
    assert not User.objects.filter(email=MAILBOX).exists()
    assert len([r for r in caplog.records if r.name == "accounts.migrations"]) == 2


def test_running_it_again_changes_nothing():
    account = _stored_before_normalising("ada@example.com", as_typed=FULL_WIDTH)
    _migrate()
    _migrate()

    account.refresh_from_db()
    assert account.email == MAILBOX
