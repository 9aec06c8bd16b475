"""Bad input, property-based (hypothesis): whatever is typed into signup, login,
correct email, password reset, /help/ or the links, or posted to the bounce webhook,
the answer is never a server error;
over-long input and control characters are refused in words; names and companies in
any script come back exactly as typed.

Every example runs in the same test transaction, so each uses fresh addresses."""
from __future__ import annotations

import base64
import itertools
import json
from urllib.parse import quote

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils.html import escape
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.forms import CONTROL_CHARACTERS_MESSAGE
from accounts.models import User, normalize_email
from conftest import PASSWORD

# Fast enough for every run of the suite; no example database left on disk.
hypothesis_settings.register_profile(
    "bad-input", max_examples=50, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
bad_input = hypothesis_settings.get_profile("bad-input")

CONTROL = escape(str(CONTROL_CHARACTERS_MESSAGE))
_serial = itertools.count()

# Any text at all, weighted towards what breaks things: NUL and control characters,
# lone combining marks, right-to-left marks, emoji, very long strings.
anything = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=400),
    st.sampled_from(["\x00", "a\x00b", "\t", "\r\n", "\u202e", "\u0301", "🚀" * 200, "x" * 5000, ""]),
)
# Names and companies people really have: any letters, marks, numbers, punctuation,
# symbols (emoji included) and spaces, but no control characters, no leading or
# trailing space (forms strip it, as people expect).
printable = st.characters(categories=["L", "M", "N", "P", "S", "Zs"], codec="utf-8")
a_name = st.text(alphabet=printable, min_size=1, max_size=150).filter(lambda s: s == s.strip() and s)
control_character = st.characters(categories=["Cc"])
# Short enough for the length check as typed, 272 characters once lower-cased:
# 'İ'.lower() is 'i' and a combining dot.
LONGER_WHEN_LOWERED = "İ" * 130 + "@example.com"


@pytest.fixture(autouse=True)
def no_rate_limits(settings):
    """Dozens of requests per test from one client address: limits are tested elsewhere."""
    settings.RATE_LIMITS = {action: {} for action in settings.RATE_LIMITS}


def fresh_address() -> str:
    return f"person{next(_serial)}@example.com"


def signup_form(**changes) -> dict:
    return {"name": "Ada Lovelace", "email": fresh_address(), "phone": "+1 415 555 0100",
            "company": "Analytical Engines", "password": PASSWORD, **changes}


def logged_in(client: Client) -> tuple[Client, User]:
    """The client, signed up and logged in once per test (examples share the test's
    client and transaction, so later examples reuse the account)."""
    if SESSION_KEY not in client.session:
        assert client.post("/signup/", signup_form()).status_code == 302
    return client, User.objects.get(pk=client.session[SESSION_KEY])


# --- Never a server error -----------------------------------------------------------------

@pytest.mark.django_db
@bad_input
@given(name=anything, email=anything, phone=anything, company=anything, password=anything)
@example(name="Ada", email=LONGER_WHEN_LOWERED, phone="+1 415 555 0100", company="Engines", password=PASSWORD)
def test_signup_never_fails_with_a_server_error(name, email, phone, company, password):
    response = Client().post("/signup/", {"name": name, "email": email, "phone": phone,
                                          "company": company, "password": password})
    assert response.status_code < 500


@pytest.mark.django_db
@bad_input
@given(email=anything, password=anything, next_url=anything)
def test_login_never_fails_with_a_server_error(email, password, next_url):
    response = Client().post("/login/", {"email": email, "password": password, "next": next_url})
    assert response.status_code < 500


@pytest.mark.django_db
@bad_input
@given(email=anything)
def test_password_reset_never_fails_with_a_server_error(email):
    assert Client().post("/password-reset/", {"email": email}).status_code < 500


@pytest.mark.django_db
@bad_input
@given(email=st.one_of(anything, st.emails()))
@example(email=LONGER_WHEN_LOWERED)
def test_correcting_the_address_never_fails_and_keeps_what_it_accepts(client, email):
    client, account = logged_in(client)
    response = client.post("/setup/email/", {"email": email})
    assert response.status_code < 500
    if response.status_code == 302:
        account.refresh_from_db()
        assert account.email == normalize_email(email)
        assert client.get("/setup/status.json").json()["email"]["address"] == account.email


