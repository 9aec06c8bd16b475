"""/help/: works logged out, joins the account's ticket or opens an unmatched one,
and answers identically whether or not the address has an account."""
from __future__ import annotations

import html
import re

from django.conf import settings
from django.core import mail
from django.test import Client

from accounts.models import EmailDelivery, EmailKind
from support.models import ContactMessage, EventKind, Priority, Ticket, TicketStatus


def _masked(page: str, *secrets: str) -> str:
    page = re.sub(r"SUP-\d{6}", "SUP-XXXXXX", page)
    for secret in secrets:
        page = page.replace(secret, "<masked>")
    return page


def test_the_form_works_logged_out_and_is_prefilled_when_logged_in(register):
    page = Client().get("/help/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'name="email"' in text and 'name="message"' in text
    assert f"within {settings.SUPPORT_REPLY_HOURS} hours" in text

    account = register()
    person = Client()
    person.force_login(account)
    assert f'value="{account.email}"' in person.get("/help/").content.decode()


def test_a_known_and_an_unknown_address_get_the_same_answer(stranded, committed):
    account = stranded()  # has an open ticket already
    known, unknown = Client(), Client()
    with committed():
        answer_known = known.post("/help/", {"email": account.email, "message": "Help me please"})
        answer_unknown = unknown.post("/help/", {"email": "nobody@elsewhere.example", "message": "Help me please"})

    assert answer_known.status_code == answer_unknown.status_code == 200
    assert _masked(answer_known.content.decode(), account.email) == _masked(
        answer_unknown.content.decode(), "nobody@elsewhere.example")
    assert sorted(answer_known.headers) == sorted(answer_unknown.headers)
    assert "We've got your message" in html.unescape(answer_known.content.decode())

    # Behind the identical answers: the known address joined its account's ticket, the
    # unknown one opened an unmatched ticket. Each got an acknowledgement.
    assert Ticket.objects.count() == 2
    joined = Ticket.objects.get(account=account)
    assert joined.reference in answer_known.content.decode()
    unmatched = Ticket.objects.get(account__isnull=True)
    assert unmatched.email == "nobody@elsewhere.example" and unmatched.priority == Priority.PERSON_WROTE
    assert unmatched.reference in answer_unknown.content.decode()
    for address, ticket in ((account.email, joined), ("nobody@elsewhere.example", unmatched)):
        acks = [m for m in mail.outbox if m.to == [address] and m.subject == "We've got your message"]
        assert len(acks) == 1 and ticket.reference in acks[0].body
    assert EmailDelivery.objects.get(kind=EmailKind.ACKNOWLEDGEMENT,
                                     to_address="nobody@elsewhere.example").account is None


def test_an_unknown_address_writing_twice_keeps_one_ticket(db, client, committed):
    with committed():
        first = client.post("/help/", {"email": "Someone@Elsewhere.example", "message": "Hello?"})
        second = client.post("/help/", {"email": "someone@elsewhere.example", "message": "Hello again"})
    ticket = Ticket.objects.get()
    assert ticket.reference in first.content.decode() and ticket.reference in second.content.decode()
    assert ticket.messages.count() == 2


def test_a_signed_in_message_joins_the_persons_ticket_and_says_so(register, committed):
    account = register()
    person = Client()
    person.force_login(account)
    with committed():
        person.post("/help/", {"email": "my.other@address.example", "message": "Reply here please"})

    message = ContactMessage.objects.get()
    assert message.signed_in and message.account == account and message.ticket.account == account
    assert ticket_reply_address(message.ticket) == "my.other@address.example"


def test_a_reply_goes_to_the_corrected_address_not_the_typo_the_person_wrote_from(signup_data, committed, drive,
                                                                                 console, mailoutbox):
    """Signed up with a typo, wrote to us signed in (the form offers the account's
    address, the typo), then corrected it on /setup/: our reply goes to the corrected
    address, where it can arrive, not to the typo."""
    person = Client()
    with committed():
        person.post("/signup/", {**signup_data, "email": "ada@exmaple.com"})
    drive()
    with committed():
        person.post("/help/", {"email": "ada@exmaple.com", "message": "No email from you yet?"})
        person.post("/setup/email/", {"email": "ada@example.com"})
    drive()
    ticket = Ticket.objects.get()
    mailoutbox.clear()

    page = html.unescape(console.get(f"/admin/support/ticket/{ticket.pk}/do/reply/").content.decode())
    with committed():
        console.post(f"/admin/support/ticket/{ticket.pk}/do/reply/",
                     {"action_key": "c" * 32, "body": "Your link is on its way.", "then": "waiting_on_customer"})
    drive()

    assert ticket_reply_address(ticket) == "ada@example.com"
    assert "ada@example.com" in page and "ada@exmaple.com" not in page.split("Goes to", 1)[1][:200]
    assert [m.to for m in mailoutbox if "Your link is on its way." in m.body] == [["ada@example.com"]]


def ticket_reply_address(ticket):
    from support.selectors import reply_address

    return reply_address(ticket)


def test_a_message_reopens_a_ticket_waiting_on_the_customer(stranded, console, client, committed):
    stranded()
    ticket = Ticket.objects.get()
    console.post(f"/admin/support/ticket/{ticket.pk}/do/reply/",
                 {"action_key": "a" * 32, "body": "Which company name?", "then": "waiting_on_customer"})
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.WAITING_ON_CUSTOMER

    with committed():
        client.post("/help/", {"email": ticket.account.email, "message": "Analytical Engines Ltd"})
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    assert ticket.events.filter(kind=EventKind.STATUS, to_status=TicketStatus.OPEN).exists()


def test_bad_input_writes_nothing(db, client):
    response = client.post("/help/", {"email": "not an address", "message": "bad\x00byte"})
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert "doesn't look like an email address" in page and "control characters" in page
    assert not Ticket.objects.exists() and not ContactMessage.objects.exists()
    assert not EmailDelivery.objects.exists()


def test_too_many_messages_from_one_address_are_refused_with_a_human_page(db, client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "help": {"per_ip": (100, 3600), "per_email": (2, 3600)}}
    for n in range(2):
        assert client.post("/help/", {"email": "flood@example.com", "message": f"#{n}"}).status_code == 200
    limited = client.post("/help/", {"email": "flood@example.com", "message": "#3"})

    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    page = html.unescape(limited.content.decode())
    assert "Paused: please try again" in page and "sending messages to our team" in page
    # The message was not sent, and the page says so and keeps it in the form.
    assert "Your message has not been sent yet. It is still in the form below" in page
    assert re.search(r'<textarea name="message"[^>]*>\s*#3</textarea>', page)
    assert 'value="flood@example.com"' in page
    # Its ways to reach us do not lead back to the paused form.
    assert 'href="/help/"' not in page.split('id="paused"')[1].split("</div>")[0]
    assert f"mailto:{settings.SUPPORT_EMAIL}" in page
    assert ContactMessage.objects.count() == 2
    # Another address from the same client is still fine.
    assert client.post("/help/", {"email": "calm@example.com", "message": "hi"}).status_code == 200


def test_too_many_messages_from_one_client_are_refused(db, client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "help": {"per_ip": (3, 3600), "per_email": (100, 3600)}}
    statuses = [client.post("/help/", {"email": f"p{n}@example.com", "message": "hi"}).status_code
                for n in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert ContactMessage.objects.count() == 3
