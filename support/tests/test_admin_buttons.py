"""The ticket page's buttons, through the admin client: GET only asks, POST does it
once (a double click does nothing twice), every click is recorded once as a typed
console action (who, what, to whom), and a staff member without the permission is
refused."""
from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client

from accounts.models import EmailKind, SignInCode, User
from provisioning import breaker
from provisioning.models import Workspace
from support import messages as words
from support.models import ConsoleAction, EventKind, Ticket, TicketEvent, TicketStatus
from support.tests.conftest import signed_in_to_console, support_group

BUTTONS = ["rerun", "resend", "correct_email", "mark_verified", "signin_code", "reply", "resolve", "close"]


def url(ticket: Ticket, name: str) -> str:
    return f"/admin/support/ticket/{ticket.pk}/do/{name}/"


def key_from(page) -> str:
    return re.search(r'name="action_key" value="([0-9a-f]{32})"', page.content.decode()).group(1)


def text(response) -> str:
    return html.unescape(response.content.decode())


def clicks(ticket: Ticket) -> int:
    return ConsoleAction.objects.filter(ticket=ticket).count()


def logged(ticket: Ticket) -> list[str]:
    """The console actions recorded on the ticket, as "kind: what came of it"."""
    return [f"{kind}: {detail}" for kind, detail in
            ConsoleAction.objects.filter(ticket=ticket).values_list("kind", "detail")]


@pytest.fixture
def ticket(stranded) -> Ticket:
    stranded()
    return Ticket.objects.select_related("account").get()


def test_the_ticket_page_shows_everything_needed_to_decide(ticket, console):
    page = text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    account = ticket.account
    for fact in (ticket.reference, account.name, account.email, account.company, str(account.phone),
                 "needs support", "Workspace setup stopped after 1 try", "http_422", "Verify your address",
                 "Automation gave up", "What they see:"):
        assert fact in page, fact
    for button in ("Re-run provisioning now", "Resend verification", "Correct the email address",
                   "Mark email verified — identity confirmed by phone", "Issue a one-time sign-in code", "Reply",
                   "Resolve"):
        assert button in page, button


@pytest.mark.parametrize("name", BUTTONS)
def test_get_only_shows_a_confirmation(ticket, console, name):
    before = (clicks(ticket), ConsoleAction.objects.count(), len(mail.outbox), SignInCode.objects.count())
    page = console.get(url(ticket, name))

    assert page.status_code == 200
    assert '<form method="post"' in page.content.decode() and key_from(page)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    assert (clicks(ticket), ConsoleAction.objects.count(), len(mail.outbox), SignInCode.objects.count()) == before


@pytest.mark.parametrize("name", BUTTONS)
def test_a_staff_member_without_the_permission_is_refused(ticket, bare_staff_console, name):
    assert bare_staff_console.get(url(ticket, name)).status_code == 403
    assert bare_staff_console.post(url(ticket, name), {"action_key": uuid.uuid4().hex}).status_code == 403
    assert clicks(ticket) == 0 and not ConsoleAction.objects.exists()


def test_a_permission_opens_exactly_its_button(ticket, db):
    from django.contrib.auth.models import Permission

    user = User.objects.create_user("res@support.example", "pw pw pw pw 1", name="Res", company="A", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["resolve", "view_ticket"]))
    client = signed_in_to_console(user)
    assert client.get(url(ticket, "resolve")).status_code == 200
    assert client.get(url(ticket, "rerun")).status_code == 403


def test_buttons_need_the_csrf_token(ticket, support_user):
    strict = signed_in_to_console(support_user, enforce_csrf_checks=True)
    assert strict.post(url(ticket, "resolve"), {"action_key": uuid.uuid4().hex}).status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN


