"""Refused for us (issue 10, fault 2): when a provider refuses *us* (our relay, our
credentials, our configuration), or gives many people the same refusal, that is one
incident of ours, never a failure of each person: no address is marked
undeliverable, nobody gets a ticket of their own, attempts do not count, and
everything goes through once it is fixed. Failures come from the real local SMTP
server, the real local HTTP provider, or the sandbox."""
from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import EmailDelivery, EmailKind, User
from accounts.tests.fake_smtp import FakeSMTP
from provisioning import breaker
from provisioning.durable import StepStatus
from provisioning.models import Breaker, ProvisioningRequest, Workspace
from provisioning.tests.fake_provider import FakeProvider
from support.models import UNRESOLVED, ConsoleAction, ConsoleActionKind, Incident, IncidentStatus, Ticket
from support.tasks import sweep

pytestmark = pytest.mark.django_db

PEOPLE = [f"p{i}@example.com" for i in range(6)]


@pytest.fixture
def sign_up(signup_data):
    """Sign each address up through /signup/; returns a logged-in client per address."""
    def run(emails: list[str]) -> dict[str, Client]:
        clients = {}
        for email in emails:
            clients[email] = Client()
            assert clients[email].post("/signup/", {**signup_data, "email": email}).status_code == 302
        return clients
    return run


@pytest.fixture
def long_probe(settings):
    settings.BREAKER_PROBE_SECONDS = 3600  # no probe while we look


def states(clients: dict[str, Client]) -> set[str]:
    return {client.get("/setup/status.json").json()["state"] for client in clients.values()}


def one_open_incident(provider: str) -> Incident:
    [incident] = Incident.objects.filter(provider=provider)
    assert incident.status == IncidentStatus.OPEN
    return incident


def test_a_relay_that_refuses_us_is_one_incident_not_undeliverable_addresses(
        settings, sign_up, drive, long_probe, committed):
    with FakeSMTP(mode="relay_denied") as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = smtp.host, smtp.port, 2
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        clients = sign_up(PEOPLE)

        drive()

        assert breaker.is_open("email")
        assert Breaker.objects.get(provider="email").cause == "smtp_554"
        one_open_incident("email")
        assert not Ticket.objects.exists()
        deliveries = EmailDelivery.objects.filter(kind=EmailKind.VERIFICATION)
        assert {(d.status, d.counted_attempts) for d in deliveries} == {(StepStatus.PENDING, 0)}
        assert {d.last_error_code for d in deliveries} == {"smtp_554", "outage"}  # refused, then held
        assert "email_undeliverable" not in states(clients)
        assert smtp.messages == []

        smtp.mode = "ok"  # the relay lets us through again
        settings.BREAKER_PROBE_SECONDS = 0
        drive()
        with committed():
            sweep()

        confirm = [m["To"] for m in smtp.messages if m["Subject"] == "Confirm your email address"]
        assert sorted(confirm) == sorted(PEOPLE)
    assert not breaker.is_open("email")
    assert Incident.objects.get().status == IncidentStatus.CLOSED
    assert not Ticket.objects.exists()


def test_a_provider_that_refuses_our_credentials_is_one_incident_not_a_ticket_each(
        settings, sign_up, drive, long_probe, committed):
    with FakeProvider() as provider:
        settings.PROVISIONING_BACKEND, settings.PROVISIONING_URL = "http", provider.url
        settings.PROVISIONING_TIMEOUT = 0.5
        provider.fail_times(1000, status=401)
        clients = sign_up(PEOPLE)

        drive()

        assert Breaker.objects.get(provider="provisioning").cause == "http_401"
        one_open_incident("provisioning")
        assert not Ticket.objects.exists()
        requests = ProvisioningRequest.objects.all()
        assert {(r.status, r.counted_attempts) for r in requests} == {(StepStatus.PENDING, 0)}
        assert {r.last_error_code for r in requests} == {"http_401", "outage"}  # refused, then held
        assert states(clients) == {"delayed"}
        assert len(provider.requests) == 1  # the first refusal opened the circuit; the rest wait

        provider.fail_times(0)  # our credentials are fixed
        settings.BREAKER_PROBE_SECONDS = 0
        drive()
        with committed():
            sweep()

        assert provider.created_count == len(PEOPLE)
    assert Workspace.objects.count() == len(PEOPLE)
    assert Incident.objects.get().status == IncidentStatus.CLOSED
    assert not Ticket.objects.exists()


