"""No answer tells a registered address from an unknown one (DESIGN principle 5):
login and password reset answer identically, and both paths spend Argon2 work.

Timing is checked by what it is made of, not with a clock: a hasher of our own
(configured in PASSWORD_HASHERS, like any hasher) counts how often Argon2 runs."""
from __future__ import annotations

import re

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import Client

from accounts.models import User


class CountingArgon2Hasher(Argon2PasswordHasher):
    """The real Argon2 hasher, counting every hash it computes or checks."""

    runs = 0

    def encode(self, password, salt):
        CountingArgon2Hasher.runs += 1
        return super().encode(password, salt)

    def verify(self, password, encoded):
        CountingArgon2Hasher.runs += 1
        return super().verify(password, encoded)


def same_page(response, address: str) -> str:
    """The body with what legitimately differs taken out: the CSRF token and the
    address the person typed, echoed back to them."""
    body = response.content.decode()
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', 'name="csrfmiddlewaretoken"', body)
    return body.replace(address, "ADDRESS")


@pytest.fixture
def ada(signup_data):
    Client().post("/signup/", signup_data)
    return User.objects.get(email="ada@example.com")


@pytest.mark.django_db
def test_login_answers_the_same_for_a_registered_and_an_unknown_address(ada):
    registered = Client().post("/login/", {"email": "ada@example.com", "password": "not her password 1"})
    unknown = Client().post("/login/", {"email": "nobody@example.com", "password": "not her password 1"})

    assert registered.status_code == unknown.status_code == 400
    assert same_page(registered, "ada@example.com") == same_page(unknown, "nobody@example.com")


@pytest.mark.django_db
def test_password_reset_answers_the_same_for_a_registered_and_an_unknown_address(ada):
    answers = {}
    for address in ("ada@example.com", "nobody@example.com"):
        client = Client()
        first = client.post("/password-reset/", {"email": address})
        page = client.get(first["Location"])
        answers[address] = (first.status_code, first["Location"], first.content,
                            page.status_code, same_page(page, address))

    assert answers["ada@example.com"] == answers["nobody@example.com"]
    assert answers["ada@example.com"][0] == 302


@pytest.mark.django_db
def test_strict_signup_answers_the_same_for_new_taken_and_returning_addresses(settings, ada, signup_data):
    settings.SIGNUP_PREVENT_ENUMERATION = True
    new = Client().post("/signup/", {**signup_data, "email": "grace@example.com"})
    taken = Client().post("/signup/", {**signup_data, "password": "somebody else's passphrase"})
    returning = Client().post("/signup/", signup_data)

    assert new.status_code == taken.status_code == returning.status_code == 200
    assert (same_page(new, "grace@example.com") == same_page(taken, "ada@example.com")
            == same_page(returning, "ada@example.com"))


@pytest.fixture
def argon2(settings):
    settings.PASSWORD_HASHERS = ["accounts.tests.test_enumeration.CountingArgon2Hasher"]

    def runs_during(action) -> int:
        before = CountingArgon2Hasher.runs
        action()
        return CountingArgon2Hasher.runs - before
    return runs_during


@pytest.mark.django_db
def test_login_runs_argon2_for_registered_and_unknown_addresses_alike(argon2, signup_data):
    Client().post("/signup/", signup_data)  # hashed with Argon2, like in production

    registered = argon2(lambda: Client().post("/login/", {"email": "ada@example.com", "password": "wrong one 123"}))
    unknown = argon2(lambda: Client().post("/login/", {"email": "nobody@example.com", "password": "wrong one 123"}))

    assert registered == unknown >= 1


@pytest.mark.django_db
def test_password_reset_runs_argon2_for_registered_and_unknown_addresses_alike(argon2, signup_data):
    Client().post("/signup/", signup_data)

    registered = argon2(lambda: Client().post("/password-reset/", {"email": "ada@example.com"}))
    unknown = argon2(lambda: Client().post("/password-reset/", {"email": "nobody@example.com"}))

    assert registered == unknown >= 1
