"""The account page (/admin/accounts/user/<id>/change/) is the person's page: their
lifecycle state, the sentence they see on /setup/, steps, emails, tickets, one
timeline, and the ticket page's buttons, which work with or without a ticket.
Groups and permissions are for superusers only, on a page of their own."""
from __future__ import annotations

import html
import uuid

import pytest
from django.test import Client

from accounts.models import User
from accounts.selectors import account_overview
from support import messages as words
from support.models import ConsoleAction, ConsoleActionKind, Ticket
from support.tests.conftest import signed_in_to_console


def page(console: Client, account: User) -> str:
    response = console.get(f"/admin/accounts/user/{account.pk}/change/")
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def press(console: Client, account: User, name: str, **data):
    return console.post(f"/admin/accounts/user/{account.pk}/do/{name}/", {"action_key": uuid.uuid4().hex, **data})


def test_the_account_page_is_the_persons_page(stranded, console):
    account = stranded()
    ticket = Ticket.objects.get()
    text = page(console, account)

    for fact in ("needs support", account_overview(account=account).message, account.name, account.email,
                 account.company, "Workspace setup stopped after 1 try", "http_422", "Verify your address",
                 ticket.reference, "Automation gave up", "signed up"):
        assert fact in text, fact
    for button in ("Re-run provisioning now", "Resend verification", "Correct the email address",
                   "Issue a one-time sign-in code", "Reply", "Resolve", "Close account"):
        assert button in text, button
    assert "Reopen account" not in text
    assert 'name="groups"' not in text and "Staff access" not in text and "Permissions" not in text


def test_buttons_work_on_an_account_without_a_ticket(register, console, sandbox, drive, committed):
    account = register(email="fine@example.com")
    drive()
    assert not Ticket.objects.exists()
    text = page(console, account)
    assert "Reply" not in text and "Resolve" not in text  # those need a ticket

    with committed():
        response = press(console, account, "resend")
    assert response.status_code == 302 and response["Location"] == f"/admin/accounts/user/{account.pk}/change/"
    action = ConsoleAction.objects.get()
    assert (action.kind, action.account, action.ticket) == (ConsoleActionKind.RESEND, account, None)
    assert "resent the verification email" in page(console, account)


def test_close_and_reopen_from_the_account_page(register, console, committed):
    account = register(email="spam@junk.example")
    with committed():
        press(console, account, "close", reason="spam signup")
    text = page(console, account)
    assert "disabled" in text and "Reopen account" in text and "Close account" not in text
    assert "Re-run provisioning now" not in text and "Issue a one-time sign-in code" not in text
    press(console, account, "reopen", reason="a real company after all")
    account.refresh_from_db()
    assert account.is_active


def test_no_console_button_closes_a_staff_account(console, support_user, db):
    colleague = User.objects.create_user("lee@support.example", "a staff password 1", name="Lee", is_staff=True)
    assert "Close account" not in page(console, colleague)
    refused = press(console, colleague, "close", reason="takeover")
    assert refused.status_code == 400
    colleague.refresh_from_db()
    assert colleague.is_active and not ConsoleAction.objects.exists()


def test_a_staff_accounts_page_says_what_it_is_not_what_a_customer_would_see(console, db):
    """A staff account has no workspace step: the customer's sentence for it ("Your
    workspace is ready...") would be false; its page says it is a staff account."""
    colleague = User.objects.create_user("lee@support.example", "a staff password 1", name="Lee", is_staff=True)

    shown = page(console, colleague)

    assert account_overview(account=colleague).message not in shown
    assert "What they see:" not in shown
    assert str(words.STAFF_ACCOUNT_SEES) in shown


def test_staff_access_is_for_superusers_only(register, console, db):
    account = register()
    assert console.get(f"/admin/accounts/user/{account.pk}/staff/").status_code == 404

    boss = User.objects.create_superuser("boss@support.example", "a superuser password 1")
    superuser = signed_in_to_console(boss)
    assert "Staff access" in page(superuser, account)
    form = superuser.get(f"/admin/accounts/user/{account.pk}/staff/")
    assert form.status_code == 200 and 'name="groups"' in form.content.decode()
    assert 'name="password"' not in form.content.decode()


@pytest.mark.parametrize("path", ["change", "do/resend"])
def test_a_missing_account_is_a_404(console, path):
    assert console.get(f"/admin/accounts/user/999999/{path}/").status_code == 404
