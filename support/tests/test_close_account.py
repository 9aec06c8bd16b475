"""Closing an account (the ``disabled`` state) and reopening it, through the console
over HTTP: a spam signup the provider rejects stops making tickets once closed, its
owner gets the generic login failure, and reopening gives everything back."""
from __future__ import annotations

import html
import io
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts import messages as account_words
from accounts.models import User
from accounts.selectors import State, account_overview
from accounts.services import StaffAccount, account_close
from provisioning.durable import StepStatus
from provisioning.models import ProvisioningRequest, Workspace
from support import messages as words
from support.models import (
    CallbackRequest,
    CallbackStatus,
    ConsoleAction,
    ConsoleActionKind,
    EventKind,
    Ticket,
    TicketStatus,
)
from support.services import ticket_sweep

PASSWORD = "correct horse battery staple"


def press(console: Client, ticket: Ticket, name: str, **data):
    return console.post(f"/admin/support/ticket/{ticket.pk}/do/{name}/", {"action_key": uuid.uuid4().hex, **data})


def log_in(email: str, password: str = PASSWORD):
    client = Client()
    return client, client.post("/login/", {"email": email, "password": password})


@pytest.fixture
def spam(stranded) -> Ticket:
    """A spam signup: the provider refuses its workspace for good, so a ticket opens."""
    stranded(email="spam@junk.example", company="BUY CHEAP WATCHES")
    return Ticket.objects.select_related("account").get()


def test_a_closed_spam_signup_makes_no_more_tickets(spam, console, committed):
    with committed():
        response = press(console, spam, "close", reason="spam signup: the provider refuses the company name")
    assert response.status_code == 302

    account = User.objects.get(pk=spam.account_id)
    spam.refresh_from_db()
    assert not account.is_active and account_overview(account=account).state == State.DISABLED
    assert spam.status == TicketStatus.RESOLVED and "spam signup" in spam.events.last().text
    assert account.events.filter(to_state=State.DISABLED, why__contains="spam signup").count() == 1
    assert ticket_sweep() == {"opened": 0, "resolved": 0}
    assert Ticket.objects.count() == 1


def test_the_owner_of_a_closed_account_gets_the_generic_login_failure(spam, console, committed):
    _, wrong = log_in("nobody@nowhere.example", "not the password at all")
    with committed():
        press(console, spam, "close", reason="spam")
    client, response = log_in("spam@junk.example")

    assert response.status_code == wrong.status_code == 400
    page = html.unescape(response.content.decode())
    assert str(account_words.LOGIN_FAILED) in page and str(account_words.LOGIN_FAILED) in html.unescape(
        wrong.content.decode())
    assert client.get("/setup/status.json").status_code != 200


def test_closing_ends_the_sessions_already_open(spam, console, committed):
    client, response = log_in("spam@junk.example")
    assert client.get("/setup/status.json").status_code == 200
    with committed():
        press(console, spam, "close", reason="spam")
    assert client.get("/setup/status.json").status_code != 200


def test_reopen_gives_everything_back(spam, console, committed, sandbox, drive):
    with committed():
        press(console, spam, "close", reason="spam, we thought")
    sandbox("provisioning", "ok")  # it was a real company after all; the provider takes it now
    with committed():
        response = press(console, spam, "reopen", reason="they called: a real company")
    drive()

    assert response.status_code == 302
    account = User.objects.get(pk=spam.account_id)
    assert account.is_active and Workspace.objects.filter(owner=account).count() == 1
    assert account_overview(account=account).state == State.UNVERIFIED
    client, login = log_in("spam@junk.example")
    assert login.status_code == 302 and client.get("/setup/status.json").status_code == 200
    assert list(ConsoleAction.objects.order_by("pk").values_list("kind", flat=True)) == [
        ConsoleActionKind.CLOSE, ConsoleActionKind.REOPEN]


def test_closing_needs_a_reason_and_changes_nothing_without_one(spam, console):
    response = press(console, spam, "close", reason="  ")
    assert response.status_code == 400 and "Say why" in html.unescape(response.content.decode())
    assert User.objects.get(pk=spam.account_id).is_active
    assert not ConsoleAction.objects.exists()


def test_closing_cancels_the_steps_still_owed(register, sandbox, committed):
    sandbox("provisioning", "error")  # the workspace keeps retrying
    account = register(email="pending@example.com")
    with committed():
        account_close(account=account, actor="support (sam@support.example)", reason="asked to be removed")
    assert ProvisioningRequest.objects.get(account=account).status == StepStatus.FAILED
    assert not account.email_deliveries.filter(status__in=[StepStatus.PENDING, StepStatus.RUNNING]).exists()


def test_a_staff_account_is_never_closed(support_user, db):
    colleague = User.objects.create_user("lee@support.example", "a staff password 1", name="Lee", is_staff=True)
    with pytest.raises(StaffAccount):
        account_close(account=colleague, actor="support (sam@support.example)", reason="takeover attempt")
    colleague.refresh_from_db()
    assert colleague.is_active and not colleague.events.exists()


def test_the_close_button_needs_its_permission(spam, bare_staff_console):
    assert press(bare_staff_console, spam, "close", reason="spam").status_code == 403
    assert User.objects.get(pk=spam.account_id).is_active