def test_rerun_provisioning_heals_the_account_and_the_ticket(ticket, console, sandbox, drive, committed):
    sandbox("provisioning", "ok")  # whatever refused it is fixed
    key = key_from(console.get(url(ticket, "rerun")))
    with committed():
        first = console.post(url(ticket, "rerun"), {"action_key": key})
        second = console.post(url(ticket, "rerun"), {"action_key": key})  # double click
    drive()

    assert first.status_code == second.status_code == 302
    assert Workspace.objects.filter(owner=ticket.account).count() == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED and ticket.resolved_automatically
    assert clicks(ticket) == 1
    assert len(logged(ticket)) == 1 and logged(ticket)[0].startswith("rerun: ")
    assert ticket.account.events.filter(subject="workspace", why__contains=ticket.reference).count() == 1


def test_resend_verification_sends_one_email_per_click(ticket, console, drive, committed):
    sent = lambda: [m for m in mail.outbox if m.subject == "Confirm your email address"]  # noqa: E731
    before = len(sent())
    key = key_from(console.get(url(ticket, "resend")))
    with committed():
        console.post(url(ticket, "resend"), {"action_key": key})
        console.post(url(ticket, "resend"), {"action_key": key})
    drive()

    assert len(sent()) == before + 1
    assert clicks(ticket) == 1 and len(logged(ticket)) == 1


def test_correct_email_moves_the_account_and_sends_a_fresh_link(ticket, console, drive, committed):
    key = key_from(console.get(url(ticket, "correct_email")))
    with committed():
        response = console.post(url(ticket, "correct_email"), {"action_key": key, "email": "Ada@Fixed.example"})
        console.post(url(ticket, "correct_email"), {"action_key": key, "email": "Ada@Fixed.example"})
    drive()

    assert response.status_code == 302
    ticket.account.refresh_from_db()
    assert ticket.account.email == "ada@fixed.example"
    assert len([m for m in mail.outbox if m.to == ["ada@fixed.example"]]) == 1
    assert clicks(ticket) == 1 and len(logged(ticket)) == 1


def test_correct_email_with_the_address_it_has_corrects_nothing_and_says_so(ticket, console):
    """The form starts with the account's address: pressed as it is, nothing is
    corrected, recorded or sent, and the page says so (and where resending is)."""
    address = ticket.account.email
    deliveries = ticket.account.email_deliveries.count()

    response = console.post(url(ticket, "correct_email"), {"action_key": uuid.uuid4().hex,
                                                            "email": address.upper()})

    assert response.status_code == 400
    assert str(words.ADDRESS_UNCHANGED).format(address=address) in text(response)
    assert "Address corrected" not in text(response)
    assert clicks(ticket) == 0 and not ConsoleAction.objects.exists()
    assert ticket.account.email_deliveries.count() == deliveries


def test_correct_email_refuses_a_taken_address_and_changes_nothing(ticket, console, register):
    register(email="taken@example.com")
    response = console.post(url(ticket, "correct_email"), {"action_key": uuid.uuid4().hex,
                                                            "email": "taken@example.com"})
    assert response.status_code == 400
    assert "Another account already uses this address" in text(response)
    ticket.account.refresh_from_db()
    assert ticket.account.email == "ada@example.com"
    assert clicks(ticket) == 0 and not ConsoleAction.objects.exists()


def test_mark_verified_needs_the_phone_check_and_then_verifies(ticket, console):
    refused = console.post(url(ticket, "mark_verified"), {"action_key": uuid.uuid4().hex})
    assert refused.status_code == 400 and "confirming who they are by phone" in text(refused)
    ticket.account.refresh_from_db()
    assert not ticket.account.email_verified

    key = uuid.uuid4().hex
    console.post(url(ticket, "mark_verified"), {"action_key": key, "confirmed": "on"})
    console.post(url(ticket, "mark_verified"), {"action_key": key, "confirmed": "on"})
    ticket.account.refresh_from_db()
    assert ticket.account.email_verified
    assert ticket.account.events.filter(to_state="verified", why__contains="identity confirmed by phone").count() == 1
    assert clicks(ticket) == 1 and len(logged(ticket)) == 1


