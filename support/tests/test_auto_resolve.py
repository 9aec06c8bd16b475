"""Tickets resolve themselves when the account heals; the person gets one
"you're all set — sorry for the wait" email."""
from __future__ import annotations

from django.core import mail
from django.test import Client

from accounts.models import EmailKind
from accounts.services import account_resume
from support.models import EventKind, Ticket, TicketStatus
from support.services import ticket_sweep


def _all_set_emails(address: str) -> list:
    return [m for m in mail.outbox if address in m.to and m.subject.startswith("Sorry for the wait")]


def test_the_ticket_resolves_itself_when_the_workspace_becomes_ready(stranded, sandbox, drive, committed):
    account = stranded()
    ticket = Ticket.objects.get()

    sandbox("provisioning", "ok")  # the provider recovers; an operator re-runs setup
    with committed():
        account_resume(account=account, actor="operator (manage.py retry_setup)")
    drive()

    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED and ticket.resolved_automatically
    resolved = ticket.events.get(kind=EventKind.STATUS, to_status=TicketStatus.RESOLVED)
    assert "resolved automatically" in resolved.text
    assert len(_all_set_emails(account.email)) == 1
    assert account.email_deliveries.filter(kind=EmailKind.ALL_SET).count() == 1
    person = Client()
    person.force_login(account)
    assert person.get("/setup/status.json").json()["ticket"] is None


def test_a_ticket_the_person_wrote_on_stays_open_with_a_note(stranded, sandbox, drive, client, committed):
    account = stranded()
    with committed():
        client.post("/help/", {"email": account.email, "message": "Also, can you rename my company?"})

    sandbox("provisioning", "ok")
    with committed():
        account_resume(account=account)
    drive()

    ticket = Ticket.objects.get()
    assert ticket.status == TicketStatus.OPEN
    assert "they wrote to us since our last reply" in ticket.events.filter(kind=EventKind.NOTE).last().text
    assert len(_all_set_emails(account.email)) == 1  # the all-set email still goes out, once


def test_the_sweep_resolves_a_ticket_whose_ready_announcement_was_lost(stranded, sandbox):
    from provisioning.durable import step_run
    from provisioning.models import ProvisioningRequest

    account = stranded()
    sandbox("provisioning", "ok")
    account_resume(account=account)
    # A worker creates the workspace, but dies before its after-commit announcement runs.
    assert step_run("workspace", ProvisioningRequest.objects.get(account=account).pk) == "succeeded"

    assert Ticket.objects.get().status == TicketStatus.OPEN
    assert ticket_sweep() == {"opened": 0, "resolved": 1}
    ticket = Ticket.objects.get()
    assert ticket.status == TicketStatus.RESOLVED and ticket.resolved_automatically
