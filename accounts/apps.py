from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import emails, receivers
        from provisioning.signals import workspace_ready

        emails.register_step_kind()
        workspace_ready.connect(receivers.on_workspace_ready, dispatch_uid="accounts.all_set")
