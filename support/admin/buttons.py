"""The console's buttons: what each is called, which permission it needs, when it
applies, its confirmation form and the one action it calls (``support.actions``),
and the admin views that serve them on the ticket page and the account page alike.

Every button is a custom admin URL: GET shows a confirmation page (with a fresh
click key), POST does the work. The admin view checks the permission and calls the
action; the action records who did what to whom (a ConsoleAction) and writes the
timelines."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _

from accounts import codes
from accounts.models import User
from accounts.selectors import Overview
from accounts.services import AccountError, AlreadyVerified, CodeRefused, EmailTaken, StaffAccount
from support import actions, callbacks
from support import messages as words
from support.actions import ActionResult
from support.forms import ButtonForm, CorrectEmailForm, MarkVerifiedForm, ReasonForm, RecordCallForm, ReplyForm
from support.models import Ticket, TicketStatus
from support.selectors import address_trouble, suggested_reply
from support.services import TicketError


class Subject(Protocol):
    """What a page with buttons is about: an account, its ticket, or both."""

    account: User | None
    ticket: Ticket | None
    overview: Overview | None
    state: str | None


@dataclass(frozen=True)
class Button:
    name: str  # also the ConsoleActionKind it records
    permission: str  # codename on support.Ticket
    form: type[ButtonForm]
    applies: Callable[[Subject], bool]
    call: Callable[..., ActionResult]  # (actor=, account=, ticket=, action_key=, **form data)
    primary: bool = False

    @property
    def perm(self) -> str:
        return f"support.{self.permission}"

    @property
    def label(self) -> str:
        return str(words.BUTTONS[self.name][0])

    def leads(self, subject: Subject) -> bool:
        """The page's main button? Not "Re-run" while the provider is still failing:
        it would only wait behind the open circuit (it stays, as a secondary button)."""
        return self.primary and not (self.name == "rerun" and getattr(subject, "provider_failing", False))


def _open(d: Subject) -> bool:
    return d.account is not None and d.account.is_active


def _unverified(d: Subject) -> bool:
    """An open customer account whose address is unconfirmed (staff accounts are
    never changed from the console: support.actions refuses them too)."""
    return _open(d) and _a_customer(d) and not d.account.email_verified


def _workspace_not_ready(d: Subject) -> bool:
    return _open(d) and d.overview is not None and d.overview.workspace_status != "ready"


def _a_customer(d: Subject) -> bool:
    return d.account is not None and not d.account.is_staff and not d.account.is_superuser


def _unresolved(d: Subject) -> bool:
    return d.ticket is not None and d.ticket.status != TicketStatus.RESOLVED


def _a_number_to_call(d: Subject) -> bool:
    """A ticket to record the call on, and a number: their waiting call-back's or the account's."""
    return d.ticket is not None and (getattr(d, "callback", None) is not None
                                     or bool(d.account and d.account.phone))


BUTTONS: dict[str, Button] = {button.name: button for button in [
    Button("rerun", "rerun_provisioning", ButtonForm, _workspace_not_ready, actions.rerun_provisioning, primary=True),
    Button("resend", "resend_verification", ButtonForm, _unverified, actions.resend_verification),
    Button("correct_email", "correct_email", CorrectEmailForm, _unverified, actions.correct_email),
    Button("mark_verified", "mark_verified", MarkVerifiedForm, _unverified,
           lambda *, confirmed, **kw: actions.mark_verified(**kw)),
    Button("signin_code", "issue_signin_code", ButtonForm, lambda d: _open(d) and _a_customer(d),
           actions.issue_signin_code),
    Button("reply", "reply", ReplyForm, lambda d: d.ticket is not None, actions.reply),
    Button("resolve", "resolve", ButtonForm, _unresolved, actions.resolve),
    Button("close", "close_account", ReasonForm, lambda d: _open(d) and _a_customer(d), actions.close_account),
    Button("reopen", "close_account", ReasonForm, lambda d: _a_customer(d) and not d.account.is_active,
           actions.reopen_account, primary=True),
    Button("record_call", "record_call", RecordCallForm, _a_number_to_call, callbacks.record_call),
]}


class ButtonViews:
    """The buttons' admin views for a ModelAdmin whose page is about a Subject: the
    ticket page and the account page share them. The ModelAdmin says how to load
    its subject (``subject``, raising Http404 when missing or forbidden alike), where
    its page is (``subject_url``) and the breadcrumbs that lead to it
    (``subject_crumbs``)."""

    def subject(self, request: HttpRequest, object_id) -> Subject:
        raise NotImplementedError

    def subject_url(self, subject: Subject) -> str:
        raise NotImplementedError

    def subject_crumbs(self, subject: Subject) -> list[tuple[str, str]]:
        raise NotImplementedError

    def button_urls(self) -> list:
        name = f"{self.opts.app_label}_{self.opts.model_name}_button"
        return [path("<int:object_id>/do/<str:name>/", self.admin_site.admin_view(self.button_view), name=name)]

    def buttons_for(self, request: HttpRequest, subject: Subject, object_id) -> list[tuple[Button, str, bool]]:
        """The buttons this person may press here now, each with its URL and whether it
        is the page's main one."""
        name = f"admin:{self.opts.app_label}_{self.opts.model_name}_button"
        return [(button, reverse(name, args=[object_id, button.name]), button.leads(subject))
                for button in BUTTONS.values()
                if button.applies(subject) and request.user.has_perm(button.perm)]

    def button_view(self, request: HttpRequest, object_id: int, name: str) -> HttpResponse:
        """GET: the confirmation page. POST: do it once, go back to the page (or show
        the one-time code)."""
        button = BUTTONS.get(name)
        if button is None:
            raise Http404
        if not request.user.has_perm(button.perm):
            raise PermissionDenied
        subject = self.subject(request, object_id)
        if request.method == "POST":
            form = button.form(request.POST)
            if form.is_valid():
                response = self._press(request, subject, button, form)
                if response is not None:
                    return response
            return self._confirm_page(request, subject, button, form, 400)
        if request.method != "GET":
            return HttpResponse(status=405, headers={"Allow": "GET, POST"})
        if not button.applies(subject):
            messages.info(request, _("Nothing to do: that button doesn't apply here any more."))
            return redirect(self.subject_url(subject))
        form = button.form(initial=self._initial(request, subject, button))
        return self._confirm_page(request, subject, button, form, 200)

    def _press(self, request, subject: Subject, button: Button, form) -> HttpResponse | None:
        try:
            result = button.call(actor=request.user, account=subject.account, ticket=subject.ticket,
                                 **form.cleaned_data)
        except EmailTaken:
            form.add_error("email", _("Another account already uses this address."))
            return None
        except AlreadyVerified:
            form.add_error(None, _("The address is already verified, so it can't be corrected here."))
            return None
        except StaffAccount:
            form.add_error(None, words.STAFF_ACCOUNT_REFUSED)
            return None
        except CodeRefused:
            form.add_error(None, _("No code for this account: it is closed or a staff account."))
            return None
        except (AccountError, TicketError) as error:
            form.add_error(None, str(error))
            return None
        if result.code:
            return self._code_page(request, subject, result)
        (messages.success if result.done else messages.info)(request, result.message)
        return redirect(self.subject_url(subject))

    def _initial(self, request, subject: Subject, button: Button) -> dict:
        initial = {"action_key": uuid.uuid4().hex}
        if button.name == "reply" and subject.ticket is not None:
            initial["body"] = suggested_reply(ticket=subject.ticket, state=subject.state,
                                              facts=subject.overview.facts if subject.overview else None)
        if button.name == "correct_email" and subject.account:
            initial["email"] = subject.account.email
        return initial

    def _confirm_page(self, request, subject: Subject, button: Button, form, status: int) -> HttpResponse:
        label, description = words.BUTTONS[button.name]
        context = {**self.admin_site.each_context(request), "opts": self.opts, "subject": subject,
                   "button": button, "label": label, "back_url": self.subject_url(subject),
                   "crumbs": [*self.subject_crumbs(subject), (label, "")],
                   "description": str(description).format(minutes=settings.SIGNIN_CODE_TIMEOUT // 60),
                   "form": form, "title": f"{label} · {self.subject_crumbs(subject)[-1][0]}",
                   "state_label": words.STATE_LABELS.get(subject.state),
                   **({"address_trouble": address_trouble(address=subject.reply_address),
                       "signature": words.reply_signature(request.user.name)} if button.name == "reply" else {})}
        return TemplateResponse(request, "admin/support/button.html", context, status=status)

    def _code_page(self, request, subject: Subject, result: ActionResult) -> HttpResponse:
        """Shown once: the code is stored nowhere, and this page must not be cached."""
        context = {**self.admin_site.each_context(request), "opts": self.opts, "subject": subject,
                   "account": subject.account, "back_url": self.subject_url(subject),
                   "crumbs": [*self.subject_crumbs(subject), (_("Code"), "")],
                   "code": codes.display(result.code), "result": result, "title": _("One-time sign-in code")}
        response = TemplateResponse(request, "admin/support/code.html", context)
        add_never_cache_headers(response)
        return response
