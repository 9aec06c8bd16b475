"""Changing the address in strict mode (``SIGNUP_PREVENT_ENUMERATION``): asking to
move to an address another account uses answers exactly as asking for a free one
(accounts.flows.email_change). Only the link that reaches the new inbox moves the
account, and it verifies the address."""
from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts import messages as words
from accounts.models import EmailDelivery, EmailKind, User
from accounts.tests.factories import PASSWORD, page_text, sent_to, sign_up
from accounts.tests.test_enumeration import same_page

pytestmark = pytest.mark.django_db

ADA = "ada@example.com"
FREE = "ada.lovelace@example.com"
BOB = "bob@example.com"
CHANGE_LINK = re.compile(r"https?://[^/\s\"]+(/setup/email/confirm/[^/\s\"]+/)")
CHANGE_SUBJECT = str(words.EMAIL_SUBJECTS["email_change"])
TAKEN_SUBJECT = str(words.EMAIL_SUBJECTS["email_change_taken"])


@pytest.fixture
def accounts(signup_data, drive, settings):
    """Ada (logged in, unverified) and Bob, signed up before strict mode is switched
    on (strict signup answers with a page, not a login); their first emails are out."""
    ada_client, ada = sign_up(**{**signup_data, "email": ADA})
    sign_up(name="Bob Bobson", email=BOB)
    drive()
    mail.outbox.clear()
    return ada_client, ada


@pytest.fixture
def strict(accounts, settings):
    """The same two accounts, then strict mode on."""
    settings.SIGNUP_PREVENT_ENUMERATION = True
    return accounts


def change_link(address: str) -> str:
    [message] = sent_to(address, subject=CHANGE_SUBJECT)
    match = CHANGE_LINK.search(message.body)
    assert match, message.body
    [(html, _)] = message.alternatives
    assert match.group(1) in html
    return match.group(1)


def ask(client: Client, address: str):
    """POST the address, follow the answer; returns the final page and its messages."""
    response = client.post("/setup/email/", {"email": address}, follow=True)
    return response, [str(m) for m in response.context["messages"]]


def email_of(account: User) -> tuple[str, bool]:
    account.refresh_from_db()
    return account.email, account.email_verified


def test_a_taken_address_and_a_free_one_get_the_same_answer_and_change_nothing(strict, drive):
    client, ada = strict

    free, free_words = ask(client, FREE)
    taken, taken_words = ask(client, "Bob@Example.com")

    assert free.redirect_chain == taken.redirect_chain == [("/setup/", 302)]
    assert free.status_code == taken.status_code == 200
    assert free_words == [words.EMAIL_CHANGE_SENT.format(new=FREE, old=ADA)]
    assert taken_words == [words.EMAIL_CHANGE_SENT.format(new=BOB, old=ADA)]
    # The page each answer leads to is the same, byte for byte but the address typed.
    assert same_page(free, FREE) == same_page(taken, BOB)
    assert email_of(ada) == (ADA, False)
    assert client.get("/setup/status.json").json()["email"]["address"] == ADA


def test_the_free_address_gets_the_link_and_the_owner_of_a_taken_one_a_notice(strict, drive):
    client, ada = strict

    ask(client, FREE)
    ask(client, BOB)
    drive()

    assert len(sent_to(FREE, subject=CHANGE_SUBJECT)) == 1
    [notice] = sent_to(BOB)
    assert notice.subject == TAKEN_SUBJECT
    assert "Nothing was changed" in notice.body and ADA not in notice.body
    assert sent_to(ADA) == []  # nothing to the current address, in either case
    assert not EmailDelivery.objects.filter(account=ada, to_address=BOB).exists()


def test_opening_the_link_changes_nothing_and_its_button_moves_and_verifies(strict, drive):
    client, ada = strict
    ask(client, FREE)
    drive()
    link = change_link(FREE)

    for _ in range(3):  # a mail scanner, a preview, the person
        page = Client().get(link)
        assert page.status_code == 200
        assert str(words.EMAIL_CHANGE_CONFIRM.action) in page_text(page)
    assert email_of(ada) == (ADA, False)

    response = client.post(link)

    assert response.status_code == 302 and link not in response["Location"]
    assert email_of(ada) == (FREE, True)
    assert words.EMAIL_CHANGE_DONE.format(address=FREE) in page_text(client.get(response["Location"], follow=True))
    assert client.get("/setup/status.json").json()["email"]["address"] == FREE


