"""Sentences on the person's pages that must match what the database holds: why a
workspace step stopped (refused, or out of retries), whether /setup/ still says it
updates by itself, and what a used password link can and cannot know."""
from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts import messages as words
from accounts.models import User
from accounts.tests.factories import page_text, sign_up, verification_link
from provisioning.models import ProvisioningRequest

pytestmark = pytest.mark.django_db

ADDRESS = "ada@example.com"
NEW_PASSWORD = "a brand new passphrase 2024"
REFRESH_HINT = "it also updates by itself"


def _setup_text(client: Client) -> str:
    response = client.get("/setup/")
    assert response.status_code == 200
    return page_text(response)


def test_a_refused_workspace_says_the_provider_refused_it_not_that_retries_ran_out(sandbox, drive):
    client, account = sign_up(email=ADDRESS)
    sandbox("provisioning", "reject")  # HTTP 422: permanent, no retry can help

    drive()

    request = ProvisioningRequest.objects.get(account=account)
    # One immediate refusal: one call, none counted towards the limit.
    assert (request.status, request.attempts, request.counted_attempts, request.last_error_code) == (
        "failed", 1, 0, "http_422")
    page = _setup_text(client)
    message = client.get("/setup/status.json").json()["message"]
    for text in (page, message):
        assert "retries" not in text.lower()
        assert str(words.WORKSPACE_REFUSED.text) in text
    # The lifecycle state is DESIGN's, unchanged: a person has it.
    assert 'data-state="needs_support"' in page and str(words.TITLES["needs_support"]) in page


def test_a_workspace_that_ran_out_of_retries_says_so(sandbox, drive, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 2
    client, account = sign_up(email=ADDRESS)
    sandbox("provisioning", "error")  # HTTP 503: transient, retried until the attempts are used up

    drive()

    request = ProvisioningRequest.objects.get(account=account)
    assert (request.status, request.counted_attempts, request.last_error_code) == ("failed", 2, "http_503")
    page = _setup_text(client)
    assert str(words.RETRIES_RAN_OUT.text) in page
    assert str(words.WORKSPACE_REFUSED.text) not in page


def test_the_refresh_hint_shows_only_while_something_is_still_in_progress(drive):
    client, _ = sign_up(email=ADDRESS)
    assert REFRESH_HINT in _setup_text(client)  # setting up
    drive()
    assert REFRESH_HINT in _setup_text(client)  # waiting for the address to be confirmed

    client.post(verification_link(ADDRESS))

    page = _setup_text(client)
    assert 'data-state="active"' in page
    assert REFRESH_HINT not in page
    assert 'http-equiv="refresh"' not in page  # and, without JavaScript, it no longer reloads itself


def test_a_used_password_link_claims_nothing_about_the_password_and_offers_both_ways_on(drive):
    sign_up(email=ADDRESS)
    drive()
    mail.outbox.clear()
    asker = Client()
    asker.post("/password-reset/", {"email": ADDRESS})
    drive()
    (link,) = [path for message in mail.outbox
               for path in re.findall(r"https?://[^/\s]+(/password-reset/\S+/\S+/)", message.body)]
    set_password = asker.get(link)["Location"]
    asker.post(set_password, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert User.objects.get(email=ADDRESS).check_password(NEW_PASSWORD)  # changed through this very link

    again = page_text(Client().get(link))

    assert str(words.PASSWORD_RESET_LINK_BAD.title) in again
    assert "unchanged" not in again and "password changed" not in again
    assert str(words.PASSWORD_RESET_LINK_BAD.next) in again  # log in with the new one, or ask again
    assert 'href="/login/"' in again and 'href="/password-reset/"' in again
