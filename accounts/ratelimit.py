"""Rate limits, declared per action in ``settings.RATE_LIMITS``: at most ``limit``
requests per client address and per email address in a fixed window of ``seconds``.
Views opt in with a decorator::

    @rate_limited("help", email_field="email")
    def help_view(request): ...

A limited request gets HTTP 429, a page in our words and a ``Retry-After`` header.
Only the methods named (POST by default) count, so showing a form never uses up
anyone's allowance.

The counters live in Django's cache, one ``incr`` per request: atomic and shared by
every process on Redis (``REDIS_URL``); on the default LocMem cache each process
counts on its own, so with N processes a client gets up to N times the limit.
Keys are hashed, so no address is kept in the cache. Fixed windows let up to twice
the limit through around a window boundary: enough to stop guessing and flooding,
not a precise meter. Per-email limits count every address typed, registered or not,
so being limited reveals nothing about who has an account.
"""
from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.crypto import salted_hmac

from accounts import messages as words
from accounts.models import normalize_email


@dataclass(frozen=True)
class Limited:
    """A refused request: which action, and how many seconds until it opens again."""

    action: str
    retry_after: int


def hit(key: str, limit: int, window_seconds: int) -> bool:
    """Count one request for ``key`` (any string, e.g. ``"help:email:ada@example.com"``)
    in the current window. True if it is within ``limit`` (allowed), False if the
    limit is used up."""
    now = time.time()
    digest = salted_hmac("accounts.ratelimit", key, algorithm="sha256").hexdigest()[:40]
    name = f"ratelimit:{key.split(':', 1)[0][:48]}:{digest}:{int(now // window_seconds)}"
    cache.add(name, 0, timeout=window_seconds + 60)
    try:
        count = cache.incr(name)
    except ValueError:  # the window's counter expired between add() and incr()
        cache.add(name, 1, timeout=window_seconds + 60)
        count = 1
    return count <= limit


def seconds_left(window_seconds: int, *, now: float | None = None) -> int:
    """Whole seconds until the current window ends (at least 1)."""
    now = time.time() if now is None else now
    return max(1, math.ceil(window_seconds - (now % window_seconds)))


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
        if not hit(f"{action}:{scope}:{value}", allowed, window_seconds):
            return Limited(action=action, retry_after=seconds_left(window_seconds))
    return None


def limit(request: HttpRequest, action: str, *, email: str = "") -> int | None:
    """Count this request for ``action`` per client address and, if given, per email
    address. None when allowed, else the seconds until it may try again. For views
    that cannot take the decorator; pair it with ``too_many_requests``."""
    limited = check(action, address=client_ip(request), email=email)
    return None if limited is None else limited.retry_after


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, unless TRUST_X_FORWARDED_FOR says exactly one proxy of ours sits in
    front: then the right-most X-Forwarded-For entry, the one that proxy appended
    (entries to its left come from the client and can be forged)."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
        if forwarded:
            return forwarded[:64]
    return request.META.get("REMOTE_ADDR", "")[:64]


def rate_limited(action: str, *, email_field: str | None = None,
                 email_of: Callable[[HttpRequest], str] | None = None,
                 methods: tuple[str, ...] = ("POST",)):
    """Limit a view by ``settings.RATE_LIMITS[action]``: per client address, and per
    email address read from the POSTed ``email_field`` (or computed by ``email_of``)."""
    def decorator(view):
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method in methods:
                email = email_of(request) if email_of else request.POST.get(email_field, "") if email_field else ""
                retry_after = limit(request, action, email=email)
                if retry_after is not None:
                    return too_many_requests(request, retry_after, action=action)
            return view(request, *args, **kwargs)
        return wrapped
    return decorator


def too_many_requests(request: HttpRequest, retry_after: int, *, action: str = "") -> HttpResponse:
    """HTTP 429 with our page (what was paused, when to try again, how to reach us)
    and Retry-After in seconds."""
    entry = words.RATE_LIMITED
    when = words.in_seconds_words(retry_after)
    what = words.RATE_LIMITED_WHAT.get(action, words.RATE_LIMITED_WHAT[""])
    response = render(request, "429.html", {
        "entry": entry,
        "happened": str(entry.happened).format(what=what),
        "next": str(entry.next).format(when=when),
        "action": str(entry.action).format(reply_hours=settings.SUPPORT_REPLY_HOURS,
                                           support_email=settings.SUPPORT_EMAIL),
        "support_email": settings.SUPPORT_EMAIL,
    }, status=429)
    response["Retry-After"] = str(retry_after)
    add_never_cache_headers(response)
    return response
