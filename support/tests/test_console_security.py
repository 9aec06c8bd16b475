"""The console holds the keys (DESIGN principle 8), attacked from outside over HTTP:
no page answers questions about secrets."""
from __future__ import annotations

import base64
import html
import io
import re
import uuid

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.management import call_command
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import messages as words_person
from accounts.models import RateLimitCounter, SignInCode, User
from accounts.services import StaffAccount
from support import actions
from support import messages as words
from support.console import SECRET_FIELDS
from support.models import ConsoleAction, Ticket


@pytest.fixture
def accounts(register):
    return [register(email=f"person{i}@example.com") for i in range(3)]


def test_the_accounts_list_refuses_to_filter_by_password_hash(console, accounts):
    """The hash-prefix oracle: a right prefix and a wrong one get the same 400, and
    neither lists anyone."""
    prefix = User.objects.get(email="person0@example.com").password[:12]
    right = console.get("/admin/accounts/user/", {"password__startswith": prefix})
    wrong = console.get("/admin/accounts/user/", {"password__startswith": prefix[:-1] + "#"})
    assert right.status_code == wrong.status_code == 400
    assert right.content == wrong.content
    assert b"person0@example.com" not in right.content


@pytest.mark.parametrize("lookup", ["password__startswith", "password__regex", "password", "email__startswith",
                                    "groups__name", "signin_codes__code_hash__startswith", "is_superuser"])
def test_the_accounts_list_filters_only_by_its_declared_filters(console, accounts, lookup):
    assert console.get("/admin/accounts/user/", {lookup: "$"}).status_code == 400


@pytest.mark.parametrize("lookup", ["account__password__startswith", "account__signin_codes__code_hash__startswith",
                                    "events__action_key__startswith", "email__startswith"])
def test_the_queue_filters_only_by_its_declared_filters(console, lookup):
    assert console.get("/admin/support/ticket/", {lookup: "a"}).status_code == 400


def test_the_declared_filters_still_work(console, accounts):
    assert console.get("/admin/accounts/user/", {"state": "setting_up", "is_staff__exact": "0"}).status_code == 200
    assert console.get("/admin/support/ticket/", {"queue": "all", "priority__exact": "1"}).status_code == 200


def test_no_console_list_searches_sorts_or_filters_by_a_secret_field():
    for model, model_admin in admin.site._registry.items():
        for lookup in ("password__startswith", "code_hash__startswith", "action_key__startswith"):
            assert not model_admin.lookup_allowed(lookup, "x", None), (model, lookup)
        named = [*model_admin.search_fields, *(model_admin.ordering or ()),
                 *(f for f in model_admin.list_filter if isinstance(f, str)), *model_admin.list_display]
        for name in named:
            assert not SECRET_FIELDS.intersection(name.lstrip("-^=@").split("__")), (model, name)


# --- 2. The console's sign-in is rate-limited ----------------------------------------------

def console_limits(settings, *, ip=(10**6, 3600), failures=(10**6, 3600), failures_everywhere=(10**6, 3600)):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "console_login": {
        "per_ip": ip, "failures_per_email_and_ip": failures, "failures_per_email": failures_everywhere}}


def wrong(client: Client, user):
    return client.post("/admin/login/", {"username": user.email, "password": "wrong password"})


def right(client: Client, user):
    return client.post("/admin/login/", {"username": user.email, "password": "a support password 1"})


def test_wrong_console_passwords_for_one_account_get_a_429_in_the_consoles_look(settings, support_user):
    console_limits(settings, failures=(3, 900), failures_everywhere=(5, 900))
    client = Client()
    for _ in range(3):
        assert wrong(client, support_user).status_code == 200  # the form again, with its error
    paused = right(client, support_user)  # paused before any password is checked

    assert paused.status_code == 429
    assert 0 < int(paused["Retry-After"]) <= 900
    page = html.unescape(paused.content.decode())
    assert str(words.CONSOLE_PAUSED.title) in page and 'id="site-name"' in page  # the console's header
    assert RateLimitCounter.objects.filter(key__startswith="console_login:").exists()