def test_a_link_confirmed_while_logged_in_to_another_account_says_whose_it_was(strict, drive):
    client, ada = strict
    ask(client, FREE)
    drive()
    bob = Client()
    bob.post("/login/", {"email": BOB, "password": PASSWORD})

    response = bob.post(change_link(FREE), follow=True)

    assert email_of(ada) == (FREE, True)
    text = page_text(response)
    assert bob.get("/setup/status.json").json()["email"]["address"] == BOB  # Bob's own page, still Bob's
    assert words.EMAIL_CHANGE_DONE_OTHER_ACCOUNT.format(address=FREE) in text
    assert "your account now uses" not in text


def test_a_used_link_is_refused(strict, drive):
    client, ada = strict
    ask(client, FREE)
    drive()
    link = change_link(FREE)
    client.post(link)

    again = client.post(link)

    assert again.status_code == 400
    assert str(words.EMAIL_CHANGE_LINK_BAD.title) in page_text(again)
    assert email_of(ada) == (FREE, True)


def test_a_tampered_link_is_refused(strict, drive):
    client, ada = strict
    ask(client, FREE)
    drive()
    link = change_link(FREE)
    token = link.split("/")[-2]
    # The signature no longer matches what it signs.
    forged = f"/setup/email/confirm/{token[:-3]}{'AAA' if token[-3:] != 'AAA' else 'BBB'}/"

    assert Client().get(forged).status_code == 400
    assert client.post(forged).status_code == 400
    assert client.post("/setup/email/confirm/not-a-token/").status_code == 400
    assert email_of(ada) == (ADA, False)


def test_an_expired_link_is_refused(strict, drive, settings):
    client, ada = strict
    ask(client, FREE)
    drive()
    link = change_link(FREE)

    settings.EMAIL_VERIFICATION_TIMEOUT = -1  # every link is now past its lifetime
    response = client.post(link)

    assert response.status_code == 400
    assert email_of(ada) == (ADA, False)


def test_a_link_dies_when_the_address_changed_meanwhile(strict, drive):
    client, ada = strict
    ask(client, FREE)
    ask(client, "ada.l@example.com")
    drive()
    first = change_link(FREE)
    client.post(change_link("ada.l@example.com"))

    assert client.post(first).status_code == 400
    assert email_of(ada) == ("ada.l@example.com", True)


def test_an_address_taken_after_the_link_was_sent_is_said_plainly(strict, drive, settings):
    client, ada = strict
    ask(client, FREE)
    drive()
    link = change_link(FREE)
    settings.SIGNUP_PREVENT_ENUMERATION = False
    sign_up(name="Someone Else", email=FREE)

    response = client.post(link)

    assert response.status_code == 409
    assert words.EMAIL_CHANGE_TAKEN_SINCE.format(new=FREE, old=ADA) in page_text(response)
    assert email_of(ada) == (ADA, False)


def test_a_verified_account_gets_the_same_refusal_for_any_address(strict, drive):
    client, ada = strict
    ask(client, FREE)
    drive()
    client.post(change_link(FREE), follow=True)  # now verified
    deliveries = EmailDelivery.objects.count()

    _, free_words = ask(client, "ada.other@example.com")
    _, taken_words = ask(client, BOB)

    assert free_words == taken_words == [str(words.EMAIL_ALREADY_VERIFIED)]
    assert EmailDelivery.objects.count() == deliveries


def test_without_strict_mode_a_taken_address_is_refused_and_a_free_one_changes_at_once(accounts, drive):
    client, ada = accounts

    taken = client.post("/setup/email/", {"email": BOB})
    assert taken.status_code == 400 and str(words.EMAIL_TAKEN) in page_text(taken)
    _, free_words = ask(client, FREE)

    assert free_words == [str(words.EMAIL_CHANGED_SENDING.text).format(address=FREE)]  # the link is owed, not sent
    assert email_of(ada) == (FREE, False)
    drive()
    assert sent_to(FREE, subject=CHANGE_SUBJECT) == [] and len(sent_to(FREE, subject="Confirm")) == 1
    assert not EmailDelivery.objects.filter(kind__in=[EmailKind.EMAIL_CHANGE, EmailKind.EMAIL_CHANGE_TAKEN]).exists()
