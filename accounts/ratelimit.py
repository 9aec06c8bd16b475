"""Rate limits, declared per action in ``settings.RATE_LIMITS`` and shared by every
process.

Each action (signup, login, password_reset, resend, change_email, help, login_code)
is limited per client address (``per_ip``) and per email address (``per_email``): at
most so many requests in a fixed window of so many seconds. Views opt in with a
decorator::

    @rate_limited("login", email_field="email")
    def login_view(request): ...

or, where a decorator does not fit, ``limit(request, action, email=...)`` and
``too_many_requests(request, retry_after, action=...)``.

A limited request gets HTTP 429, a page in our words (nothing was lost, when to try
again, how to reach us) and a ``Retry-After`` header. Only the methods named (POST by
default) count, so showing a form never uses up anyone's allowance.

Where the counters live, and what each mechanism can and cannot do:

- **Redis** (``REDIS_URL`` set): ``INCR`` and ``EXPIREAT`` in one MULTI transaction per
  key. Atomic and shared by every web process. If Redis cannot be reached we count in
  the database instead (and log it), rather than let everything through or refuse
  everyone.
- **Database** (no Redis): one row per (key, window), counted with one upsert,
  ``INSERT ... ON CONFLICT (key, window_start) DO UPDATE SET count = count + 1
  RETURNING count``: the first request of a window inserts the row, every later one
  (and a racing first one) adds to it. Exact across processes on PostgreSQL and on
  SQLite (whose writers serialise). Each key's upsert is a transaction of its own,
  sent in one round trip to the database that also serves signups, and a row per key
  and window until it is swept (by each process about once a minute). On PostgreSQL
  that commit does not wait for the disk (``provisioning.transactions``): a crash of
  PostgreSQL itself can forget the counts of its last moments, which lets a few more
  requests through, never fewer.
  Django's LocMem cache would count per process, and its DatabaseCache ``incr`` is not
  atomic (DESIGN), hence a table of our own.
- **Fixed windows**: a client can get up to twice the limit through in a short time
  around a window boundary (the end of one window, the start of the next). Enough to stop password
  guessing and email flooding; not a precise meter. A limited request still counts,
  but the window does not move, so hammering never lengthens the wait.
- **Per-email limits** count every address typed, registered or not, so being limited
  reveals nothing about who has an account. The trade-off: someone who knows an
  address can use up its allowance for one action and make its owner wait for up to
  one window. That is acceptable for actions that only send something to the
  address (reset links, confirmation links, /help/), never for signing in.
- **Signing in counts failures, not successes** (``failures_per_email_and_ip``,
  ``failures_per_email``; ``failures_paused``, ``failure_record``,
  ``success_record``). A correct password or code never uses up anything, so nobody
  can lock a person out by posting their address. Failures are bounded twice:
  per address *and* client address (always: one attacker pauses only their own
  client), and per address over all clients (the bound on guessing from many
  addresses), which pauses only browsers that have never signed in to that address:
  a browser that has carries a signed cookie (``remember_device``) and is let
  through to the password check. So the right password always works from the
  person's own browser and from any client the attacker is not on; a new browser
  during a distributed attack waits like everyone else (OWASP's "device cookies").
  A success clears that client's failures for the address, not the address's total:
  one success proves nothing about the other clients' guesses.
- **Keys** are stored as their first part (the action) and an HMAC keyed with
  SECRET_KEY (``counter_key``): neither Redis nor the table holds an email or client
  address in clear. Rotating SECRET_KEY starts every count afresh.

The client address is ``REMOTE_ADDR``, unless ``TRUST_X_FORWARDED_FOR`` is set: then it
is the *right-most* ``X-Forwarded-For`` entry, the one our own proxy appended (the
address that connected to it). Entries to its left come from the client and can be
forged. This assumes exactly one proxy of ours in front of the app; never set it
when clients reach the app directly, or anyone can pick their own address. IPv6
clients are counted per /64, since one host usually holds a whole /64.
"""
from __future__ import annotations

