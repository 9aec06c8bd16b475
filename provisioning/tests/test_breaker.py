"""The circuit breaker: an outage is recognised as one thing, attempts made during it
do not count, one probe at a time, and it closes on success."""
import pytest
from django.test import Client

from provisioning import breaker, durable
from provisioning.models import Breaker, Pace, ProvisioningRequest
from provisioning.signals import breaker_cause_changed, breaker_closed, breaker_opened


@pytest.fixture
def tight(settings):
    settings.BREAKER_FAILURE_THRESHOLD = 3
    settings.BREAKER_WINDOW_SECONDS = 300
    settings.BREAKER_PROBE_SECONDS = 0
    settings.PROVISIONING_MAX_ATTEMPTS = 2


def _signups(n, signup_data):
    for i in range(n):
        Client().post("/signup/", {**signup_data, "email": f"person{i}@example.com"})


@pytest.mark.django_db
def test_one_account_failing_again_and_again_does_not_open_it(tight, sandbox, signup_data, drive, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 10
    sandbox("provisioning", "error")
    _signups(1, signup_data)
    drive(max_passes=5)
    assert not breaker.is_open("provisioning")


@pytest.mark.django_db
def test_distinct_accounts_failing_open_it_and_their_attempts_stop_counting(tight, sandbox, signup_data, drive):
    opened = []
    breaker_opened.connect(lambda **kw: opened.append(kw["provider"]), weak=False, dispatch_uid="t-open")
    sandbox("provisioning", "error")
    _signups(5, signup_data)
    drive(max_passes=10)
    assert breaker.is_open("provisioning")
    assert opened == ["provisioning"]
    # Many passes later nobody is exhausted: attempts during the outage do not count.
    assert ProvisioningRequest.objects.filter(status="failed").count() == 0
    assert ProvisioningRequest.objects.filter(status="pending").count() == 5
    overview = Client()
    overview.post("/login/", {"email": "person4@example.com", "password": signup_data["password"]})
    body = overview.get("/setup/status.json").json()
    assert body["state"] == "delayed"
    assert "affects everyone" in body["message"]
    breaker_opened.disconnect(dispatch_uid="t-open")


@pytest.mark.django_db
def test_a_successful_probe_closes_it_and_the_backlog_drains(tight, sandbox, signup_data, drive):
    closed = []
    breaker_closed.connect(lambda **kw: closed.append(kw["provider"]), weak=False, dispatch_uid="t-close")
    sandbox("provisioning", "error")
    _signups(4, signup_data)
    drive(max_passes=6)
    assert breaker.is_open("provisioning")
    sandbox("provisioning", "ok")
    drive()
    assert not breaker.is_open("provisioning")
    assert closed == ["provisioning"]
    assert ProvisioningRequest.objects.filter(status="succeeded").count() == 4
    assert Breaker.objects.get(provider="provisioning").state == "closed"
    breaker_closed.disconnect(dispatch_uid="t-close")


@pytest.mark.django_db
def test_while_open_only_one_probe_is_allowed_per_interval(tight, settings, sandbox, signup_data, drive):
    sandbox("provisioning", "error")
    _signups(3, signup_data)
    drive(max_passes=4)
    assert breaker.is_open("provisioning")
    settings.BREAKER_PROBE_SECONDS = 60
    assert not breaker.allow("provisioning")  # opened (or probed) less than a minute ago
    settings.BREAKER_PROBE_SECONDS = 0
    assert breaker.allow("provisioning")


@pytest.mark.django_db
def test_a_stale_or_duplicate_task_leaves_the_probe_and_the_pacing_slots_to_a_real_call(
        tight, sandbox, signup_data, drive):
    _signups(1, signup_data)
    drive()
    done = ProvisioningRequest.objects.get(status="succeeded")
    sandbox("provisioning", "error")
    Client().post("/signup/", {**signup_data, "email": "x1@example.com"})
    Client().post("/signup/", {**signup_data, "email": "x2@example.com"})
    Client().post("/signup/", {**signup_data, "email": "x3@example.com"})
    drive(max_passes=4)
    assert breaker.is_open("provisioning") and breaker.probe_due("provisioning")
    leased, waiting = ProvisioningRequest.objects.filter(status="pending").order_by("pk")[:2]
    assert durable.claim(durable.kind_named("workspace"), leased.pk) is not None  # a live worker has it
    probed_at = Breaker.objects.get(provider="provisioning").probed_at
    next_slot = Pace.objects.get(provider="provisioning").next_slot_at

    stale = [durable.step_run("workspace", done.pk), durable.step_run("workspace", leased.pk)]

    assert stale == ["skipped", "skipped"]
    assert Breaker.objects.get(provider="provisioning").probed_at == probed_at  # the probe is still due
    assert Pace.objects.get(provider="provisioning").next_slot_at == next_slot  # no slot was used
    sandbox("provisioning", "ok")
    assert durable.step_run("workspace", waiting.pk) == "succeeded"  # the real probe goes out
    assert not breaker.is_open("provisioning")


@pytest.mark.django_db
def test_a_step_held_by_the_open_circuit_gives_its_claim_back(tight, settings, sandbox, signup_data, drive):
    sandbox("provisioning", "error")
    _signups(3, signup_data)
    drive(max_passes=4)
    settings.BREAKER_PROBE_SECONDS = 3600  # the next probe is an hour away
    request = ProvisioningRequest.objects.filter(status="pending").first()
    before = request.attempts

    assert durable.step_run("workspace", request.pk) == "held"

    request.refresh_from_db()
    assert (request.status, request.attempts, request.lease_owner) == ("pending", before, "")
    assert request.last_error_code == durable.OUTAGE


@pytest.mark.django_db
def test_a_probe_refused_for_us_becomes_what_holds_it_open_and_a_failing_one_changes_nothing(
        tight, sandbox, signup_data, drive, settings):
    """Open for an outage (HTTP 503), the probe is refused our credentials: that is
    what holds it open now, announced once. A later probe that fails (503) cannot
    tell whether they were fixed: it leaves the cause as it is."""
    changed = []
    breaker_cause_changed.connect(lambda **kw: changed.append(kw["provider"]), weak=False, dispatch_uid="t-cause")
    sandbox("provisioning", "error")
    _signups(3, signup_data)
    drive(max_passes=1)
    assert Breaker.objects.filter(provider="provisioning").values_list("opened_by", "failure", "cause").get() == (
        "failing", "http_503", "")

    sandbox("provisioning", "unauthorized")
    drive(max_passes=1)  # one probe
    assert Breaker.objects.filter(provider="provisioning").values_list("state", "opened_by", "failure", "cause").get(
    ) == ("open", "credentials", "http_401", "http_401")
    assert changed == ["provisioning"]

    sandbox("provisioning", "error")
    drive(max_passes=1)
    assert Breaker.objects.filter(provider="provisioning").values_list("state", "opened_by", "cause").get() == (
        "open", "credentials", "http_401")
    assert changed == ["provisioning"]
    breaker_cause_changed.disconnect(dispatch_uid="t-cause")
