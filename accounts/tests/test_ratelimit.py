"""Rate limits (accounts.ratelimit): what a person sees when limited, which requests
count, which client address is trusted, and that the counters hold across
processes on the database and on Redis."""
from __future__ import annotations

import html
import multiprocessing
import random
import re
import uuid
from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib.auth import SESSION_KEY
from django.db import connection, connections
from django.db.models import F
from django.test import Client

from accounts import ratelimit
from accounts.models import EmailDelivery, EmailKind, RateLimitCounter, User
from conftest import PASSWORD

REDIS_URL = "redis://127.0.0.1:6379/15"
UNLIMITED = (10**6, 3600)


def limits(settings, action: str, *, ip=UNLIMITED, email=UNLIMITED) -> None:
    """Every action effectively unlimited except ``action``, which gets the limits given."""
    settings.RATE_LIMITS = {name: {"per_ip": UNLIMITED, "per_email": UNLIMITED} for name in settings.RATE_LIMITS}
    settings.RATE_LIMITS[action] = {"per_ip": ip, "per_email": email}


def signup(client: Client, signup_data: dict, **changes):
    return client.post("/signup/", {**signup_data, **changes})


def logged_in_account(signup_data) -> tuple[Client, User]:
    client = Client()
    assert client.post("/signup/", signup_data).status_code == 302
    return client, User.objects.get(email=signup_data["email"].lower())


# --- What a limited person sees ---------------------------------------------------------

@pytest.mark.django_db
def test_signups_from_one_address_past_the_limit_get_a_429_page_and_no_account(settings, client, signup_data):
    limits(settings, "signup", ip=(2, 3600))
    for n in range(2):
        assert signup(Client(), signup_data, email=f"person{n}@example.com").status_code == 302

    response = signup(client, signup_data, email="third@example.com")

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 3600
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    page = html.unescape(response.content.decode())
    title = re.search(r"<title>(.*?) ·", page).group(1)
    wait = re.search(r"You can try again (in about \d+ minutes?|in under a minute|in about \d+ hours?)\.", page)
    # The title names the same wait as the page, never "a moment".
    assert wait and title == f"Paused: please try again {wait.group(1)}"
    assert "a moment" not in page and "Nothing was lost" not in page
    assert "No account was made from this attempt, and what you typed was not kept" in page
    assert f"mailto:{settings.SUPPORT_EMAIL}" in page
    assert not User.objects.filter(email="third@example.com").exists()


@pytest.mark.django_db
def test_the_429_page_offers_the_phone_when_published_and_never_the_paused_form(settings, client):
    limits(settings, "password_reset", ip=(1, 3600))
    settings.SUPPORT_PHONE = "+1 415 555 0199"
    client.post("/password-reset/", {"email": "a@example.com"})

    page = html.unescape(client.post("/password-reset/", {"email": "a@example.com"}).content.decode())

    assert 'href="tel:+14155550199"' in page and "Call us on +1 415 555 0199" in page
    assert 'href="/help/"' in page.split('id="contact-us"')[1].split("</p>")[0]  # /help/ is not paused here
    assert "No new link was sent this time" in page

    settings.SUPPORT_PHONE = ""
    page = html.unescape(client.post("/password-reset/", {"email": "a@example.com"}).content.decode())
    assert "tel:" not in page and "Call us" not in page


# --- Signing in: failures count, successes never --------------------------------------------

def failures(settings, action: str, *, per_client=UNLIMITED, total=UNLIMITED) -> None:
    """Every action effectively unlimited except ``action``'s failure counts."""
    limits(settings, action)
    settings.RATE_LIMITS[action] = {"per_ip": UNLIMITED, "failures_per_email_and_ip": per_client,
                                    "failures_per_email": total}


WRONG = {"email": "ada@example.com", "password": "wrong guess 12345"}
RIGHT = {"email": "ada@example.com", "password": PASSWORD}


@pytest.mark.django_db
def test_correct_passwords_use_up_nothing(settings, signup_data):
    failures(settings, "login", per_client=(2, 900), total=(2, 900))
    Client().post("/signup/", signup_data)
    assert [Client().post("/login/", RIGHT).status_code for _ in range(5)] == [302] * 5
    assert [Client().post("/login/", WRONG).status_code for _ in range(2)] == [400, 400]