def test_a_wrong_console_password_is_told_in_our_words_and_the_address_any_case_signs_in(support_user):
    """Django's words say both fields may be case-sensitive; the address is not."""
    page = html.unescape(wrong(Client(), support_user).content.decode())

    assert str(words.CONSOLE_LOGIN_FAILED) in page
    assert "both fields may be case-sensitive" not in page
    signed_in = Client().post("/admin/login/", {"username": support_user.email.upper(),
                                                "password": "a support password 1"})
    assert signed_in.status_code == 302  # on to the second factor


def test_only_failures_count_and_the_support_persons_own_browser_always_gets_in(settings, support_user):
    """Per account, failures count (not successes): per account and client, and over
    all clients for browsers that never signed in to the account. The support
    person's own browser carries the limiter's known-device cookie, so an attacker
    guessing from many addresses pauses new browsers, never theirs."""
    console_limits(settings, failures=(3, 900), failures_everywhere=(4, 900))
    own = Client(REMOTE_ADDR="198.51.100.7")
    for _ in range(5):  # successes use up nothing
        assert right(own, support_user).status_code == 302
    for n in range(4):  # guessing from four addresses
        assert wrong(Client(REMOTE_ADDR=f"203.0.113.{n}"), support_user).status_code == 200

    assert right(Client(REMOTE_ADDR="192.0.2.1"), support_user).status_code == 429  # a new browser waits
    assert right(own, support_user).status_code == 302  # the person's own browser does not


def test_one_client_address_guessing_many_accounts_is_paused(settings, support_user):
    console_limits(settings, ip=(4, 900))
    client = Client(REMOTE_ADDR="203.0.113.9")
    for n in range(4):
        assert client.post("/admin/login/", {"username": f"staff{n}@example.com", "password": "x"}).status_code == 200
    assert right(client, support_user).status_code == 429
    assert right(Client(REMOTE_ADDR="198.51.100.7"), support_user).status_code == 302


# --- 3. Every staff sign-in needs a second factor -----------------------------------------

PASSWORD = "a support password 1"


def app_code(device) -> str:
    """What the person's authenticator app shows now."""
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def password_only(user) -> Client:
    client = Client()
    assert client.post("/admin/login/", {"username": user.email, "password": PASSWORD}).status_code == 302
    return client


@pytest.mark.parametrize("path", ["/admin/", "/admin/support/ticket/", "/admin/accounts/user/"])
def test_a_password_alone_opens_no_console_page(support_user, path):
    TOTPDevice.objects.create(user=support_user, name="app", confirmed=True)
    client = password_only(support_user)
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    page = client.get(response["Location"])
    assert str(words.SECOND_FACTOR_INTRO) in html.unescape(page.content.decode())


def test_the_persons_own_login_page_does_not_open_the_console_either(support_user):
    TOTPDevice.objects.create(user=support_user, name="app", confirmed=True)
    client = Client()
    client.post("/login/", {"email": support_user.email, "password": PASSWORD})
    assert client.get("/admin/support/ticket/").status_code == 302


def test_a_code_from_the_app_opens_the_console(support_user):
    device = TOTPDevice.objects.create(user=support_user, name="app", confirmed=True)
    client = password_only(support_user)
    wrong = client.post("/admin/login/", {"otp_token": "000000" if app_code(device) != "000000" else "111111"})
    assert wrong.status_code == 400 and client.get("/admin/").status_code == 302
    device.refresh_from_db()
    device.throttle_reset()  # django-otp slows down after a wrong code; the wait is its business
    right = client.post("/admin/login/?next=/admin/support/ticket/", {"otp_token": app_code(device)})
    assert right.status_code == 302 and right["Location"] == "/admin/support/ticket/"
    assert client.get("/admin/support/ticket/").status_code == 200


def test_signing_out_at_the_second_step_lands_on_the_consoles_sign_in_page(support_user):
    TOTPDevice.objects.create(user=support_user, name="app", confirmed=True)
    client = password_only(support_user)
    step = client.get("/admin/login/").content.decode()
    sign_out = re.search(r'<form method="post" action="([^"]+)">[^<]*<input[^>]*>\s*'
                         r'<button[^>]*>Not [^<]*\? Sign out</button>', step)

    response = client.post(sign_out[1])

    assert response.status_code == 302 and response["Location"] == "/admin/login/"
    page = html.unescape(client.get(response["Location"]).content.decode())
    assert 'name="username"' in page and 'name="otp_token"' not in page  # the password step: signed out
    assert str(words_person.LOGGED_OUT) in page


