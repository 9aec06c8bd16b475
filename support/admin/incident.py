"""Incidents in the console: read-only, with their timeline. They open and close by
themselves (support.incidents); nothing here changes them."""
from __future__ import annotations

from django.contrib import admin
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _

from provisioning.selectors import outage_backlog
from support.models import Incident, IncidentEvent, IncidentStatus


class IncidentEventInline(admin.TabularInline):
    model = IncidentEvent
    fields = ("created_at", "kind", "text", "account")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = _("timeline line")
    verbose_name_plural = _("timeline")

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("support.view_incident")  # the timeline is part of the incident

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ("__str__", "provider", "status", "lasted", "waiting_now", "peak_backlog", "affected", "drained")
    list_filter = ("status", "provider")
    fields = ("provider", "status", "started_at", "ended_at", "waiting_now", "peak_backlog", "affected", "drained")
    readonly_fields = fields
    inlines = [IncidentEventInline]
    actions = None
    list_per_page = 50
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description=_("lasted"))
    def lasted(self, incident: Incident) -> str:
        return timesince(incident.started_at, incident.ended_at).split(",")[0]

    @admin.display(description=_("waiting now"))
    def waiting_now(self, incident: Incident) -> str | int:
        """Live for an open incident (a count per step kind: at most two incidents are open)."""
        return outage_backlog(incident.provider) if incident.status == IncidentStatus.OPEN else "—"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
