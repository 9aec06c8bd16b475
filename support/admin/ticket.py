"""The queue (the ticket list) and the ticket page with its buttons."""
from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _

from accounts import codes
from accounts.services import AccountError, AlreadyVerified, CodeRefused, EmailTaken
from support import messages as words
from support.admin.buttons import BUTTONS, Button
from support.models import UNRESOLVED, Reason, Ticket, TicketStatus
from support.selectors import failure_words, open_incidents, suggested_reply, ticket_detail, ticket_queue
from support.services import TicketError


def console_actor(user) -> str:
    """How a console user appears on timelines."""
    return f"support ({user.email})"[:100]


class QueueFilter(admin.SimpleListFilter):
    """By default the queue shows what still needs someone: open and waiting."""

    title = _("status")
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("open", _("Open")), ("waiting", _("Waiting on customer")),
                ("resolved", _("Resolved")), ("all", _("All"))]

    def choices(self, changelist):
        yield {"selected": self.value() is None,
               "query_string": changelist.get_query_string(remove=[self.parameter_name]),
               "display": _("Needs us (open or waiting)")}
        for value, label in self.lookup_choices:
            yield {"selected": self.value() == value,
                   "query_string": changelist.get_query_string({self.parameter_name: value}),
                   "display": label}

    def queryset(self, request, queryset):
        return {
            None: queryset.filter(status__in=UNRESOLVED),
            "open": queryset.filter(status=TicketStatus.OPEN),
            "waiting": queryset.filter(status=TicketStatus.WAITING_ON_CUSTOMER),
            "resolved": queryset.filter(status=TicketStatus.RESOLVED),
        }.get(self.value(), queryset)