@pytest.mark.django_db
@bad_input
@given(email=anything, message=anything)
@example(email=LONGER_WHEN_LOWERED, message="I can't log in")
def test_help_never_fails_with_a_server_error(email, message):
    assert Client().post("/help/", {"email": email, "message": message}).status_code < 500


@pytest.mark.django_db
@bad_input
@given(token=anything, uid=anything)
@example(token="MTIzNDU2Nzg5MDEyMzQ1Njc4OTA.abc-def", uid="OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5")  # huge ids
def test_links_with_any_token_never_fail(token, uid):
    client = Client()
    for path in (f"/verify/{quote(token, safe='')}/",
                 f"/password-reset/{quote(uid, safe='')}/{quote(token, safe='')}/"):
        assert client.get(path).status_code < 500, path


@pytest.mark.django_db
@bad_input
@given(query=st.dictionaries(anything, anything, max_size=3))
def test_the_status_json_keeps_its_shape_whatever_the_query(client, query):
    client, account = logged_in(client)
    response = client.get("/setup/status.json", query)
    assert response.status_code == 200
    body = json.loads(response.content)
    assert set(body) == {"state", "workspace", "email", "ticket", "message", "said"}  # DESIGN, extended
    assert set(body["workspace"]) == {"status", "attempts", "next_attempt_at"}
    assert set(body["email"]) == {"address", "verified", "delivery"}
    assert Client().get("/setup/status.json", query).status_code == 401


# --- Sizes bounded, control characters refused, both in words ---------------------------------

@pytest.mark.django_db
@bad_input
@given(field=st.sampled_from(["name", "company"]), extra=st.integers(min_value=1, max_value=2000))
def test_over_long_names_and_companies_are_refused_with_a_clear_message(field, extra):
    data = signup_form(**{field: "x" * (150 + extra)})
    response = Client().post("/signup/", data)
    assert response.status_code == 400
    assert "Please keep this under 150 characters." in response.content.decode()
    assert not User.objects.filter(email=data["email"]).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "field", "limit"), [
    ("/signup/", "email", 254), ("/signup/", "password", 256), ("/signup/", "phone", 32),
    ("/login/", "email", 254), ("/login/", "password", 256), ("/password-reset/", "email", 254),
])
def test_over_long_fields_are_refused_with_a_clear_message(path, field, limit):
    value = "a" * (limit - 12) + "@example.com" if field == "email" else "1" * (limit + 1)
    value = value if len(value) > limit else "a" + value
    data = {**signup_form(), field: value}
    response = Client().post(path, data)
    assert response.status_code == 400
    assert f"Please keep this under {limit} characters." in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/signup/", "/help/", "/setup/email/"])
def test_an_address_too_long_once_lower_cased_is_refused_with_a_clear_message(client, path):
    """Checked as typed and lower-cased after, it reached the database as 272
    characters: on PostgreSQL a DataError, a server error (CI runs this there too)."""
    if path == "/setup/email/":
        client, _ = logged_in(client)
    before = User.objects.count()
    response = client.post(path, {**signup_form(email=LONGER_WHEN_LOWERED), "message": "I can't log in"})
    assert response.status_code == 400
    assert "Please keep this under 254 characters." in response.content.decode()
    assert User.objects.count() == before
    assert not User.objects.filter(email__contains="@example.com", email__startswith="i").exists()


def longest_address(n: int) -> str:
    """A valid address of 254 characters, the most an address may have."""
    start = f"{n:0>64}@" + "b" * 63 + "." + "c" * 63 + "."
    return start + "d" * (254 - len(start) - 4) + ".com"


@pytest.mark.django_db
def test_the_longest_addresses_sign_up_and_can_be_corrected_to(drive):
    client = Client()
    response = client.post("/signup/", signup_form(email=longest_address(1)))
    assert response.status_code == 302
    assert client.post("/setup/email/", {"email": longest_address(2)}).status_code == 302
    assert client.post("/password-reset/", {"email": longest_address(2)}).status_code == 302
    drive()
    assert User.objects.get(email=longest_address(2)).email_deliveries.count() == 3