def test_a_sign_in_code_is_shown_once_and_a_double_click_issues_no_second(ticket, console):
    key = key_from(console.get(url(ticket, "signin_code")))
    first = console.post(url(ticket, "signin_code"), {"action_key": key})
    again = console.post(url(ticket, "signin_code"), {"action_key": key}, follow=True)

    code = re.search(r'class="signin-code"[^>]*>(\d{4} \d{4})<', first.content.decode()).group(1)
    assert code not in again.content.decode()  # stored nowhere, so never shown again
    assert str(words.RESULTS["signin_code_again"]) in text(again)
    assert "no-store" in first["Cache-Control"]
    assert SignInCode.objects.count() == 1 and clicks(ticket) == 1 and len(logged(ticket)) == 1
    assert code.replace(" ", "") not in " ".join(TicketEvent.objects.values_list("text", flat=True))
    assert code not in " ".join(logged(ticket))

    person = Client()
    landed = person.post("/login/code/", {"email": ticket.account.email, "code": code})
    assert landed.status_code == 302 and landed["Location"] == "/setup/"
    assert int(person.session["_auth_user_id"]) == ticket.account.pk


def test_a_click_key_from_another_ticket_issues_nothing(ticket, console, stranded):
    stranded(email="grace@example.com")
    other = Ticket.objects.exclude(pk=ticket.pk).get()
    key = uuid.uuid4().hex
    assert "signin-code" in console.post(url(other, "signin_code"), {"action_key": key}).content.decode()

    replayed = console.post(url(ticket, "signin_code"), {"action_key": key})
    assert replayed.status_code == 302  # "already handled", and no code shown
    assert SignInCode.objects.count() == 1 and not SignInCode.objects.filter(account=ticket.account).exists()
    assert clicks(ticket) == 0


def test_reply_suggests_words_for_the_state_and_sends_once(ticket, console, drive, committed):
    page = text(console.get(url(ticket, "reply")))
    assert "refused our request" in page  # the suggestion for "needs support" after a refusal

    key = key_from(console.get(url(ticket, "reply")))
    with committed():
        for _ in range(2):
            console.post(url(ticket, "reply"), {"action_key": key, "body": "Fixed it, sorry!",
                                                "then": TicketStatus.WAITING_ON_CUSTOMER})
    drive()

    replies = [m for m in mail.outbox if m.subject == "A message from our support team"
               and "Fixed it, sorry!" in m.body]
    assert len(replies) == 1 and replies[0].to == [ticket.account.email] and ticket.reference in replies[0].body
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.WAITING_ON_CUSTOMER
    assert ticket.events.filter(kind=EventKind.REPLY).count() == 1
    assert ticket.account.email_deliveries.filter(kind=EmailKind.SUPPORT).count() == 1


def send_reply(console: Client, ticket: Ticket, committed, drive, *, body: str | None = None):
    """Press Reply on the ticket page as a support person would: the suggested words
    (or ``body``), sent; returns the email the person gets."""
    form = console.get(url(ticket, "reply")).content.decode()
    suggested = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", form, re.S).group(1)).strip()
    with committed():
        assert console.post(url(ticket, "reply"), {
            "action_key": key_from(console.get(url(ticket, "reply"))), "body": body or suggested,
            "then": TicketStatus.WAITING_ON_CUSTOMER}).status_code == 302
    drive()
    [email] = [m for m in mail.outbox if m.subject == "A message from our support team"]
    return email


def test_a_reply_is_signed_with_the_senders_name(ticket, console, drive, committed):
    assert "Sam\nAcme Workspaces support" in text(console.get(url(ticket, "reply"))).replace("<br>", "\n")

    email = send_reply(console, ticket, committed, drive)

    assert "Once the cause is fixed I'll start it again" in email.body  # the suggestion for a refusal, as sent
    assert email.body.count("Sam\nAcme Workspaces support") == 1  # signed once, by the email itself
    assert "Sam<br>Acme Workspaces support" in email.alternatives[0][0]
    assert "sam@support.example" not in email.body


def test_a_reply_stays_signed_when_the_sender_rewrites_the_whole_body(ticket, console, drive, committed):
    email = send_reply(console, ticket, committed, drive, body="It's fixed now, sorry for the trouble.")
    assert "It's fixed now, sorry for the trouble.\n\nSam\nAcme Workspaces support" in email.body


