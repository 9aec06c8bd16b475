"""The person's pages. Each view binds a form, calls one flow or service, then
redirects or renders; the words come from ``accounts.messages``."""
from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN, PasswordResetConfirmView
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import messages as words
from accounts.flows.email_change import email_change_confirm, email_change_request
from accounts.flows.password_reset import password_reset_request
from accounts.flows.signup import Outcome, signup
from accounts.forms import (
    ChangeEmailForm,
    CodeLoginForm,
    LoginForm,
    NewPasswordForm,
    PasswordResetRequestForm,
    SignupForm,
)
from accounts.models import normalize_email
from accounts.ratelimit import (
    failure_record,
    failures_pause,
    failures_paused,
    rate_limited,
    success_record,
    too_many_requests,
)
from accounts.selectors import (
    account_overview,
    email_change_link_account,
    email_outage,
    open_incidents,
    verification_link_account,
)
from accounts.services import (
    AlreadyVerified,
    EmailTaken,
    LinkOnItsWay,
    account_change_email,
    account_password_reset,
    email_verify,
    signin_code_redeem,
    verification_send,
)


def _landing(user) -> str:
    """Where a logged-in person belongs: the status page until the workspace exists
    (staff, who sign up through no form, belong in the console)."""
    if user.is_staff:
        return "admin:index"
    return "accounts:home" if account_overview(account=user).workspace_status == "ready" else "accounts:setup"


def _next_or_landing(request: HttpRequest, next_url: str, user) -> HttpResponse:
    """To ``next`` if it stays on this site, else where the person belongs."""
    if url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        return redirect(next_url)
    return redirect(_landing(user))


@never_cache
@rate_limited("signup", email_field="email")
def signup_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(_landing(request.user))
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method != "POST" or not form.is_valid():
        return render(request, "accounts/signup.html", {"form": form}, status=400 if form.errors else 200)
    data = form.cleaned_data
    result = signup(name=data["name"], email=data["email"], company=data["company"],
                    password=data["password"], phone=str(data["phone"]))
    if settings.SIGNUP_PREVENT_ENUMERATION:
        # Strict mode: one answer for every signup, new or not, right password or not.
        entry = words.SIGNUP_STRICT
        return render(request, "accounts/signup_strict.html",
                      {"entry": entry, "happened": str(entry.happened).format(address=data["email"])})
    if result.outcome is Outcome.TAKEN:
        return render(request, "accounts/signup_taken.html", {"entry": words.SIGNUP_TAKEN})
    login(request, result.account, backend="django.contrib.auth.backends.ModelBackend")
    if result.outcome is Outcome.RESUMED:
        messages.info(request, words.WELCOME_BACK)
    return redirect("accounts:setup")


@never_cache
@rate_limited("login")  # per client address; per address, only failures count (below)
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next", "")
    if request.method != "POST" and request.user.is_authenticated:
        # Already logged in: a form would ask for what we have (as /signup/ does, send
        # them on). A POST still logs in whoever's address and password it carries.
        return _next_or_landing(request, next_url, request.user)
    form = LoginForm(request.POST if request.method == "POST" else None, initial=_email_from_link(request))
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        if (pause := failures_pause(request, "login", email=email)) is not None:
            # Only a pause on the address's total spares browsers that logged in before.
            return too_many_requests(request, pause.retry_after, action="login",
                                     kept_as="login_new_browser" if pause.new_browsers_only else "")
        user = authenticate(request, email=email, password=form.cleaned_data["password"])
        if user is not None:
            login(request, user)  # rotates the session key
            response = _next_or_landing(request, next_url, user)
            success_record(request, response, "login", email=email)
            return response
        failure_record(request, "login", email=email)
        form.add_error(None, words.LOGIN_FAILED)
    return render(request, "accounts/login.html", {"form": form, "next": next_url},
                  status=400 if form.errors else 200)


