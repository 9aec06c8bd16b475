"""/metrics: the engine's state for Prometheus, readable only with the bearer token
or a console session (both factors), and telling the truth about steps, circuits, incidents,
tickets and emails."""
import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import User
from provisioning.tests.test_breaker import _signups, tight  # noqa: F401 (a fixture)
from support.tests.conftest import signed_in_to_console

TOKEN = "a-long-random-scrape-token-0123456789"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client=None, **headers) -> dict[tuple[str, tuple], float]:
    answer = (client or Client()).get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.content.decode())
            for sample in family.samples}


def steps(seen, status: str) -> dict[str, float]:
    """Workspace steps in ``status``, by last error code."""
    return {dict(labels)["code"]: value for (name, labels), value in seen.items()
            if name == "signup_steps" and dict(labels)["kind"] == "workspace" and dict(labels)["status"] == status}


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}"])
def test_without_the_token_or_a_console_session_it_is_not_there(token, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    assert Client().get("/metrics", headers=headers).status_code == 404


@pytest.mark.django_db
def test_with_no_token_configured_a_bearer_header_opens_nothing(settings):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.django_db
def test_a_customer_or_staff_without_the_second_factor_cannot_read_it_and_the_console_can(signup_data):
    person = Client()
    person.post("/signup/", signup_data)
    assert person.get("/metrics").status_code == 404
    operator = User.objects.create_user("ops@example.com", "an operator password 1", name="Ops",
                                        company="Us", is_staff=True)
    password_only = Client()
    password_only.force_login(operator)
    assert password_only.get("/metrics").status_code == 404
    assert signed_in_to_console(operator).get("/metrics").status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("tight", "token")
def test_an_outage_shows_as_an_open_circuit_an_incident_and_due_steps(sandbox, signup_data, drive):
    sandbox("provisioning", "error")
    _signups(4, signup_data)
    drive(max_passes=6)
    seen = scrape()
    assert seen[("signup_breaker_open", (("provider", "provisioning"),))] == 1
    assert seen[("signup_breaker_open", (("provider", "email"),))] == 0
    assert seen[("signup_incidents_open", (("provider", "provisioning"),))] == 1
    assert seen[("signup_steps_due", (("kind", "workspace"),))] == 4
    assert seen[("signup_steps_oldest_due_age_seconds", (("kind", "workspace"),))] >= 0
    pending = steps(seen, "pending")
    assert sum(pending.values()) == 4 and set(pending) <= {"http_503", "outage"}
    assert seen[("signup_emails", (("kind", "verification"), ("outcome", "sent")))] == 4

    sandbox("provisioning", "ok")
    drive()
    seen = scrape()
    assert seen[("signup_breaker_open", (("provider", "provisioning"),))] == 0
    assert seen[("signup_steps_due", (("kind", "workspace"),))] == 0
    assert sum(steps(seen, "succeeded").values()) == 4
    assert steps(seen, "pending") == {}


@pytest.mark.django_db
@pytest.mark.usefixtures("token")
def test_refused_emails_and_the_tickets_they_open_are_counted(sandbox, signup_data, drive):
    sandbox("email", "reject")
    Client().post("/signup/", signup_data)
    drive()
    seen = scrape()
    assert seen[("signup_emails", (("kind", "verification"), ("outcome", "refused")))] == 1
    assert seen[("signup_emails", (("kind", "verification"), ("outcome", "sent")))] == 0
    assert sum(v for (name, labels), v in seen.items() if name == "signup_tickets_unresolved") == \
        sum(1 for _ in User.objects.filter(tickets__status="open"))