class AccountStateFilter(admin.SimpleListFilter):
    title = _("lifecycle state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [(state or "none", label) for state, label in words.STATE_LABELS.items()]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(account__isnull=True)
        if self.value():
            return queryset.filter(account_state=self.value())
        return queryset


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("ticket", "person", "state", "what_failed", "attempts", "waiting", "last_message_short")
    list_display_links = ("ticket",)
    list_filter = (QueueFilter, "priority", "reason", AccountStateFilter)
    search_fields = ("reference", "email", "account__email", "account__name", "account__company")
    search_help_text = _("Email, name, company, phone or reference (SUP-…)")
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # the dashboard has the counts; facets would add queries
    actions = None

    # --- The queue ---------------------------------------------------------------

    def get_queryset(self, request):
        return ticket_queue()

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("The queue"), "incidents": open_incidents(),
                                                 **(extra_context or {})})

    def get_ordering(self, request):
        return ["status_rank", "priority", "waiting_since"]

    def get_search_results(self, request, queryset, search_term):
        """Phones are stored as E.164 (+14155550100); match what people type
        ("(415) 555-0100") by its digits."""
        results, duplicates = super().get_search_results(request, queryset, search_term)
        digits = re.sub(r"\D", "", search_term)
        if len(digits) >= 6 and not re.search(r"[A-Za-z@]", search_term):
            results |= queryset.filter(account__phone__contains=digits)
        return results, duplicates

    @admin.display(description=_("ticket"), ordering="reference")
    def ticket(self, ticket: Ticket):
        if ticket.status == TicketStatus.OPEN:
            return ticket.reference
        label = _("Resolved automatically") if ticket.resolved_automatically else ticket.get_status_display()
        return format_html('{}<br><span class="badge status-{}">{}</span>', ticket.reference, ticket.status, label)

    @admin.display(description=_("person"))
    def person(self, ticket: Ticket):
        account = ticket.account
        if account is None:
            return format_html('<span class="muted">{}</span><br>{}', _("unknown address"), ticket.email)
        return format_html("<strong>{}</strong><br>{}<br><span class=\"muted\">{}</span>",
                           account.name, account.email, account.company)

    @admin.display(description=_("state"), ordering="account_state")
    def state(self, ticket: Ticket):
        return format_html('<span class="badge state-{}">{}</span>', ticket.account_state or "none",
                           words.STATE_LABELS.get(ticket.account_state, ticket.account_state))

    @admin.display(description=_("what failed"))
    def what_failed(self, ticket: Ticket) -> str:
        return failure_words(ticket)

    @admin.display(description=_("attempts"))
    def attempts(self, ticket: Ticket) -> str:
        request = getattr(ticket.account, "provisioning_request", None) if ticket.account else None
        parts = []
        if request is not None:
            parts.append(f"{_('workspace')} {request.attempts}")
        if ticket.email_attempts:
            parts.append(f"{_('email')} {ticket.email_attempts}")
        return format_html('<span class="cell-label">{}</span> {}', _("attempts:"), " · ".join(parts) or "—")

    @admin.display(description=_("waiting"), ordering="waiting_since")
    def waiting(self, ticket: Ticket):
        return format_html('<span class="cell-label">{}</span> <span title="{}">{}</span>', _("waiting:"),
                           ticket.waiting_since.isoformat(timespec="minutes"),
                           timesince(ticket.waiting_since).split(",")[0])

    @admin.display(description=_("last message"))
    def last_message_short(self, ticket: Ticket):
        if not ticket.last_message:
            return "—"
        return format_html('<span class="cell-label">{}</span> {}', _("last message:"),
                           Truncator(ticket.last_message).chars(90))

    # --- Permissions: tickets are opened by escalation and /help/, changed by buttons ---

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    # --- The ticket page ---------------------------------------------------------

    def get_urls(self):
        urls = super().get_urls()
        return [path("<int:object_id>/do/<str:name>/", self.admin_site.admin_view(self.button_view),
                     name="support_ticket_button"), *urls]

    def _ticket(self, request: HttpRequest, object_id) -> Ticket:
        ticket = Ticket.objects.select_related("account").filter(pk=object_id).first()
        if ticket is None or not self.has_view_permission(request, ticket):
            raise Http404(_("No such ticket."))
        return ticket

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method != "GET":
            return HttpResponse(status=405, headers={"Allow": "GET"})
        ticket = self._ticket(request, object_id)
        detail = ticket_detail(ticket=ticket)
        buttons = [(button, words.BUTTONS[button.name][0]) for button in BUTTONS.values()
                   if button.applies(detail) and request.user.has_perm(button.perm)]
        context = {**self.admin_site.each_context(request), "opts": self.opts, "detail": detail,
                   "ticket": ticket, "buttons": buttons, "title": ticket.reference,
                   "state_label": words.STATE_LABELS.get(detail.state), "reasons": Reason,
                   "has_view_permission": True, **(extra_context or {})}
        return TemplateResponse(request, "admin/support/ticket/detail.html", context)

    def button_view(self, request: HttpRequest, object_id: int, name: str) -> HttpResponse:
        """GET: the confirmation page. POST: do it once, log it, go back to the ticket
        (or show the one-time code)."""
        button = BUTTONS.get(name)
        if button is None:
            raise Http404
        if not request.user.has_perm(button.perm):
            raise PermissionDenied
        ticket = self._ticket(request, object_id)
        if request.method == "POST":
            form = button.form(request.POST)
            if form.is_valid():
                response = self._press(request, ticket, button, form)
                if response is not None:
                    return response
            return self._confirm_page(request, ticket, button, form, 400, ticket_detail(ticket=ticket))
        if request.method != "GET":
            return HttpResponse(status=405, headers={"Allow": "GET, POST"})
        detail = ticket_detail(ticket=ticket)
        if not button.applies(detail):
            messages.info(request, _("Nothing to do: that button doesn't apply to this ticket any more."))
            return redirect(self._ticket_url(ticket))
        form = button.form(initial=self._initial(request, ticket, button, detail))
        return self._confirm_page(request, ticket, button, form, 200, detail)

    def _press(self, request, ticket: Ticket, button: Button, form) -> HttpResponse | None:
        try:
            result = button.call(ticket=ticket, actor=console_actor(request.user), **form.cleaned_data)
        except EmailTaken:
            form.add_error("email", _("Another account already uses this address."))
            return None
        except AlreadyVerified:
            form.add_error(None, _("The address is already verified, so it can't be corrected here."))
            return None
        except CodeRefused:
            form.add_error(None, _("No code for this account: it is closed or a staff account."))
            return None
        except (AccountError, TicketError) as error:
            form.add_error(None, str(error))
            return None
        label = words.BUTTONS[button.name][0]
        if not result.repeated:  # every handled click is logged, including "nothing to do"
            self.log_change(request, ticket, f"{label}: {result.message}")
        if result.code:
            return self._code_page(request, ticket, result)
        (messages.success if result.done else messages.info)(request, result.message)
        return redirect(self._ticket_url(ticket))

    def _initial(self, request, ticket: Ticket, button: Button, detail) -> dict:
        initial = {"action_key": uuid.uuid4().hex}
        if button.name == "reply":
            signature = f"{request.user.get_short_name()}\n{_('Acme Workspaces support')}"
            initial["body"] = suggested_reply(ticket=ticket, state=detail.state, signature=signature)
        if button.name == "correct_email" and ticket.account:
            initial["email"] = ticket.account.email
        return initial

    def _confirm_page(self, request, ticket: Ticket, button: Button, form, status: int, detail) -> HttpResponse:
        label, description = words.BUTTONS[button.name]
        context = {**self.admin_site.each_context(request), "opts": self.opts, "ticket": ticket,
                   "detail": detail, "button": button, "label": label,
                   "description": str(description).format(minutes=settings.SIGNIN_CODE_TIMEOUT // 60),
                   "form": form, "title": f"{label} · {ticket.reference}",
                   "state_label": words.STATE_LABELS.get(detail.state)}
        return TemplateResponse(request, "admin/support/ticket/button.html", context, status=status)

    def _code_page(self, request, ticket: Ticket, result) -> HttpResponse:
        """Shown once: the code is stored nowhere, and this page must not be cached."""
        context = {**self.admin_site.each_context(request), "opts": self.opts, "ticket": ticket,
                   "code": codes.display(result.code), "result": result, "title": _("One-time sign-in code")}
        response = TemplateResponse(request, "admin/support/ticket/code.html", context)
        add_never_cache_headers(response)
        return response

    @staticmethod
    def _ticket_url(ticket: Ticket) -> str:
        return reverse("admin:support_ticket_change", args=[ticket.pk])
