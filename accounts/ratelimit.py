"""A small fixed-window rate limiter on Django's cache, and the page a limited
request gets.

Limits are declared per action in ``settings.RATE_LIMITS`` (requests per window, per
client address and per email address). The counter is one ``cache.incr`` per
request: atomic on Redis (``REDIS_URL``), so the limit holds across every web
process; on the default LocMem cache it is atomic but per process, so with several
processes each enforces its own count (a documented limitation until limits move to
a shared store everywhere). Keys are hashed, so no address is kept in the cache.
"""
from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from accounts.messages import RATE_LIMITED, in_seconds_words


def _bucket(key: str, window_seconds: int, now: float) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"rl:{digest}:{window_seconds}:{int(now // window_seconds)}"


def hit(key: str, limit: int, window_seconds: int) -> bool:
    """Count one request against ``key``. True while the count in the current window
    of ``window_seconds`` is within ``limit``; False once it is over."""
    name = _bucket(key, window_seconds, time.time())
    cache.add(name, 0, timeout=window_seconds + 1)
    try:
        count = cache.incr(name)
    except ValueError:  # the window expired between add() and incr()
        cache.add(name, 1, timeout=window_seconds + 1)
        count = 1
    return count <= limit


def seconds_left(window_seconds: int, *, now: float | None = None) -> int:
    """Seconds until the current window ends (when a limited client may try again)."""
    now = time.time() if now is None else now
    return max(1, math.ceil(window_seconds - (now % window_seconds)))


def client_ip(request: HttpRequest) -> str:
    """The client's address. X-Forwarded-For is spoofable, so it is read only when
    TRUST_X_FORWARDED_FOR says one proxy we run sits in front; we take the last
    entry, the one that proxy appended."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def limit(request: HttpRequest, action: str, *, email: str = "") -> int | None:
    """Count this request for ``action`` per client address and, if given, per email
    address. Returns None when allowed, else the seconds until it may try again."""
    rules = settings.RATE_LIMITS[action]
    checks = [("ip", client_ip(request), rules["per_ip"])]
    if email:
        checks.append(("email", email.strip().lower(), rules["per_email"]))
    for scope, value, (count, window) in checks:
        if not hit(f"{action}:{scope}:{value}", count, window):
            return seconds_left(window)
    return None


def too_many_requests(request: HttpRequest, retry_after: int) -> HttpResponse:
    """HTTP 429 in the product's voice, with Retry-After."""
    body = render_to_string("429.html", {"entry": RATE_LIMITED,
                                         "when": in_seconds_words(retry_after)}, request=request)
    response = HttpResponse(body, status=429)
    response["Retry-After"] = str(retry_after)
    return response
