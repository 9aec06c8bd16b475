"""Hand-offs from provisioning's signals to account services (one line each)."""
from __future__ import annotations

from django.db import transaction


def on_workspace_ready(*, account_id: int, waited: bool, **kwargs) -> None:
    """A person who waited through a failure gets one "you're all set" email."""
    from accounts.emails import email_queue
    from accounts.models import EmailKind, User

    if waited:
        with transaction.atomic():
            email_queue(account=User.objects.get(pk=account_id), kind=EmailKind.ALL_SET,
                        key=str(account_id))


def on_email_tracking(*, event, esp_name: str, **kwargs) -> None:
    """Anymail's tracking webhook: a bounce, rejection or complaint marks the address."""
    from accounts.services import email_mark_bounced

    email_mark_bounced(esp=esp_name, event_id=event.event_id, recipient=event.recipient,
                       event_type=event.event_type, occurred_at=event.timestamp)
