"""Hand-offs from signals to account services (one line each)."""
from __future__ import annotations

from django.contrib.auth.models import update_last_login
from django.db import transaction

from provisioning.signals import logged_receiver


@logged_receiver("could not queue the all-set email for account {account_id}")
def on_workspace_ready(*, account_id: int, waited: bool, **kwargs) -> None:
    """A person who waited through a failure gets one "you're all set" email."""
    from accounts.emails import email_queue
    from accounts.models import EmailKind, User

    if waited:
        with transaction.atomic():
            email_queue(account=User.objects.get(pk=account_id), kind=EmailKind.ALL_SET,
                        key=str(account_id))


@logged_receiver("could not delete abandoned signup {account_id} after its workspace was removed "
                 "(the next purge run will)")
def on_workspace_removed(*, account_id: int, **kwargs) -> None:
    """An abandoned signup's workspace is gone at the provider: delete the account."""
    from accounts.flows.purge import abandoned_signup_finish

    abandoned_signup_finish(account_id=account_id)


# Not wrapped in logged_receiver: an error here must answer the ESP with a 500 so it
# delivers the event again (email_mark_bounced is idempotent per event id); it is the
# only receiver of this signal, so there is no other receiver for it to stop.
def on_email_tracking(*, event, esp_name: str, **kwargs) -> None:
    """Anymail's tracking webhook: a bounce, rejection or complaint marks the address."""
    from accounts.services import email_mark_bounced

    email_mark_bounced(esp=esp_name, event_id=event.event_id, recipient=event.recipient,
                       event_type=event.event_type, occurred_at=event.timestamp)


def record_last_login(sender, user, **kwargs) -> None:
    """``user_logged_in``, in place of Django's ``update_last_login``: the same write,
    skipped once for an account whose signup already saved this login's time
    (``account_register``): one write fewer on the way from signup to the status page."""
    if getattr(user, "login_saved", False):
        user.login_saved = False  # only the login that follows the signup
        return
    update_last_login(sender, user, **kwargs)