# The limits count in fixed windows (up to an hour): a run that crossed a boundary
# would start counting again half-way. It starts at the top of an hour instead.
@pytest.mark.django_db
@time_machine.travel(datetime(2026, 3, 2, 9, 0, 1, tzinfo=UTC), tick=True)
def test_posting_someones_address_from_one_client_does_not_lock_them_out(settings, signup_data):
    """The issue's attack with the real limits: 10 wrong passwords, 3 reset requests and
    10 wrong codes for Ada's address, from one client. Ada, from her own client and a
    browser that never logged in before, still gets in with her password."""
    from config import settings as production
    settings.RATE_LIMITS = production.RATE_LIMITS
    Client(REMOTE_ADDR="198.51.100.1").post("/signup/", signup_data)
    attacker = Client(REMOTE_ADDR="203.0.113.66")
    assert {attacker.post("/login/", WRONG).status_code for _ in range(10)} == {400}
    assert {attacker.post("/password-reset/", {"email": "ada@example.com"}).status_code for _ in range(3)} == {302}
    assert {attacker.post("/login/code/", {"email": "ada@example.com", "code": "1234 5678"}).status_code
            for _ in range(10)} == {400}
    assert attacker.post("/login/", WRONG).status_code == 429  # the attacker's own client is paused

    ada = Client(REMOTE_ADDR="192.0.2.10")
    response = ada.post("/login/", RIGHT)

    assert response.status_code == 302
    assert int(ada.session[SESSION_KEY]) == User.objects.get(email="ada@example.com").pk


@pytest.mark.django_db
def test_many_clients_guessing_pause_new_browsers_but_never_the_persons_own(settings, signup_data):
    failures(settings, "login", per_client=(100, 900), total=(3, 900))
    Client().post("/signup/", signup_data)
    own_browser = Client(REMOTE_ADDR="192.0.2.10")
    assert own_browser.post("/login/", RIGHT).status_code == 302
    own_browser.post("/logout/")
    for n in range(3):
        assert Client(REMOTE_ADDR=f"203.0.113.{n}").post("/login/", WRONG).status_code == 400

    # A browser that never logged in: paused, and the password is not even checked,
    # so a guesser learns nothing from a right guess.
    new_browser = Client(REMOTE_ADDR="203.0.113.99")
    paused = new_browser.post("/login/", RIGHT)
    assert paused.status_code == 429 and SESSION_KEY not in new_browser.session

    # Ada's own browser still gets in with the right password.
    assert own_browser.post("/login/", RIGHT).status_code == 302
    assert SESSION_KEY in own_browser.session


@pytest.mark.django_db
def test_the_pause_page_says_a_known_browser_gets_in_only_when_it_does(settings, signup_data):
    """A person who mistypes their password over and over in their own browser is
    paused there too (their client's failures for the address): the page must not
    tell them a browser they logged in with before can still log in. Only a pause on
    the address's total, which such a browser never meets, may say it."""
    failures(settings, "login", per_client=(3, 900), total=(5, 900))
    Client().post("/signup/", signup_data)
    own_browser = Client(REMOTE_ADDR="192.0.2.10")
    assert own_browser.post("/login/", RIGHT).status_code == 302
    own_browser.post("/logout/")
    assert [own_browser.post("/login/", WRONG).status_code for _ in range(3)] == [400] * 3

    paused = own_browser.post("/login/", RIGHT)

    assert paused.status_code == 429 and SESSION_KEY not in own_browser.session
    page = html.unescape(paused.content.decode())
    assert "A browser you've logged in with before can still log in" not in page
    assert "you can still reset it: the link logs you in" in page

    # Guesses from elsewhere use up the address's total: a new browser is paused, and
    # for it the sentence is true (the person's own browser is not counted against it).
    for n in range(2):
        assert Client(REMOTE_ADDR=f"203.0.113.{n}").post("/login/", WRONG).status_code == 400
    new_browser = Client(REMOTE_ADDR="203.0.113.99")
    paused = new_browser.post("/login/", RIGHT)
    assert paused.status_code == 429
    assert "A browser you've logged in with before can still log in" in html.unescape(paused.content.decode())


@pytest.mark.django_db
def test_a_success_clears_that_clients_failures(settings, signup_data):
    failures(settings, "login", per_client=(3, 900))
    Client().post("/signup/", signup_data)
    person = Client()
    assert [person.post("/login/", WRONG).status_code for _ in range(2)] == [400, 400]
    assert person.post("/login/", RIGHT).status_code == 302
    person.post("/logout/")
    # Without the clear, the third failure would use up the allowance of 3.
    assert [person.post("/login/", WRONG).status_code for _ in range(3)] == [400, 400, 400]
    assert person.post("/login/", WRONG).status_code == 429


