"""The queue (the ticket list) and the ticket page with its buttons."""
from __future__ import annotations

import re

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from phonenumber_field.phonenumber import PhoneNumber

from support import messages as words
from support.admin.buttons import ButtonViews
from support.admin.crumbs import section_crumbs
from support.models import UNRESOLVED, Reason, Ticket, TicketStatus
from support.selectors import (
    QUEUE_ORDER,
    TicketDetail,
    failure_words,
    open_incidents,
    ticket_detail,
    ticket_queue,
)


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
class TicketAdmin(ButtonViews, admin.ModelAdmin):
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
        return list(QUEUE_ORDER)

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
            who = format_html('<span class="muted">{}</span><br>{}', _("unknown address"), ticket.email)
        else:
            who = format_html("<strong>{}</strong><br>{}<br><span class=\"muted\">{}</span>",
                              account.name, account.email, account.company)
        if not ticket.callback_phone:
            return who
        # They asked us to call: the number, one tap away on a phone.
        phone = PhoneNumber.from_string(str(ticket.callback_phone))
        return format_html('<span class="badge callback">{}</span> <a class="tel" href="tel:{}">{}</a><br>{}',
                           _("Call back"), phone.as_e164, phone.as_international, who)

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
        # A resolved ticket stopped waiting when it was resolved: the count stops there.
        label = _("waited until resolved:") if ticket.resolved_at else _("waiting:")
        return format_html('<span class="cell-label">{}</span> <span title="{}">{}</span>', label,
                           words.console_time(ticket.waiting_since),
                           words.console_duration(ticket.waiting_since, ticket.resolved_at, depth=1))

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
        return [*self.button_urls(), *super().get_urls()]

    def subject(self, request: HttpRequest, object_id) -> TicketDetail:
        ticket = Ticket.objects.select_related("account").filter(pk=object_id).first()
        if ticket is None or not self.has_view_permission(request, ticket):
            raise Http404(_("No such ticket."))
        return ticket_detail(ticket=ticket)

    def subject_url(self, subject: TicketDetail) -> str:
        return reverse("admin:support_ticket_change", args=[subject.ticket.pk])

    def subject_crumbs(self, subject: TicketDetail) -> list[tuple[str, str]]:
        return [*section_crumbs(self.opts), (subject.ticket.reference, self.subject_url(subject))]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method != "GET":
            return HttpResponse(status=405, headers={"Allow": "GET"})
        detail = self.subject(request, object_id)
        ticket = detail.ticket
        # The header says why it is urgent (priority) and why it opened (reason). A
        # message can be both ("The person wrote to us"): say it once.
        reason = ticket.get_reason_display()
        context = {"reason_label": "" if reason == ticket.get_priority_display() else reason,
                   **self.admin_site.each_context(request), "opts": self.opts, "detail": detail,
                   "ticket": ticket, "buttons": self.buttons_for(request, detail, ticket.pk),
                   "title": ticket.reference, "crumbs": [*section_crumbs(self.opts), (ticket.reference, "")],
                   "state_label": words.STATE_LABELS.get(detail.state), "reasons": Reason,
                   "has_view_permission": True, **(extra_context or {})}
        return TemplateResponse(request, "admin/support/ticket/detail.html", context)

