"""Signup (`/signup/`, ``accounts.flows.signup``): one transaction writes the account
and the work still owed; bad input writes nothing; signing up again resumes, never
blocks (DESIGN principle 5); strict mode answers every signup identically."""
from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts import messages as words
from accounts.models import EmailDelivery, EmailKind, User
from accounts.tests.factories import at_once, page_text, sent_to, sign_up
from provisioning.durable import StepStatus
from provisioning.models import Event, ProvisioningRequest, Workspace

pytestmark = pytest.mark.django_db

CSRF_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


def logged_in_as(client: Client) -> int | None:
    """Who the client's session belongs to, as the site sees it."""
    response = client.get("/setup/status.json")
    if response.status_code != 200:
        return None
    return User.objects.get(email=response.json()["email"]["address"]).pk


def nothing_written() -> None:
    assert not User.objects.exists()
    assert not ProvisioningRequest.objects.exists()
    assert not EmailDelivery.objects.exists()
    assert not Event.objects.exists()


# --- A new account -----------------------------------------------------------------


def test_signup_creates_one_account_its_owed_work_and_logs_in(client, signup_data):
    response = client.post("/signup/", signup_data)

    assert response.status_code == 302
    assert response["Location"] == "/setup/"
    [account] = User.objects.all()
    assert account.email == "ada@example.com"  # the whole address lowercased
    assert account.name == "Ada Lovelace" and account.company == "Analytical Engines"
    assert str(account.phone) == "+14155550100"  # E.164
    assert account.check_password(signup_data["password"])
    [request] = ProvisioningRequest.objects.all()
    assert request.account == account and request.status == StepStatus.PENDING
    [delivery] = EmailDelivery.objects.all()
    assert (delivery.account, delivery.kind, delivery.to_address) == (
        account, EmailKind.VERIFICATION, "ada@example.com")
    assert logged_in_as(client) == account.pk


def test_signup_answers_at_once_while_both_providers_are_down(client, signup_data, sandbox, drive):
    sandbox("provisioning", "timeout")
    sandbox("email", "timeout")

    response = client.post("/signup/", signup_data)
    drive(max_passes=2)

    assert response.status_code == 302 and response["Location"] == "/setup/"
    assert User.objects.count() == 1
    assert ProvisioningRequest.objects.get().status == StepStatus.PENDING  # retrying, not lost
    assert client.get("/setup/").status_code == 200


def test_owed_work_is_done_by_the_workers(client, signup_data, drive):
    client.post("/signup/", signup_data)

    drive()

    account = User.objects.get()
    assert Workspace.objects.filter(owner=account).count() == 1
    assert len(sent_to("ada@example.com", subject="Confirm")) == 1


# --- Bad input -----------------------------------------------------------------------

BAD_INPUT = [
    ("email", "ada-at-example.com", "That doesn't look like an email address"),
    ("email", "ada@", "That doesn't look like an email address"),
    ("email", "", "Please enter your work email address."),
    ("phone", "call me maybe", "We couldn't read that phone number"),
    ("phone", "+1 555", "We couldn't read that phone number"),
    ("password", "password123", "This password is too common."),
    ("password", "short", "This password is too short."),
    ("password", "58203719465832", "This password is entirely numeric."),
    ("password", "ada@example.com", "The password is too similar to the email"),
    ("name", "N" * 151, "Please keep this under 150 characters."),
    ("company", "C" * 151, "Please keep this under 150 characters."),
    ("name", "", "Please tell us your name."),
    ("name", "Ada\x00Lovelace", "Please remove the invisible control characters"),
    ("company", "Analytical\x00Engines", "Please remove the invisible control characters"),
    ("email", "ada\x00@example.com", "Please remove the invisible control characters"),
    ("name", "Ada\x07Lovelace", "Please remove the invisible control characters"),
    ("company", "Analytical\nEngines", "Please remove the invisible control characters"),
    ("name", "Ada\x1b[31mLovelace", "Please remove the invisible control characters"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_INPUT,
                         ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(BAD_INPUT)])
def test_bad_input_gets_a_message_on_its_field_and_writes_nothing(client, signup_data, field, value, message):
    response = client.post("/signup/", {**signup_data, field: value})

    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {field}, form.errors  # the message sits on the field at fault
    assert any(message in error for error in form.errors[field]), form.errors
    text = page_text(response)
    assert message in text
    assert f'id="id_{field}_error"' in text  # tied to its input for screen readers
    assert "Nothing has been saved yet." in text
    nothing_written()
    assert logged_in_as(client) is None
    assert mail.outbox == []


def test_every_empty_field_is_named_and_nothing_is_written(client):
    response = client.post("/signup/", {})

    assert response.status_code == 400
    assert set(response.context["form"].errors) == {"name", "email", "phone", "company", "password"}
    nothing_written()


