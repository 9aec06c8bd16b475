"""Incidents in the console: the list and one page per incident with its figures
(``support.incidents.incident_figures``: defined once, so the page, the list, the
banner and the timeline agree) and its timeline. They open and close by themselves
(support.incidents); nothing here changes them. One button: "Re-run all", on an
incident that is a refusal of ours (``support.actions.rerun_all``)."""
from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from provisioning.models import REFUSED_OURS
from support import actions
from support import messages as words
from support.admin.crumbs import section_crumbs
from support.forms import ButtonForm
from support.incidents import IncidentFigures, incident_figures
from support.models import Incident, IncidentStatus
from support.selectors import incident_refused, incident_steps_stopped, open_incident_state

RERUN_PERMISSION = "support.rerun_provisioning"


def _figures(incident: Incident) -> IncidentFigures:
    """Once per row: the list shows four figures of each incident."""
    if not hasattr(incident, "_figures"):
        incident._figures = incident_figures(incident)
    return incident._figures


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = ("name", "provider", "status", "lasted", "affected_", "waiting_now", "drained_", "peak")
    list_filter = ("status", "provider")
    actions = None
    list_per_page = 50
    show_facets = admin.ShowFacets.NEVER

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("Incidents"), **(extra_context or {})})

    @admin.display(description=_("incident"), ordering="started_at")
    def name(self, incident: Incident) -> str:
        return str(words.INCIDENT_NAME).format(provider=incident.get_provider_display(),
                                               since=words.console_time(incident.started_at))

    @admin.display(description=_("lasted"))
    def lasted(self, incident: Incident) -> str:
        return words.console_duration(incident.started_at, incident.ended_at, depth=1)

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

    def get_urls(self):
        return [path("<int:object_id>/rerun-all/", self.admin_site.admin_view(self.rerun_all_view),
                     name="support_incident_rerun_all"), *super().get_urls()]

    def _incident(self, request, object_id) -> Incident:
        incident = Incident.objects.filter(pk=object_id).first()
        if incident is None or not self.has_view_permission(request, incident):
            raise Http404(_("No such incident."))
        return incident

    def _crumbs(self, incident: Incident, url: str = "") -> list[tuple[str, str]]:
        return [*section_crumbs(self.opts), (self.name(incident), url)]

    def rerun_all_view(self, request, object_id: int) -> HttpResponse:
        """GET: the confirmation page. POST: re-arm them all, once per click."""
        if not request.user.has_perm(RERUN_PERMISSION):
            raise PermissionDenied
        incident = self._incident(request, object_id)
        back = reverse("admin:support_incident_change", args=[incident.pk])
        if request.method == "POST":
            form = ButtonForm(request.POST)
            if form.is_valid():
                result = actions.rerun_all(actor=request.user, incident=incident, **form.cleaned_data)
                (messages.success if result.done else messages.info)(request, result.message)
                return redirect(back)
            status = 400
        elif request.method == "GET":
            form, status = ButtonForm(initial={"action_key": uuid.uuid4().hex}), 200
        else:
            return HttpResponse(status=405, headers={"Allow": "GET, POST"})
        label, description = words.BUTTONS["rerun_all"]
        context = {**self.admin_site.each_context(request), "opts": self.opts, "label": label,
                   "description": str(description).format(code=incident.cause), "form": form,
                   "back_url": back, "crumbs": [*self._crumbs(incident, back), (label, "")],
                   "title": f"{label} · {self.name(incident)}"}
        return TemplateResponse(request, "admin/support/button.html", context, status=status)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method != "GET":
            return HttpResponse(status=405, headers={"Allow": "GET"})
        incident = self._incident(request, object_id)
        crumbs = self._crumbs(incident)
        # Offered only while some step is stopped with the refusal: once none is (it
        # closed, or every one was re-run), the button would re-run nothing.
        steps_stopped = incident_steps_stopped(incident)
        rerun_all = (reverse("admin:support_incident_rerun_all", args=[incident.pk])
                     if steps_stopped and request.user.has_perm(RERUN_PERMISSION) else "")
        figures = incident_figures(incident)
        now = (open_incident_state(incident, waiting=figures.waiting, steps_stopped=steps_stopped)
               if incident.status == IncidentStatus.OPEN else None)
        cause = ""
        if incident.cause:
            refused, held = (incident_refused(incident) if now is not None and incident.opened_by in REFUSED_OURS
                             else (0, 0))
            cause = words.incident_cause(opened_by=incident.opened_by, code=incident.cause, refused=refused,
                                         held=held, circuit_open=now is not None and now.stopped,
                                         steps_stopped=steps_stopped, affected=figures.affected,
                                         started=incident.started_at, ended=incident.ended_at)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "incident": incident,
                   "figures": figures, "events": incident.events.select_related("account"), "cause": cause,
                   "now": now,
                   "title": self.name(incident), "crumbs": crumbs, "has_view_permission": True,
                   "lasted": self.lasted(incident), "rerun_all_url": rerun_all,
                   "rerun_all_label": words.BUTTONS["rerun_all"][0], **(extra_context or {})}
        return TemplateResponse(request, "admin/support/incident/detail.html", context)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
