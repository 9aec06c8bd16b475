"""The person's side of support: the contact form at /help/ and the call-back form
at /help/call/ (offered on /help/ and on a stuck person's /setup/)."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from accounts.ratelimit import limit, paused, paused_words
from support import messages as words
from support.callbacks import callback_request
from support.forms import CallbackForm, ContactForm
from support.selectors import callback_promise
from support.services import contact_message_receive


@never_cache
def help_view(request: HttpRequest) -> HttpResponse:
    """Works logged out; prefilled when logged in. The answer is the same whether or
    not the address has an account: a reference (random, see support.models) and
    what happens next. Rate-limited like every public form, but a paused message is
    not thrown away: the form comes back with it (HTTP 429), to send later."""
    user = request.user if request.user.is_authenticated and not request.user.is_staff else None
    form = ContactForm(request.POST or None, initial={"email": user.email} if user else None)
    intro = words.HELP_INTRO_SIGNED_IN if user else words.HELP_INTRO
    context = {"form": form, "intro": str(intro).format(reply_hours=settings.SUPPORT_REPLY_HOURS)}
    if request.method != "POST":
        return render(request, "support/help.html", context)
    if (wait := limit(request, "help", email=request.POST.get("email", ""))) is not None:
        return paused(render(request, "support/help.html", {
            **context, "form": ContactForm(request.POST), "paused": paused_words(wait, action="help")}), wait)
    if not form.is_valid():
        return render(request, "support/help.html", context, status=400)
    contact = contact_message_receive(email=form.cleaned_data["email"], message=form.cleaned_data["message"],
                                      signed_in_as=user)
    answer = contact.answer  # chosen from facts, and written on the ticket (support.selectors.help_answer)
    return render(request, "support/help_sent.html", {
        "entry": words.HELP_RECEIVED, "reference": contact.ticket.reference, "happened": answer.happened,
        "next": answer.next, "incident": answer.incident})


@never_cache
def callback_view(request: HttpRequest) -> HttpResponse:
    """Ask us to call. Works logged out (the same matching and the same answer as
    /help/, whether or not the address has an account); signed in, the phone on file
    is used unless another is typed. Rate-limited like every public form; a paused or
    invalid request comes back with what was typed."""
    user = request.user if request.user.is_authenticated and not request.user.is_staff else None
    form = CallbackForm(request.POST or None, account=user)
    if request.method != "POST":
        return render(request, "support/callback.html", {"form": form})
    email = user.email if user else request.POST.get("email", "")
    if (wait := limit(request, "callback", email=email)) is not None:
        return paused(render(request, "support/callback.html", {
            "form": form, "paused": paused_words(wait, action="callback")}), wait)
    if not form.is_valid():
        return render(request, "support/callback.html", {"form": form}, status=400)
    callback = callback_request(email=email if user else form.cleaned_data["email"],
                                phone=form.cleaned_data["phone"].as_e164, note=form.cleaned_data["note"],
                                signed_in_as=user)
    entry = words.CALLBACK_SENT
    return render(request, "support/callback_sent.html", {
        "entry": entry, "reference": callback.ticket.reference, "promise": callback_promise(callback)})
