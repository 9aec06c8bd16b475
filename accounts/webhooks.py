"""Anymail's tracking webhooks (bounces, complaints), mounted at ``/anymail/``.

Anymail answers 500 to anything that goes wrong, and an ESP retries a 500 for hours
or days. That is right when we fail (our database is down: the retry will work) and
wrong when the body itself cannot be read (not JSON, not the ESP's shape, an address
that is not text): it would fail the same way on every retry. So our views are
Anymail's, with one change: once the request has passed Anymail's own checks (basic
auth, signatures), a body its parser cannot read, or events whose fields have the
wrong types, are refused with 400 (``BadRequest``; ``handler400`` answers)."""
from __future__ import annotations

import functools
from datetime import datetime

from anymail import urls as anymail_urls
from anymail.signals import AnymailTrackingEvent, tracking
from anymail.webhooks.base import AnymailCoreWebhookView
from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import Http404
from django.urls import URLPattern

# What Anymail's parsers raise on a body of the wrong shape: json and UTF-8 errors
# (ValueError), a list where an object belongs (AttributeError, TypeError), a field
# missing (KeyError, IndexError). Configuration errors are not among them: those are
# ours, and stay a 500 so the ESP retries once we have fixed them.
_UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, IndexError)


def _refuse_garbled(event: AnymailTrackingEvent) -> None:
    """The fields our receiver reads, with the types it relies on."""
    fields = {"recipient": (str,), "event_id": (str,), "event_type": (str,), "timestamp": (datetime,)}
    for name, types in fields.items():
        value = getattr(event, name, None)
        if value is not None and not isinstance(value, types):
            raise BadRequest(f"tracking webhook: {name} is a {type(value).__name__}")


def _only_when_configured(view, esp: str):
    """Only the ESP we send through answers, and only behind basic auth: any other
    ESP's endpoint, or ours without WEBHOOK_SECRET (Anymail checks credentials only
    when one is set), would take a forged "bounced" from anyone. Checked on each
    request, before Anymail builds its view, so it always follows the settings."""
    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        if not (settings.WEBHOOK_SECRET and esp == settings.EMAIL_WEBHOOK_ESP):
            raise Http404
        return view(request, *args, **kwargs)
    return guarded


def _refusing_unreadable(view_class: type[AnymailCoreWebhookView]) -> type[AnymailCoreWebhookView]:
    class Checked(view_class):
        def parse_events(self, request):
            try:
                events = list(super().parse_events(request))
            except _UNREADABLE as error:
                raise BadRequest(f"{self.esp_name} tracking webhook: unreadable body "
                                 f"({type(error).__name__})") from error
            for event in events:
                _refuse_garbled(event)
            return events

    Checked.__name__ = Checked.__qualname__ = view_class.__name__
    return Checked


def urlpatterns() -> list[URLPattern]:
    """``anymail.urls``' tracking webhooks (``<esp>/tracking/``), each answering only
    for ``settings.EMAIL_WEBHOOK_ESP`` while ``WEBHOOK_SECRET`` is set (404 otherwise)
    and refusing an unreadable body. Inbound views are left out: we do not receive
    mail."""
    patterns = []
    for pattern in anymail_urls.urlpatterns:
        view_class = getattr(pattern.callback, "view_class", None)
        if view_class is not None and getattr(view_class, "signal", None) is tracking:
            esp = str(pattern.pattern).split("/", 1)[0]  # "postmark/tracking/" -> "postmark"
            view = _only_when_configured(_refusing_unreadable(view_class).as_view(**pattern.callback.view_initkwargs),
                                         esp)
            patterns.append(URLPattern(pattern.pattern, view, pattern.default_args, pattern.name))
    return patterns
