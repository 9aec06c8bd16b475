"""Signing in to the console: the password (Django's admin login, rate-limited), then
the second factor (support.second_factor), or, for a first sign-in, setting up an
authenticator app. Each step is a thin view over the services."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urlencode

import django_otp
from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from accounts import ratelimit
from accounts.messages import in_seconds_words
from support import messages as words
from support import second_factor

T = TypeVar("T")


class CodeForm(forms.Form):
    otp_token = forms.CharField(label=_("Code"), max_length=32, strip=True,
                                widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True,
                                                              "inputmode": "text", "spellcheck": "false"}))


def awaiting_second_factor(request: HttpRequest) -> bool:
    """Signed in with a staff password in this session, not yet with a second factor."""
    user = request.user
    return user.is_authenticated and user.is_active and user.is_staff and not user.is_verified()


def password_step(site_login, request: HttpRequest) -> HttpResponse:
    """Django's admin login (``site_login``), rate-limited like the person's login
    (``accounts.ratelimit``): every POST counts per client address; per account only
    failures count, so the right password from the support person's own browser
    always works (it carries the limiter's known-device cookie) while guessing
    pauses. A paused POST gets the console's 429 before any password is checked."""
    if request.method != "POST":
        return site_login(request)
    email = request.POST.get("username", "")
    wait = ratelimit.limit(request, "console_login")
    if wait is None:
        wait = ratelimit.failures_paused(request, "console_login", email=email)
    if wait is not None:
        return console_paused(request, wait)
    response = site_login(request)
    if response.status_code == 302 and request.user.is_authenticated:
        ratelimit.success_record(request, response, "console_login", email=email)
    else:
        ratelimit.failure_record(request, "console_login", email=email)
    return response


def second_factor_step(site, request: HttpRequest) -> HttpResponse:
    """After the password: a code from the app or a backup code. Someone with no
    device yet is sent to set one up."""
    user, next_url = request.user, _next(request)
    if not second_factor.has_second_factor(user=user):
        return redirect(f"{reverse('admin:second_factor_enrol')}?{urlencode({'next': next_url})}")
    step = _code_step(request, lambda code: second_factor.second_factor_verify(user=user, code=code),
                      wrong=words.SECOND_FACTOR_WRONG)
    if step.paused is not None:
        return step.paused
    if step.result is not None:
        _verified(request, step.result)
        return redirect(next_url)
    return _page(site, request, "admin/second_factor.html", words.SECOND_FACTOR_TITLE,
                 {"form": step.form, "next": next_url, "intro": words.SECOND_FACTOR_INTRO,
                  "lost": words.SECOND_FACTOR_LOST})


def enrol_view(site):
    """Set up an authenticator app: its secret and QR code, then a code from it to
    confirm; the backup codes are shown once after that."""
    def view(request: HttpRequest) -> HttpResponse:
        user, next_url = request.user, _next(request)
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return redirect(f"{reverse('admin:login')}?{urlencode({'next': request.get_full_path()})}")
        if not second_factor.may_enrol(user=user, verified=user.is_verified()):
            return redirect(f"{reverse('admin:login')}?{urlencode({'next': next_url})}")
        try:
            step = _code_step(request, lambda code: second_factor.app_enrol_confirm(user=user, code=code),
                              wrong=words.ENROL_WRONG)
        except second_factor.NoEnrolmentStarted:
            return redirect(request.get_full_path())
        if step.paused is not None:
            return step.paused
        if step.result is not None:
            device, codes = step.result
            _verified(request, device)
            return _page(site, request, "admin/backup_codes.html", words.BACKUP_CODES_TITLE,
                         {"codes": codes, "next": next_url, "intro": words.BACKUP_CODES_INTRO})
        device = second_factor.app_enrol_start(user=user)
        return _page(site, request, "admin/second_factor_enrol.html", words.ENROL_TITLE, {
            "form": step.form, "next": next_url, "intro": words.ENROL_INTRO,
            "secret": second_factor.app_secret(device), "qr_svg": second_factor.app_qr_svg(device)})
    return view


@dataclass(frozen=True)
class CodeStep(Generic[T]):
    form: CodeForm
    paused: HttpResponse | None = None  # the 429 to answer instead: tries at codes are used up
    result: T | None = None  # what the service returned for a right code


def _code_step(request: HttpRequest, check: Callable[[str], T], *, wrong) -> CodeStep[T]:
    """The code form both second-factor pages share. A GET gets it empty. A POST is
    rate-limited first, per account and per network
    (``RATE_LIMITS["console_second_factor"]``), then a well-formed code goes to
    ``check``, a second_factor service that returns for a right code and raises
    ``WrongCode`` for a wrong one (shown on the form as ``wrong``; its other errors
    are the caller's). The caller marks the session verified (``_verified``)."""
    if request.method != "POST":
        return CodeStep(CodeForm())
    form = CodeForm(request.POST)
    retry_after = ratelimit.limit(request, "console_second_factor", email=request.user.email)
    if retry_after is not None:
        return CodeStep(form, paused=console_paused(request, retry_after))
    if form.is_valid():
        try:
            return CodeStep(form, result=check(form.cleaned_data["otp_token"]))
        except second_factor.WrongCode:
            form.add_error("otp_token", wrong)
    return CodeStep(form)


def console_paused(request: HttpRequest, retry_after: int) -> HttpResponse:
    """HTTP 429 for the console's sign-in, in the console's look: what was paused, when
    to try again (Retry-After, in seconds), and who can help."""
    response = render(request, "admin/429.html", {
        "title": words.CONSOLE_PAUSED.title, "site_header": _("Support console"),
        "happened": words.CONSOLE_PAUSED.happened,
        "next": str(words.CONSOLE_PAUSED.next).format(when=in_seconds_words(retry_after)),
        "action": words.CONSOLE_PAUSED.action}, status=429)
    response["Retry-After"] = str(retry_after)
    add_never_cache_headers(response)
    return response


def _verified(request: HttpRequest, device) -> None:
    """Mark this session as past the second factor, under a new session key (the
    session gained privileges: a key seen before this moment must not carry them)."""
    request.session.cycle_key()
    django_otp.login(request, device)


def _next(request: HttpRequest) -> str:
    url = request.POST.get("next") or request.GET.get("next") or ""
    if url and url_has_allowed_host_and_scheme(url, {request.get_host()}, require_https=request.is_secure()):
        return url
    return reverse("admin:index")


def _page(site, request, template: str, title, context: dict) -> HttpResponse:
    """A sign-in step's page: 400 when its form has errors."""
    form = context.get("form")
    response = TemplateResponse(request, template, {**site.each_context(request), "title": title, **context},
                                status=400 if form is not None and form.errors else 200)
    add_never_cache_headers(response)  # codes and secrets, and a sign-in step: never from a cache
    return response
