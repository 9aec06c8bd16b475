"""Request-wide concerns: who a log line belongs to, and a truthful answer when our
own database is down."""
from __future__ import annotations

import logging
import re
import time
import uuid

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse

from accounts import logging as request_log
from accounts.error_views import service_unavailable

logger = logging.getLogger("accounts.requests")

# An incoming X-Request-ID (from a proxy or load balancer) is kept when it is a
# plain token; anything else (too long, spaces, markup, newlines that would forge
# log lines) is replaced by our own.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
# Path segments this long are tokens (verification links), not words: never logged.
_TOKEN_SEGMENT = re.compile(r"[^/]{20,}")

# Django wraps driver errors in its own classes; the driver's are listed too in case
# one escapes from code that talks to the driver directly.
try:
    import psycopg

    DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
        OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # pragma: no cover - psycopg is a runtime requirement
    DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def safe_path(path: str) -> str:
    """A request path fit for a log line: long segments (tokens) replaced, bounded."""
    return _TOKEN_SEGMENT.sub("…", path)[:200]


class RequestContextMiddleware:
    """Give every request an id (kept from a sane incoming ``X-Request-ID``, else
    generated), echo it in the response's ``X-Request-ID``, put it and the account
    id on every log line written while the request runs, and log one line per
    request. Goes first in MIDDLEWARE so even early refusals carry the id.

    The request line names the matched route (``verify/<str:token>/``), not the
    path, so a token in a URL never reaches the logs."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.quiet = "/" + settings.STATIC_URL.lstrip("/")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        request.request_id = rid
        # Set, not reset afterwards: Django logs "Not Found" and "Internal Server
        # Error" after the middleware chain returns, and those lines belong to this
        # request too. The next request on this thread sets its own values.
        request_log.request_id.set(rid)
        request_log.account_id.set(None)
        started = time.monotonic()
        response = self.get_response(request)
        response["X-Request-ID"] = rid
        if not self._quiet(request, response):
            match = getattr(request, "resolver_match", None)
            logger.info("%s %s %s %.0fms", request.method,
                        f"/{match.route}" if match else safe_path(request.path),
                        response.status_code, (time.monotonic() - started) * 1000)
        return response

    def _quiet(self, request: HttpRequest, response: HttpResponse) -> bool:
        """Static files and passing health checks would drown everything else."""
        return request.path.startswith(self.quiet) or (
            request.path == "/healthz" and response.status_code == 200)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        """The session is loaded by now; note whose request this is. Never fails
        the request over it (a database error here is answered further in)."""
        try:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                request_log.account_id.set(user.pk)
        except DatabaseError:
            pass
        return None


class DatabaseUnavailableMiddleware:
    """When our own database does not answer, say so in the product's voice (HTTP
    503: nothing was saved, try again in a minute, how to reach us) instead of a
    stack trace or a bare 500.

    The connection is checked before the request goes further, so a person is told
    before filling in a form that could not be saved; an error that happens later,
    in the view, is caught by ``process_exception``. ``/healthz`` reports the
    database itself, and static files never need it."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.exempt = ("/healthz", "/" + settings.STATIC_URL.lstrip("/"))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(self.exempt):
            try:
                connection.ensure_connection()
            except DATABASE_UNAVAILABLE as error:
                return self._unavailable(request, error)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if isinstance(exception, DATABASE_UNAVAILABLE):
            return self._unavailable(request, exception)
        return None

    def _unavailable(self, request: HttpRequest, error: Exception) -> HttpResponse:
        logger.error("database unavailable: %s %s: %s", request.method, safe_path(request.path),
                     str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
        return service_unavailable(request)


class PermissionsPolicyMiddleware:
    """``Permissions-Policy`` on every response (``settings.PERMISSIONS_POLICY``):
    camera, microphone, location and the like are switched off for our pages and
    anything they could embed. Django has no setting for it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.PERMISSIONS_POLICY:
            response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response