@pytest.mark.parametrize(("button", "data"), [
    ("rerun", {}), ("resend", {}), ("correct_email", {"email": "someone.else@example.com"}),
    ("mark_verified", {"confirmed": "on"}),
])
def test_no_button_sends_sets_up_or_changes_anything_for_a_closed_account(
        spam, console, committed, sandbox, drive, mailoutbox, button, data):
    """A page drawn before the account was closed (or a crafted post) must not bring a
    closed spam signup back to life: no workspace, no email, no new address."""
    with committed():
        press(console, spam, "close", reason="spam signup")
    sandbox("provisioning", "ok")
    mailoutbox.clear()
    recorded = ConsoleAction.objects.count()

    with committed():
        response = press(console, spam, button, **data)
    drive()

    assert response.status_code == 400
    assert "spam@junk.example is closed, so nothing was done" in html.unescape(response.content.decode())
    account = User.objects.get(pk=spam.account_id)
    assert not account.is_active and account.email == "spam@junk.example" and not account.email_verified
    assert ProvisioningRequest.objects.get(account=account).status == StepStatus.FAILED
    assert not Workspace.objects.filter(owner=account).exists()
    assert not mailoutbox
    assert ConsoleAction.objects.count() == recorded


def test_re_running_every_stopped_step_leaves_closed_accounts_alone(spam, console, committed, sandbox, drive):
    """`manage.py retry_setup --all-failed`, the accounts list's Retry setup and an
    incident's Re-run all read the same stopped steps: closing cancelled a closed
    account's, and none of them re-runs it."""
    from django.core.management import call_command

    from accounts.selectors import accounts_with_failed_steps
    from support import actions

    with committed():
        press(console, spam, "close", reason="spam signup")
    sandbox("provisioning", "ok")
    account = User.objects.get(pk=spam.account_id)

    assert account not in accounts_with_failed_steps()
    with committed():
        call_command("retry_setup", "--all-failed", stdout=io.StringIO())
        assert actions.retry_setup(actor=User.objects.get(email="sam@support.example"), account=account) == []
    drive()

    assert ProvisioningRequest.objects.get(account=account).status == StepStatus.FAILED
    assert not Workspace.objects.filter(owner=account).exists()


def test_a_closed_accounts_pages_say_it_is_closed_not_to_re_run_what_failed(spam, console, committed):
    """The refused workspace's advice ("then Re-run provisioning") is for an open
    account; a closed one refuses that button, so its pages say it is closed."""
    with committed():
        press(console, spam, "close", reason="spam signup")

    for path in (f"/admin/support/ticket/{spam.pk}/change/", f"/admin/accounts/user/{spam.account_id}/change/"):
        page = html.unescape(console.get(path).content.decode())
        assert "then Re-run provisioning" not in page
        assert str(words.ACCOUNT_CLOSED_FAILURE) in page
    queue = html.unescape(console.get("/admin/support/ticket/", {"queue": "resolved"}).content.decode())
    assert str(words.ACCOUNT_CLOSED_FAILURE) in queue


# --- A call-back they asked for -------------------------------------------------------------

def test_closing_cancels_a_waiting_call_back_and_reopening_does_not_bring_back_its_promise(
        spam, console, committed, drive):
    """The person pressed "Call me" on /setup/; support then closed the account. The
    resolved ticket must not go on promising a call, nor the request drop out of the
    queue unsaid: it is cancelled, with a line on the timeline. Once its promise has
    passed, reopening does not revive it: the person can ask again, with a fresh promise."""
    person = Client()
    person.force_login(User.objects.get(pk=spam.account_id))
    assert person.post("/help/call/", {"phone": ""}).status_code == 200
    assert "They asked us to call" in html.unescape(console.get(f"/admin/support/ticket/{spam.pk}/change/")
                                                    .content.decode())

    with committed():
        press(console, spam, "close", reason="spam signup")

    [callback] = CallbackRequest.objects.all()
    spam.refresh_from_db()
    assert callback.status == CallbackStatus.CANCELLED and callback.closed_at is not None
    assert spam.status == TicketStatus.RESOLVED
    said = str(words.CALLBACK_CANCELLED_CLOSED).format(phone="+1 415-555-0100")
    assert spam.events.filter(kind=EventKind.NOTE, text=said).count() == 1
    page = html.unescape(console.get(f"/admin/support/ticket/{spam.pk}/change/").content.decode())
    assert "They asked us to call" not in page and "promised by" not in page
    assert said in page
    for queue in ({}, {"queue": "resolved"}):
        assert "Call back" not in html.unescape(console.get("/admin/support/ticket/", queue).content.decode())

    # The promise passes while the account is closed; then support reopens it.
    CallbackRequest.objects.update(requested_at=timezone.now() - timedelta(hours=30),
                                   promised_by=timezone.now() - timedelta(hours=26))
    with committed():
        press(console, spam, "reopen", reason="a real company after all")
    drive()  # the provider still refuses its workspace: the person is stuck again

    person, login = log_in("spam@junk.example")
    assert login.status_code == 302
    setup = html.unescape(person.get("/setup/").content.decode())
    assert "You asked us to call you" not in setup and 'action="/help/call/"' in setup
    answer = html.unescape(person.post("/help/call/", {"phone": ""}).content.decode())
    assert "You asked us to call you at +1 415-555-0100: a person will call within 4 hours." in answer
    assert CallbackRequest.objects.get(status=CallbackStatus.REQUESTED).promised_by > timezone.now()
    assert CallbackRequest.objects.get(pk=callback.pk).status == CallbackStatus.CANCELLED
