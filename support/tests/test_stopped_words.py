"""What the console says about a step automation stopped on: the provider refused it
(no retry could help) or its retries ran out, never one told as the other; and /help/
offers log-in help only to someone who is not logged in."""
from __future__ import annotations

import html
import uuid

from django.test import Client

from provisioning.models import ProvisioningRequest
from support import messages as words
from support.models import EventKind, Ticket


def text(response) -> str:
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_a_refused_workspace_is_filed_as_refused_not_as_retries_run_out(stranded, console):
    account = stranded()  # the provider answered HTTP 422 once
    request = ProvisioningRequest.objects.get(account=account)
    assert (request.attempts, request.counted_attempts, request.last_error_code) == (1, 0, "http_422")
    ticket = Ticket.objects.get()

    queue = text(console.get("/admin/support/ticket/"))
    page = text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))

    refused = str(words.REFUSED_WORKSPACE).split(".")[0]  # "Provider refused it; retried unchanged ..."
    for where in (queue, page):
        assert refused in where
        assert "retries ran out" not in where.lower()  # neither the row, its category nor the filters
    assert ticket.get_priority_display() in page
    diagnostics = ticket.events.get(kind=EventKind.DIAGNOSTICS).text
    assert diagnostics.startswith("The provider refused the workspace") and "ran out" not in diagnostics


def test_a_refused_workspace_is_not_called_beyond_any_retry_since_a_re_run_works_once_its_cause_is_fixed(
        stranded, sandbox, drive, console):
    account = stranded()  # the provider answered HTTP 422 once
    ticket = Ticket.objects.get()
    queue = text(console.get("/admin/support/ticket/"))
    diagnostics = ticket.events.get(kind=EventKind.DIAGNOSTICS).text
    rerun = str(words.BUTTONS["rerun"][0])

    for said in (queue, diagnostics):
        assert "no retry can help" not in said and "retrying can't" not in said
        assert "gets the same answer" in said and rerun.split()[0] in said  # fix the cause, then Re-run
    assert rerun in text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))

    # What the console says is so: once what was refused is fixed, its Re-run sets the workspace up.
    sandbox("provisioning", "ok")
    response = console.post(f"/admin/support/ticket/{ticket.pk}/do/rerun/", {"action_key": uuid.uuid4().hex})
    assert response.status_code == 302
    drive()
    assert ProvisioningRequest.objects.get(account=account).status == "succeeded"


def test_a_confirmation_email_the_provider_refused_is_filed_as_refused_not_as_out_of_tries(
        register, sandbox, drive, console):
    sandbox("email", "refuse_message")  # SMTP 554 5.6.0: the message refused for good, not the address
    register()
    drive()
    ticket = Ticket.objects.get()

    queue = text(console.get("/admin/support/ticket/"))
    page = text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))

    for where in (queue, page):
        assert "Email provider refused it; sent again unchanged it gets the same answer" in where
        assert "couldn't be sent after" not in where
    assert str(words.BUTTONS["resend"][0]) in page
    diagnostics = ticket.events.get(kind=EventKind.DIAGNOSTICS).text
    assert diagnostics.startswith("The provider refused the confirmation email")
    assert str(words.BUTTONS["resend"][0]) in diagnostics and "retrying can't" not in diagnostics


def test_help_offers_log_in_help_only_to_someone_not_logged_in(register):
    locked_out = "Locked out?"
    assert locked_out in text(Client().get("/help/"))

    person = Client()
    person.force_login(register())
    page = text(person.get("/help/"))

    assert locked_out not in page and 'href="/login/"' not in page
