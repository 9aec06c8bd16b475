from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from anymail.signals import tracking
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_migrate

        from accounts import checks, emails, logging, receivers  # noqa: F401 (checks registers)
        from provisioning.signals import workspace_ready, workspace_removed

        emails.register_step_kind()
        workspace_ready.connect(receivers.on_workspace_ready, dispatch_uid="accounts.all_set")
        workspace_removed.connect(receivers.on_workspace_removed, dispatch_uid="accounts.purge_finish")
        tracking.connect(receivers.on_email_tracking, dispatch_uid="accounts.email_bounced")
        user_logged_in.connect(logging.bind_account_on_login, dispatch_uid="accounts.log_account")
        # Django's auth app (earlier in INSTALLED_APPS) connected update_last_login.
        user_logged_in.disconnect(dispatch_uid="update_last_login")
        user_logged_in.connect(receivers.record_last_login, dispatch_uid="accounts.last_login")
        post_migrate.connect(_ensure_schedule, sender=self)


def _ensure_schedule(**kwargs) -> None:
    from accounts import state_tally
    from accounts.flows.purge import ensure_schedule

    ensure_schedule()
    state_tally.ensure_schedule()