@pytest.mark.django_db
def test_wrong_passwords_from_one_client_are_still_limited_per_address(settings, signup_data):
    failures(settings, "login", per_client=(3, 900))
    Client().post("/signup/", signup_data)
    guesser = Client()
    assert [guesser.post("/login/", WRONG).status_code for _ in range(3)] == [400, 400, 400]

    response = guesser.post("/login/", {**RIGHT, "email": "ADA@example.com"})

    assert response.status_code == 429
    assert SESSION_KEY not in guesser.session
    # Another address from the same client is not held up by Ada's allowance.
    other = guesser.post("/login/", {"email": "someone@example.com", "password": "wrong guess 12345"})
    assert other.status_code == 400


@pytest.mark.django_db
def test_signup_lets_a_whole_office_sign_up_from_one_address(settings, signup_data):
    from config import settings as production
    settings.RATE_LIMITS = production.RATE_LIMITS
    statuses = {Client(REMOTE_ADDR="198.51.100.20").post(
        "/signup/", {**signup_data, "email": f"colleague{n}@example.com"}).status_code for n in range(30)}
    assert statuses == {302}
    assert User.objects.filter(email__startswith="colleague").count() == 30
    # The per-address limit still holds.
    assert production.RATE_LIMITS["signup"]["per_email"][0] <= 10


@pytest.mark.django_db
def test_showing_a_form_uses_up_nothing(settings, client):
    limits(settings, "login", ip=(2, 900))
    for _ in range(5):
        assert client.get("/login/").status_code == 200
    for _ in range(2):
        assert client.post("/login/", {"email": "a@example.com", "password": "x"}).status_code == 400
    assert client.post("/login/", {"email": "a@example.com", "password": "x"}).status_code == 429


@pytest.mark.django_db
def test_password_reset_is_limited_per_address_and_a_limited_request_sends_nothing(settings, signup_data):
    limits(settings, "password_reset", email=(2, 3600))
    Client().post("/signup/", signup_data)
    assert [Client().post("/password-reset/", {"email": "ada@example.com"}).status_code
            for _ in range(2)] == [302, 302]
    owed = EmailDelivery.objects.filter(kind=EmailKind.PASSWORD_RESET).count()

    response = Client().post("/password-reset/", {"email": "Ada@Example.com"})

    assert response.status_code == 429
    assert EmailDelivery.objects.filter(kind=EmailKind.PASSWORD_RESET).count() == owed


@pytest.mark.django_db
def test_resend_is_limited_per_account(settings, signup_data):
    limits(settings, "resend", email=(2, 3600))
    client, account = logged_in_account(signup_data)
    assert [client.post("/setup/resend/").status_code for _ in range(3)] == [302, 302, 429]


@pytest.mark.django_db
def test_correcting_the_address_is_limited_and_a_limited_request_changes_nothing(settings, signup_data):
    limits(settings, "change_email", ip=(2, 3600))
    client, account = logged_in_account(signup_data)
    assert client.post("/setup/email/", {"email": "ada1@example.com"}).status_code == 302
    assert client.post("/setup/email/", {"email": "ada2@example.com"}).status_code == 302
    queued = EmailDelivery.objects.filter(kind=EmailKind.VERIFICATION).count()

    response = client.post("/setup/email/", {"email": "ada3@example.com"})

    assert response.status_code == 429
    account.refresh_from_db()
    assert account.email == "ada2@example.com"
    assert EmailDelivery.objects.filter(kind=EmailKind.VERIFICATION).count() == queued


@pytest.mark.django_db
def test_the_count_starts_again_in_the_next_window():
    key = f"test:{uuid.uuid4().hex}"
    assert [ratelimit.hit(key, 1, 3600) for _ in range(2)] == [True, False]
    stored = ratelimit.counter_key(key)
    # An hour passes: the counted window is now the previous one.
    RateLimitCounter.objects.filter(key=stored).update(window_start=F("window_start") - 3600)

    assert ratelimit.hit(key, 1, 3600) is True
    assert RateLimitCounter.objects.filter(key=stored).count() == 2


