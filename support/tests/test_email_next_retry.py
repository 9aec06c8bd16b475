"""The Emails table's "Next retry" (account and ticket pages) reads as the workspace's:
held behind the email provider's open circuit, due once its time has passed, after
the person's other emails for the apology that waits for them, else when in words."""
from __future__ import annotations

import html
import re
from datetime import timedelta

import time_machine

from accounts.emails import email_queue
from accounts.models import EmailDelivery, EmailKind
from accounts.tests.factories import page_text
from provisioning import breaker
from support.models import Ticket


def next_retries(console, url: str) -> dict[str, str]:
    """Each email's "Next retry" cell on the page, by what the email is."""
    page = console.get(url).content.decode()
    table = re.search(r'<table class="deliveries">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r"<tr><td>(.*?)</td>.*?<td>([^<]*)</td></tr>", table, re.S)
    return {page_text_of(what): page_text_of(when) for what, when in rows}


def page_text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def account_page(account) -> str:
    return f"/admin/accounts/user/{account.pk}/change/"


def test_an_email_held_behind_the_open_circuit_is_held_not_in_under_a_minute(
        register, sandbox, drive, settings, console):
    settings.BREAKER_FAILURE_THRESHOLD = 1
    sandbox("email", "timeout")
    account = register()
    drive(max_passes=3)
    assert breaker.is_open("email")
    link = EmailDelivery.objects.get(account=account, kind=EmailKind.VERIFICATION)
    assert link.status == "pending" and link.attempts >= 1

    held = "held until the provider recovers (its circuit is open)"
    assert next_retries(console, account_page(account)) == {link.get_kind_display(): held}
    # A ticket's page reads alike, and so after the email's own time has passed.
    ticket = Ticket.objects.create(account=account, email=account.email)
    with time_machine.travel(link.next_attempt_at + timedelta(minutes=2), tick=False):
        assert next_retries(console, f"/admin/support/ticket/{ticket.pk}/change/") == {
            link.get_kind_display(): held}
    assert "in under a minute" not in page_text(console.get(account_page(account)))


def test_an_email_past_its_time_is_due_now_and_the_apology_waits_for_the_others(
        register, sandbox, drive, settings, console, committed):
    settings.BREAKER_FAILURE_THRESHOLD = 10_000  # the circuit stays closed: each email by its own time
    sandbox("email", "timeout")
    account = register()
    drive(max_passes=1)
    assert not breaker.is_open("email")
    link = EmailDelivery.objects.get(account=account, kind=EmailKind.VERIFICATION)
    assert link.status == "pending" and link.attempts >= 1
    with committed():  # the apology, owed while the link is: held for it (accounts.emails._owed_first)
        apology = email_queue(account=account, kind=EmailKind.ALL_SET, key=f"{account.pk}:test")
    assert apology.status == "pending"

    with time_machine.travel(link.next_attempt_at + timedelta(minutes=2), tick=False):
        assert next_retries(console, account_page(account)) == {
            link.get_kind_display(): "due now",
            apology.get_kind_display(): "after the person's other emails",
        }
    with time_machine.travel(link.next_attempt_at - timedelta(seconds=30), tick=False):
        assert next_retries(console, account_page(account))[link.get_kind_display()] == "in under a minute"
