"""Rate limits (accounts.ratelimit): what a person sees when limited, which requests
count, which client address is trusted, and that the counters hold across
processes on the database and on Redis."""
from __future__ import annotations

import multiprocessing
import random
import re
import uuid

import pytest
from django.contrib.auth import SESSION_KEY
from django.db import connection, connections
from django.db.models import F
from django.test import Client

from accounts import messages as words
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
    page = response.content.decode()
    assert str(words.RATE_LIMITED.title) in page
    assert "Nothing was lost" in page
    assert re.search(r"Please try again in (about \d+ minutes?|under a minute|about \d+ hours?)", page)
    assert f"mailto:{settings.SUPPORT_EMAIL}" in page
    assert not User.objects.filter(email="third@example.com").exists()


@pytest.mark.django_db
def test_login_is_limited_per_address_typed_even_with_the_right_password(settings, signup_data):
    limits(settings, "login", email=(3, 900))
    Client().post("/signup/", signup_data)
    wrong = {"email": "ada@example.com", "password": "wrong guess 12345"}
    assert [Client().post("/login/", wrong).status_code for _ in range(3)] == [400, 400, 400]

    blocked = Client()
    response = blocked.post("/login/", {"email": "ADA@example.com", "password": PASSWORD})

    assert response.status_code == 429
    assert SESSION_KEY not in blocked.session
    # Another address from the same client is not held up by Ada's allowance.
    other = Client().post("/login/", {"email": "someone@example.com", "password": "wrong guess 12345"})
    assert other.status_code == 400


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
    assert "Please wait a moment" in page and "Nothing was sent or saved" in page
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
    limits(settings, "login", ip=(5, 900), email=(5, 900))
    Client().post("/login/", {"email": "ada@example.com", "password": "x"})
    assert ratelimit.hit("help:email:" + "a" * 240 + "@example.com", 1, 60)  # a caller's own long key
    keys = list(RateLimitCounter.objects.values_list("key", flat=True))
    assert len(keys) == 3
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
