"""Incidents in the console: the list and one page per incident with its figures
(``support.incidents.incident_figures``: defined once, so the page, the list, the
banner and the timeline agree) and its timeline. They open and close by themselves
(support.incidents); nothing here changes them."""
from __future__ import annotations

from django.contrib import admin
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _

from support import messages as words
from support.incidents import IncidentFigures, incident_figures
from support.models import Incident


def _figures(incident: Incident) -> IncidentFigures:
    """Once per row: the list shows four figures of each incident."""
    if not hasattr(incident, "_figures"):
        incident._figures = incident_figures(incident)
    return incident._figures


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ("__str__", "provider", "status", "lasted", "affected_", "waiting_now", "drained_", "peak")
    list_filter = ("status", "provider")
    actions = None
    list_per_page = 50
    show_facets = admin.ShowFacets.NEVER

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("Incidents"), **(extra_context or {})})

    @admin.display(description=_("lasted"))
    def lasted(self, incident: Incident) -> str:
        return timesince(incident.started_at, incident.ended_at).split(",")[0]

    @admin.display(description=_("affected"))
    def affected_(self, incident: Incident) -> int:
        return _figures(incident).affected

    @admin.display(description=_("waiting now"))
    def waiting_now(self, incident: Incident) -> int:
        return _figures(incident).waiting

    @admin.display(description=_("drained"))
    def drained_(self, incident: Incident) -> int:
        return _figures(incident).drained

    @admin.display(description=_("peak waiting"))
    def peak(self, incident: Incident) -> int:
        return _figures(incident).peak

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method != "GET":
            return HttpResponse(status=405, headers={"Allow": "GET"})
        incident = Incident.objects.filter(pk=object_id).first()
        if incident is None or not self.has_view_permission(request, incident):
            raise Http404(_("No such incident."))
        crumbs = [(_("Today"), reverse("admin:index")),
                  (_("Incidents"), reverse("admin:support_incident_changelist")), (str(incident), "")]
        context = {**self.admin_site.each_context(request), "opts": self.opts, "incident": incident,
                   "figures": incident_figures(incident), "events": incident.events.select_related("account"),
                   "what": words.OUTAGE_WHAT.get(incident.provider, incident.provider),
                   "title": str(incident), "crumbs": crumbs, "has_view_permission": True,
                   "lasted": self.lasted(incident), **(extra_context or {})}
        return TemplateResponse(request, "admin/support/incident/detail.html", context)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
