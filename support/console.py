"""The support console: Django's admin site whose home page is a triage dashboard
(does anything need a human today?). Installed as the default admin site by
support.apps.ConsoleAdminConfig."""
from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from support.charts import signups_chart
from support.messages import STATE_LABELS
from support.selectors import open_incidents, triage_dashboard


class SupportConsole(admin.AdminSite):
    site_header = _("Support console")
    site_title = _("Support console")
    index_title = _("Today")
    index_template = "admin/triage.html"
    # The console has its own navigation (Today, Queue, Accounts); the app sidebar
    # only takes room on a phone.
    enable_nav_sidebar = False

    def index(self, request, extra_context=None):
        board = triage_dashboard()
        context = {"board": board, "incidents": open_incidents(), "chart": signups_chart(board.hours),
                   "state_labels": STATE_LABELS, **(extra_context or {})}
        return super().index(request, context)
