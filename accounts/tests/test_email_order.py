"""The apology comes after the emails it apologises for. "Sorry for the wait"
(``EmailKind.ALL_SET``, not urgent) is owed the moment a workspace that waited is
ready; an email of the same person that failed meanwhile (the verification link,
the acknowledgement of a /help/ message) may still sit in its backoff then. The
dispatcher holds the apology until the person's other emails have been sent or have
given up (``durable.due_steps``), so it never arrives before them, and never waits
for ever."""
from __future__ import annotations

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.messages import EMAIL_SUBJECTS
from accounts.models import EmailDelivery, EmailKind
from accounts.tests.factories import sign_up
from provisioning import breaker, durable
from provisioning.durable import StepStatus
from provisioning.models import Workspace

pytestmark = pytest.mark.django_db

ADDRESS = "ada@example.com"
VERIFICATION = str(EMAIL_SUBJECTS["verification"])
ACKNOWLEDGEMENT = str(EMAIL_SUBJECTS["acknowledgement"])
APOLOGY = str(EMAIL_SUBJECTS["all_set"])


def subjects(address: str = ADDRESS) -> list[str]:
    """What reached the person, in the order it was sent."""
    return [message.subject for message in mail.outbox if address in message.to]


def delivery(kind: str) -> EmailDelivery:
    return EmailDelivery.objects.get(to_address=ADDRESS, kind=kind)


@pytest.fixture
def outage(settings, sandbox):
    """Signups and messages during a workspace outage of ours (the provider refuses
    our credentials: its circuit opens at once and holds the workspace) while the
    email provider times out (one person's failures open no circuit: each email
    backs off, RETRY_BASE_SECONDS as in production)."""
    settings.RETRY_BASE_SECONDS = 30
    settings.BREAKER_PROBE_SECONDS = 3600
    sandbox("provisioning", "unauthorized")
    sandbox("email", "timeout")


@pytest.fixture
def workspaces_heal(settings, sandbox, drive):
    """The workspace provider recovers and the next probe is due: the held workspace
    is made, which owes the apology."""
    def run() -> None:
        sandbox("provisioning", "ok")
        settings.BREAKER_PROBE_SECONDS = 0
        drive()
        assert Workspace.objects.filter(owner__email=ADDRESS).exists()
        assert not breaker.is_open("provisioning")
        assert EmailDelivery.objects.filter(to_address=ADDRESS, kind=EmailKind.ALL_SET).exists()
    return run


def test_the_apology_waits_for_the_verification_email_still_in_its_backoff(outage, workspaces_heal, sandbox, drive):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        sign_up(email=ADDRESS)
        drive()
        link = delivery(EmailKind.VERIFICATION)
        assert (link.status, link.attempts) == (StepStatus.PENDING, 1)
        assert link.next_attempt_at > timezone.now()  # backing off

        sandbox("email", "ok")  # the email provider is back too...
        workspaces_heal()  # ...and the workspace is made while the link still backs off

        assert subjects() == []  # no apology for an email not sent yet
        assert delivery(EmailKind.ALL_SET).attempts == 0

        clock.move_to(link.next_attempt_at)
        drive()

    assert subjects() == [VERIFICATION, APOLOGY]


def test_the_apology_waits_for_the_acknowledgement_of_a_help_message(outage, workspaces_heal, sandbox, drive):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        sandbox("email", "ok")
        sign_up(email=ADDRESS)
        drive()
        assert subjects() == [VERIFICATION]

        sandbox("email", "timeout")  # the email provider fails as the person writes
        Client().post("/help/", {"email": ADDRESS, "message": "Is my workspace coming?"})
        drive()
        acknowledgement = delivery(EmailKind.ACKNOWLEDGEMENT)
        assert acknowledgement.status == StepStatus.PENDING and acknowledgement.next_attempt_at > timezone.now()

        sandbox("email", "ok")
        workspaces_heal()
        assert subjects() == [VERIFICATION]

        clock.move_to(acknowledgement.next_attempt_at)
        drive()

    assert subjects() == [VERIFICATION, ACKNOWLEDGEMENT, APOLOGY]


def test_the_apology_goes_once_the_verification_email_gives_up(outage, workspaces_heal, settings, sandbox, drive):
    settings.EMAIL_MAX_ATTEMPTS = 2
    with time_machine.travel(timezone.now(), tick=False) as clock:
        sign_up(email=ADDRESS)
        drive()
        workspaces_heal()  # the email provider still times out
        assert delivery(EmailKind.ALL_SET).attempts == 0  # held behind the link's last try

        clock.move_to(delivery(EmailKind.VERIFICATION).next_attempt_at)
        drive(max_passes=1)  # the link's last attempt times out: it gives up
        assert delivery(EmailKind.VERIFICATION).status == StepStatus.FAILED
        sandbox("email", "ok")
        drive()

    assert subjects() == [APOLOGY]
    assert delivery(EmailKind.ALL_SET).status == StepStatus.SUCCEEDED


def test_with_nothing_else_owed_the_apology_goes_as_the_workspace_is_made(outage, workspaces_heal, sandbox, drive):
    sandbox("email", "ok")
    sign_up(email=ADDRESS)
    drive()
    assert subjects() == [VERIFICATION]

    workspaces_heal()

    assert subjects() == [VERIFICATION, APOLOGY]


@pytest.mark.postgres
def test_the_due_query_reads_the_due_index_and_the_persons_owed_emails_through_an_index(
        outage, workspaces_heal, sandbox, drive):
    """The dispatcher asks every few seconds over tables of millions of emails: the
    hold must not turn its due query into a read of the table. Sequential scans are
    priced out for this transaction, so a hold no index can answer shows as a Seq Scan
    whatever the table's size. (With these few rows PostgreSQL reads the open emails
    once through ``email_due_idx`` and hashes them; over 200,000 it probes the
    account's foreign-key index once per due apology: docs/benchmarks.md.)"""
    with time_machine.travel(timezone.now(), tick=False):
        sign_up(email=ADDRESS)
        drive()
        sandbox("email", "ok")
        workspaces_heal()
    link = delivery(EmailKind.VERIFICATION)
    kind = durable.kind_named("email")

    with CaptureQueriesContext(connection) as queries:
        # The link due again, the apology held behind it: the hold is read.
        assert durable.due_steps(kind, now=link.next_attempt_at) == [link.pk]
        assert durable.due_steps(kind, now=link.next_attempt_at, urgent_only=True) == [link.pk]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # as with a million rows
        for query in queries.captured_queries:
            cursor.execute(f"EXPLAIN {query['sql']}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "email_due_idx" in plan and "SubPlan" in plan, plan
            assert "Seq Scan" not in plan, plan