import functools
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.crypto import salted_hmac

from accounts import messages as words
from accounts.models import RateLimitCounter, normalize_email
from provisioning.transactions import execute_without_waiting_for_disk

logger = logging.getLogger(__name__)

# Keep expired rows this long past their window, so a request counted at the very
# end of a window never finds its row swept from under it.
_SWEEP_GRACE_SECONDS = 60


@dataclass(frozen=True)
class Limited:
    """A refused request: which action, and how many seconds until it opens again."""

    action: str
    retry_after: int


def hit(key: str, limit: int, window_seconds: int) -> bool:
    """Count one request for ``key`` (any string, e.g. ``"help:email:ada@example.com"``)
    in the current window. True if it is within ``limit`` (allowed), False if the
    limit is used up. The key is stored as ``counter_key(key)``, never in clear.
    Redis errors fall back to the database."""
    return _count(counter_key(key), window_seconds) <= limit


def counter_key(key: str) -> str:
    """The name a key is counted under: its first ``:``-separated part, kept for
    people reading the counters, then an HMAC (keyed with SECRET_KEY) of the whole
    key, so no address is stored in clear and any key fits the column."""
    digest = salted_hmac("accounts.ratelimit", key, algorithm="sha256").hexdigest()[:40]
    return f"{key.split(':', 1)[0][:48]}:{digest}"


def seconds_left(window_seconds: int, *, now: float | None = None) -> int:
    """Whole seconds until the current window ends (at least 1)."""
    now = time.time() if now is None else now
    return max(1, math.ceil(_window_start(window_seconds, now) + window_seconds - now))


def check(action: str, *, address: str = "", email: str = "") -> Limited | None:
    """Count a request for ``action`` from ``address`` about ``email`` (either may be
    empty) and say whether it must be refused. The client address is counted first;
    a request refused for it does not also use up the email's allowance."""
    rules = settings.RATE_LIMITS.get(action) or {}
    for scope, value in (("ip", address), ("email", normalize_email(email or "")[:320])):
        rule = rules.get(f"per_{scope}")
        if not (rule and value):
            continue
        allowed, window_seconds = rule
        if not hit(_key(action, scope, value), allowed, window_seconds):
            return Limited(action=action, retry_after=seconds_left(window_seconds))
    return None


# --- Sign-in: failures counted, successes free -------------------------------------------

# A browser that signed in to an address carries this cookie: a keyed hash of the
# address, signed, so it proves nothing to anyone but us and names no address.
KNOWN_DEVICE_COOKIE = "known_device"
_KNOWN_DEVICE_SALT = "accounts.ratelimit.known_device"
KNOWN_DEVICE_SECONDS = 180 * 24 * 3600


def failures_paused(request: HttpRequest, action: str, *, email: str) -> int | None:
    """Seconds until this client may try ``action`` for ``email`` again, if its failures
    are used up; None if it may try. Counts nothing: call before checking the
    password, so a paused client learns nothing from it."""
    pause = failures_pause(request, action, email=email)
    return None if pause is None else pause.retry_after


def failures_pause(request: HttpRequest, action: str, *, email: str) -> FailuresPause | None:
    """``failures_paused``, also saying which bound paused this client: only a pause
    on the address's total (``new_browsers_only``) spares a browser that signed in to
    it before, so only then may the page say so."""
    rules = settings.RATE_LIMITS.get(action) or {}
    for scope, key in _failure_keys(request, action, email):
        rule = rules.get(scope)
        if rule and _peek(counter_key(key), rule[1]) >= rule[0]:
            return FailuresPause(retry_after=seconds_left(rule[1]),
                                 new_browsers_only=scope == "failures_per_email")
    return None


@dataclass(frozen=True)
class FailuresPause:
    retry_after: int  # seconds
    # Paused by the address's total over every client, which a browser that signed in
    # to the address before never counts against (``_failure_keys``); False when this
    # client's own failures for the address are used up, which pause it whatever it is.
    new_browsers_only: bool