@never_cache
@rate_limited("login_code")  # per client address; per address, only failures count (below)
def login_code_view(request: HttpRequest) -> HttpResponse:
    """Sign in with a one-time code from support. A wrong code, a used or expired one
    and an unknown address all get the same answer."""
    form = CodeLoginForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            email = form.cleaned_data["email"]
            if (wait := failures_paused(request, "login_code", email=email)) is not None:
                return too_many_requests(request, wait, action="login_code")
            user = signin_code_redeem(email=email, code=form.cleaned_data["code"])
            if user is not None:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")  # rotates the session
                messages.success(request, words.CODE_LOGIN_OK)
                response = redirect(_landing(user))
                success_record(request, response, "login_code", email=email)
                return response
            failure_record(request, "login_code", email=email)
            form.add_error(None, str(words.CODE_LOGIN_FAILED).format(
                lifetime=words.lifetime_words(settings.SIGNIN_CODE_TIMEOUT)))
    return render(request, "accounts/login_code.html", {"form": form}, status=400 if form.errors else 200)


def logout_view(request: HttpRequest) -> HttpResponse:
    """POST logs out and says so on the login page (staff, on the console's own: the
    console's second-factor page signs out here); GET asks first, unless there is
    nobody to log out (then "Log out?" would not be a question to ask), or it is
    staff: they are asked on the console's own page (its POST lands here too)."""
    if request.method == "POST":
        staff = request.user.is_staff
        logout(request)
        messages.info(request, words.LOGGED_OUT)  # kept in a cookie: the session is gone
        return redirect("admin:login" if staff else "accounts:login")
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    if request.user.is_staff:
        return redirect("admin:logout")
    return render(request, "accounts/logout.html")


def _render_setup(request: HttpRequest, email_form: ChangeEmailForm, status: int = 200) -> HttpResponse:
    overview = account_overview(account=request.user)
    return render(request, "accounts/setup.html", {
        "overview": overview, "said": overview.said, "email_form": email_form,
        # A form with an error stays open whatever the facts say.
        "offer_correct": overview.said.offer_correct or bool(email_form.errors),
        "reply_hours": settings.SUPPORT_REPLY_HOURS,
    }, status=status)


@login_required
@never_cache
def setup_view(request: HttpRequest) -> HttpResponse:
    return _render_setup(request, ChangeEmailForm())


