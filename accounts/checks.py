"""System checks for what ``manage.py check --deploy`` should catch in our settings."""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def webhook_secret_check(app_configs, **kwargs) -> list[Error]:
    """With an ESP behind Anymail, its tracking webhook marks addresses as bounced.
    Without basic auth anyone could do that, so the webhook stays unmounted (404,
    accounts.webhooks) and bounces go unnoticed: a deployment that cannot hear
    bounces is refused, not warned about."""
    if settings.EMAIL_BACKEND.startswith("anymail.") and not settings.WEBHOOK_SECRET:
        return [Error(
            "An ESP sends our email but WEBHOOK_SECRET is not set: its bounce webhook is switched off.",
            hint="Set WEBHOOK_SECRET to a random user:password and put it in the ESP's webhook URL "
                 "(https://user:password@your-host/anymail/<esp>/tracking/).",
            id="accounts.E001",
        )]
    return []


@register(Tags.security, deploy=True)
def secret_key_check(app_configs, **kwargs) -> list[Error]:
    """Production signs with DJANGO_SECRET_KEY, shared by every host; without it the
    web server refuses to start (config.startup), and so does this check."""
    from config.startup import NO_SECRET_KEY, secret_key_missing

    if secret_key_missing():
        return [Error(NO_SECRET_KEY, id="accounts.E002")]
    return []
