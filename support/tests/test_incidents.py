"""Outage mode, the support side (issue 4): when a provider is down, one incident
instead of a flood of tickets; it closes by itself when the backlog drains, and
each person who waited gets one apology."""
from __future__ import annotations

import html
import re
from collections import Counter

import pytest
from django.core import mail
from django.test import Client

from accounts.messages import EMAIL_SUBJECTS
from provisioning import breaker
from provisioning.models import ProvisioningRequest, Workspace
from support import messages as words
from support.models import ContactMessage, Incident, IncidentEventKind, IncidentStatus, Ticket
from support.tasks import sweep

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return html.unescape(response.content.decode())


def apologies() -> Counter:
    return Counter(m.to[0] for m in mail.outbox if m.subject == str(EMAIL_SUBJECTS["all_set"]))


@pytest.fixture
def sign_up(signup_data):
    def run(n: int, prefix: str = "p") -> list[str]:
        emails = [f"{prefix}{i}@example.com" for i in range(n)]
        for email in emails:
            assert Client().post("/signup/", {**signup_data, "email": email}).status_code == 302
        return emails
    return run


@pytest.fixture
def down(settings, sandbox):
    """Take providers down; the probe interval is long while they are."""
    def run(*providers: str) -> None:
        settings.BREAKER_PROBE_SECONDS = 3600
        for provider in providers:
            sandbox(provider, "error")
    return run


@pytest.fixture
def recover(settings, sandbox, drive, committed):
    """Bring providers back, let the probe go out at once, drain, then run the
    scheduled sweep once (the backstop for the close check)."""
    def run(*providers: str) -> None:
        for provider in providers:
            sandbox(provider, "ok")
        settings.BREAKER_PROBE_SECONDS = 0  # the probe interval has passed
        drive()
        with committed():
            sweep()
        drive()
    return run


# Four times the breaker's threshold: five failures open the circuit and the other
# fifteen are held behind it, so a ticket, an exhausted step or a second apology for
# anyone would show; more people prove nothing more.
PEOPLE = 20


def test_signups_during_a_workspace_outage_make_one_incident_no_tickets_then_one_apology_each(
        sign_up, down, recover, drive):
    down("provisioning")
    emails = sign_up(PEOPLE)
    drive(max_passes=5)

    assert breaker.is_open("provisioning")
    incident = Incident.objects.get()
    assert (incident.provider, incident.status) == ("provisioning", IncidentStatus.OPEN)
    assert Ticket.objects.count() == 0  # nobody affected opened a ticket
    assert ProvisioningRequest.objects.filter(status="failed").count() == 0  # nobody exhausted
    assert apologies() == Counter()

    recover("provisioning")

    assert Workspace.objects.count() == PEOPLE
    assert not ProvisioningRequest.objects.exclude(status="succeeded").exists()
    assert apologies() == Counter({email: 1 for email in emails})
    assert Ticket.objects.count() == 0
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED and incident.ended_at is not None
    assert (incident.affected, incident.drained, incident.peak_backlog) == (PEOPLE, PEOPLE, PEOPLE)
    timeline = {event.kind: event.text for event in incident.events.all()}
    assert set(timeline) == {IncidentEventKind.OPENED, IncidentEventKind.RECOVERED, IncidentEventKind.CLOSED}
    assert f"{PEOPLE - 1} of the {PEOPLE} accounts affected still wait and drain now; 1 already went through" in (
        timeline[IncidentEventKind.RECOVERED])
    closed = timeline[IncidentEventKind.CLOSED]
    assert f"{PEOPLE} accounts affected, {PEOPLE} drained" in closed
    assert f"Started {words.console_time(incident.started_at)}, ended {words.console_time(incident.ended_at)}" in closed

    with_sweep_again = sweep()  # closing again sends nothing twice
    assert "'incidents_closed': 0" in with_sweep_again
    assert apologies() == Counter({email: 1 for email in emails})


def test_both_providers_down_at_once_make_two_incidents_that_each_close(sign_up, down, recover, drive):
    down("provisioning", "email")
    emails = sign_up(12)
    drive(max_passes=5)

    assert sorted(Incident.objects.filter(status=IncidentStatus.OPEN).values_list("provider", flat=True)) == [
        "email", "provisioning"]
    assert Ticket.objects.count() == 0

    recover("provisioning", "email")

    assert not Incident.objects.filter(status=IncidentStatus.OPEN).exists()
    email_incident = Incident.objects.get(provider="email")
    assert (email_incident.affected, email_incident.drained) == (12, 12)
    assert Workspace.objects.count() == 12
    assert apologies() == Counter({email: 1 for email in emails})  # one, though both outages touched them
    assert Ticket.objects.count() == 0