def test_the_same_refusal_for_five_accounts_is_one_incident_not_five_tickets(
        settings, sandbox, sign_up, drive, long_probe, committed):
    settings.BREAKER_FAILURE_THRESHOLD = 5
    sandbox("provisioning", "reject")  # HTTP 422 for every company name, after a change at the provider
    clients = sign_up(PEOPLE[:5])

    drive()

    incident = one_open_incident("provisioning")
    assert Breaker.objects.get(provider="provisioning").cause == "http_422"
    assert not Ticket.objects.filter(status__in=UNRESOLVED).exists()
    assert {(r.status, r.counted_attempts) for r in ProvisioningRequest.objects.all()} == {(StepStatus.PENDING, 0)}
    assert states(clients) == {"delayed"}
    assert incident.events.filter(kind="attached").count() == Ticket.objects.count()

    sandbox("provisioning", "ok")  # fixed
    settings.BREAKER_PROBE_SECONDS = 0
    drive()
    with committed():
        sweep()

    assert Workspace.objects.count() == 5
    assert Incident.objects.get().status == IncidentStatus.CLOSED
    assert not Ticket.objects.filter(status__in=UNRESOLVED).exists()


def test_the_same_refusal_for_fewer_accounts_is_each_persons_ticket(settings, sandbox, sign_up, drive):
    settings.BREAKER_FAILURE_THRESHOLD = 5
    sandbox("provisioning", "reject")
    sign_up(PEOPLE[:4])

    drive()

    assert not breaker.is_open("provisioning") and not Incident.objects.exists()
    assert Ticket.objects.filter(status__in=UNRESOLVED).count() == 4
    assert set(ProvisioningRequest.objects.values_list("status", flat=True)) == {StepStatus.FAILED}


def test_re_run_all_re_arms_every_step_stopped_with_that_code(settings, sandbox, sign_up, drive, committed):
    sandbox("provisioning", "reject")
    sign_up(PEOPLE[:3])
    drive()
    assert set(ProvisioningRequest.objects.values_list("status", flat=True)) == {StepStatus.FAILED}

    other = StringIO()
    call_command("retry_setup", "--all-failed", "--code", "http_400", stdout=other)
    assert "No account has a failed step." in other.getvalue()
    sandbox("provisioning", "ok")
    out = StringIO()
    with committed():
        call_command("retry_setup", "--all-failed", "--code", "http_422", stdout=out)
    drive()

    assert sorted(out.getvalue().split()) == sorted([f"{e}:" for e in PEOPLE[:3]] + ["workspace"] * 3)
    assert Workspace.objects.count() == 3
    assert not Ticket.objects.filter(status__in=UNRESOLVED).exists()
    assert User.objects.filter(workspace__isnull=True).count() == 0


def test_re_run_all_on_the_incident_page_re_arms_every_step_refused_with_its_code(
        sandbox, sign_up, drive, long_probe, committed, console):
    sandbox("provisioning", "reject")
    sign_up(PEOPLE[:3])
    drive()
    assert set(ProvisioningRequest.objects.values_list("status", flat=True)) == {StepStatus.FAILED}
    with committed():  # the same refusal, now ours: the circuit opens on it, and its incident
        breaker.trip("provisioning", cause="http_422", why="the same refusal for many accounts")
    incident = one_open_incident("provisioning")
    assert incident.cause == "http_422"
    page = console.get(f"/admin/support/incident/{incident.pk}/change/")
    button = f"/admin/support/incident/{incident.pk}/rerun-all/"
    assert button in page.content.decode()

    key = re.search(r'name="action_key" value="([0-9a-f]{32})"', console.get(button).content.decode()).group(1)
    with committed():
        first = console.post(button, {"action_key": key})
        second = console.post(button, {"action_key": key})  # a double click re-arms once
    assert first.status_code == second.status_code == 302
    assert set(ProvisioningRequest.objects.values_list("status", flat=True)) == {StepStatus.PENDING}
    [action] = ConsoleAction.objects.filter(kind=ConsoleActionKind.RERUN_ALL)
    assert action.actor.email == "sam@support.example" and "3" in action.detail and "http_422" in action.detail

    sandbox("provisioning", "ok")  # what was refused is fixed
    breaker.record_success("provisioning")
    drive()
    assert Workspace.objects.count() == 3


def test_re_run_all_needs_the_rerun_permission(committed, bare_staff_console):
    with committed():
        breaker.trip("provisioning", cause="http_422", why="the same refusal for many accounts")
    incident = one_open_incident("provisioning")
    assert bare_staff_console.get(f"/admin/support/incident/{incident.pk}/rerun-all/").status_code == 403
