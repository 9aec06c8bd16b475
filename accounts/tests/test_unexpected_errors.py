"""An error nobody classified must not leave a step running for ever: it counts as a
failed attempt, and after the usual retries a person is asked."""
import pytest
from django.core.mail.backends.base import BaseEmailBackend

from accounts.models import EmailDelivery


class BrokenBackend(BaseEmailBackend):
    """An email backend with a bug in it (configured like any other backend)."""

    def send_messages(self, email_messages):
        raise RuntimeError("a bug in the email backend")


@pytest.mark.django_db
def test_an_unclassified_error_is_retried_then_escalated(settings, client, signup_data, drive):
    settings.EMAIL_BACKEND = "accounts.tests.test_unexpected_errors.BrokenBackend"
    settings.EMAIL_MAX_ATTEMPTS = 3
    client.post("/signup/", signup_data)
    drive(max_passes=1)
    delivery = EmailDelivery.objects.get(kind="verification")
    assert (delivery.status, delivery.last_error_code) == ("pending", "unexpected")
    drive()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.counted_attempts) == ("failed", 3)
    assert client.get("/setup/status.json").json()["state"] == "needs_support"


def test_retry_after_is_bounded(settings):
    from provisioning.backends import _retry_after

    settings.RETRY_MAX_SECONDS = 600
    assert _retry_after("inf") is None and _retry_after("nan") is None
    assert _retry_after("1e308") == 600
    assert _retry_after("-5") == 0
    assert _retry_after("7") == 7
