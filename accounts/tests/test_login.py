"""Login (`/login/`): the password the person chose always gets them in, whatever
the setup state (DESIGN principle 3); failures never reveal whether an address is
registered."""
from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from accounts import messages as words
from accounts.models import User
from accounts.tests.factories import PASSWORD, page_text, sign_up
from provisioning.durable import StepStatus
from provisioning.models import ProvisioningRequest

pytestmark = pytest.mark.django_db

CSRF_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


def log_in(client: Client, email: str, password: str, **extra):
    return client.post("/login/", {"email": email, "password": password, **extra})


def is_logged_in(client: Client) -> bool:
    return client.get("/setup/status.json").status_code == 200


def comparable(response, *addresses: str) -> bytes:
    """The page minus what differs by design from one request to the next: the CSRF
    token (masked afresh on every page) and the address the person typed."""
    body = CSRF_TOKEN.sub(b"csrf", response.content)
    for address in addresses:
        body = body.replace(address.encode(), b"ADDRESS")
    return body


def test_a_partial_account_logs_in_and_lands_on_the_status_page(sandbox, drive, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 50
    sandbox("provisioning", "error")
    sign_up(email="ada@example.com")
    drive(max_passes=3)
    assert ProvisioningRequest.objects.get().status == StepStatus.PENDING  # still failing

    client = Client()
    response = log_in(client, "Ada@Example.com", PASSWORD)

    assert response.status_code == 302 and response["Location"] == "/setup/"
    page = page_text(client.get("/setup/"))
    assert "Your account is saved" in page
    assert is_logged_in(client)


def test_a_failed_workspace_does_not_stop_login(sandbox, drive):
    sandbox("provisioning", "reject")
    sign_up(email="ada@example.com")
    drive()
    assert ProvisioningRequest.objects.get().status == StepStatus.FAILED

    client = Client()
    response = log_in(client, "ada@example.com", PASSWORD)

    assert response.status_code == 302 and response["Location"] == "/setup/"
    assert client.get("/setup/status.json").json()["state"] == "needs_support"


def test_once_the_workspace_is_ready_login_lands_in_the_app(drive):
    sign_up(email="ada@example.com")
    drive()

    client = Client()
    response = log_in(client, "ada@example.com", PASSWORD)

    assert response.status_code == 302 and response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "Your workspace is ready" in page_text(home)


def test_wrong_password_and_unknown_address_get_the_same_answer(drive):
    sign_up(email="ada@example.com")
    drive()

    wrong_password = log_in(Client(), "ada@example.com", "not the password at all")
    unknown = log_in(Client(), "nobody@example.com", PASSWORD)

    assert wrong_password.status_code == unknown.status_code == 400
    assert comparable(wrong_password, "ada@example.com") == comparable(unknown, "nobody@example.com")
    text = page_text(unknown)
    assert str(words.LOGIN_FAILED) in text
    assert "not found" not in text.lower() and "no account" not in text.lower()


def test_a_disabled_account_gets_the_same_generic_failure(drive):
    sign_up(email="ada@example.com")
    sign_up(email="bob@example.com")
    drive()
    # No service closes accounts yet (the support console will); staff closing one
    # amounts to this flag.
    User.objects.filter(email="ada@example.com").update(is_active=False)

    disabled = log_in(Client(), "ada@example.com", PASSWORD)
    wrong_password = log_in(Client(), "bob@example.com", "not the password at all")

    assert disabled.status_code == wrong_password.status_code == 400
    assert comparable(disabled, "ada@example.com") == comparable(wrong_password, "bob@example.com")


def test_a_disabled_account_loses_the_session_it_had(drive):
    client, account = sign_up(email="ada@example.com")
    User.objects.filter(pk=account.pk).update(is_active=False)

    assert client.get("/setup/status.json").status_code == 401
    assert client.get("/setup/")["Location"].startswith("/login/")


def test_login_rotates_the_session_key(drive):
    sign_up(email="ada@example.com")
    client = Client()
    before = client.session
    before["seen_at"] = "the login page"
    before.save()
    old_key = before.session_key

    log_in(client, "ada@example.com", PASSWORD)

    new_key = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert new_key != old_key
    assert not SessionStore().exists(old_key)  # a planted session key is worthless
    assert is_logged_in(client)


@pytest.mark.parametrize("next_url", ["/setup/status.json", "/setup/?from=login"])
def test_next_is_honoured_for_this_site(drive, next_url):
    sign_up(email="ada@example.com")

    response = log_in(Client(), "ada@example.com", PASSWORD, next=next_url)

    assert response.status_code == 302 and response["Location"] == next_url


@pytest.mark.parametrize("next_url", [
    "https://evil.example.net/setup/", "//evil.example.net/", "http://testserver.evil.example.net/",
    "javascript:alert(1)", "\\\\evil.example.net", "https:///evil.example.net",
])
def test_next_is_ignored_for_other_sites(drive, next_url):
    sign_up(email="ada@example.com")

    posted = log_in(Client(), "ada@example.com", PASSWORD, next=next_url)
    from_query = Client().post(f"/login/?next={next_url}", {"email": "ada@example.com", "password": PASSWORD})

    assert posted.status_code == from_query.status_code == 302
    assert posted["Location"] == from_query["Location"] == "/setup/"


def test_the_login_page_carries_next_into_its_form(client):
    response = client.get("/login/?next=/setup/status.json")

    assert response.status_code == 200
    assert 'name="next" value="/setup/status.json"' in response.content.decode()
    for name in ("email", "password"):
        assert f'name="{name}"' in response.content.decode()


def test_a_logged_in_person_opening_the_login_page_goes_where_they_belong(drive):
    client, _ = sign_up(email="ada@example.com")

    landing = client.get("/login/")

    # As /signup/ answers them; no form asking for the address and password we have.
    assert landing.status_code == 302 and landing["Location"] == client.get("/signup/")["Location"]
    assert landing["Location"] in ("/setup/", "/")
    assert client.get("/login/?next=/setup/status.json")["Location"] == "/setup/status.json"
    assert client.get("/login/?next=https://evil.example.net/")["Location"] == landing["Location"]
    assert is_logged_in(client)


def test_logout_ends_the_session(drive):
    client, _ = sign_up(email="ada@example.com")

    response = client.post("/logout/")

    assert response.status_code == 302 and response["Location"] == "/login/"
    assert not is_logged_in(client)


def test_logging_out_says_so_and_a_logged_out_browser_is_not_asked_to_log_out(drive):
    client, _ = sign_up(email="ada@example.com")

    after = client.post("/logout/", follow=True)

    assert after.redirect_chain == [("/login/", 302)]
    assert str(words.LOGGED_OUT).replace("'", "&#x27;") in after.content.decode()
    # Nobody is logged in here any more: no "Log out?" page, the login page instead.
    again = client.get("/logout/")
    assert again.status_code == 302 and again["Location"] == "/login/"
