from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Workspaces"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from provisioning import heal, removal, services  # noqa: F401 (heal connects its receiver)

        services.register_step_kind()
        removal.register_step_kind()
        post_migrate.connect(_ensure_schedule, sender=self)


def _ensure_schedule(**kwargs) -> None:
    from provisioning.reconciler import ensure_schedule

    ensure_schedule()
