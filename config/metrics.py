"""``/metrics``: the engine's state for Prometheus, for operators (issue 12, item 8).

Not public. A scrape carries ``Authorization: Bearer <METRICS_TOKEN>`` (compared in
constant time); without a token set, only a staff member signed in to the support
console (with its second factor) can read it. Anyone else gets the site's 404, so
the endpoint's existence is not advertised.

Every figure is read from the database at scrape time, so it is the same whichever
web process answers and survives restarts: gauges of what is there now, not
per-process counters. Each family is one GROUP BY (steps through their
(status, next_attempt_at) index); scrape every 30-60 s, not every second.
The alerts an operator should set on them are in docs/production.md.
"""
from __future__ import annotations

import hmac
from collections.abc import Iterator

from django.conf import settings
from django.contrib import admin
from django.db.models import Count, Min, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from accounts.models import EmailDelivery
from provisioning import durable
from provisioning.durable import StepStatus
from provisioning.models import Breaker, BreakerState
from support.models import UNRESOLVED, Incident, IncidentStatus, Ticket

# Providers whose circuit is reported even before their Breaker row exists.
PROVIDERS = ("provisioning", "email")


class EngineCollector(Collector):
    """Reads the durable steps, breakers, incidents, tickets and emails."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        due = GaugeMetricFamily("signup_steps_due", "Steps due now and not running, per kind.", labels=["kind"])
        running = GaugeMetricFamily("signup_steps_running", "Steps a worker holds the lease on, per kind.",
                                    labels=["kind"])
        oldest = GaugeMetricFamily("signup_steps_oldest_due_age_seconds",
                                   "How long the oldest due step has been due (0 when none is).", labels=["kind"])
        outcomes = GaugeMetricFamily(
            "signup_steps", "Steps per kind, status and last error code ('' when none): outcomes so far.",
            labels=["kind", "status", "code"])
        for kind in durable.kinds():
            steps = kind.model.objects
            open_now = steps.filter(status__in=[StepStatus.PENDING, StepStatus.RUNNING]).aggregate(
                due=Count("pk", filter=Q(status=StepStatus.PENDING, next_attempt_at__lte=now)),
                running=Count("pk", filter=Q(status=StepStatus.RUNNING)),
                oldest=Min("next_attempt_at", filter=Q(status=StepStatus.PENDING, next_attempt_at__lte=now)))
            due.add_metric([kind.name], open_now["due"])
            running.add_metric([kind.name], open_now["running"])
            oldest.add_metric([kind.name], (now - open_now["oldest"]).total_seconds() if open_now["oldest"] else 0)
            for row in steps.values("status", "last_error_code").annotate(n=Count("pk")).order_by():
                outcomes.add_metric([kind.name, row["status"], row["last_error_code"]], row["n"])
        yield from (due, running, oldest, outcomes)

        circuit = GaugeMetricFamily("signup_breaker_open", "1 while a provider's circuit is open (an outage).",
                                    labels=["provider"])
        states = dict(Breaker.objects.values_list("provider", "state"))
        for provider in sorted({*PROVIDERS, *states}):
            circuit.add_metric([provider], 1 if states.get(provider) == BreakerState.OPEN else 0)
        yield circuit

        incidents = GaugeMetricFamily("signup_incidents_open", "Open incidents, per provider.", labels=["provider"])
        open_incidents = dict(Incident.objects.filter(status=IncidentStatus.OPEN).values_list("provider")
                              .annotate(n=Count("pk")).order_by())
        for provider in sorted({*PROVIDERS, *open_incidents}):
            incidents.add_metric([provider], open_incidents.get(provider, 0))
        yield incidents

        tickets = GaugeMetricFamily("signup_tickets_unresolved",
                                    "Tickets waiting on support or the person, per reason.", labels=["reason"])
        for reason, n in (Ticket.objects.filter(status__in=UNRESOLVED).values_list("reason")
                          .annotate(n=Count("pk")).order_by()):
            tickets.add_metric([reason], n)
        yield tickets

        emails = GaugeMetricFamily(
            "signup_emails", "Emails per kind and outcome: sent (a server accepted it), refused (failed for good), "
            "bounced (accepted, then bounced), pending.", labels=["kind", "outcome"])
        rows = EmailDelivery.objects.values("kind").annotate(
            sent=Count("pk", filter=Q(status=StepStatus.SUCCEEDED, bounced_at__isnull=True)),
            refused=Count("pk", filter=Q(status=StepStatus.FAILED)),
            bounced=Count("pk", filter=Q(bounced_at__isnull=False)),
            pending=Count("pk", filter=Q(status__in=[StepStatus.PENDING, StepStatus.RUNNING]))).order_by()
        for row in rows:
            for outcome in ("sent", "refused", "bounced", "pending"):
                emails.add_metric([row["kind"], outcome], row[outcome])
        yield emails


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").encode(), token.encode())
    # The console's own rule (staff, signed in with the second factor).
    return admin.site.has_permission(request)


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        raise Http404
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
