"""Error pages in the product's voice: 400, 404, 500, and 503 when our own database
is down. 400, 500 and 503 render without the database and without the request's
context (no user, no session, no messages, no POST): they must work exactly when
those do not."""
from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import loader
from django.utils.cache import add_never_cache_headers
from django.utils.html import escape, format_html

from accounts import messages as words
from accounts.messages import Message

logger = logging.getLogger(__name__)

# Seconds a client (or a proxy) should wait before retrying after a 503.
RETRY_AFTER_SECONDS = 60


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """HTTP 503: nothing was saved, try again in a minute, how to reach us."""
    response = _standalone("503.html", words.UNAVAILABLE, status=503,
                           extra={"retry_url": request.path})
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: the usual page with its navigation (the database answers, or the
    request would have stopped at the 503 middleware)."""
    return render(request, "404.html", {"entry": words.NOT_FOUND}, status=404)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400 (an unreadable body, e.g. a form posted as latin-1; a suspicious
    request): standalone, and never touching ``request.POST``. Django's default is
    wrapped in ``requires_csrf_token``, which reads POST again, raises the same error
    and turns the 400 into a 500."""
    return _standalone("400.html", words.BAD_REQUEST, status=400, extra={"retry_url": request.path})


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: standalone, so it renders whatever broke."""
    return _standalone("500.html", words.SERVER_ERROR, status=500)


def _standalone(template: str, entry: Message, *, status: int, extra: dict | None = None) -> HttpResponse:
    email = settings.SUPPORT_EMAIL
    link = format_html('<a href="mailto:{0}">{0}</a>', email)
    action = format_html(escape(str(entry.action)), support_email=link)
    context = {"entry": entry, "action": action, "support_email": email, **(extra or {})}
    try:
        body = loader.render_to_string(template, context)
    except Exception:  # an error page must answer even if its template cannot
        logger.exception("could not render %s", template)
        body = (f"<!doctype html><title>{escape(entry.title)}</title><h1>{escape(entry.title)}</h1>"
                f"<p>{escape(entry.happened)}</p><p>{escape(entry.next)}</p><p>{action}</p>")
    response = HttpResponse(body, status=status)
    add_never_cache_headers(response)
    return response