@never_cache
def status_json_view(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Please log in to see your account's status."}, status=401)
    return JsonResponse(account_overview(account=request.user).as_json())


@login_required
@require_POST
@rate_limited("change_email", email_field="email")
def setup_email_view(request: HttpRequest) -> HttpResponse:
    form = ChangeEmailForm(request.POST)
    if form.is_valid() and settings.SIGNUP_PREVENT_ENUMERATION \
            and normalize_email(form.cleaned_data["email"]) != request.user.email:
        # Strict mode: the same answer whether or not another account uses the address
        # (accounts.flows.email_change); the account keeps its address for now.
        try:
            new = email_change_request(account=request.user, email=form.cleaned_data["email"])
            messages.success(request, words.EMAIL_CHANGE_SENT.format(new=new, old=request.user.email))
        except AlreadyVerified:
            messages.info(request, words.EMAIL_ALREADY_VERIFIED)
        return redirect("accounts:setup")
    if form.is_valid():
        try:
            unchanged = normalize_email(form.cleaned_data["email"]) == request.user.email
            user = account_change_email(account=request.user, email=form.cleaned_data["email"])
            # Told from the facts just after the change, so the answer agrees with the
            # page: the fresh link is sent, on its way, or held up by our trouble.
            facts = account_overview(account=user).facts
            messages.success(request, words.resend_answer(facts) if unchanged else words.email_changed_answer(facts))
            return redirect("accounts:setup")
        except LinkOnItsWay:
            # The address it already has, with a link to it on its way: nothing was
            # sent, so the answer says where that link stands, not that a fresh one is.
            messages.info(request, words.email_unchanged_answer(account_overview(account=request.user).facts))
            return redirect("accounts:setup")
        except AlreadyVerified:
            messages.info(request, words.EMAIL_ALREADY_VERIFIED)
            return redirect("accounts:setup")
        except EmailTaken:
            form.add_error("email", words.EMAIL_TAKEN)
    return _render_setup(request, form, status=400)


@login_required
@require_POST
@rate_limited("resend", email_of=lambda request: request.user.email)
def setup_resend_view(request: HttpRequest) -> HttpResponse:
    if request.user.email_verified:
        messages.info(request, words.VERIFIED)
    else:
        verification_send(account=request.user)
        # Told from the facts just after asking, so the answer agrees with the page.
        messages.success(request, words.resend_answer(account_overview(account=request.user).facts))
    return redirect("accounts:setup")


@never_cache
def verify_view(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the link's page with one confirm button; only its POST confirms.
    Corporate mail scanners (Safe Links, Mimecast, Proofpoint) open every link in
    every email: confirming on GET would let a squatter's address at victim@corp be
    verified by the victim's own gateway. After the POST we redirect, so the token
    does not stay in the address bar (the page itself loads nothing from elsewhere,
    and Referrer-Policy is same-origin)."""
    already_confirmed = request.user.is_authenticated and request.user.email_verified
    if request.method != "POST":
        account = verification_link_account(token=token)
        if account is None:
            # A used link, opened again by someone already confirmed: nothing failed.
            return redirect("accounts:verify_done" if already_confirmed else "accounts:verify_failed")
        entry = words.VERIFY_CONFIRM
        return render(request, "accounts/verify_confirm.html", {
            "entry": entry, "happened": str(entry.happened).format(address=account.email)})
    account = email_verify(token=token)
    if account is None:
        return redirect("accounts:verify_done" if already_confirmed else "accounts:verify_failed")
    if request.user.is_authenticated and request.user.pk != account.pk:
        # /login/ sends a logged-in person to their own page: say whose address it was.
        messages.success(request, words.VERIFIED_OTHER_ACCOUNT.format(address=account.email))
        return redirect(_landing(request.user))
    messages.success(request, words.VERIFIED)
    if request.user.is_authenticated:
        return redirect(_landing(request.user))
    return redirect("accounts:login")


@never_cache
def setup_email_confirm_view(request: HttpRequest, token: str) -> HttpResponse:
    """The strict-mode address change link (``accounts.flows.email_change``): like
    ``verify_view``, GET shows one confirm button and only its POST changes the
    address, then redirects so the token leaves the address bar."""
    bad = words.EMAIL_CHANGE_LINK_BAD

    def failed(happened=bad.happened, status=400):
        return render(request, "accounts/email_change_failed.html", {"entry": bad, "happened": happened},
                      status=status)

    found = email_change_link_account(token=token)
    if found is None:
        return failed()
    if request.method != "POST":
        account, new = found
        entry = words.EMAIL_CHANGE_CONFIRM
        return render(request, "accounts/verify_confirm.html", {
            "entry": entry, "happened": str(entry.happened).format(old=account.email, new=new)})
    try:
        account = email_change_confirm(token=token)
    except EmailTaken:
        account, new = found
        return failed(words.EMAIL_CHANGE_TAKEN_SINCE.format(new=new, old=account.email), status=409)
    if account is None:  # used or overtaken since the read above
        return failed()
    if request.user.is_authenticated and request.user.pk != account.pk:
        # As in verify_view: the person lands on their own page, so name the address.
        messages.success(request, words.EMAIL_CHANGE_DONE_OTHER_ACCOUNT.format(address=account.email))
        return redirect(_landing(request.user))
    messages.success(request, words.EMAIL_CHANGE_DONE.format(address=account.email))
    if request.user.is_authenticated:
        return redirect(_landing(request.user))
    return redirect("accounts:login")


def verify_failed_view(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/verify_failed.html", {"entry": words.VERIFY_LINK_BAD})


@login_required
def verify_done_view(request: HttpRequest) -> HttpResponse:
    if not request.user.email_verified:
        return redirect("accounts:verify_failed")
    entry = words.VERIFY_ALREADY_DONE
    return render(request, "accounts/verify_failed.html", {
        "entry": entry, "happened": str(entry.happened).format(address=request.user.email), "done": True})


@login_required
@never_cache
def home_view(request: HttpRequest) -> HttpResponse:
    overview = account_overview(account=request.user)
    if overview.workspace_status != "ready":
        return redirect("accounts:setup")
    return render(request, "accounts/home.html", {"overview": overview, "said": overview.said})


# The address a reset link was asked for, kept in the session to echo it on the next
# page (never in the URL); set on both paths alike.
_RESET_ADDRESS = "password_reset_address"


@never_cache
@rate_limited("password_reset", email_field="email")
def password_reset_view(request: HttpRequest) -> HttpResponse:
    """Ask for a reset link. Registered or not, the answer is the same redirect and
    the same page (``accounts.flows.password_reset``)."""
    form = PasswordResetRequestForm(request.POST or None, initial=_email_from_link(request))
    if request.method == "POST" and form.is_valid():
        password_reset_request(email=form.cleaned_data["email"])
        request.session[_RESET_ADDRESS] = form.cleaned_data["email"]
        return redirect("accounts:password_reset_sent")
    return render(request, "accounts/password_reset.html", {"form": form},
                  status=400 if form.errors else 200)


def _email_from_link(request: HttpRequest) -> dict:
    """Prefill the address a link in our email carried (``?email=``, e.g. from the
    "someone tried to sign up" email); only ever shown back in a form field."""
    return {"email": request.GET.get("email", "")[:254]}


@never_cache
def password_reset_sent_view(request: HttpRequest) -> HttpResponse:
    # While the email provider's breaker is open the link waits in the outbox: say so,
    # and whose problem it is.
    delayed, ours = email_outage()
    entry = (words.PASSWORD_RESET_SENT_DELAYED_OURS if ours else words.PASSWORD_RESET_SENT_DELAYED if delayed
             else words.PASSWORD_RESET_SENT)
    address = request.session.get(_RESET_ADDRESS) or words.RESET_ADDRESS_UNKNOWN
    next_words = str(entry.next).format(lifetime=words.lifetime_words(settings.PASSWORD_RESET_TIMEOUT))
    if ours and "email" in open_incidents():  # "our support team can see the problem": its incident is open
        next_words = words._join(next_words, words.PASSWORD_RESET_TEAM_SEES_IT)
    return render(request, "accounts/password_reset_sent.html", {
        "entry": entry, "happened": str(entry.happened).format(address=address), "delayed": delayed,
        "next": next_words})


class PasswordResetConfirm(PasswordResetConfirmView):
    """Django's confirm view: it checks the token, moves it from the URL into the
    session and redirects, so the token never sits in the address bar or a Referer.
    Ours sets the password through a service that also confirms the address, then
    logs the person in and sends them where they belong."""

    form_class = NewPasswordForm
    template_name = "accounts/password_reset_confirm.html"

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active else None  # disabled: no way in

    def get_context_data(self, **kwargs):
        bad_link = (words.PASSWORD_RESET_LINK_BAD_LOGGED_IN if self.request.user.is_authenticated
                    else words.PASSWORD_RESET_LINK_BAD)
        return {**super().get_context_data(**kwargs), "bad_link": bad_link}

    def form_valid(self, form):
        was_verified = self.user.email_verified
        user = account_password_reset(account=self.user, password=form.cleaned_data["new_password1"])
        del self.request.session[INTERNAL_RESET_SESSION_TOKEN]
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(self.request, words.PASSWORD_RESET_DONE if was_verified
                         else words.PASSWORD_RESET_DONE_VERIFIED)
        return redirect(_landing(user))