def test_the_consoles_log_out_lands_on_its_sign_in_page_in_our_words(console):
    """The console's own "Log out" (in its header) ends the session and lands on the
    console's sign-in page, told they are logged out: not Django's "Thanks for spending
    some quality time with the web site today"."""
    header = console.get("/admin/").content.decode()
    log_out = re.search(r'<form id="logout-form" method="post" action="([^"]+)">', header)
    assert log_out is not None

    response = console.post(log_out[1])

    assert response.status_code == 302 and response["Location"] == "/admin/login/"
    page = html.unescape(console.get(response["Location"]).content.decode())
    assert 'name="username"' in page and 'name="otp_token"' not in page
    assert str(words_person.LOGGED_OUT) in page and "quality time" not in page
    assert console.get("/admin/")["Location"].startswith("/admin/login/")  # the session is gone


def test_staff_opening_the_customers_log_out_page_are_asked_in_the_console(console):
    """Staff who open /logout/ (GET) get the console's "Log out?", whose button lands
    on the console's sign-in page; the customers' page is for customers."""
    response = console.get("/logout/")
    assert response.status_code == 302 and response["Location"] == "/admin/logout/"

    asked = console.get(response["Location"])

    assert asked.status_code == 200
    assert "accounts/logout.html" not in [t.name for t in asked.templates]
    page = html.unescape(asked.content.decode())
    assert "Support console" in page and "Log out of the console?" in page
    assert re.search(r'<form method="post" action="/admin/logout/">', page)
    assert console.get("/admin/").status_code == 200  # asking logged nobody out
    done = console.post("/admin/logout/")
    assert done.status_code == 302 and done["Location"] == "/admin/login/"
    assert str(words_person.LOGGED_OUT) in html.unescape(console.get("/admin/login/").content.decode())


def test_first_sign_in_sets_up_an_app_then_shows_backup_codes_that_work_once(support_user):
    client = password_only(support_user)
    to_login = client.get("/admin/")["Location"]
    to_enrol = client.get(to_login)
    assert to_enrol.status_code == 302 and to_enrol["Location"].startswith("/admin/second-factor/")
    page = client.get(to_enrol["Location"])
    assert page.status_code == 200 and b"<svg" in page.content
    device = TOTPDevice.objects.get(user=support_user, confirmed=False)
    assert "".join(re.search(r'id="totp-secret">([^<]+)<', page.content.decode())[1].split()) == \
        base64.b32encode(device.bin_key).decode()
    assert client.get("/admin/").status_code == 302  # not before the app is confirmed

    done = client.post(to_enrol["Location"], {"otp_token": app_code(device)})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>(\w+)</code></li>", done.content.decode())
    assert len(codes) == 10
    assert "no-cache" in done["Cache-Control"] or "max-age=0" in done["Cache-Control"]
    assert client.get("/admin/").status_code == 200

    later = password_only(support_user)
    assert later.post("/admin/login/", {"otp_token": codes[0]}).status_code == 302
    assert later.get("/admin/").status_code == 200
    again = password_only(support_user)
    assert again.post("/admin/login/", {"otp_token": codes[0]}).status_code == 400  # used up


