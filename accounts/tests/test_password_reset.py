"""Password reset (/password-reset/): asked for by address, sent through the durable
outbox with a link minted at send time, single use, and it confirms the address it
reached."""
from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django.utils.html import escape

from accounts import messages as words
from accounts.models import EmailDelivery, EmailKind, User
from accounts.services import account_mark_verified
from conftest import PASSWORD
from provisioning.durable import StepStatus
from provisioning.models import Event
from support.models import Incident

NEW_PASSWORD = "a brand new passphrase 2024"


def reset_links() -> list[str]:
    return [link for message in mail.outbox
            for link in re.findall(r"https?://\S+/password-reset/\S+/\S+/", message.body)]


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


@pytest.fixture
def ada(signup_data, drive):
    """Ada signed up (unverified), her verification email sent, and logged out."""
    Client().post("/signup/", signup_data)
    drive()
    mail.outbox.clear()
    return User.objects.get(email="ada@example.com")


def ask_for_link(address: str = "ada@example.com") -> Client:
    client = Client()
    response = client.post("/password-reset/", {"email": address})
    assert response.status_code == 302
    assert response["Location"] == "/password-reset/sent/"
    return client


@pytest.mark.django_db
def test_the_whole_journey_sets_the_password_logs_in_and_confirms_the_address(ada, drive):
    client = ask_for_link("Ada@Example.com")
    sent = client.get("/password-reset/sent/")
    assert "If an account uses ada@example.com, we&#x27;ve sent it a link" in sent.content.decode()

    drive()
    (message,) = mail.outbox
    assert message.to == ["ada@example.com"]
    assert message.subject == str(words.EMAIL_SUBJECTS["password_reset"])
    (link,) = reset_links()

    landing = client.get(path_of(link))
    # The token leaves the address bar before any page is shown (no Referer leak).
    assert landing.status_code == 302
    assert landing["Location"].endswith("/set-password/")
    token = path_of(link).rstrip("/").rsplit("/", 1)[-1]
    assert token not in landing["Location"]

    form = client.get(landing["Location"])
    assert form.status_code == 200
    assert "Choose a new password" in form.content.decode()
    done = client.post(landing["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
                       follow=True)

    assert done.status_code == 200
    assert escape(str(words.PASSWORD_RESET_DONE_VERIFIED)) in done.content.decode()
    assert int(client.session[SESSION_KEY]) == ada.pk
    ada.refresh_from_db()
    assert ada.check_password(NEW_PASSWORD) and not ada.check_password(PASSWORD)
    assert ada.email_verified
    assert Event.objects.filter(account=ada, subject="email", to_state="verified",
                                why="password reset link").exists()
    assert Client().post("/login/", {"email": "ada@example.com", "password": PASSWORD}).status_code == 400


@pytest.mark.django_db
def test_a_reset_link_works_once(ada, drive):
    client = ask_for_link()
    drive()
    (link,) = reset_links()
    landing = client.get(path_of(link))
    client.post(landing["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    again = Client().get(path_of(link))

    assert again.status_code == 200
    assert escape(str(words.PASSWORD_RESET_LINK_BAD.title)) in again.content.decode()
    assert "new_password1" not in again.content.decode()


@pytest.mark.django_db
def test_the_reset_token_is_never_stored(ada, drive):
    ask_for_link()
    drive()
    (link,) = reset_links()
    token = path_of(link).rstrip("/").rsplit("/", 1)[-1]

    stored = repr(list(EmailDelivery.objects.values())) + repr(list(Event.objects.values()))
    assert token not in stored


@pytest.mark.django_db
def test_an_unknown_address_gets_the_same_answer_and_no_email(ada, drive):
    client = ask_for_link("nobody@example.com")
    page = client.get("/password-reset/sent/").content.decode()
    drive()

    assert "If an account uses nobody@example.com" in page
    assert mail.outbox == []
    assert not EmailDelivery.objects.filter(kind=EmailKind.PASSWORD_RESET).exists()


@pytest.mark.django_db
def test_a_link_sent_before_the_address_was_corrected_no_longer_works(ada, drive, signup_data):
    ask_for_link()
    drive()
    (link,) = reset_links()
    owner = Client()
    owner.post("/login/", {"email": "ada@example.com", "password": PASSWORD})
    assert owner.post("/setup/email/", {"email": "ada.lovelace@example.com"}).status_code == 302

    page = Client().get(path_of(link))

    assert escape(str(words.PASSWORD_RESET_LINK_BAD.title)) in page.content.decode()
    ada.refresh_from_db()
    assert ada.check_password(PASSWORD)
    assert not ada.email_verified


@pytest.mark.django_db
def test_a_reset_owed_to_an_address_since_corrected_is_never_sent_there(ada, drive):
    ask_for_link()  # owed, not yet sent (tasks run when the reconciler passes)
    owner = Client()
    owner.post("/login/", {"email": "ada@example.com", "password": PASSWORD})
    owner.post("/setup/email/", {"email": "ada.lovelace@example.com"})

    drive()

    assert reset_links() == []
    delivery = EmailDelivery.objects.get(kind=EmailKind.PASSWORD_RESET)
    assert delivery.status == StepStatus.FAILED and delivery.last_error_code == "cancelled"


@pytest.mark.django_db
def test_mismatched_or_weak_passwords_are_refused_in_our_words_and_change_nothing(ada, drive):
    client = ask_for_link()
    drive()
    (link,) = reset_links()
    set_password_url = client.get(path_of(link))["Location"]

    mismatch = client.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD + "!"})
    weak = client.post(set_password_url, {"new_password1": "12345", "new_password2": "12345"})

    assert "The two passwords don&#x27;t match" in mismatch.content.decode()
    assert "This password is too short" in weak.content.decode()
    ada.refresh_from_db()
    assert ada.check_password(PASSWORD)
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
def test_a_verified_account_is_told_only_about_the_password(ada, drive):
    account_mark_verified(account=ada, actor="the person", why="verification link")
    client = ask_for_link()
    drive()
    (link,) = reset_links()
    set_password_url = client.get(path_of(link))["Location"]

    done = client.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
                       follow=True)

    assert escape(str(words.PASSWORD_RESET_DONE)) in done.content.decode()