def test_a_reply_from_a_staff_member_without_a_name_is_signed_by_the_team(ticket, drive, committed):
    nameless = User.objects.create_user("ops@support.example", "an ops password 1", name="", company="Acme",
                                        is_staff=True)
    nameless.groups.add(support_group())

    email = send_reply(signed_in_to_console(nameless), ticket, committed, drive)

    assert "The Acme Workspaces support team" in email.body
    assert "ops@support.example" not in email.body and "\nops\n" not in email.body


def test_resolve_resolves_once(ticket, console):
    key = uuid.uuid4().hex
    first = console.post(url(ticket, "resolve"), {"action_key": key})
    second = console.post(url(ticket, "resolve"), {"action_key": key})
    later = console.post(url(ticket, "resolve"), {"action_key": uuid.uuid4().hex})  # a fresh click

    assert first.status_code == second.status_code == later.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED and not ticket.resolved_automatically
    assert ticket.events.filter(kind=EventKind.STATUS, to_status=TicketStatus.RESOLVED).count() == 1
    # The double click left no trace; the later, separate click is recorded as "nothing to do".
    assert clicks(ticket) == 2
    assert sorted(logged(ticket)) == ["resolve: The ticket was already resolved.", "resolve: Ticket resolved."]


def test_an_unmatched_ticket_offers_only_reply_and_resolve(db, client, console, committed):
    with committed():
        client.post("/help/", {"email": "stranger@elsewhere.example", "message": "Hi"})
    ticket = Ticket.objects.get()
    page = text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    assert "No account uses stranger@elsewhere.example" in page
    assert "Reply" in page and "Re-run provisioning now" not in page
    refused = console.post(url(ticket, "rerun"), {"action_key": uuid.uuid4().hex})
    assert refused.status_code == 400 and "No account uses stranger@elsewhere.example" in text(refused)
    assert clicks(ticket) == 0


def test_re_run_is_the_main_button_only_while_the_provider_is_healthy(ticket, console):
    page_url = f"/admin/support/ticket/{ticket.pk}/change/"
    rerun = f'<a class="button default" href="{url(ticket, "rerun")}">Re-run provisioning now</a>'
    healthy = text(console.get(page_url))
    assert rerun in healthy and "answering (circuit closed)" in healthy and 'id="provider-failing"' not in healthy

    breaker.trip("provisioning", why="the provider is down")
    failing = text(console.get(page_url))
    assert rerun not in failing
    assert f'<a class="button" href="{url(ticket, "rerun")}">Re-run provisioning now</a>' in failing
    assert 'id="provider-failing"' in failing and "The workspace provider is still failing" in failing


def test_a_resolved_ticket_shows_how_long_it_waited_until_resolved(ticket, console):
    assert console.post(url(ticket, "resolve"), {"action_key": uuid.uuid4().hex}).status_code == 302
    ticket.refresh_from_db()
    # Resolved two days ago after an hour's wait: the count stopped at resolution.
    resolved_at = ticket.resolved_at - timedelta(days=2)
    Ticket.objects.filter(pk=ticket.pk).update(resolved_at=resolved_at,
                                               waiting_since=resolved_at - timedelta(hours=1))

    page = text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    queue = text(console.get("/admin/support/ticket/?queue=resolved"))
    assert "waited 1\xa0hour until resolved" in page and "waiting 2\xa0days" not in page
    assert re.search(r'waited until resolved:</span> <span title="[^"]+">1\xa0hour</span>', queue)


def test_the_reply_form_warns_when_earlier_emails_to_the_address_were_refused(register, sandbox, drive, console,
                                                                             ticket):
    calm = text(console.get(url(ticket, "reply")))
    assert 'id="address-trouble"' not in calm

    sandbox("email", "reject")  # the recipient's server refuses the address
    account = register(email="refused@example.com")
    drive()
    refused = Ticket.objects.get(account=account)
    page = text(console.get(url(refused, "reply")))
    assert 'id="address-trouble"' in page and "Earlier emails to refused@example.com did not arrive" in page
