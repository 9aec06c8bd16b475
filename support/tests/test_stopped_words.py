"""What the console says about a step automation stopped on: the provider refused it
(no retry could help) or its retries ran out, never one told as the other; and /help/
offers log-in help only to someone who is not logged in."""
from __future__ import annotations

import html

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

    refused = str(words.REFUSED_WORKSPACE).split(".")[0]  # "Provider refused it; no retry can help"
    for where in (queue, page):
        assert refused in where
        assert "retries ran out" not in where.lower()  # neither the row, its category nor the filters
    assert ticket.get_priority_display() in page
    diagnostics = ticket.events.get(kind=EventKind.DIAGNOSTICS).text
    assert diagnostics.startswith("The provider refused the workspace") and "ran out" not in diagnostics


def test_a_workspace_out_of_retries_is_filed_as_retries_run_out(register, sandbox, drive, settings, console):
    settings.PROVISIONING_MAX_ATTEMPTS = 2
    settings.BREAKER_FAILURE_THRESHOLD = 10_000  # one person's failures, not an outage
    sandbox("provisioning", "error")
    account = register()
    drive()
    request = ProvisioningRequest.objects.get(account=account)
    assert (request.status, request.counted_attempts) == ("failed", 2)

    queue = text(console.get("/admin/support/ticket/"))

    assert str(words.FAILED_WORKSPACE).split(".")[0] in queue  # "Retries ran out"
    assert str(words.REFUSED_WORKSPACE).split(".")[0] not in queue
    diagnostics = Ticket.objects.get().events.get(kind=EventKind.DIAGNOSTICS).text
    assert "ran out of retries" in diagnostics and "refused" not in diagnostics


def test_help_offers_log_in_help_only_to_someone_not_logged_in(register):
    locked_out = "Locked out?"
    assert locked_out in text(Client().get("/help/"))

    person = Client()
    person.force_login(register())
    page = text(person.get("/help/"))

    assert locked_out not in page and 'href="/login/"' not in page
