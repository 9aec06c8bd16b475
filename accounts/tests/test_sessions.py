"""Sessions (``accounts.sessions``): a new login's session is written once, and it is
still a row in the database, so logging out ends it everywhere and a key planted in
the browser before login is never the one logged in."""
from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore as DjangosStore
from django.contrib.sessions.models import Session
from django.test import Client

from accounts.sessions import SessionStore
from accounts.tests.factories import sign_up
from accounts.tests.test_login import is_logged_in

pytestmark = pytest.mark.django_db

COOKIE = django_settings.SESSION_COOKIE_NAME


def test_a_cookie_copied_before_logout_opens_nothing_after_it():
    client, _ = sign_up(email="ada@example.com")
    key = client.cookies[COOKIE].value
    thief = Client()
    thief.cookies[COOKIE] = key
    assert is_logged_in(thief)

    client.post("/logout/")

    assert not Session.objects.filter(session_key=key).exists()
    assert not is_logged_in(thief)


def test_a_key_planted_before_signup_is_not_the_one_logged_in():
    planted = "plantedbyanattacker0123456789abc"
    client = Client()
    client.cookies[COOKIE] = planted

    sign_up(client, email="ada@example.com")

    assert client.cookies[COOKIE].value != planted
    assert not Session.objects.filter(session_key=planted).exists()
    assert is_logged_in(client)


def test_an_anonymous_session_gets_a_new_key_at_signup_and_the_old_one_is_gone():
    client = Client()
    before = client.session  # stored, with something in it
    before["seen"] = "the signup page"
    before.save()

    sign_up(client, email="ada@example.com")

    assert client.cookies[COOKIE].value != before.session_key
    assert not Session.objects.filter(session_key=before.session_key).exists()
    assert is_logged_in(client)
    assert client.session["seen"] == "the signup page"  # the data moves with the login


def test_a_new_session_never_takes_a_key_in_use():
    taken = SessionStore()
    taken["owner"] = "someone else"
    taken.create()

    class DrawsTheTakenKeyFirst(SessionStore):
        draws = [taken.session_key]

        def _get_new_session_key(self):
            return self.draws.pop() if self.draws else super()._get_new_session_key()

    fresh = DrawsTheTakenKeyFirst()
    fresh["owner"] = "me"
    fresh.create()

    assert fresh.session_key != taken.session_key
    assert SessionStore(taken.session_key).load() == {"owner": "someone else"}
    assert DrawsTheTakenKeyFirst(fresh.session_key).load() == {"owner": "me"}  # (signed per class)


def test_sessions_stored_by_djangos_own_store_still_log_people_in():
    before = DjangosStore()  # what was stored before accounts.sessions
    before["seen"] = "yes"
    before.create()

    assert SessionStore(before.session_key).load() == {"seen": "yes"}
