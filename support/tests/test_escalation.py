"""Escalation: automation gives up → one ticket per account, never a second, with
what the failed step saw; /setup/ then says a person is on it."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.test import Client

from accounts.models import EmailKind
from provisioning.models import ProvisioningRequest
from provisioning.services import workspace_request_retry
from support.models import ContactMessage, EventKind, Priority, Reason, Ticket, TicketStatus
from support.services import ticket_escalate, ticket_sweep


def test_an_exhausted_workspace_opens_a_ticket_with_its_diagnostics(stranded):
    account = stranded()

    ticket = Ticket.objects.get()
    assert (ticket.account, ticket.reason, ticket.status) == (account, Reason.WORKSPACE_FAILED, TicketStatus.OPEN)
    assert ticket.priority == Priority.AUTOMATION_EXHAUSTED
    assert ticket.reference.startswith("SUP-") and len(ticket.reference) == 10
    diagnostics = ticket.events.get(kind=EventKind.DIAGNOSTICS)
    assert "workspace" in diagnostics.text and "http_422" in diagnostics.text and "1 try" in diagnostics.text


def test_several_exhaustions_and_a_message_make_one_ticket(stranded, drive, client, committed):
    account = stranded()
    for _ in range(2):  # support (or the person) retries; the provider still refuses
        workspace_request_retry(request=ProvisioningRequest.objects.get(account=account), why="try again")
        drive()
    with committed():
        response = client.post("/help/", {"email": account.email, "message": "Still stuck, please help"})

    assert response.status_code == 200
    ticket = Ticket.objects.get()
    assert ticket.events.filter(kind=EventKind.DIAGNOSTICS).count() == 3
    assert ticket.events.filter(kind=EventKind.MESSAGE).count() == 1
    assert ContactMessage.objects.get().ticket == ticket
    assert ticket.priority == Priority.PERSON_WROTE  # the person wrote: most urgent
    assert ticket.reference in response.content.decode()


def test_the_status_page_says_a_person_is_on_it_with_the_reference(stranded):
    account = stranded()
    ticket = Ticket.objects.get()
    person = Client()
    person.force_login(account)

    status = person.get("/setup/status.json").json()
    page = person.get("/setup/").content.decode()

    assert status["state"] == "needs_support"
    assert status["ticket"] == ticket.reference
    assert f"within {settings.SUPPORT_REPLY_HOURS} hours (reference {ticket.reference})" in status["message"]
    assert "Passed to our support team" in page and ticket.reference in page


def test_an_exhausted_verification_email_opens_a_ticket(register, sandbox, drive, settings):
    settings.EMAIL_MAX_ATTEMPTS = 2
    sandbox("email", "timeout")
    account = register()
    drive()

    ticket = Ticket.objects.get()
    assert (ticket.account, ticket.reason) == (account, Reason.EMAIL_FAILED)
    assert "confirmation email" in ticket.events.get(kind=EventKind.DIAGNOSTICS).text


def test_other_failed_emails_open_no_ticket(register, sandbox, drive, settings, committed):
    from accounts.services import signup_attempt_notify

    account = register()
    settings.EMAIL_MAX_ATTEMPTS = 1
    sandbox("email", "timeout")
    with committed():
        signup_attempt_notify(account=account)
    drive()

    delivery = account.email_deliveries.get(kind=EmailKind.SIGNUP_ATTEMPT)
    assert delivery.status == "failed"
    assert not Ticket.objects.exists()


def test_the_database_refuses_a_second_unresolved_ticket(stranded):
    account = stranded()
    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.create(account=account, email=account.email, reason=Reason.CONTACT)


def test_a_resolved_ticket_stays_resolved_and_the_next_failure_opens_a_new_one(stranded, drive, console):
    from support.services import ticket_resolve

    account = stranded()
    first = Ticket.objects.get()
    ticket_resolve(ticket=first, actor="support (test)")
    workspace_request_retry(request=ProvisioningRequest.objects.get(account=account), why="try again")
    drive()

    assert Ticket.objects.count() == 2
    second = Ticket.objects.exclude(pk=first.pk).get()
    assert second.status == TicketStatus.OPEN and second.reference != first.reference


def test_the_sweep_opens_the_ticket_a_lost_announcement_never_did(signup_data, sandbox):
    from accounts.services import account_register
    from provisioning.durable import step_run

    sandbox("provisioning", "reject")
    account = account_register(**signup_data)
    # The step fails, but the worker dies before its after-commit announcement runs.
    assert step_run("workspace", ProvisioningRequest.objects.get(account=account).pk) == "failed"
    assert not Ticket.objects.exists()

    assert ticket_sweep() == {"opened": 1, "resolved": 0}
    assert ticket_sweep() == {"opened": 0, "resolved": 0}  # idempotent
    assert Ticket.objects.get().reason == Reason.WORKSPACE_FAILED


def test_the_sweep_leaves_a_resolved_ticket_resolved_until_the_step_fails_again(stranded):
    """Support resolved the ticket (say, after a phone call) while the workspace step
    stays failed: the sweep must not reopen it. A new failure, even one whose
    announcement is lost, does."""
    from provisioning.durable import step_run
    from support.services import ticket_resolve

    account = stranded()
    first = Ticket.objects.get()
    ticket_resolve(ticket=first, actor="support (test)", why="called them, they will wait")

    assert ticket_sweep() == {"opened": 0, "resolved": 0}
    assert ticket_sweep() == {"opened": 0, "resolved": 0}
    assert list(Ticket.objects.values_list("status", flat=True)) == [TicketStatus.RESOLVED]

    # Someone retries; the provider still refuses; the worker dies before announcing it.
    request = ProvisioningRequest.objects.get(account=account)
    workspace_request_retry(request=request, why="try again")
    assert step_run("workspace", request.pk) == "failed"
    assert Ticket.objects.count() == 1

    assert ticket_sweep() == {"opened": 1, "resolved": 0}
    second = Ticket.objects.exclude(pk=first.pk).get()
    assert (second.status, second.reason) == (TicketStatus.OPEN, Reason.WORKSPACE_FAILED)
    assert ticket_sweep() == {"opened": 0, "resolved": 0}


def test_the_sweep_leaves_a_resolved_email_ticket_resolved(register, sandbox, drive, settings):
    from support.services import ticket_resolve

    settings.EMAIL_MAX_ATTEMPTS = 1
    sandbox("email", "timeout")
    register()
    drive()
    ticket_resolve(ticket=Ticket.objects.get(reason=Reason.EMAIL_FAILED), actor="support (test)")

    assert ticket_sweep() == {"opened": 0, "resolved": 0}
    assert not Ticket.objects.exclude(status=TicketStatus.RESOLVED).exists()


def test_the_sweep_searches_the_accounts_in_flight_and_finds_every_one_needing_a_ticket(mixed_accounts, sandbox):
    """The sweep's search (``accounts_needing_a_ticket``) starts from the accounts in
    flight, not from every account: it finds exactly the accounts that counting the
    state's one definition over every customer says need support and that no ticket
    speaks for, across every state, a closed account and a confirmed one included."""
    from accounts.models import EmailDelivery, User
    from accounts.selectors import State, with_lifecycle_state
    from accounts.services import account_close, account_mark_verified, account_register
    from provisioning.durable import step_run
    from support.selectors import accounts_needing_a_ticket
    from support.services import ticket_resolve

    accounts = {account.email.split("@")[0]: account for account in mixed_accounts(26)}
    # Refused, then closed by staff: disabled, nobody to open a ticket for.
    sandbox("provisioning", "reject")
    closed = account_register(name="Closed", email="closed@example.com", phone="+1 415 555 0100",
                              company="Closed Ltd", password="a long enough password")
    step_run("workspace", ProvisioningRequest.objects.get(account=closed).pk)
    account_close(account=closed, actor="test", reason="test")
    # The verification email gave up, then the address was confirmed another way:
    # the stopped email stays, but the account is active.
    sandbox("provisioning", "ok")
    sandbox("email", "timeout")
    confirmed = account_register(name="Confirmed", email="confirmed@example.com", phone="+1 415 555 0100",
                                 company="Confirmed Ltd", password="a long enough password")
    step_run("workspace", ProvisioningRequest.objects.get(account=confirmed).pk)
    step_run("email", EmailDelivery.objects.get(account=confirmed, kind=EmailKind.VERIFICATION).pk)
    account_mark_verified(account=confirmed, actor="test", why="confirmed on the phone")
    sandbox("email", "ok")
    # One refused workspace has an open ticket; one stopped email a ticket support resolved.
    refused, gave_up = accounts["mixed4"], accounts["mixed5"]
    ticket_escalate(kind="workspace", step=ProvisioningRequest.objects.get(account=refused), account_id=refused.pk)
    email = EmailDelivery.objects.get(account=gave_up, kind=EmailKind.VERIFICATION)
    ticket_resolve(ticket=ticket_escalate(kind="email", step=email, account_id=gave_up.pk), actor="support (test)")

    everyone = with_lifecycle_state(User.objects.filter(is_staff=False))
    assert everyone.get(pk=closed.pk).lifecycle_state == State.DISABLED
    assert everyone.get(pk=confirmed.pk).lifecycle_state == State.ACTIVE
    needing = [account for account in everyone.filter(lifecycle_state=State.NEEDS_SUPPORT).order_by("date_joined", "pk")
               if account not in (refused, gave_up)]
    assert [account.email for account in needing] == ["mixed17@example.com", "mixed18@example.com"]
    assert accounts_needing_a_ticket() == needing
    assert ticket_sweep() == {"opened": 2, "resolved": 0}
    assert accounts_needing_a_ticket() == []


def test_the_sweep_runs_on_a_schedule(db):
    from django_q.models import Schedule

    schedule = Schedule.objects.get(name="support_sweep")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == ("support.tasks.sweep", "I", 5)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_escalations_open_one_ticket(signup_data):
    """Two workers announce at once: both try to open, the constraint lets one win and
    the other joins its ticket."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so there is no race to lose")
    import threading

    from accounts.services import account_register

    account = account_register(name="Ada", email="race@example.com", company="Race Ltd",
                               password=signup_data["password"])
    request = ProvisioningRequest.objects.get(account=account)
    request.last_error_code, request.last_error_detail = "http_503", "The provider failed with HTTP 503."
    barrier = threading.Barrier(4)
    errors = []

    def escalate():
        try:
            barrier.wait()
            ticket_escalate(kind="workspace", step=request, account_id=account.pk)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=escalate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Ticket.objects.count() == 1
    assert Ticket.objects.get().events.filter(kind=EventKind.DIAGNOSTICS).count() == 4