def test_a_step_out_of_retries_as_the_circuit_opens_joins_the_incident_not_the_queue(
        settings, sign_up, down, recover, drive):
    """The first failures use up counted attempts before five accounts have failed;
    with one attempt allowed, they run out in the same pass that opens the circuit."""
    settings.PROVISIONING_MAX_ATTEMPTS = 1
    down("provisioning")
    sign_up(6)
    drive(max_passes=5)

    incident = Incident.objects.get()
    attached = incident.events.filter(kind=IncidentEventKind.ATTACHED)
    assert attached.count() == 4  # the four that failed before the fifth opened the circuit
    assert Ticket.objects.count() == 0
    assert ProvisioningRequest.objects.filter(status="failed").count() == 0  # re-armed, waiting with the rest

    recover("provisioning")
    assert Workspace.objects.count() == 6
    incident.refresh_from_db()
    assert (incident.status, incident.affected, incident.drained) == (IncidentStatus.CLOSED, 6, 6)


def test_writing_to_help_during_an_incident_attaches_the_message_and_says_so_to_everyone(
        sign_up, down, drive):
    (known,) = sign_up(1, prefix="known")
    before = Client().post("/help/", {"email": known, "message": "Where is my workspace?"})
    assert "Your message is attached to it" not in text(before)
    assert ContactMessage.objects.get().incident is None

    down("provisioning")
    sign_up(5)
    drive(max_passes=5)
    incident = Incident.objects.get()

    answers = [Client().post("/help/", {"email": email, "message": "Is something broken?"})
               for email in (known, "nobody@elsewhere.example")]

    # Logged out, nobody is told an account of theirs is saved: the outage is the fact.
    told = str(words.HELP_INCIDENT_NOTICE).format(what=words.OUTAGE_WHAT["provisioning"])
    for answer in answers:
        assert answer.status_code == 200
        assert told in text(answer)
        assert "account is saved" not in text(answer).lower()
    # The same answer for a registered and an unknown address (the reference and the
    # address they typed aside).
    same = [re.sub(r"SUP-\d{6}", "SUP-", text(answer)).replace(email, "ADDRESS")
            for answer, email in zip(answers, (known, "nobody@elsewhere.example"), strict=True)]
    assert same[0] == same[1]
    assert ContactMessage.objects.filter(incident=incident).count() == 2
    assert incident.events.filter(kind=IncidentEventKind.ATTACHED).count() == 2


def test_the_console_shows_open_incidents_at_the_top_with_a_live_count(sign_up, down, drive, console):
    down("provisioning")
    sign_up(7)
    drive(max_passes=5)
    incident = Incident.objects.get()

    for path in ("/admin/", "/admin/support/ticket/"):
        page = text(console.get(path))
        assert "Outage: Workspace provider, for" in page
        assert "7 signups are waiting on it" in page

    detail = text(console.get(f"/admin/support/incident/{incident.pk}/change/"))
    assert "The workspace provider kept failing (HTTP 503)" in detail
    assert console.post(f"/admin/support/incident/{incident.pk}/change/", {}).status_code == 405


def test_with_no_incident_the_console_says_nothing_about_outages(console):
    assert "Outage:" not in text(console.get("/admin/"))
    assert "Outage:" not in text(console.get("/admin/support/ticket/"))


def test_the_sweep_opens_the_incident_a_lost_breaker_announcement_never_did(signup_data, sandbox, settings):
    """Five accounts fail and the circuit opens, but the process dies before its
    after-commit announcement (the test's transaction never commits, so nothing
    listening hears it). The sweep opens the one incident the circuit calls for."""
    from accounts.services import account_register
    from provisioning.durable import step_run
    from provisioning.models import Breaker

    settings.BREAKER_PROBE_SECONDS = 3600
    sandbox("provisioning", "error")
    for n in range(settings.BREAKER_FAILURE_THRESHOLD):
        account = account_register(**{**signup_data, "email": f"lost{n}@example.com"})
        assert step_run("workspace", ProvisioningRequest.objects.get(account=account).pk) == "retrying"
    assert breaker.is_open("provisioning")
    assert not Incident.objects.exists()

    assert "'incidents_opened': 1" in sweep()
    incident = Incident.objects.get()
    assert (incident.provider, incident.status) == ("provisioning", IncidentStatus.OPEN)
    assert incident.started_at == Breaker.objects.get(provider="provisioning").opened_at
    assert "'incidents_opened': 0" in sweep()
    assert Incident.objects.count() == 1
    assert Ticket.objects.count() == 0


