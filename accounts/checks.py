"""System checks for what ``manage.py check --deploy`` should catch in our settings."""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def webhook_secret_check(app_configs, **kwargs) -> list[Warning]:
    """With an ESP behind Anymail, its tracking webhooks mark addresses as bounced:
    without basic auth, anyone on the internet could do that."""
    if settings.EMAIL_BACKEND.startswith("anymail.") and not settings.WEBHOOK_SECRET:
        return [Warning(
            "Anymail's tracking webhooks (/anymail/) accept posts from anyone.",
            hint="Set WEBHOOK_SECRET to a random user:password and put it in the ESP's webhook URL "
                 "(https://user:password@your-host/anymail/<esp>/tracking/).",
            id="accounts.W001",
        )]
    return []