@pytest.mark.django_db
def test_while_email_is_down_the_sent_page_promises_no_minute_and_owns_the_delay(ada, sandbox, drive, settings):
    settings.BREAKER_FAILURE_THRESHOLD = 1  # the first failed send opens the email circuit
    sandbox("email", "error")
    client = ask_for_link()
    drive()  # the worker tries the reset email; the provider fails and the breaker opens

    page = html.unescape(client.get("/password-reset/sent/").content.decode())

    assert "within a minute" not in page and "we've sent" not in page
    assert str(words.PASSWORD_RESET_SENT_DELAYED.title) in page
    assert "Sending email is delayed on our side right now" in page
    assert 'action="/help/call/"' in page  # a way back that is not email
    assert not mail.outbox


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["unauthorized", "refuse_message"])  # our credentials; many refused alike
def test_while_email_is_stopped_by_a_problem_of_ours_the_sent_page_does_not_blame_the_provider(
        ada, sandbox, drive, settings, mode):
    settings.BREAKER_FAILURE_THRESHOLD = 1  # one refusal is "many alike" here
    settings.BREAKER_PROBE_SECONDS = 3600
    sandbox("email", mode)
    client = ask_for_link()
    drive()  # the worker tries the reset email; the provider refuses us, and the circuit opens on it

    page = html.unescape(client.get("/password-reset/sent/").content.decode())

    assert str(words.PASSWORD_RESET_SENT_DELAYED_OURS.title) in page
    assert str(words.PASSWORD_RESET_SENT_DELAYED_OURS.next).format(lifetime="3 hours") in page
    assert "the service we use to send it is having a problem" not in page and "recovers" not in page
    # Nothing says anyone is fixing it; the open incident is what our support team sees.
    assert Incident.objects.filter(provider="email", status="open").exists()
    assert "fixing" not in page and str(words.PASSWORD_RESET_TEAM_SEES_IT) in page
    assert 'action="/help/call/"' in page  # a way back that is not email
    assert not mail.outbox


@pytest.mark.django_db
def test_a_used_link_opened_while_logged_in_offers_no_log_in(ada, drive):
    client = ask_for_link()
    drive()
    (link,) = reset_links()
    landing = client.get(path_of(link))
    client.post(landing["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert SESSION_KEY in client.session  # saving the new password logged them in

    again = client.get(path_of(link))

    page = html.unescape(again.content.decode())
    assert str(words.PASSWORD_RESET_LINK_BAD.title) in page
    assert "log in with that one" not in page and 'href="/login/"' not in page
    assert "You're logged in. If you want to change your password again, ask for a fresh link" in page
    # Logged out, the same link still offers logging in with the new password.
    anonymous = html.unescape(Client().get(path_of(link)).content.decode())
    assert "log in with that one" in anonymous and 'href="/login/"' in anonymous