def test_the_signup_page_shows_the_contract_fields(client):
    response = client.get("/signup/")

    assert response.status_code == 200
    for name in ("name", "email", "phone", "company", "password"):
        assert f'name="{name}"' in response.content.decode()


# --- Signing up again ------------------------------------------------------------------


def test_signing_up_again_with_the_right_password_welcomes_back_and_rearms_failed_steps(
        signup_data, sandbox, drive):
    sandbox("provisioning", "reject")
    first, _ = sign_up(**signup_data)
    drive()
    request = ProvisioningRequest.objects.get()
    assert request.status == StepStatus.FAILED  # refused for good: automation is exhausted

    again = Client()
    response = again.post("/signup/", {**signup_data, "email": "ADA@example.COM"}, follow=True)

    assert response.redirect_chain == [("/setup/", 302)]
    assert str(words.WELCOME_BACK) in page_text(response)
    account = User.objects.get()
    assert logged_in_as(again) == account.pk
    request.refresh_from_db()
    assert request.status == StepStatus.PENDING and request.counted_attempts == 0
    assert User.objects.count() == 1 and ProvisioningRequest.objects.count() == 1

    sandbox("provisioning", "ok")
    drive()

    request.refresh_from_db()
    assert request.status == StepStatus.SUCCEEDED
    assert Workspace.objects.filter(owner=account).count() == 1
    assert again.get("/setup/status.json").json()["state"] == "unverified"


def test_signing_up_again_while_the_email_is_failing_sends_it_now(signup_data, sandbox, drive):
    sandbox("email", "error")
    sign_up(**signup_data)
    drive(max_passes=2)
    [delivery] = EmailDelivery.objects.all()
    assert delivery.status == StepStatus.PENDING and delivery.attempts == 2
    sandbox("email", "ok")

    Client().post("/signup/", signup_data)
    drive()

    assert EmailDelivery.objects.count() == 1  # brought forward, not duplicated
    assert len(sent_to("ada@example.com", subject="Confirm")) == 1


def test_signing_up_again_with_another_password_offers_a_way_forward_and_tells_the_owner(
        signup_data, drive):
    owner, account = sign_up(**signup_data)
    drive()
    mail.outbox.clear()

    stranger = Client()
    response = stranger.post("/signup/", {**signup_data, "password": "a different long passphrase"})

    assert response.status_code == 200
    text = page_text(response)
    assert "already has an account" in text
    assert str(words.SIGNUP_TAKEN.next) in text
    assert 'href="/login/"' in text and 'href="/password-reset/"' in text  # never a dead end
    assert logged_in_as(stranger) is None
    assert User.objects.count() == 1
    account.refresh_from_db()
    assert account.check_password(signup_data["password"])  # nothing about the account changed

    drive()
    [notice] = sent_to("ada@example.com")
    # Probably the owner themselves: the words don't accuse a stranger, and the links
    # carry the address so the login and reset forms come prefilled.
    assert notice.subject == "Someone — perhaps you — tried to sign up with your email address"
    html_part = notice.alternatives[0][0]
    for part in (notice.body, html_part):
        assert "Someone — perhaps you — just tried" in part
        assert "/login/?email=ada%40example.com" in part and "/password-reset/?email=ada%40example.com" in part
    login = Client().get("/login/?email=ada%40example.com").content.decode()
    reset = Client().get("/password-reset/?email=ada%40example.com").content.decode()
    assert 'name="email" value="ada@example.com"' in login and 'name="email" value="ada@example.com"' in reset


def test_the_owner_hears_once_about_repeated_attempts_in_an_hour(signup_data, drive):
    sign_up(**signup_data)
    drive()
    mail.outbox.clear()

    for password in ("a different long passphrase", "yet another long passphrase", "and a third one here"):
        assert Client().post("/signup/", {**signup_data, "password": password}).status_code == 200
        drive()

    assert EmailDelivery.objects.filter(kind=EmailKind.SIGNUP_ATTEMPT).count() == 1
    assert len(sent_to("ada@example.com", subject="Someone — perhaps you — tried")) == 1


def test_a_logged_in_person_on_the_signup_page_goes_to_where_they_belong(signup_data):
    client, _ = sign_up(**signup_data)

    response = client.post("/signup/", {**signup_data, "email": "other@example.com"})

    assert response.status_code == 302 and response["Location"] == "/setup/"
    assert User.objects.count() == 1


# --- Strict mode -------------------------------------------------------------------------


def test_strict_mode_answers_every_signup_identically(settings, signup_data):
    settings.SIGNUP_PREVENT_ENUMERATION = True

    new = Client().post("/signup/", signup_data)
    right_password = Client().post("/signup/", signup_data)
    wrong_password = Client().post("/signup/", {**signup_data, "password": "a different long passphrase"})

    assert new.status_code == right_password.status_code == wrong_password.status_code == 200
    assert new.content == right_password.content == wrong_password.content
    assert "ada@example.com" in page_text(new) and str(words.SIGNUP_STRICT.next) in page_text(new)
    assert not {"Set-Cookie"} & {*new.headers, *right_password.headers, *wrong_password.headers}
    assert User.objects.count() == 1


