"""Security properties a person relies on without seeing them: forged form posts are
refused, the session changes at login, links work once, what people type never
runs as markup, and the browser is told to keep our pages out of frames."""
from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client

from accounts.models import EmailDelivery, User
from conftest import PASSWORD
from provisioning.models import Workspace

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'


def csrf_token(client: Client, path: str) -> str:
    page = client.get(path).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


@pytest.fixture
def ada(signup_data):
    Client().post("/signup/", signup_data)
    return User.objects.get(email="ada@example.com")


def logged_in(account: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(account)
    return client


def nothing_written(account: User):
    account.refresh_from_db()
    return (User.objects.count(), account.email, account.check_password(PASSWORD),
            EmailDelivery.objects.count())


# (path, data, the page the form lives on, whether the person is logged in)
FORMS = [
    ("/signup/", {"name": "Grace", "email": "grace@example.com", "phone": "+1 415 555 0101",
                  "company": "Navy", "password": PASSWORD}, "/signup/", False),
    ("/login/", {"email": "ada@example.com", "password": PASSWORD}, "/login/", False),
    ("/password-reset/", {"email": "ada@example.com"}, "/password-reset/", False),
    ("/logout/", {}, "/logout/", True),
    ("/setup/email/", {"email": "ada.lovelace@example.com"}, "/setup/", True),
    ("/setup/resend/", {}, "/setup/", True),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "data", "form_page", "logged_in_"), FORMS, ids=[f[0] for f in FORMS])
def test_every_form_refuses_a_post_without_its_csrf_token(ada, path, data, form_page, logged_in_):
    client = logged_in(ada) if logged_in_ else Client(enforce_csrf_checks=True)
    before = nothing_written(ada)

    forged = client.post(path, data)

    assert forged.status_code == 403
    assert "This form has expired" in forged.content.decode()
    assert "Nothing was saved or changed" in forged.content.decode()
    assert nothing_written(ada) == before
    if logged_in_:
        assert int(client.session[SESSION_KEY]) == ada.pk  # not even logged out
    # The same post with the token from the page is accepted.
    genuine = client.post(path, {**data, "csrfmiddlewaretoken": csrf_token(client, form_page)})
    assert genuine.status_code in (200, 302)


@pytest.mark.django_db
def test_the_set_password_form_refuses_a_post_without_its_csrf_token(ada, drive):
    client = Client(enforce_csrf_checks=True)
    client.post("/password-reset/", {"email": "ada@example.com",
                                       "csrfmiddlewaretoken": csrf_token(client, "/password-reset/")})
    drive()
    (link,) = re.findall(r"https?://\S+/password-reset/\S+/\S+/", mail.outbox[-1].body)
    set_password = client.get(re.sub(r"^https?://[^/]+", "", link))["Location"]

    forged = client.post(set_password, {"new_password1": "a brand new passphrase",
                                        "new_password2": "a brand new passphrase"})

    assert forged.status_code == 403
    ada.refresh_from_db()
    assert ada.check_password(PASSWORD)


@pytest.mark.django_db
def test_the_session_key_changes_at_login_and_the_old_one_is_gone(ada):
    from django.contrib.sessions.models import Session

    client = Client()
    session = client.session  # an anonymous session, as an attacker could plant one
    session["seen"] = True
    session.save()
    before = client.cookies[django_settings.SESSION_COOKIE_NAME].value

    assert client.post("/login/", {"email": "ada@example.com", "password": PASSWORD}).status_code == 302

    after = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()
    assert int(client.session[SESSION_KEY]) == ada.pk


@pytest.mark.django_db
def test_a_verification_link_works_once(ada, drive):
    drive()
    (link,) = [m for m in mail.outbox if "/verify/" in m.body]
    path = re.search(r"/verify/[^/\s]+/", link.body).group(0)

    first = Client().post(path)
    ada.refresh_from_db()
    assert first.status_code == 302 and first["Location"] == "/login/"
    assert ada.email_verified

    again = Client().post(path)
    assert again.status_code == 302 and again["Location"] == "/verify/"


@pytest.mark.django_db
def test_names_and_companies_with_markup_never_render_as_markup(signup_data, drive):
    client = Client()
    client.post("/signup/", {**signup_data, "name": SCRIPT, "company": IMG})
    drive()
    account = User.objects.get(email="ada@example.com")
    assert (account.name, account.company) == (SCRIPT, IMG)  # kept as typed
    assert Workspace.objects.filter(owner=account).exists()

    for path in ("/setup/", "/"):  # the name and company as the person sees them
        page = client.get(path).content.decode()
        assert SCRIPT not in page and IMG not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
        assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page, path


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/login/", "/signup/", "/password-reset/", "/setup/"])
def test_pages_carry_the_security_headers(ada, path):
    client = Client()
    if path == "/setup/":
        client.force_login(ada)

    response = client.get(path)

    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_the_rate_limit_page_carries_the_security_headers(settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login": {"per_ip": (1, 900)}}
    client = Client()
    client.post("/login/", {"email": "a@example.com"})

    limited = client.post("/login/", {"email": "a@example.com"})

    assert limited.status_code == 429
    assert limited["X-Frame-Options"] == "DENY"
    assert limited["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_a_name_with_markup_is_escaped_in_the_html_email(signup_data, drive):
    Client().post("/signup/", {**signup_data, "name": SCRIPT})
    drive()

    (message,) = [m for m in mail.outbox if "/verify/" in m.body]
    (html, _), = message.alternatives
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