def _recover_without_announcements(sandbox, settings, provider: str) -> None:
    """The provider is back and the backlog drains, but every after-commit
    announcement is lost (the test's transaction never commits): no receiver sends an
    apology or closes the incident. Only the close check, run by hand, is left."""
    from provisioning.reconciler import reconcile

    sandbox(provider, "ok")
    settings.BREAKER_PROBE_SECONDS = 0
    for _ in range(20):
        if not any(reconcile().dispatched.values()):
            break


def test_a_large_incident_apologises_in_batches_and_resumes_after_a_killed_task(
        sign_up, down, drive, sandbox, settings):
    from accounts.models import EmailDelivery
    from support.incidents import incident_apologize, incidents_close_if_drained

    settings.INCIDENT_APOLOGY_BATCH = 3
    settings.INCIDENT_APOLOGY_BATCHES_PER_TASK = 1  # each task ends after one batch, as a killed one would
    down("provisioning")
    emails = sign_up(10)
    drive(max_passes=5)
    _recover_without_announcements(sandbox, settings, "provisioning")
    assert Workspace.objects.count() == 10
    assert not EmailDelivery.objects.filter(kind="all_set").exists()

    [incident] = incidents_close_if_drained()  # its apology task is never run: lost with the commit
    assert (incident.status, incident.apologies_pending, incident.drained) == (IncidentStatus.CLOSED, True, 10)

    def owed() -> Counter:
        return Counter(EmailDelivery.objects.filter(kind="all_set").values_list("to_address", flat=True))

    assert incident_apologize(incident_id=incident.pk) is True
    assert sum(owed().values()) == 3
    assert incident_apologize(incident_id=incident.pk) is True
    assert sum(owed().values()) == 6
    for _ in range(4):  # the sweep carries on, one batch a pass here, and then has nothing to do
        sweep()
    assert owed() == Counter({email: 1 for email in emails})
    incident.refresh_from_db()
    assert not incident.apologies_pending
    assert incident_apologize(incident_id=incident.pk) is False

    drive()
    assert apologies() == Counter({email: 1 for email in emails})


def test_a_task_starts_no_batch_once_its_time_is_spent_and_nobody_is_apologised_to_twice(
        sign_up, down, drive, sandbox, settings):
    """However slow the database is, a task hands over before its time limit: past
    INCIDENT_APOLOGY_SECONDS_PER_TASK it starts no new batch. The apologies are owed
    in one statement per batch, and one already owed to a person (the account's own
    "all set", same key) is not owed again."""
    from accounts.emails import email_queue
    from accounts.models import EmailDelivery, EmailKind, User
    from support.incidents import incident_apologize, incidents_close_if_drained

    settings.INCIDENT_APOLOGY_BATCH = 3
    settings.INCIDENT_APOLOGY_SECONDS_PER_TASK = 0  # spent as soon as the first batch is done
    down("provisioning")
    emails = sign_up(7)
    drive(max_passes=5)
    _recover_without_announcements(sandbox, settings, "provisioning")
    [incident] = incidents_close_if_drained()
    early = User.objects.get(email=emails[4])
    email_queue(account=early, kind=EmailKind.ALL_SET, key=str(early.pk))  # as accounts.receivers does

    def owed() -> Counter:
        return Counter(EmailDelivery.objects.filter(kind="all_set").values_list("to_address", flat=True))

    assert incident_apologize(incident_id=incident.pk) is True
    assert sum(owed().values()) == 1 + 3  # one batch only, though a task may run twenty
    assert incident_apologize(incident_id=incident.pk) is True
    assert incident_apologize(incident_id=incident.pk) is False  # the last, short batch
    assert owed() == Counter({email: 1 for email in emails})
    drive()  # the dispatcher sends them at the provider's pace
    assert apologies() == Counter({email: 1 for email in emails})


