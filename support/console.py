"""The support console: Django's admin site whose home page is a triage dashboard
(does anything need a human today?). Installed as the default admin site by
support.apps.ConsoleAdminConfig."""
from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.filters import SimpleListFilter
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from accounts.views import logout_view
from support import console_auth
from support.charts import signups_chart
from support.forms import ConsoleLoginForm
from support.messages import STATE_LABELS
from support.selectors import open_incidents, triage_dashboard

# Fields no console page may filter, search or sort by, whatever a model admin declares:
# a filter is an oracle ("does the hash start with $argon2id$v=19$m=102400,t=2,p=8$c3…?"
# answered by "1 account" or "0 accounts" recovers a hash a character at a time).
SECRET_FIELDS = frozenset({"password", "code_hash", "action_key", "idempotency_key", "secret",
                           "token", "session_key", "session_data"})

# The query parameters Django's field list filters use (FieldListFilter.expected_parameters).
_FIELD_FILTER_SUFFIXES = ("__exact", "__isnull", "__gte", "__lt", "__id__exact")


class DeclaredLookupsOnly:
    """Filter the list by what its list filters declare, and nothing else.

    Django's own ``lookup_allowed`` lets any URL filter by any field of the model
    itself (``?password__startswith=…``); only lookups across relations are checked.
    Here every query parameter must belong to a declared list filter; anything else
    is refused with a 400 (``DisallowedModelAdminLookup``), the same for every value,
    so nothing can be learnt from it. Secret fields are refused even if declared."""

    def lookup_allowed(self, lookup, value, request=None):
        if SECRET_FIELDS.intersection(lookup.split("__")):
            return False
        for item in self.get_list_filter(request) if request is not None else self.list_filter:
            if isinstance(item, type) and issubclass(item, SimpleListFilter):
                if lookup == item.parameter_name:
                    return True
                continue
            field = item[0] if isinstance(item, (list, tuple)) else item
            if lookup in {f"{field}{suffix}" for suffix in _FIELD_FILTER_SUFFIXES}:
                return True
        return False


class SupportConsole(admin.AdminSite):
    site_header = _("Support console")
    site_title = _("Support console")
    index_title = _("Today")
    index_template = "admin/triage.html"
    # The console has its own navigation (Today, Queue, Accounts); the app sidebar
    # only takes room on a phone.
    enable_nav_sidebar = False
    login_form = ConsoleLoginForm

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every model admin on the console, ours or an installed app's (auth's groups,
        django-q's tasks), filters only by what it declares (DeclaredLookupsOnly)."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, DeclaredLookupsOnly):
            admin_class = type(admin_class.__name__, (DeclaredLookupsOnly, admin_class),
                               {"__module__": admin_class.__module__})
        super().register(model_or_iterable, admin_class, **options)

    def has_permission(self, request) -> bool:
        """Active staff who passed the second factor in this session (DESIGN
        principle 8); a password alone opens no console page."""
        return super().has_permission(request) and request.user.is_verified()

    def login(self, request, extra_context=None):
        """Two steps. The password: Django's admin login, rate-limited like every other
        login (DESIGN): per client address, and per account typed counting failures
        only (``RATE_LIMITS["console_login"]``, the project's limiter, shared by every
        process), with a 429 in the console's look before any password is checked.
        Then the second factor (support.console_auth), or setting one up."""
        if console_auth.awaiting_second_factor(request):
            return console_auth.second_factor_step(self, request)
        return console_auth.password_step(lambda request: super(SupportConsole, self).login(request, extra_context),
                                          request)

    def logout(self, request, extra_context=None):
        """The console's "Log out". POST logs out like every other sign-out
        (``accounts.views.logout_view``: staff land on this console's sign-in page,
        told they are logged out), not on Django's own logged-out page. GET asks first,
        in the console's look (staff opening the customers' /logout/ are sent here)."""
        if request.method == "POST":
            return logout_view(request)
        if request.method != "GET":
            return HttpResponse(status=405, headers={"Allow": "GET, POST"})
        return TemplateResponse(request, "admin/logout.html",
                                {**self.each_context(request), "title": _("Log out"), **(extra_context or {})})

    def get_urls(self):
        return [path("second-factor/", console_auth.enrol_view(self), name="second_factor_enrol"),
                *super().get_urls()]

    def index(self, request, extra_context=None):
        board = triage_dashboard()
        context = {"board": board, "incidents": open_incidents(), "chart": signups_chart(board.hours),
                   "state_labels": STATE_LABELS, **(extra_context or {})}
        return super().index(request, context)

