from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from anymail.signals import tracking
        from django.contrib.auth.signals import user_logged_in

        from accounts import checks, emails, logging, receivers  # noqa: F401 (checks registers)
        from provisioning.signals import workspace_ready

        emails.register_step_kind()
        workspace_ready.connect(receivers.on_workspace_ready, dispatch_uid="accounts.all_set")
        tracking.connect(receivers.on_email_tracking, dispatch_uid="accounts.email_bounced")
        user_logged_in.connect(logging.bind_account_on_login, dispatch_uid="accounts.log_account")
