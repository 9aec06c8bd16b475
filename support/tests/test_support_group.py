"""The Support group has exactly the permissions the support person needs, and the
local support login is a member (not a superuser) who can work the whole console."""
from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from accounts.models import User
from support.models import Ticket, TicketStatus
from support.tests.conftest import signed_in_to_console

EXPECTED = {
    "accounts.view_user",
    "support.view_ticket", "support.rerun_provisioning", "support.resend_verification", "support.correct_email",
    "support.mark_verified", "support.issue_signin_code", "support.reply", "support.resolve",
    "support.view_incident", "support.close_account",
    "support.record_call",
}


def test_the_migration_gives_the_group_exactly_the_permissions_needed(db):
    group = Group.objects.get(name="Support")
    granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
    assert granted == EXPECTED


@pytest.fixture
def secret_dir(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    return tmp_path


def test_the_local_support_login_is_a_support_group_member_who_can_work_the_console(
        secret_dir, stranded, sandbox, drive, committed):
    out = io.StringIO()
    call_command("ensure_support_login", stdout=out)
    password = (secret_dir / ".support-password").read_text().strip()
    assert password in out.getvalue()
    user = User.objects.get(email="support@example.com")
    assert user.is_staff and not user.is_superuser
    assert set(user.get_all_permissions()) == EXPECTED

    stranded()
    ticket = Ticket.objects.get()
    [backup_code] = re.findall(r"backup code (\S+)", out.getvalue())
    console = Client()
    assert console.post("/admin/login/", {"username": "support@example.com", "password": password}).status_code == 302
    assert console.get("/admin/").status_code == 302  # the password alone opens nothing
    assert console.post("/admin/login/", {"otp_token": backup_code}).status_code == 302
    assert "1 ticket needs you" in console.get("/admin/").content.decode()
    assert ticket.reference in console.get("/admin/support/ticket/").content.decode()
    sandbox("provisioning", "ok")
    with committed():
        console.post(f"/admin/support/ticket/{ticket.pk}/do/rerun/", {"action_key": "b" * 32})
    drive()
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED


def test_an_older_superuser_support_login_becomes_a_group_member(secret_dir, db):
    User.objects.create_superuser("support@example.com", "old password 123")
    call_command("ensure_support_login", stdout=io.StringIO())
    user = User.objects.get(email="support@example.com")
    assert user.is_staff and not user.is_superuser and user.groups.filter(name="Support").exists()


def test_accounts_are_read_only_in_the_console_except_staff_access_for_a_superuser(db, console, register):
    account = register()
    page = console.get(f"/admin/accounts/user/{account.pk}/change/")
    assert page.status_code == 200 and 'name="email"' not in page.content.decode()
    assert console.post(f"/admin/accounts/user/{account.pk}/change/", {"email": "x@y.example"}).status_code == 405
    assert console.post(f"/admin/accounts/user/{account.pk}/staff/", {"is_staff": "on"}).status_code == 404

    boss = User.objects.create_superuser("boss@example.com", "a boss password 1")
    admin = signed_in_to_console(boss)
    colleague = User.objects.create_user("new@support.example", "pw pw pw pw 1", name="New", company="Acme")
    group = Group.objects.get(name="Support")
    response = admin.post(f"/admin/accounts/user/{colleague.pk}/staff/",
                          {"is_staff": "on", "groups": [group.pk], "user_permissions": []})
    assert response.status_code == 302
    colleague.refresh_from_db()
    assert colleague.is_staff and colleague.groups.filter(name="Support").exists()
    assert colleague.email == "new@support.example"