@pytest.mark.django_db
def test_views_without_the_decorator_limit_with_the_same_counters_and_page(settings, rf):
    """/help/ and /login/code/ call limit() and too_many_requests() directly."""
    limits(settings, "help", email=(1, 3600))
    request = rf.post("/help/", {"email": "ada@example.com"})

    assert ratelimit.limit(request, "help", email="ada@example.com") is None
    retry_after = ratelimit.limit(request, "help", email="ADA@example.com")
    response = ratelimit.too_many_requests(request, retry_after)

    assert 0 < retry_after <= 3600
    assert response.status_code == 429 and response["Retry-After"] == str(retry_after)
    page = response.content.decode()
    assert "Paused: please try again" in page and "Nothing from this attempt was sent or saved" in page
    assert "paused this form" in page


# --- Which client address counts ----------------------------------------------------------

@pytest.mark.django_db
def test_forwarded_for_is_ignored_unless_trusted(settings):
    settings.TRUST_X_FORWARDED_FOR = False
    limits(settings, "login", ip=(2, 900))
    statuses = [Client(HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").post("/login/", {"email": "a@example.com"}).status_code
                for n in range(3)]
    # Made-up X-Forwarded-For headers do not buy a fresh allowance.
    assert statuses == [400, 400, 429]


@pytest.mark.django_db
def test_trusted_forwarded_for_counts_the_entry_our_proxy_appended(settings):
    settings.TRUST_X_FORWARDED_FOR = True
    limits(settings, "login", ip=(2, 900))

    def post(forwarded: str) -> int:
        return Client(HTTP_X_FORWARDED_FOR=forwarded).post("/login/", {"email": "a@example.com"}).status_code

    # The client forges the left-hand entries; our proxy appends the real address.
    assert [post(f"10.9.9.{n}, 198.51.100.7") for n in range(3)] == [400, 400, 429]
    assert post("198.51.100.7, 198.51.100.8") == 400  # another real client, its own allowance


def test_ipv6_clients_are_counted_per_64_and_ipv4_mapped_as_ipv4(rf, settings):
    settings.TRUST_X_FORWARDED_FOR = False
    assert ratelimit.client_ip(rf.get("/", REMOTE_ADDR="2001:db8:1:2:aaaa::1")) == "2001:db8:1:2::/64"
    assert ratelimit.client_ip(rf.get("/", REMOTE_ADDR="2001:db8:1:2:bbbb::9")) == "2001:db8:1:2::/64"
    assert ratelimit.client_ip(rf.get("/", REMOTE_ADDR="::ffff:192.0.2.5")) == "192.0.2.5"


@pytest.mark.django_db
def test_counters_hold_no_address_in_clear_and_any_key_fits(settings):
    failures(settings, "login", per_client=(5, 900), total=(5, 900))
    Client().post("/login/", {"email": "ada@example.com", "password": "x"})
    assert ratelimit.hit("help:email:" + "a" * 240 + "@example.com", 1, 60)  # a caller's own long key
    keys = list(RateLimitCounter.objects.values_list("key", flat=True))
    assert len(keys) == 4  # login per client, its failures per address and client and per address; help
    assert not any("ada" in key or "127.0.0.1" in key or "aaaa" in key for key in keys)
    assert {key.split(":")[0] for key in keys} == {"login", "help"}


# --- Shared across processes ----------------------------------------------------------------

def _hammer(args: tuple[str, int, int]) -> int:
    """Run in a child process: ``tries`` hits on one key; returns how many were allowed."""
    key, tries, limit = args
    try:
        return sum(ratelimit.hit(key, limit, 3600) for _ in range(tries))
    finally:
        connections.close_all()


def _hammer_from_processes(key: str, *, processes: int, tries: int, limit: int) -> int:
    connections.close_all()  # children must open their own connections
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return sum(pool.map(_hammer, [(key, tries, limit)] * processes))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_database_counter_is_exact_across_four_processes():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: an in-memory SQLite database cannot be shared between processes")
    key = f"test:{uuid.uuid4().hex}"

    allowed = _hammer_from_processes(key, processes=4, tries=30, limit=50)

    assert RateLimitCounter.objects.get(key=ratelimit.counter_key(key)).count == 120
    assert allowed == 50


@pytest.fixture
def redis_limits(settings):
    """Count in the real Redis at 127.0.0.1:6379 (database 15), or skip saying why.
    Keys carry a fresh prefix or client address per test, so runs never share counts."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({error}); the Redis counter is untested here")
    settings.REDIS_URL = REDIS_URL
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": REDIS_URL}}
    prefix = f"test-{uuid.uuid4().hex}"
    yield client, prefix
    for name in client.scan_iter(f"ratelimit:{prefix}*"):
        client.delete(name)


@pytest.mark.django_db
def test_redis_counts_with_an_expiry_and_writes_nothing_to_the_database(redis_limits):
    client, prefix = redis_limits
    key = f"{prefix}:single"

    assert [ratelimit.hit(key, 3, 60) for _ in range(4)] == [True, True, True, False]

    (name,) = list(client.scan_iter(f"ratelimit:{ratelimit.counter_key(key)}:*"))
    assert int(client.get(name)) == 4
    assert 0 < client.ttl(name) <= 60 + ratelimit._SWEEP_GRACE_SECONDS
    assert not RateLimitCounter.objects.exists()


@pytest.mark.django_db
def test_redis_limits_a_view_like_the_database_does(settings, redis_limits):
    limits(settings, "login", ip=(2, 900))
    address = f"198.18.{random.randrange(256)}.{random.randrange(256)}"  # our own allowance this run
    statuses = [Client(REMOTE_ADDR=address).post("/login/", {"email": f"{uuid.uuid4().hex}@example.com"})
                .status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    assert not RateLimitCounter.objects.exists()


@pytest.mark.django_db
def test_redis_counter_is_exact_across_four_processes(redis_limits):
    client, prefix = redis_limits
    key = f"{prefix}:shared"

    allowed = _hammer_from_processes(key, processes=4, tries=30, limit=50)

    (name,) = list(client.scan_iter(f"ratelimit:{ratelimit.counter_key(key)}:*"))
    assert int(client.get(name)) == 120
    assert allowed == 50


@pytest.mark.django_db
def test_unreachable_redis_falls_back_to_the_database_and_still_limits(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    key = f"test:{uuid.uuid4().hex}"
    assert [ratelimit.hit(key, 2, 60) for _ in range(3)] == [True, True, False]
    assert RateLimitCounter.objects.get(key=ratelimit.counter_key(key)).count == 3


@pytest.mark.django_db
def test_unreachable_redis_still_pauses_failures_and_clears_them_on_success_in_the_database(settings, signup_data):
    """The failure counters' reads (paused yet?) and clears (a success) fall back to
    the database too, like the counting."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    failures(settings, "login", per_client=(2, 900))
    Client().post("/signup/", signup_data)
    person = Client()
    assert person.post("/login/", WRONG).status_code == 400
    assert person.post("/login/", RIGHT).status_code == 302  # clears this client's failure
    person.post("/logout/")
    assert [person.post("/login/", WRONG).status_code for _ in range(3)] == [400, 400, 429]
    assert RateLimitCounter.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("step", ["count", "read", "clear"])
def test_a_malformed_redis_url_is_not_mistaken_for_an_outage(settings, signup_data, step):
    """Only Redis's own errors (its connection and timeout errors included) fall back
    to the database; a configuration error surfaces instead of being ridden out."""
    settings.REDIS_URL = "mysql://127.0.0.1/0"  # not a Redis URL: redis-py raises ValueError
    ratelimit._redis_client.cache_clear()
    key = f"test:{uuid.uuid4().hex}"
    call = {"count": lambda: ratelimit._count(key, 60), "read": lambda: ratelimit._peek(key, 60),
            "clear": lambda: ratelimit._forget(key, 60)}[step]
    with pytest.raises(ValueError):
        call()
    assert not RateLimitCounter.objects.exists()


@pytest.mark.django_db
def test_redis_counts_login_failures_and_a_success_clears_that_clients(settings, signup_data):
    """The failure counters (read without counting, cleared on success) in the real
    Redis, database 5; skipped, saying why, when Redis is not reachable."""
    import redis

    url = "redis://127.0.0.1:6379/5"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis is not reachable at {url} ({error})")
    settings.REDIS_URL = url
    failures(settings, "login", per_client=(2, 900))
    Client().post("/signup/", signup_data)
    person = Client(REMOTE_ADDR=f"198.18.{random.randrange(256)}.{random.randrange(256)}")
    assert person.post("/login/", WRONG).status_code == 400
    assert person.post("/login/", RIGHT).status_code == 302  # clears this client's failure
    person.post("/logout/")
    assert [person.post("/login/", WRONG).status_code for _ in range(3)] == [400, 400, 429]
    assert not RateLimitCounter.objects.exists()  # counted in Redis only