def test_a_password_alone_cannot_set_up_another_device(support_user):
    TOTPDevice.objects.create(user=support_user, name="app", confirmed=True)
    client = password_only(support_user)
    response = client.get("/admin/second-factor/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert client.post("/admin/second-factor/", {"otp_token": "123456"}).status_code == 302
    assert TOTPDevice.objects.filter(user=support_user).count() == 1


def test_a_used_up_backup_code_does_not_let_a_password_alone_set_up_a_device(support_user):
    """The first sign-in `make run` offers: one backup code (addstatictoken), no app.
    Once that code is used, the account still has a second factor: the next sign-in
    with the password alone must ask for a code, never offer to set up a new app
    (whoever holds the password would then hold the console)."""
    out = io.StringIO()
    call_command("addstatictoken", support_user.email, stdout=out)
    first = password_only(support_user)
    assert first.post("/admin/login/", {"otp_token": out.getvalue().strip()}).status_code == 302
    assert first.get("/admin/").status_code == 200

    thief = password_only(support_user)
    asked = thief.get("/admin/login/")
    enrol = thief.get("/admin/second-factor/")

    assert asked.status_code == 200 and 'name="otp_token"' in asked.content.decode()
    assert str(words.SECOND_FACTOR_LOST) in html.unescape(asked.content.decode())
    assert enrol.status_code == 302 and enrol["Location"].startswith("/admin/login/")
    assert thief.post("/admin/second-factor/", {"otp_token": "123456"}).status_code == 302
    assert not TOTPDevice.objects.filter(user=support_user).exists()
    assert thief.get("/admin/").status_code == 302


def test_addstatictoken_takes_the_email_and_prints_a_code_that_signs_in_once(support_user):
    TOTPDevice.objects.create(user=support_user, name="lost phone", confirmed=True)
    out = io.StringIO()
    call_command("addstatictoken", "SAM@support.example", stdout=out)
    code = out.getvalue().strip()
    client = password_only(support_user)
    assert client.post("/admin/login/", {"otp_token": code}).status_code == 302
    assert client.get("/admin/").status_code == 200
    assert password_only(support_user).post("/admin/login/", {"otp_token": code}).status_code == 400


# --- 4. No console action takes over a staff account -------------------------------------------

@pytest.fixture
def promoted_colleague(stranded) -> User:
    """Signed up as a customer (so a ticket is open on the account), then made staff:
    the account a console login would want to take over."""
    account = stranded(email="lee@example.com")
    User.objects.filter(pk=account.pk).update(is_staff=True)
    account.refresh_from_db()
    return account


@pytest.mark.parametrize(("button", "data"), [
    ("correct_email", {"email": "sam.attacker@example.com"}),
    ("mark_verified", {"confirmed": "on"}),
    ("signin_code", {}),
    ("resend", {}),
    ("close", {"reason": "taking it over"}),
])
def test_no_button_changes_a_staff_account(console, promoted_colleague, mailoutbox, button, data):
    ticket = Ticket.objects.get(account=promoted_colleague)
    assert f"/do/{button}/" not in console.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()
    mailoutbox.clear()

    response = console.post(f"/admin/support/ticket/{ticket.pk}/do/{button}/", {"action_key": uuid.uuid4().hex, **data})

    assert response.status_code == 400
    assert str(words.STAFF_ACCOUNT_REFUSED) in html.unescape(response.content.decode())
    colleague = User.objects.get(pk=promoted_colleague.pk)
    assert (colleague.email, colleague.email_verified_at, colleague.is_active, colleague.password) == (
        promoted_colleague.email, None, True, promoted_colleague.password)
    assert not SignInCode.objects.filter(account=colleague).exists()
    assert not ConsoleAction.objects.exists() and not mailoutbox


def test_a_superuser_is_protected_like_staff(support_user, stranded):
    account = stranded(email="boss@example.com")
    User.objects.filter(pk=account.pk).update(is_superuser=True)
    for act, extra in ((actions.correct_email, {"email": "x@example.com"}), (actions.mark_verified, {}),
                       (actions.issue_signin_code, {}), (actions.resend_verification, {})):
        with pytest.raises(StaffAccount):
            act(actor=support_user, account=account, ticket=None, action_key=uuid.uuid4().hex, **extra)
    account.refresh_from_db()
    assert account.email == "boss@example.com" and not account.email_verified


# --- 8. Nothing stored rebuilds a sign-in code ----------------------------------------------------

def test_no_row_holds_a_live_code_or_anything_it_is_derived_from(console, stranded):
    """Database + SECRET_KEY used to print live codes: they were an HMAC of the click's
    key, kept in clear. Now the code is random, the key is kept as a digest, and the
    code only as a salted password hash."""
    account = stranded(email="ada@example.com")
    ticket = Ticket.objects.get(account=account)
    key = uuid.uuid4().hex
    page = console.post(f"/admin/support/ticket/{ticket.pk}/do/signin_code/", {"action_key": key})
    code = re.search(r'class="signin-code"[^>]*>(\d{4} \d{4})<', page.content.decode())[1].replace(" ", "")

    stored = []
    for model in apps.get_models():
        for row in model.objects.values_list():
            stored.extend(str(value) for value in row)
    everything = "\n".join(stored)
    assert key not in everything and code not in everything

    row = SignInCode.objects.get(account=account)
    assert row.code_hash.startswith(("argon2", "md5$", "pbkdf2"))  # a salted password hash, not an HMAC
    assert Client().post("/login/code/", {"email": account.email, "code": code}).status_code == 302