def test_the_apology_goes_only_to_those_whose_setup_waited_and_is_now_ready(
        signup_data, sign_up, down, recover, drive, sandbox, committed):
    """An email outage. A long-active person's password-reset email waits through it,
    and a person whose workspace the provider refused for good had their
    verification email wait: neither is "all set" because of this outage."""
    from accounts.selectors import user_by_email
    from accounts.services import account_mark_verified

    (long_active,) = sign_up(1, prefix="veteran")
    drive()
    account_mark_verified(account=user_by_email(email=long_active), actor="test", why="clicked the link")
    mail.outbox.clear()

    down("email")
    sandbox("provisioning", "reject")
    (refused,) = sign_up(1, prefix="refused")
    drive(max_passes=2)
    sandbox("provisioning", "ok")
    waited = sign_up(5, prefix="waited")
    assert Client().post("/password-reset/", {"email": long_active}).status_code in (200, 302)
    drive(max_passes=5)
    assert Incident.objects.get(provider="email").status == IncidentStatus.OPEN

    recover("email")

    incident = Incident.objects.get(provider="email")
    assert incident.status == IncidentStatus.CLOSED and not incident.apologies_pending
    assert apologies() == Counter({email: 1 for email in waited})
    assert any(long_active in m.to for m in mail.outbox)  # the reset email itself did go out
    assert any(refused in m.to for m in mail.outbox)  # and so did the verification email


def test_help_tells_a_signed_in_account_waiting_on_the_outage_so_and_the_ticket_records_it(
        sign_up, down, drive):
    down("provisioning")
    (waiting,) = sign_up(1, prefix="waiting")
    sign_up(4)
    drive(max_passes=5)
    person = Client()
    person.post("/login/", {"email": waiting, "password": "correct horse battery staple"})

    answer = text(person.post("/help/", {"email": waiting, "message": "Where is my workspace?"}))

    told = str(words.HELP_DURING_INCIDENT).format(what=words.OUTAGE_WHAT["provisioning"])
    assert told in answer
    ticket = Ticket.objects.get(account__email=waiting)
    assert ticket.events.filter(text__contains=told).exists()  # support sees what they were told


def test_help_never_asks_a_signed_in_person_whose_account_does_not_wait_to_log_in(sign_up, down, drive):
    """Logged in and set up before the outage: the outage is still a fact, but "log in
    with the password you chose to see where your account stands" is not for someone
    who is logged in."""
    (ready,) = sign_up(1, prefix="ready")
    drive()
    down("provisioning")
    sign_up(5)
    drive(max_passes=5)
    assert Incident.objects.filter(provider="provisioning", status=IncidentStatus.OPEN).exists()
    person = Client()
    person.post("/login/", {"email": ready, "password": "correct horse battery staple"})

    answer = text(person.post("/help/", {"email": ready, "message": "Can I add a colleague?"}))

    assert "log in with the password you chose" not in answer
    assert str(words.HELP_INCIDENT_NOTICE_SIGNED_IN).format(what=words.OUTAGE_WHAT["provisioning"]) in answer


def test_the_next_pass_closes_the_incident_a_lost_announcement_left_open(sign_up, down, drive, sandbox, settings):
    """The backlog drains but every announcement is lost (a killed worker): the next
    reconcile pass, not the sweep five minutes later, closes the incident, notes the
    recovery nobody heard, and counts in its peak everyone who waited when the
    circuit closed; and it opens the incident a lost "circuit opened" never did."""
    from provisioning.models import Breaker
    from provisioning.tasks import reconcile as reconcile_task

    down("provisioning")
    first = settings.BREAKER_FAILURE_THRESHOLD + 1
    sign_up(first)
    drive(max_passes=5)
    Incident.objects.all().delete()  # as if "circuit opened" was never heard
    assert breaker.is_open("provisioning")
    reconcile_task()
    incident = Incident.objects.get(status=IncidentStatus.OPEN)
    assert incident.started_at == Breaker.objects.get(provider="provisioning").opened_at
    assert incident.peak_backlog == first  # sampled by the pass

    from provisioning.durable import step_run

    sign_up(3, prefix="later")  # held behind the circuit after the last sample
    for request in ProvisioningRequest.objects.filter(account__email__startswith="later"):
        assert step_run("workspace", request.pk) == "held"
    assert Incident.objects.get().peak_backlog == first
    _recover_without_announcements(sandbox, settings, "provisioning")
    assert not breaker.is_open("provisioning")
    assert Workspace.objects.count() == first + 3
    assert Incident.objects.get().status == IncidentStatus.OPEN  # nobody heard

    reconcile_task()
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.CLOSED
    assert (incident.affected, incident.drained, incident.peak_backlog) == (first + 3,) * 3
    assert incident.events.filter(kind=IncidentEventKind.RECOVERED).count() == 1
