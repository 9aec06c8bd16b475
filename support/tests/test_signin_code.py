"""The one-time sign-in code support reads out over the phone, redeemed at
/login/code/: single use, short-lived, dies after a few wrong tries, rate limited,
and says the same thing for an unknown address as for a wrong code."""
from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client

from accounts.models import SignInCode, User
from accounts.services import CodeRefused, signin_code_issue


def issue(account: User) -> str:
    _, code = signin_code_issue(account=account, actor="support (test)", idempotency_key=uuid.uuid4().hex)
    return code


def redeem(client: Client, email: str, code: str):
    return client.post("/login/code/", {"email": email, "code": code})


def signed_in_as(client: Client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value else None


def page(response) -> str:
    return html.unescape(response.content.decode())


def without_csrf(text: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)


@pytest.fixture
def account(register) -> User:
    return register()


def test_the_page_has_the_contract_fields(db, client):
    form = client.get("/login/code/").content.decode()
    assert 'name="email"' in form and 'name="code"' in form


def test_a_code_signs_in_once_rotating_the_session(account):
    code = issue(account)
    person = Client()
    person.get("/login/code/")
    before = person.session.session_key

    first = redeem(person, account.email.upper(), f"{code[:4]} {code[4:]}")  # as people type it
    assert first.status_code == 302 and signed_in_as(person) == account.pk
    assert person.session.session_key != before

    again = Client()
    refused = redeem(again, account.email, code)
    assert refused.status_code == 400 and signed_in_as(again) is None
    assert "doesn't work with this email address" in page(refused)
    assert account.events.filter(subject="sign-in code", to_state="used").count() == 1


def test_an_expired_code_does_not_work(account, settings):
    settings.SIGNIN_CODE_TIMEOUT = 0  # expires the moment it is issued
    code = issue(account)
    person = Client()
    assert redeem(person, account.email, code).status_code == 400
    assert signed_in_as(person) is None


def test_a_code_dies_after_five_wrong_tries(account, settings):
    assert settings.SIGNIN_CODE_MAX_TRIES == 5
    # The code's own limit, not the page's rate limit, is what this test is about.
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_code": {"per_ip": (100, 900)}}
    code = issue(account)
    wrong = str((int(code) + 1) % 10**8).zfill(8)
    person = Client()
    for _ in range(5):
        assert redeem(person, account.email, wrong).status_code == 400
    assert redeem(person, account.email, code).status_code == 400
    assert signed_in_as(person) is None
    assert SignInCode.objects.get().revoked_at is not None


def test_a_new_code_replaces_the_old_one(account):
    old, new = issue(account), issue(account)
    person = Client()
    assert redeem(person, account.email, old).status_code == 400
    assert redeem(person, account.email, new).status_code == 302


def test_an_unknown_address_and_a_wrong_code_get_the_same_answer(account):
    issue(account)
    wrong = redeem(Client(), account.email, "00000000")
    unknown = redeem(Client(), "nobody@elsewhere.example", "00000000")
    assert wrong.status_code == unknown.status_code == 400
    assert without_csrf(page(wrong)).replace(account.email, "X") == without_csrf(page(unknown)).replace(
        "nobody@elsewhere.example", "X")


def test_no_code_for_staff_or_closed_accounts(account, support_user):
    with pytest.raises(CodeRefused):
        issue(support_user)
    User.objects.filter(pk=account.pk).update(is_active=False)
    account.refresh_from_db()
    with pytest.raises(CodeRefused):
        issue(account)
    assert not SignInCode.objects.exists()


def test_guessing_is_rate_limited(account, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_code": {
        "per_ip": (100, 900), "failures_per_email_and_ip": (3, 900), "failures_per_email": (100, 900)}}
    code = issue(account)
    person = Client()
    for guess in ("11111111", "22222222", "33333333"):
        assert redeem(person, account.email, guess).status_code == 400
    limited = redeem(person, account.email, code)  # even the right code waits now, unchecked
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert "Paused: please try again" in page(limited) and "signing in with a code" in page(limited)
    assert "Your code wasn't checked this time, so this try didn't count against it." in page(limited)
    assert signed_in_as(person) is None
    assert SignInCode.objects.get().used_at is None


# The limits count in fixed windows: start at the top of one, so the run never crosses it.
@time_machine.travel(datetime(2026, 3, 2, 9, 0, 1, tzinfo=UTC), tick=True)
def test_the_pause_never_promises_a_code_that_wrong_tries_killed_still_works(account, settings):
    """With the real limits a person is paused after more wrong tries from their
    client than a code survives: the code is dead by then, and the page must not
    say it was kept for them."""
    from config import settings as production
    settings.RATE_LIMITS = production.RATE_LIMITS
    assert production.RATE_LIMITS["login_code"]["failures_per_email_and_ip"][0] > settings.SIGNIN_CODE_MAX_TRIES
    code = issue(account)
    wrong = str((int(code) + 1) % 10**8).zfill(8)
    person = Client()
    statuses = [redeem(person, account.email, wrong).status_code
                for _ in range(production.RATE_LIMITS["login_code"]["failures_per_email_and_ip"][0])]
    assert set(statuses) == {400}

    limited = redeem(person, account.email, code)

    assert limited.status_code == 429
    assert SignInCode.objects.get().revoked_at is not None  # the code died on its fifth wrong try
    assert "wasn't used up" not in page(limited)
    assert "if yours was typed wrong several times, ask us for a fresh one" in page(limited)


def test_guessing_from_one_client_across_addresses_is_rate_limited(account, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_code": {"per_ip": (2, 900), "per_email": (100, 900)}}
    person = Client()
    statuses = [redeem(person, f"p{n}@example.com", "12345678").status_code for n in range(3)]
    assert statuses == [400, 400, 429]
