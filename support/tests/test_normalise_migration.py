"""support 0010: tickets stored before ``normalize_email`` get its form, so a new
message from the address joins its open ticket; an open ticket without an account
whose new address another such ticket holds keeps its own (one open unmatched ticket
per address), is logged masked, and the migration carries on."""
from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from support.models import Ticket
from support.services import contact_message_receive, ticket_resolve

migration = importlib.import_module("support.migrations.0010_normalise_ticket_emails")

pytestmark = pytest.mark.django_db

MAILBOX = "ada@bücher.de"
ASCII_DOMAIN = "ada@xn--bcher-kva.de"


def _ticket_stored_as(typed: str, *, writes_to: str = "someone@example.com") -> Ticket:
    """An open ticket from an address no account uses, as old code stored it."""
    ticket = contact_message_receive(email=writes_to, message="Hello?").ticket
    Ticket.objects.filter(pk=ticket.pk).update(email=typed)
    return Ticket.objects.get(pk=ticket.pk)


def test_an_old_ticket_address_is_normalised_and_the_next_message_joins_it():
    ticket = _ticket_stored_as(ASCII_DOMAIN)

    migration.normalise_ticket_emails(apps, None)

    ticket.refresh_from_db()
    assert ticket.email == MAILBOX
    assert contact_message_receive(email=ASCII_DOMAIN, message="Me again").ticket == ticket


def test_an_open_ticket_whose_address_another_holds_keeps_its_own(caplog):
    newer = contact_message_receive(email=MAILBOX, message="Hello").ticket
    older = _ticket_stored_as(ASCII_DOMAIN)
    resolved = _ticket_stored_as("\uff41da@bücher.de", writes_to="grace@example.com")
    ticket_resolve(ticket=resolved, actor="support")

    with caplog.at_level("WARNING", logger="support.migrations"):
        migration.normalise_ticket_emails(apps, None)

    for ticket, address in ((older, ASCII_DOMAIN), (newer, MAILBOX), (resolved, MAILBOX)):
        ticket.refresh_from_db()
        assert ticket.email == address  # a resolved ticket is bound by nothing: normalised
    [record] = [r for r in caplog.records if r.name == "support.migrations"]
    assert str(older.pk) in record.getMessage() and "ada@" not in record.getMessage()
