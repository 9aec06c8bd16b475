"""Where an account stands: `/setup/status.json` (the DESIGN contract, exactly) and the
`/setup/` page, for each lifecycle state reached through the real pages, workers and
sandbox providers."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts import messages as words
from accounts.messages import TITLES
from accounts.models import EmailDelivery
from accounts.selectors import worker_stale
from accounts.tests.factories import page_text, sent_to, sign_up, verification_link
from provisioning import durable
from provisioning.durable import StepStatus
from provisioning.models import ProvisioningRequest
from provisioning.reconciler import reconcile

pytestmark = pytest.mark.django_db

ADDRESS = "ada@example.com"


def check_contract(data: dict) -> None:
    """Exactly DESIGN's keys, with DESIGN's types."""
    assert set(data) == {"state", "workspace", "email", "ticket", "message", "said"}  # DESIGN's, extended
    assert set(data["workspace"]) == {"status", "attempts", "next_attempt_at"}
    assert set(data["email"]) == {"address", "verified", "delivery"}
    assert data["state"] in {"setting_up", "delayed", "needs_support", "email_undeliverable",
                             "unverified", "active"}
    assert data["workspace"]["status"] in {"pending", "ready", "failed"}
    assert type(data["workspace"]["attempts"]) is int and data["workspace"]["attempts"] >= 0
    when = data["workspace"]["next_attempt_at"]
    assert when is None or datetime.fromisoformat(when).tzinfo is not None  # ISO 8601, aware
    assert type(data["email"]["address"]) is str
    assert type(data["email"]["verified"]) is bool
    assert data["email"]["delivery"] in {"pending", "sent", "failed", "bounced"}
    assert data["ticket"] is None or type(data["ticket"]) is str
    assert type(data["message"]) is str and data["message"]
    assert set(data["said"]) == {"title", "workspace", "tries", "email", "offer", "resend", "updating"}
    # The page polls (and says it updates by itself) until nothing is left to wait for.
    assert data["said"]["updating"] is (data["state"] not in {"active", "disabled"})
    assert set(data["said"]["offer"]) == {"resend", "correct_email", "call"}
    assert set(data["said"]["resend"]) == {"prompt", "button"}


def status(client: Client) -> dict:
    response = client.get("/setup/status.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]  # live progress must not be cached
    data = response.json()
    check_contract(data)
    return data


def shown(html: str, element_id: str) -> bool:
    """Whether the element with this id renders without ``hidden`` (the status page
    renders every offer and hides those the facts do not call for)."""
    at = html.index(f'id="{element_id}"')
    tag = html[html.rindex("<", 0, at):html.index(">", at) + 1]
    return not re.search(r"\shidden[\s>]", tag)


def check_page(client: Client, state: str, title: str | None = None) -> None:
    """The status page says the account is saved, once, then the same words as the
    status JSON."""
    data = status(client)
    response = client.get("/setup/")
    assert response.status_code == 200
    text = page_text(response)
    assert text.count("Your account is saved") == 1
    assert str(TITLES[title or state]) in text
    assert data["message"] in text
    assert f'data-state="{state}"' in text


@pytest.fixture
def ada():
    client, _ = sign_up(email=ADDRESS)
    return client


def test_setting_up(ada):
    data = status(ada)

    assert data["state"] == "setting_up"
    assert data["workspace"] == {"status": "pending", "attempts": 0,
                                 "next_attempt_at": data["workspace"]["next_attempt_at"]}
    assert data["email"] == {"address": ADDRESS, "verified": False, "delivery": "pending"}
    assert data["ticket"] is None
    assert str(words.UNDER_A_MINUTE.text) in data["message"]
    check_page(ada, "setting_up")


def test_delayed_after_several_failed_attempts(ada, sandbox, drive, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 50
    sandbox("provisioning", "error")

    drive(max_passes=4)

    data = status(ada)
    assert data["state"] == "delayed"
    assert data["workspace"]["status"] == "pending"
    assert data["workspace"]["attempts"] == 4
    assert data["workspace"]["next_attempt_at"] is not None  # the person is told when
    assert data["message"].startswith(str(words.WORKSPACE_RETRYING))
    assert "Next try" in data["message"] and str(words.UNDER_A_MINUTE.text) not in data["message"]
    check_page(ada, "delayed")
    assert "4 tries so far" in page_text(ada.get("/setup/"))


def test_one_failed_attempt_is_still_setting_up(ada, sandbox, drive, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 50
    sandbox("provisioning", "error")

    drive(max_passes=1)

    data = status(ada)
    assert data["state"] == "setting_up"
    assert data["workspace"]["attempts"] == 1
    assert str(words.UNDER_A_MINUTE.text) not in data["message"]  # a try failed: only the schedule's time
    assert "Next try" in data["message"]


def test_needs_support_when_the_provider_refuses_for_good(ada, sandbox, drive):
    sandbox("provisioning", "reject")

    drive()

    data = status(ada)
    assert data["state"] == "needs_support"
    assert data["workspace"]["status"] == "failed"
    assert data["workspace"]["next_attempt_at"] is None
    check_page(ada, "needs_support")
    assert data["ticket"] and data["ticket"] in data["message"]


def test_email_undeliverable_when_the_address_is_refused(ada, sandbox, drive):
    sandbox("email", "reject")

    drive()

    data = status(ada)
    assert data["state"] == "email_undeliverable"
    assert data["workspace"]["status"] == "ready"
    assert data["email"] == {"address": ADDRESS, "verified": False, "delivery": "failed"}
    assert ADDRESS in data["message"]
    check_page(ada, "email_undeliverable")
    assert 'action="/setup/email/"' in ada.get("/setup/").content.decode()  # the fix-email form


def test_unverified_once_the_workspace_is_ready(ada, drive):
    drive()

    data = status(ada)
    assert data["state"] == "unverified"
    assert data["workspace"] == {"status": "ready", "attempts": 1, "next_attempt_at": None}
    assert data["email"] == {"address": ADDRESS, "verified": False, "delivery": "sent"}
    check_page(ada, "unverified")


def test_active_once_the_address_is_confirmed(ada, drive):
    drive()
    ada.post(verification_link(ADDRESS))

    data = status(ada)
    assert data["state"] == "active"
    assert data["email"] == {"address": ADDRESS, "verified": True, "delivery": "sent"}
    assert data["message"] == str(words.ALL_DONE)
    response = ada.get("/setup/")
    assert str(TITLES["active"]) in page_text(response)
    assert 'action="/setup/email/"' not in response.content.decode()  # nothing left to correct


def test_anonymous_status_json_is_a_401_json_answer(client):
    response = client.get("/setup/status.json")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "log in" in response.json()["error"]


def test_anonymous_status_page_goes_to_login(client):
    response = client.get("/setup/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/setup/")


def test_the_home_page_shows_the_workspace_and_a_verify_banner_until_confirmed(ada, drive):
    drive()

    home = page_text(ada.get("/"))
    assert "Please confirm your email address." in home
    assert f"We've sent a confirmation link to {ADDRESS}." in home  # the server accepted it
    assert 'action="/setup/resend/"' not in home  # not offered a second after it was sent
    assert "sbx-" in home  # the workspace the provider made

    ada.post(verification_link(ADDRESS))
    home = page_text(ada.get("/"))
    assert "Please confirm your email address." not in home
    assert "Your workspace is ready." in home


def test_the_home_page_sends_a_person_without_a_workspace_to_the_status_page(ada):
    response = ada.get("/")

    assert response.status_code == 302 and response["Location"] == "/setup/"


def test_a_provisioning_outage_is_told_as_one(ada, sandbox, drive, settings):
    settings.BREAKER_FAILURE_THRESHOLD = 1  # one failing account opens the circuit here
    sandbox("provisioning", "error")

    drive(max_passes=1)

    data = status(ada)
    assert data["state"] == "delayed"
    assert data["message"].startswith(str(words.WORKSPACE_OUTAGE))
    check_page(ada, "delayed", title="outage")


def test_an_email_outage_is_not_told_as_a_workspace_problem(ada, sandbox, drive, settings):
    settings.BREAKER_FAILURE_THRESHOLD = 1
    sandbox("email", "error")

    drive(max_passes=1)

    data = status(ada)
    assert data["workspace"]["status"] == "ready"
    assert data["state"] == "delayed"
    assert str(words.EMAIL_OUTAGE).format(address=ADDRESS) in data["message"]
    check_page(ada, "delayed", title="email_outage")
    page = page_text(ada.get("/setup/"))
    assert "create workspaces" not in data["message"] and "create workspaces" not in page


def test_a_healthy_signup_offers_only_the_correction(ada, drive):
    drive()

    page = ada.get("/setup/").content.decode()

    # The link was accepted a moment ago: no "send it again" yet; a typo can be fixed.
    assert shown(page, "email-actions") and shown(page, "correct-form") and not shown(page, "resend-form")
    assert status(ada)["said"]["offer"] == {"resend": False, "correct_email": True, "call": False}


def test_an_email_timing_out_is_owned_and_never_called_sent(ada, sandbox, drive, settings):
    settings.EMAIL_MAX_ATTEMPTS = 10
    settings.RETRY_BASE_SECONDS = 60
    sandbox("email", "timeout")

    drive(max_passes=3)

    data = status(ada)
    page = page_text(ada.get("/setup/"))
    home = page_text(ada.get("/"))
    for text in (data["message"], data["said"]["email"], page, home):
        assert "We've sent" not in text and "confirmation link sent" not in text
        assert "trouble sending" in text
    # Nothing was sent, so no "didn't get it?"; a wrong address can be corrected.
    assert not data["said"]["offer"]["resend"] and data["said"]["offer"]["correct_email"]
    answer = page_text(ada.post("/setup/resend/", follow=True))  # a page opened before still gets a true answer
    assert "spam" not in answer  # our failure, not their inbox


def test_live_updates_pluralise_on_the_server(ada, sandbox, drive, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 50
    sandbox("provisioning", "error")

    drive(max_passes=1)
    assert status(ada)["said"]["tries"] == "1 try so far"
    drive(max_passes=1)
    assert status(ada)["said"]["tries"] == "2 tries so far"


def test_no_time_is_promised_once_the_worker_has_stopped(ada):
    assert not worker_stale(now=timezone.now())  # no pass recorded yet: unknown is not claimed stale
    reconcile(enqueue=lambda kind, pk: None)  # a pass hands the work to a worker that never takes it

    with time_machine.travel(timezone.now() + timedelta(minutes=6), tick=False):
        assert worker_stale(now=timezone.now())
        data = status(ada)

    assert data["state"] == "delayed"
    assert str(words.UNDER_A_MINUTE.text) not in data["message"] and "Next try" not in data["message"]
    assert data["said"]["workspace"] == str(words.WORKSPACE_WORDS["late"])


# --- The email actions: what is offered, in which words -------------------------------------


def test_sent_is_said_only_once_a_server_accepted_the_link(ada, drive, settings):
    delivery = EmailDelivery.objects.get()
    for moment in (StepStatus.PENDING, StepStatus.RUNNING):  # queued, then a worker has it with no answer yet
        if moment == StepStatus.RUNNING:
            durable.claim(durable.kind_named("email"), delivery.pk)
        delivery.refresh_from_db()
        assert delivery.status == moment and sent_to(ADDRESS) == []
        data = status(ada)
        page = page_text(ada.get("/setup/"))
        for text in (page, data["message"], data["said"]["email"]):
            assert "We've sent" not in text and "confirmation link sent" not in text, moment
        assert data["said"]["email"] == str(words.EMAIL_WORDS["sending"]) and data["said"]["email"] in page
        assert data["email"]["delivery"] == "pending"

    # The worker that claimed it is gone: once its lease runs out the step is taken over.
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.STEP_LEASE_SECONDS + 60), tick=False):
        drive()

    assert len(sent_to(ADDRESS, subject="Confirm")) == 1
    assert f"We've sent a confirmation link to {ADDRESS}." in page_text(ada.get("/setup/"))


def test_a_typo_can_be_corrected_from_the_first_moment(ada, drive):
    # Just signed up: the link is on its way and the address is on screen.
    page = ada.get("/setup/").content.decode()
    assert shown(page, "email-actions") and shown(page, "correct-form")
    assert status(ada)["said"]["offer"]["correct_email"]
    # The link was sent a moment ago: "send it again" waits, correcting does not...
    drive()
    page = ada.get("/setup/").content.decode()
    assert shown(page, "correct-form") and not shown(page, "resend-form")
    assert f"We've sent a confirmation link to {ADDRESS}." in page_text(ada.get("/setup/"))
    # ...nor after sending it again.
    ada.post("/setup/resend/")
    drive()
    page = ada.get("/setup/").content.decode()
    assert shown(page, "correct-form") and not shown(page, "resend-form")
    assert status(ada)["said"]["offer"] == {"resend": False, "correct_email": True, "call": False}

    response = ada.post("/setup/email/", {"email": "ada.lovelace@example.com"}, follow=True)

    assert response.redirect_chain == [("/setup/", 302)]
    assert status(ada)["email"]["address"] == "ada.lovelace@example.com"


def test_a_link_never_sent_is_not_offered_again_as_if_it_had_been(ada, sandbox, drive, settings):
    settings.EMAIL_MAX_ATTEMPTS = 10
    settings.RETRY_BASE_SECONDS = 60
    sandbox("email", "timeout")

    drive(max_passes=3)

    delivery = EmailDelivery.objects.get()
    assert delivery.status == StepStatus.PENDING and delivery.attempts >= 1 and delivery.last_error_code
    response = ada.get("/setup/")
    html, page = response.content.decode(), page_text(response)
    data = status(ada)
    # We're still trying on our own; if the address is wrong, it can be corrected.
    assert "Didn't get" not in page and "Send the link again" not in page
    assert not shown(html, "resend-form") and shown(html, "correct-form")
    assert data["said"]["resend"] == {"prompt": "", "button": ""}
    assert "we're retrying on our own" in data["message"] and "not your address" not in data["message"]
    assert "Spotted a typo in your address? Correct it here" in page
    home = page_text(ada.get("/"))
    assert "Send the link again" not in home and "Correct my email address" in home


def test_once_our_retries_stop_the_offer_says_we_can_try_once_more(ada, sandbox, drive, settings):
    settings.EMAIL_MAX_ATTEMPTS = 1
    sandbox("email", "timeout")

    drive()

    data = status(ada)
    assert data["email"]["delivery"] == "failed"
    assert data["said"]["offer"]["resend"]
    assert data["said"]["resend"] == {"prompt": str(words.RESEND_WORDS["stopped"][0]),
                                      "button": str(words.RESEND_WORDS["stopped"][1])}
    response = ada.get("/setup/")
    assert shown(response.content.decode(), "resend-form")
    assert "Didn't get" not in page_text(response) and "Send the link again" not in page_text(response)


def test_a_fresh_link_after_a_timed_out_one_promises_no_minute(ada, sandbox, drive, settings):
    settings.EMAIL_MAX_ATTEMPTS = 10
    settings.RETRY_BASE_SECONDS = 60
    sandbox("email", "timeout")
    drive(max_passes=3)
    assert EmailDelivery.objects.get().last_error_code  # the link to the old address timed out

    ada.post("/setup/email/", {"email": "ada.lovelace@example.com"})

    data = status(ada)
    page = page_text(ada.get("/setup/"))
    assert data["said"]["email"] == str(words.EMAIL_WORDS["sending"])  # the fresh link is on time, untried
    for text in (data["message"], page, page_text(ada.get("/"))):
        assert "usually arrives within a minute" not in text
        assert "Our last try to send you one failed on our side, so this one may take longer" in text


def test_a_fresh_link_after_a_sent_one_still_says_a_minute(ada, drive):
    drive()

    ada.post("/setup/email/", {"email": "ada.lovelace@example.com"})

    assert "it usually arrives within a minute" in page_text(ada.get("/setup/"))


def test_a_fresh_link_after_the_address_was_refused_blames_nothing_on_our_side(ada, sandbox, drive):
    """The old link failed because the address was wrong, not because of us: the fresh
    link to the corrected address is an ordinary one."""
    sandbox("email", "reject")
    drive()
    assert status(ada)["state"] == "email_undeliverable"

    ada.post("/setup/email/", {"email": "ada.lovelace@example.com"})

    data = status(ada)
    assert data["said"]["email"] == str(words.EMAIL_WORDS["sending"])
    for text in (data["message"], page_text(ada.get("/setup/")), page_text(ada.get("/"))):
        assert "failed on our side" not in text
        assert "We're sending a confirmation link to ada.lovelace@example.com; it usually arrives within a minute" \
            in text


def test_a_fresh_link_after_our_retries_ran_out_says_our_last_try_failed(ada, sandbox, drive, settings):
    settings.EMAIL_MAX_ATTEMPTS = 1
    sandbox("email", "timeout")
    drive()
    assert status(ada)["email"]["delivery"] == "failed"

    ada.post("/setup/email/", {"email": "ada.lovelace@example.com"})

    data = status(ada)
    assert "Our last try to send you one failed on our side" in data["message"]
    assert "usually arrives within a minute" not in data["message"]


def test_a_link_stopped_before_it_called_anyone_is_not_told_as_our_failed_try(
        ada, django_capture_on_commit_callbacks):
    """The old link was never tried: cancelled by the correction, then re-armed by
    someone's "retry now" and refused by the worker before any call (it would go to
    the old address). That refusal is no try of ours that failed."""
    [old] = EmailDelivery.objects.all()  # owed, never tried
    with django_capture_on_commit_callbacks(execute=True):
        durable.step_run("workspace", ProvisioningRequest.objects.get().pk)
    ada.post("/setup/email/", {"email": "ada.lovelace@example.com"})
    assert durable.step_retry_now(old)
    with django_capture_on_commit_callbacks(execute=True):
        durable.step_run("email", old.pk)
    old.refresh_from_db()
    assert old.status == StepStatus.FAILED and old.last_error_code == "cancelled"

    data = status(ada)
    assert data["said"]["email"] == str(words.EMAIL_WORDS["sending"])  # the fresh link, untried
    assert "failed on our side" not in data["message"]
    assert "it usually arrives within a minute" in data["message"]


def test_our_credentials_refused_are_owned_not_blamed_on_the_provider(ada, sandbox, drive):
    sandbox("provisioning", "unauthorized")  # HTTP 401: the provider refuses our credentials

    drive(max_passes=1)

    data = status(ada)
    page = page_text(ada.get("/setup/"))
    assert data["state"] == "delayed"
    for text in (data["message"], page):
        assert "having an outage" not in text and "A service we use" not in text
        assert "stopped by a problem on our side; it is not anything you did" in text
        assert "We'll set up your workspace as soon as it's fixed" in text
        assert str(words.NOTHING_TO_DO_FOR_WORKSPACE) in text


def test_our_credentials_refused_for_email_are_owned_too(ada, sandbox, drive):
    sandbox("email", "unauthorized")  # SMTP 535: the email provider refuses our credentials

    drive(max_passes=1)

    page = page_text(ada.get("/setup/"))
    assert "having an outage" not in page
    assert "Sending email is stopped by a problem on our side; it is not anything you did" in page
