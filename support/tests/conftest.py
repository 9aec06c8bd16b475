"""Fixtures for the support tests: accounts built through the real services, failures
injected through the sandbox providers, and console users with and without the
Support group's permissions."""
from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.services import account_register

support_group_migration = importlib.import_module("support.migrations.0002_support_group")
incidents_group_migration = importlib.import_module("support.migrations.0004_support_group_incidents")
close_account_migration = importlib.import_module("support.migrations.0005_console_actions")
record_call_migration = importlib.import_module("support.migrations.0007_support_group_record_call")


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters live in the (per-process) cache: start each test clean."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed(): ...`` runs the block's on-commit work (tasks enqueued on
    commit, the signals support listens to) as production would: the test's own
    transaction never commits. (``drive()`` does the same for each dispatcher pass.)"""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def register(db, signup_data, committed):
    """Sign a person up through the real service; the first attempts run at once."""
    def run(**overrides) -> User:
        data = {**signup_data, **overrides}
        with committed():
            account = account_register(name=data["name"], email=data["email"], company=data["company"],
                                       password=data["password"], phone=data["phone"])
        account.refresh_from_db()
        return account
    return run


@pytest.fixture
def stranded(register, sandbox, drive, settings):
    """An account whose workspace step ran out of automatic retries: the provider
    refuses it for good (a permanent error fails at once). The sandbox is left
    refusing. Tests make many of these in a moment; the same refusal for that many
    people would read as ours (one incident), so here it takes more to look alike."""
    settings.BREAKER_FAILURE_THRESHOLD = 10_000

    def run(**overrides) -> User:
        sandbox("provisioning", "reject")
        account = register(**overrides)
        drive()
        return account
    return run


def support_group() -> Group:
    """The group the migration creates (re-created the same way if a transactional
    test flushed the database)."""
    if not Group.objects.filter(name="Support").exists():
        support_group_migration.create_support_group(apps, None)
        incidents_group_migration.grant_view_incident(apps, None)
        close_account_migration.grant_close_account(apps, None)
        record_call_migration.grant_record_call(apps, None)
    return Group.objects.get(name="Support")


@pytest.fixture
def support_user(db) -> User:
    user = User.objects.create_user("sam@support.example", "a support password 1", name="Sam Support",
                                    company="Acme Workspaces", is_staff=True)
    user.groups.add(support_group())
    return user


def signed_in_to_console(user: User, **client_options) -> Client:
    """A browser signed in to the console as ``user``, with both factors: the session
    holds the user (what the password step does) and their confirmed authenticator
    app (what ``django_otp.login`` does after a right code; test_console_security.py
    walks the real steps over HTTP)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="Authenticator app", confirmed=True)
    client = Client(**client_options)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@pytest.fixture
def console(support_user) -> Client:
    """A browser signed in to the console (password and second factor) as a member of
    the Support group."""
    return signed_in_to_console(support_user)


@pytest.fixture
def bare_staff_console(db) -> Client:
    """A staff member with no support permissions."""
    user = User.objects.create_user("intern@support.example", "an intern password 1", name="Ivy Intern",
                                    company="Acme Workspaces", is_staff=True)
    return signed_in_to_console(user)
