"""``{% callback_offer %}``: the "Call me" form, wherever a person may be stuck.

Pages of the accounts app (the status page) load this tag instead of importing the
support app, which sits above them: the template names the offer, this tag decides
whether it applies and fills it."""
from __future__ import annotations

from django import template
from django.conf import settings

from accounts.context_processors import support_contact
from accounts.selectors import Overview
from support import messages as words
from support.forms import CallbackForm
from support.selectors import callback_promise, waiting_callback

register = template.Library()


@register.inclusion_tag("support/_callback_form.html", takes_context=True)
def callback_offer(context, overview: Overview | None = None, form: CallbackForm | None = None) -> dict:
    """On /setup/ (``overview`` given) shown only while the person is stuck
    (``accounts.messages.status.offer_call``); on /help/ (no overview) always,
    logged in or out."""
    request = context["request"]
    user = request.user if request.user.is_authenticated and not request.user.is_staff else None
    # On /setup/ the section is always there, hidden while the person is not stuck:
    # the page's script shows it when the status JSON says to (said.offer.call).
    hidden = overview is not None and not overview.said.offer_call
    waiting = waiting_callback(account=user) if user else None
    on_file = user.phone if user is not None and user.phone else None
    return {
        "show": True, "hidden": hidden, "csrf_token": context.get("csrf_token"), **support_contact(request),
        "form": form or CallbackForm(account=user),
        "offer": str(words.CALLBACK_OFFER).format(reply_hours=settings.SUPPORT_REPLY_HOURS),
        "on_file": str(words.CALLBACK_OFFER_PHONE_ON_FILE).format(phone=on_file.as_international) if on_file else "",
        "waiting": callback_promise(waiting) if waiting else "",
    }
