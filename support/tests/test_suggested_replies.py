"""The console's suggested replies are read by the person later, when the schedule or
the delivery may have changed: they promise no time and claim no email was sent."""
import pytest

from accounts.tests.factories import sign_up
from support.models import Ticket
from support.selectors import suggested_reply

# Claims a reply cannot back: a duration the schedule may no longer keep, and "sent"
# without knowing that a server accepted the message.
FORBIDDEN = ("under a minute", "we sent", "we've sent", "check your spam")


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["setting_up", "delayed", "needs_support", "email_undeliverable",
                                   "unverified", "active", "disabled", None])
def test_a_suggested_reply_promises_no_time_and_claims_no_sending(state):
    _, account = sign_up()
    ticket = Ticket(account=account, email=account.email)
    reply = suggested_reply(ticket=ticket, state=state).lower()
    for claim in FORBIDDEN:
        assert claim not in reply, (state, claim)