def failure_record(request: HttpRequest, action: str, *, email: str) -> None:
    """Count one failed attempt (wrong password or code) for ``email`` from this client."""
    rules = settings.RATE_LIMITS.get(action) or {}
    for scope, key in _failure_keys(request, action, email, known=False):
        if rule := rules.get(scope):
            _count(counter_key(key), rule[1])


def success_record(request: HttpRequest, response: HttpResponse, action: str, *, email: str) -> None:
    """A correct password or code: forget this client's failures for the address (not
    the address's total, see the module docstring) and remember this browser, so a
    later attack on the address never pauses it."""
    rules = settings.RATE_LIMITS.get(action) or {}
    rule = rules.get("failures_per_email_and_ip")
    if rule:
        _forget(counter_key(_failure_keys(request, action, email)[0][1]), rule[1])
    response.set_signed_cookie(
        KNOWN_DEVICE_COOKIE, _device_mark(email), salt=_KNOWN_DEVICE_SALT, max_age=KNOWN_DEVICE_SECONDS,
        secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax")


def _device_mark(email: str) -> str:
    return salted_hmac(_KNOWN_DEVICE_SALT, normalize_email(email)).hexdigest()[:32]


def _known_device(request: HttpRequest, email: str) -> bool:
    mark = request.get_signed_cookie(KNOWN_DEVICE_COOKIE, default=None, salt=_KNOWN_DEVICE_SALT,
                                     max_age=KNOWN_DEVICE_SECONDS)
    return mark is not None and mark == _device_mark(email)


def _failure_keys(request: HttpRequest, action: str, email: str, *, known: bool | None = None) -> list[tuple[str, str]]:
    """The failure counters that apply to this request: always the (address, client)
    one; the address's total only for a browser that never signed in to it."""
    email = normalize_email(email or "")[:320]
    keys = [("failures_per_email_and_ip", f"{action}:failed:{email}:{client_ip(request)}")]
    if not (_known_device(request, email) if known is None else known):
        keys.append(("failures_per_email", f"{action}:failed:{email}"))
    return keys


def limit(request: HttpRequest, action: str, *, email: str = "") -> int | None:
    """Count this request for ``action`` per client address and, if given, per email
    address. None when allowed, else the seconds until it may try again. For views
    that cannot take the decorator; pair it with ``too_many_requests``."""
    limited = check(action, address=client_ip(request), email=email)
    return None if limited is None else limited.retry_after


def client_ip(request: HttpRequest) -> str:
    """The address we count a request against (see the module docstring for which
    X-Forwarded-For entry is trusted, and when)."""
    address = request.META.get("REMOTE_ADDR", "")
    if settings.TRUST_X_FORWARDED_FOR:
        appended_by_our_proxy = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
        if _parse(appended_by_our_proxy) is not None:
            address = appended_by_our_proxy
    ip = _parse(address)
    if ip is None:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def rate_limited(action: str, *, email_field: str | None = None,
                 email_of: Callable[[HttpRequest], str] | None = None,
                 methods: tuple[str, ...] = ("POST",)):
    """Limit a view by ``settings.RATE_LIMITS[action]``: per client address, and per
    email address read from the POSTed ``email_field`` (or computed by ``email_of``,
    e.g. the logged-in person's address). Place it inside ``login_required`` so
    anonymous requests are redirected, not counted. CSRF is checked before the view
    runs, so forged requests count for nothing."""
    if action not in settings.RATE_LIMITS:
        raise ImproperlyConfigured(f"RATE_LIMITS has no entry for {action!r}; add one (or {{}} for none).")

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method in methods:
                email = ""
                if email_of is not None:
                    email = email_of(request)
                elif email_field:
                    email = request.POST.get(email_field, "")
                retry_after = limit(request, action, email=email)
                if retry_after is not None:
                    return too_many_requests(request, retry_after, action=action)
            return view(request, *args, **kwargs)
        return wrapped
    return decorator


def paused_words(retry_after: int, *, action: str = "", kept_as: str = "") -> dict[str, str]:
    """The 429's words for ``action``: title and wait agree (both say when), what was
    and wasn't kept (``RATE_LIMITED_KEPT[kept_as or action]``), and how to reach a
    person without the paused form."""
    entry = words.RATE_LIMITED
    when = words.in_seconds_words(retry_after)
    what = words.RATE_LIMITED_WHAT.get(action, words.RATE_LIMITED_WHAT[""])
    contact = words.RATE_LIMITED_ACTION_PHONE if settings.SUPPORT_PHONE else entry.action
    return {
        "title": str(entry.title).format(when=when),
        "happened": str(entry.happened).format(what=what),
        "kept": str(words.RATE_LIMITED_KEPT.get(kept_as or action, words.RATE_LIMITED_KEPT[""])).format(when=when),
        "next": str(entry.next).format(when=when),
        "action": str(contact).format(reply_hours=settings.SUPPORT_REPLY_HOURS, support_email=settings.SUPPORT_EMAIL,
                                      support_phone=settings.SUPPORT_PHONE),
    }


def paused(response: HttpResponse, retry_after: int) -> HttpResponse:
    """Mark a rendered response as a 429: Retry-After in seconds, never cached."""
    response.status_code = 429
    response["Retry-After"] = str(retry_after)
    add_never_cache_headers(response)
    return response


def too_many_requests(request: HttpRequest, retry_after: int, *, action: str = "",
                      kept_as: str = "") -> HttpResponse:
    """HTTP 429 with our page (what was paused, what was kept, when to try again, how to
    reach a person: email and, when published, phone; /help/ only when it is not the
    paused form) and Retry-After in seconds. ``kept_as`` picks other words for what
    was kept than ``action``'s (``paused_words``)."""
    return paused(render(request, "429.html", {
        "paused": paused_words(retry_after, action=action, kept_as=kept_as),
        "offer_help_form": action not in ("help", "callback"),
    }), retry_after)


# --- Counting -----------------------------------------------------------------------

def _key(action: str, scope: str, value: str) -> str:
    return f"{action}:{scope}:{value}"


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _window_start(window_seconds: int, now: float) -> int:
    return int(now // window_seconds * window_seconds)


def _count(key: str, window_seconds: int) -> int:
    """Add one to the key's counter for the current window; return the new count."""
    window_start = _window_start(window_seconds, time.time())
    if settings.REDIS_URL:
        try:
            return _count_in_redis(key, window_start, window_seconds)
        # redis-py raises its own ConnectionError/TimeoutError (RedisError) for socket
        # failures too. Anything else (a malformed REDIS_URL, a bug) is not an outage
        # to ride out in the database: it surfaces.
        except redis.RedisError as error:
            logger.warning("rate limit: Redis unavailable (%s); counting in the database", error)
    return _count_in_database(key, window_start, window_seconds)


def _peek(key: str, window_seconds: int) -> int:
    """The key's count in the current window, without adding to it."""
    window_start = _window_start(window_seconds, time.time())
    if settings.REDIS_URL:
        try:
            return int(_redis_client(settings.REDIS_URL).get(f"ratelimit:{key}:{window_start}") or 0)
        except redis.RedisError as error:  # as in _count
            logger.warning("rate limit: Redis unavailable (%s); reading the database", error)
    return (RateLimitCounter.objects.filter(key=key, window_start=window_start)
            .values_list("count", flat=True).first() or 0)


def _forget(key: str, window_seconds: int) -> None:
    """Drop the key's count in the current window."""
    window_start = _window_start(window_seconds, time.time())
    if settings.REDIS_URL:
        try:
            _redis_client(settings.REDIS_URL).delete(f"ratelimit:{key}:{window_start}")
            return
        except redis.RedisError as error:  # as in _count
            logger.warning("rate limit: Redis unavailable (%s); clearing in the database", error)
    RateLimitCounter.objects.filter(key=key, window_start=window_start).delete()


@functools.lru_cache(maxsize=4)
def _redis_client(url: str):
    # Short timeouts: a slow Redis must not hold up a login for long.
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def _count_in_redis(key: str, window_start: int, window_seconds: int) -> int:
    name = f"ratelimit:{key}:{window_start}"
    pipe = _redis_client(settings.REDIS_URL).pipeline(transaction=True)
    pipe.incr(name)
    pipe.expireat(name, window_start + window_seconds + _SWEEP_GRACE_SECONDS)
    count, _ = pipe.execute()
    return int(count)


def _count_in_database(key: str, window_start: int, window_seconds: int) -> int:
    expires_at = datetime.fromtimestamp(window_start + window_seconds + _SWEEP_GRACE_SECONDS, tz=UTC)
    if connection.vendor in ("postgresql", "sqlite") and connection.features.can_return_columns_from_insert:
        count = _upsert(key, window_start, expires_at)
    else:
        count = _increment_or_insert(key, window_start, expires_at)
    _sweep_now_and_then()
    return count


# When this process next drops the rows of windows that are over (time.monotonic()).
_next_sweep = 0.0


def _sweep_now_and_then() -> None:
    """Drop the rows of windows that are over (indexed on expires_at), at most once
    per ``_SWEEP_GRACE_SECONDS`` in each process: every new key opens a row (each
    signup's address does), and one DELETE per request would cost each signup a
    statement to remove what a DELETE a minute removes as well. The table then holds
    at most the rows of a window, its grace and one more minute, whichever process
    sweeps. Its commit need not wait for the disk, like the counts'."""
    global _next_sweep
    if time.monotonic() < _next_sweep:
        return
    _next_sweep = time.monotonic() + _SWEEP_GRACE_SECONDS
    table = connection.ops.quote_name(RateLimitCounter._meta.db_table)
    execute_without_waiting_for_disk(f"DELETE FROM {table} WHERE {connection.ops.quote_name('expires_at')} < %s",
                                     [connection.ops.adapt_datetimefield_value(timezone.now())])


def _upsert(key: str, window_start: int, expires_at: datetime) -> int:
    """Add one to the key's row for this window, creating it at 1, in one statement
    (PostgreSQL; SQLite >= 3.35): each request learns its own exact position, so
    exactly ``limit`` requests per window get through. On PostgreSQL the statement
    commits on its own, in one round trip, without waiting for the disk
    (``provisioning.transactions``): a crash of PostgreSQL itself can forget the
    counts of its last moments, which lets a few more requests through, never fewer."""
    qn = connection.ops.quote_name
    table = qn(RateLimitCounter._meta.db_table)
    count = qn("count")
    (new_count,) = execute_without_waiting_for_disk(  # table and column names are ours; values are parameters
        f"INSERT INTO {table} ({qn('key')}, {qn('window_start')}, {count}, {qn('expires_at')}) "
        f"VALUES (%s, %s, 1, %s) ON CONFLICT ({qn('key')}, {qn('window_start')}) "
        f"DO UPDATE SET {count} = {table}.{count} + 1 RETURNING {count}",
        [key, window_start, connection.ops.adapt_datetimefield_value(expires_at)])
    return new_count


def _increment_or_insert(key: str, window_start: int, expires_at: datetime) -> int:
    """Older databases: increment, then read (the read may include others'
    increments, which only errs on the side of refusing); the first request of a
    window inserts the row, and a racing insert loses to the unique constraint and
    increments instead."""
    rows = RateLimitCounter.objects.filter(key=key, window_start=window_start)
    if rows.update(count=F("count") + 1):
        return rows.values_list("count", flat=True).first() or 1
    try:
        with transaction.atomic():
            RateLimitCounter.objects.create(key=key, window_start=window_start, count=1, expires_at=expires_at)
        return 1
    except IntegrityError:  # another process opened this window first
        rows.update(count=F("count") + 1)
        return rows.values_list("count", flat=True).first() or 1
