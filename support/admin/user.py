"""Accounts in the console: the list (each with its lifecycle state, filterable by
state, and a "retry setup" action) and the person's page: state, what they see,
steps, emails, tickets, timeline and the same buttons as the ticket page. Nothing
here edits the row: an account's facts change through services; a superuser may
only grant staff access and groups, on a page of its own."""
from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import User
from accounts.selectors import with_lifecycle_state
from support import actions
from support import messages as words
from support.admin.buttons import ButtonViews
from support.admin.crumbs import section_crumbs
from support.models import UNRESOLVED, Ticket
from support.selectors import AccountDetail, account_detail

STAFF_FIELDS = ("is_staff", "groups", "user_permissions")


class LifecycleStateFilter(admin.SimpleListFilter):
    title = _("lifecycle state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [(state, label) for state, label in words.STATE_LABELS.items() if state]

    def queryset(self, request, queryset):
        return queryset.filter(lifecycle_state=self.value()) if self.value() else queryset


@admin.register(User)
class AccountAdmin(ButtonViews, admin.ModelAdmin):
    list_display = ("email", "name", "company", "state", "date_joined", "ticket")
    list_filter = (LifecycleStateFilter, "is_staff")
    search_fields = ("email", "name", "company", "phone")
    ordering = ("-date_joined",)
    actions = ["retry_setup"]
    fields = STAFF_FIELDS  # the staff access page's form; the person's page is change_view
    filter_horizontal = ("groups", "user_permissions")
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("Accounts"), **(extra_context or {})})

    def get_queryset(self, request):
        ticket = Ticket.objects.filter(account=OuterRef("pk"), status__in=UNRESOLVED)
        return with_lifecycle_state(super().get_queryset(request)).annotate(
            ticket_id=Subquery(ticket.values("pk")[:1]), ticket_reference=Subquery(ticket.values("reference")[:1]))

    # --- The person's page -----------------------------------------------------------

    def get_urls(self):
        staff = path("<int:object_id>/staff/", self.admin_site.admin_view(self.staff_view),
                     name="accounts_user_staff")
        return [*self.button_urls(), staff, *super().get_urls()]

    def subject(self, request: HttpRequest, object_id) -> AccountDetail:
        account = User.objects.filter(pk=object_id).first()
        if account is None or not self.has_view_permission(request, account):
            raise Http404(_("No such account."))
        return account_detail(account=account)

    def subject_url(self, subject: AccountDetail) -> str:
        return reverse("admin:accounts_user_change", args=[subject.account.pk])

    def subject_crumbs(self, subject: AccountDetail) -> list[tuple[str, str]]:
        return [*section_crumbs(self.opts), (subject.account.email, self.subject_url(subject))]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method != "GET":
            return HttpResponse(status=405, headers={"Allow": "GET"})
        detail = self.subject(request, object_id)
        account = detail.account
        context = {**self.admin_site.each_context(request), "opts": self.opts, "detail": detail,
                   "account": account, "buttons": self.buttons_for(request, detail, account.pk),
                   "title": account.name or account.email, "crumbs": [*section_crumbs(self.opts), (account.email, "")],
                   "state_label": words.STATE_LABELS.get(detail.state), "has_view_permission": True,
                   **(extra_context or {})}
        return TemplateResponse(request, "admin/accounts/user/detail.html", context)

    def staff_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Superusers only: grant staff access, groups and permissions (Django's form)."""
        if not request.user.is_superuser:
            raise Http404(_("No such account."))
        return super().change_view(request, str(object_id), extra_context={"title": _("Staff access")})

    @admin.display(description=_("state"), ordering="lifecycle_state")
    def state(self, account: User):
        return format_html('<span class="badge state-{}">{}</span>', account.lifecycle_state,
                           words.STATE_LABELS.get(account.lifecycle_state, account.lifecycle_state))

    @admin.display(description=_("open ticket"))
    def ticket(self, account: User):
        if not account.ticket_id:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:support_ticket_change", args=[account.ticket_id]),
                           account.ticket_reference)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser  # only the staff access page changes the row

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_retry_setup_permission(self, request) -> bool:
        return request.user.has_perm("support.rerun_provisioning")

    @admin.action(description=_("Retry setup for the selected accounts"), permissions=["retry_setup"])
    def retry_setup(self, request, queryset):
        """Re-dispatch every stopped step of the selected accounts (the same service
        as ``manage.py retry_setup``). Asks first; idempotent."""
        if not request.POST.get("post"):
            return TemplateResponse(request, "admin/accounts/user/retry_setup.html", {
                **self.admin_site.each_context(request), "opts": self.opts, "accounts": queryset,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME, "title": _("Retry setup?")})
        retried = 0
        for account in queryset:
            if actions.retry_setup(actor=request.user, account=account):
                retried += 1
        nothing = queryset.count() - retried
        messages.success(request, ngettext("Setup retried for %(n)d account.", "Setup retried for %(n)d accounts.",
                                           retried) % {"n": retried}
                         + (" " + ngettext("%(n)d had nothing to retry.", "%(n)d had nothing to retry.", nothing)
                            % {"n": nothing} if nothing else ""))
        return None

