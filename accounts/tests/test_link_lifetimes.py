"""How long a link or a code works, as pages and emails say it: read from the setting
that enforces it (EMAIL_VERIFICATION_TIMEOUT, PASSWORD_RESET_TIMEOUT,
SIGNIN_CODE_TIMEOUT), so an operator who shortens one is not contradicted by our
words ("works for 3 days" on a link that dies in one)."""
from __future__ import annotations

import html

import pytest
from django.core import mail
from django.test import Client

from accounts.messages import lifetime_words


def page_of(response) -> str:
    return html.unescape(response.content.decode())


@pytest.mark.parametrize(("seconds", "words"), [
    (900, "15 minutes"), (3600, "1 hour"), (3 * 3600, "3 hours"), (86400, "1 day"), (3 * 86400, "3 days"),
    (5400, "90 minutes"), (100_000, "27 hours"), (30, "1 minute"),
])
def test_lifetimes_in_words_never_promise_longer_than_they_last(seconds, words):
    assert lifetime_words(seconds) == words


@pytest.mark.django_db
def test_the_verification_email_says_how_long_its_link_works_from_the_setting(settings, signup_data, drive):
    settings.EMAIL_VERIFICATION_TIMEOUT = 86400
    Client().post("/signup/", signup_data)
    drive()

    (message,) = mail.outbox
    assert "The link works for 1 day." in message.body
    assert "3 days" not in message.body and "3 days" not in message.alternatives[0][0]


@pytest.mark.django_db
def test_the_password_link_page_and_email_say_how_long_it_works_from_the_setting(settings, signup_data, drive):
    settings.PASSWORD_RESET_TIMEOUT = 3600
    Client().post("/signup/", signup_data)
    drive()
    mail.outbox.clear()
    client = Client()
    client.post("/password-reset/", {"email": "ada@example.com"})

    page = page_of(client.get("/password-reset/sent/"))
    drive()

    assert "works for 1 hour." in page and "3 hours" not in page
    (message,) = mail.outbox
    assert "The link works for 1 hour and only once." in message.body
    assert "3 hours" not in message.alternatives[0][0]


@pytest.mark.django_db
def test_the_code_page_says_how_long_a_code_works_from_the_setting(settings, signup_data):
    settings.SIGNIN_CODE_TIMEOUT = 600
    Client().post("/signup/", signup_data)

    form = page_of(Client().get("/login/code/"))
    wrong = page_of(Client().post("/login/code/", {"email": "ada@example.com", "code": "0000 0000"}))

    assert "It works once, for 10 minutes." in form and "15 minutes" not in form
    assert "A code works once, for 10 minutes" in wrong and "15 minutes" not in wrong


@pytest.mark.django_db
def test_the_address_change_email_says_how_long_its_link_works_from_the_setting(settings, signup_data, drive):
    settings.SIGNUP_PREVENT_ENUMERATION = True  # strict mode: a change is confirmed through a link
    settings.EMAIL_VERIFICATION_TIMEOUT = 2 * 86400
    client = Client()
    client.post("/signup/", signup_data)
    client.post("/login/", {"email": signup_data["email"], "password": signup_data["password"]})
    drive()
    mail.outbox.clear()

    client.post("/setup/email/", {"email": "ada.lovelace@example.com"})
    drive()

    (message,) = [m for m in mail.outbox if m.to == ["ada.lovelace@example.com"]]
    assert "The link works for 2 days." in message.body and "3 days" not in message.body


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["error", "unauthorized"])  # the provider's outage; a problem of ours
def test_the_late_password_link_page_says_how_long_it_will_work_from_the_setting(
        settings, signup_data, drive, sandbox, mode):
    settings.PASSWORD_RESET_TIMEOUT = 7200
    settings.BREAKER_FAILURE_THRESHOLD = 1  # the first failed send opens the email circuit
    settings.BREAKER_PROBE_SECONDS = 3600
    Client().post("/signup/", signup_data)
    drive()
    sandbox("email", mode)
    client = Client()
    client.post("/password-reset/", {"email": "ada@example.com"})
    drive()

    page = page_of(client.get("/password-reset/sent/"))

    assert "works for 2 hours from then" in page and "3 hours" not in page
