from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class SupportConfig(AppConfig):
    name = "support"
    verbose_name = "Support"
    default = True

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from accounts.selectors import register_incident_lookup, register_purge_hold, register_ticket_lookup
        from accounts.signals import account_closed
        from provisioning.signals import (
            breaker_cause_changed,
            breaker_closed,
            breaker_opened,
            reconciled,
            step_exhausted,
            workspace_ready,
        )
        from support import receivers, selectors

        step_exhausted.connect(receivers.on_step_exhausted, dispatch_uid="support.escalate")
        workspace_ready.connect(receivers.on_workspace_ready, dispatch_uid="support.auto_resolve")
        workspace_ready.connect(receivers.on_workspace_ready_close_incidents, dispatch_uid="support.incident_drained")
        breaker_opened.connect(receivers.on_breaker_opened, dispatch_uid="support.incident_open")
        breaker_closed.connect(receivers.on_breaker_closed, dispatch_uid="support.incident_recovered")
        breaker_cause_changed.connect(receivers.on_breaker_cause_changed, dispatch_uid="support.incident_cause")
        reconciled.connect(receivers.on_reconciled, dispatch_uid="support.incidents_match_circuits")
        account_closed.connect(receivers.on_account_closed, dispatch_uid="support.resolve_closed")
        register_ticket_lookup(selectors.open_ticket_reference)
        register_incident_lookup(selectors.open_incident_providers)
        register_purge_hold(selectors.has_open_ticket)
        post_migrate.connect(_ensure_schedule, sender=self)


def _ensure_schedule(**kwargs) -> None:
    """The backstop sweep for lost announcements (support.services.ticket_sweep)."""
    from django_q.models import Schedule

    Schedule.objects.get_or_create(
        name="support_sweep",
        defaults={"func": "support.tasks.sweep", "schedule_type": Schedule.MINUTES, "minutes": 5, "repeats": -1})


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """Django's admin with the support console as its site (support.console)."""

    default = False
    default_site = "support.console.SupportConsole"
