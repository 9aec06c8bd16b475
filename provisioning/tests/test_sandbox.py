"""The sandbox providers' switchboard (provisioning.sandbox) and ``manage.py
sandbox``: each mode does what it says to a real signup, and the switch lives in
the database, so the web process and the workers see the same one."""
from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import EmailDelivery
from accounts.selectors import account_overview
from provisioning import breaker
from provisioning.durable import StepStatus
from provisioning.models import SandboxSwitch, Workspace


def sandbox_command(*args) -> str:
    out = StringIO()
    call_command("sandbox", *args, stdout=out)
    return out.getvalue()


def modes() -> dict[str, str]:
    return dict(SandboxSwitch.objects.values_list("provider", "mode"))


def test_show_lists_both_providers_healthy_by_default(db):
    lines = sandbox_command().splitlines()

    assert [line.split()[:2] for line in lines] == [["provisioning", "ok"], ["email", "ok"]]


def test_switching_one_provider_is_stored_and_leaves_the_other_alone(db):
    output = sandbox_command("provisioning", "error")

    assert modes() == {"provisioning": "error"}
    assert "provisioning  error" in output
    assert "email         ok" in output


def test_all_switches_both_and_back(db):
    sandbox_command("all", "timeout")
    assert modes() == {"provisioning": "timeout", "email": "timeout"}

    sandbox_command("all", "ok")
    assert modes() == {"provisioning": "ok", "email": "ok"}


def test_a_provider_without_a_mode_is_refused_and_changes_nothing(db):
    with pytest.raises(CommandError, match="Say which mode"):
        call_command("sandbox", "provisioning")
    assert modes() == {}


@pytest.mark.parametrize("mode, code, status", [
    ("timeout", "timeout", StepStatus.PENDING),
    ("error", "http_503", StepStatus.PENDING),
    ("reject", "http_422", StepStatus.FAILED),
    ("refuse_message", "http_422", StepStatus.FAILED),  # the request is the message: as "reject"
    ("unauthorized", "http_401", StepStatus.PENDING),
    ("relay_denied", "http_403", StepStatus.PENDING),
])
def test_each_provisioning_mode_fails_a_signup_its_own_way(db, register, mode, code, status):
    sandbox_command("provisioning", mode)
    _, request = register()

    call_command("reconcile", stdout=StringIO())

    request.refresh_from_db()
    assert (request.status, request.last_error_code) == (status, code)
    assert not Workspace.objects.exists()


@pytest.mark.parametrize("mode, code", [("unauthorized", "smtp_535"), ("relay_denied", "smtp_554")])
def test_an_email_provider_refusing_us_holds_the_email_behind_the_breaker(db, register, settings, mode, code):
    settings.BREAKER_PROBE_SECONDS = 3600
    sandbox_command("email", mode)
    account, _ = register()

    call_command("reconcile", stdout=StringIO())

    delivery = EmailDelivery.objects.get(account=account)
    assert (delivery.status, delivery.last_error_code, delivery.counted_attempts) == (StepStatus.PENDING, code, 0)
    assert breaker.is_open("email")
    assert mail.outbox == []


@pytest.mark.parametrize("mode, code, blames_the_address", [
    ("reject", "recipient_rejected", True),  # 550 5.1.1: the address
    ("refuse_message", "smtp_5xx", False),  # 554 5.6.0 at DATA: the message itself, not the address
])
def test_an_email_provider_refusing_an_email_for_good_stops_it_at_once(db, register, mode, code,
                                                                      blames_the_address):
    sandbox_command("email", mode)
    account, _ = register()

    call_command("reconcile", stdout=StringIO())

    delivery = EmailDelivery.objects.get(account=account)
    # Refused: one call, not retried, and no outage.
    assert (delivery.status, delivery.last_error_code, delivery.attempts, delivery.counted_attempts) == (
        StepStatus.FAILED, code, 1, 0)
    assert not breaker.is_open("email")
    assert mail.outbox == []
    account.refresh_from_db()
    assert (account_overview(account=account).state == "email_undeliverable") is blames_the_address


def test_provisioning_flaky_fails_twice_then_succeeds(db, register, drive):
    assert "(2 failures left)" in sandbox_command("provisioning", "flaky", "--failures", "2")
    account, request = register()

    drive()

    request.refresh_from_db()
    assert request.status == StepStatus.SUCCEEDED
    assert (request.attempts, request.counted_attempts) == (3, 2)
    assert Workspace.objects.filter(owner=account).count() == 1
    assert SandboxSwitch.objects.get(provider="provisioning").calls == 3
    assert "(0 failures left)" in sandbox_command()


def test_email_flaky_fails_twice_then_delivers(db, register, drive):
    sandbox_command("email", "flaky", "--failures", "2")
    account, _ = register()

    drive()

    delivery = EmailDelivery.objects.get(account=account)
    assert (delivery.status, delivery.attempts) == (StepStatus.SUCCEEDED, 3)
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_switch_made_by_another_process_is_obeyed_here(register, drive):
    """What `make run` relies on: the operator runs `manage.py sandbox` in a shell
    while the web server and the worker are running."""
    sandbox_command("email", "timeout")  # switched here; the other process must see it
    db = connection.settings_dict
    url = (f"postgres://{quote(db['USER'] or '')}:{quote(db['PASSWORD'] or '')}"
           f"@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.test_settings"}

    other = subprocess.run([sys.executable, "manage.py", "sandbox", "provisioning", "reject"],
                           cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True,
                           timeout=60)

    assert other.returncode == 0, other.stderr
    assert "email         timeout" in other.stdout
    _, request = register()
    drive()
    request.refresh_from_db()
    assert (request.status, request.last_error_code) == (StepStatus.FAILED, "http_422")