@pytest.mark.django_db
def test_a_body_of_megabytes_is_refused_not_a_crash():
    response = Client().post("/signup/", signup_form(name="x" * 3_000_000))
    assert response.status_code == 400
    assert not User.objects.exists()


@pytest.mark.django_db
@bad_input
@given(field=st.sampled_from(["name", "company", "email"]), bad=control_character,
       where=st.integers(min_value=1, max_value=10))
@example(field="name", bad="\x00", where=3)
@example(field="email", bad="\x00", where=0)
def test_control_characters_are_refused_with_a_clear_message(field, bad, where):
    data = signup_form()
    address = data["email"]
    data[field] = data[field][:where] + bad + data[field][where:]
    response = Client().post("/signup/", data)
    assert response.status_code == 400
    page = response.content.decode()
    assert CONTROL in page
    summary, fields = page.split("data-error-summary", 1)[1].split("</div>", 1)
    assert summary.count(CONTROL) == 1  # the error summary links to the field, quoting it
    assert fields.count(CONTROL) == 1  # and at the field: once, in our words, not twice
    assert not User.objects.filter(email=address).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/login/", "/password-reset/"])
def test_a_nul_in_the_address_is_refused_with_a_clear_message(path):
    response = Client().post(path, {"email": "ada\x00@example.com", "password": "x\x00y"})
    assert response.status_code == 400
    assert CONTROL in response.content.decode()


# --- Unicode kept intact ------------------------------------------------------------------------

@pytest.mark.django_db
@bad_input
@given(name=a_name, company=a_name)
@example(name="Zoë Ångström-Łukasiewicz", company="株式会社テスト")
@example(name="José 👩🏽‍💻 O'Brien", company="Café «Zürich» & Söhne 🚀")
@example(name="محمد عبد الله", company="שלום בע״מ")
def test_names_and_companies_in_any_script_come_back_exactly_as_typed(name, company):
    client = Client()
    data = signup_form(name=name, company=company)
    response = client.post("/signup/", data)
    assert response.status_code == 302, response.content.decode()[:2000]

    account = User.objects.get(email=data["email"])
    assert (account.name, account.company) == (name, company)
    page = client.get("/setup/").content.decode()
    assert escape(name) in page
    assert escape(company) in page


# --- The bounce webhook: authenticated, but garbled -----------------------------------------------

WEBHOOK_SECRET = "hook:s3cret-2f9a"
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
# Postmark's bounce, each field either plausible or any JSON value at all.
postmark_shaped = st.fixed_dictionaries({
    "RecordType": st.sampled_from(["Bounce", "SpamComplaint", "Delivery"]) | json_value,
    "Type": st.sampled_from(["HardBounce", "BadEmailAddress"]) | json_value,
    "ID": st.integers(min_value=1) | json_value,
    "Email": st.emails() | json_value,
    "BouncedAt": st.just("2026-11-26T16:33:54.9070259Z") | json_value,
    "Details": st.text(max_size=40) | json_value,
}).map(json.dumps)


@pytest.mark.django_db
@bad_input
@given(body=st.one_of(anything, json_value.map(json.dumps), postmark_shaped))
@example(body=json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "ID": 7, "Email": 5}))
@example(body=json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "ID": 7, "Email": ["ada@example.com"]}))
@example(body=json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "ID": 7, "Email": LONGER_WHEN_LOWERED}))
@example(body="not json")
@example(body="[]")
def test_a_garbled_bounce_webhook_is_refused_never_a_server_error(settings, body):
    """A 500 makes the ESP retry for days a body that can never be read: 400 instead."""
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": WEBHOOK_SECRET}
    settings.WEBHOOK_SECRET, settings.EMAIL_WEBHOOK_ESP = WEBHOOK_SECRET, "postmark"
    auth = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()
    response = Client().post("/anymail/postmark/tracking/", body, content_type="application/json",
                             HTTP_AUTHORIZATION=auth)
    assert response.status_code in (200, 400)