def test_strict_mode_answers_a_second_new_address_the_same_way(settings, signup_data):
    settings.SIGNUP_PREVENT_ENUMERATION = True
    first = Client().post("/signup/", signup_data)
    second = Client().post("/signup/", {**signup_data, "email": "grace@example.com"})

    assert first.status_code == second.status_code
    assert first.content.replace(b"ada@example.com", b"grace@example.com") == second.content
    assert User.objects.count() == 2


def test_strict_mode_still_tells_the_owner_and_still_resumes(settings, signup_data, sandbox, drive):
    settings.SIGNUP_PREVENT_ENUMERATION = True
    sandbox("provisioning", "reject")
    Client().post("/signup/", signup_data)
    drive()
    assert ProvisioningRequest.objects.get().status == StepStatus.FAILED
    mail.outbox.clear()

    Client().post("/signup/", {**signup_data, "password": "a different long passphrase"})
    Client().post("/signup/", signup_data)
    sandbox("provisioning", "ok")
    drive()

    assert ProvisioningRequest.objects.get().status == StepStatus.SUCCEEDED
    assert len(sent_to("ada@example.com", subject="Someone — perhaps you — tried")) == 1


def test_strict_mode_never_says_sent_when_nothing_went_and_still_answers_everyone_alike(
        settings, signup_data, sandbox, drive):
    """One answer for every signup, and true in each: during an email outage nothing
    reaches the new address, and a second try at a taken one within the hour sends no
    second notice (the owner's notice is at most hourly)."""
    settings.SIGNUP_PREVENT_ENUMERATION = True
    sandbox("email", "error")
    new = Client().post("/signup/", signup_data)
    drive()
    assert not EmailDelivery.objects.filter(status=StepStatus.SUCCEEDED).exists() and not mail.outbox

    sandbox("email", "ok")
    taken = Client().post("/signup/", {**signup_data, "password": "a different long passphrase"})
    drive()
    assert len(sent_to("ada@example.com", subject="Someone — perhaps you — tried")) == 1
    taken_again = Client().post("/signup/", {**signup_data, "password": "yet another long passphrase"})
    drive()
    returning = Client().post("/signup/", signup_data)
    assert EmailDelivery.objects.filter(kind=EmailKind.SIGNUP_ATTEMPT).count() == 1  # none for the second try

    pages = [CSRF_TOKEN.sub(b"csrf", answer.content) for answer in (new, taken, taken_again, returning)]
    assert all(page == pages[0] for page in pages)
    said = page_text(new)
    assert str(words.SIGNUP_STRICT.happened).format(address="ada@example.com") in said
    assert not re.search(r"\bsent\b", said, re.IGNORECASE), said


def test_an_address_differing_only_in_non_ascii_case_is_the_same_account(signup_data):
    # SQLite's LOWER() folds ASCII only: the address is lowercased by Python.
    sign_up(**{**signup_data, "email": "Ada@BÜCHER.example"})

    again = Client()
    response = again.post("/signup/", {**signup_data, "email": "ada@bücher.example"})

    assert response.status_code == 302
    assert User.objects.get().email == "ada@bücher.example"
    assert logged_in_as(again) == User.objects.get().pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_signups_with_one_address_make_one_account(signup_data, drive):
    def submit():
        response = Client().post("/signup/", signup_data)
        return response.status_code, response.get("Location")

    results = at_once(*[submit] * 10)
    drive()

    assert results == [(302, "/setup/")] * 10  # one created, nine welcomed back; no error
    account = User.objects.get()
    assert ProvisioningRequest.objects.count() == 1
    assert Workspace.objects.filter(owner=account).count() == 1
    assert EmailDelivery.objects.filter(kind=EmailKind.VERIFICATION).count() == 1
    assert len(sent_to("ada@example.com", subject="Confirm")) == 1


def test_signing_up_with_a_taken_address_never_claims_the_owner_was_told_before_any_email_went(
        signup_data, drive, sandbox, settings):
    """The owner's notice is queued when the page answers, and during an email outage
    it stays queued: the page says what we do, not that the owner already knows."""
    sign_up(**signup_data)
    drive()
    settings.BREAKER_FAILURE_THRESHOLD = 1
    sandbox("email", "error")

    response = Client().post("/signup/", {**signup_data, "password": "a different long passphrase"})
    drive()

    notice = EmailDelivery.objects.get(kind=EmailKind.SIGNUP_ATTEMPT)
    assert notice.status != StepStatus.SUCCEEDED  # nobody has been told anything yet
    text = page_text(response)
    assert "We've let the address's owner know" not in text
    assert "We email the address's owner about attempts like this one" in text
