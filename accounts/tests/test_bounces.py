"""Bounces and complaints arrive through Anymail's tracking webhook (here Postmark's,
with the payload Postmark documents), behind basic auth: the address becomes
undeliverable, the person can correct it, and a retried webhook is acted on once."""
from __future__ import annotations

import base64
import json

import pytest
from django.core import mail

from accounts.checks import webhook_secret_check
from accounts.models import EmailWebhookEvent
from accounts.selectors import account_overview, user_by_email
from accounts.services import account_register
from conftest import PASSWORD
from provisioning.models import Event

URL = "/anymail/postmark/tracking/"
SECRET = "hook:s3cret-2f9a"


def _auth(secret: str) -> str:
    return "Basic " + base64.b64encode(secret.encode()).decode()


def _postmark(record_type: str = "Bounce", type_: str = "HardBounce", *, email: str = "ada@example.com",
              event_id: int = 4323372036854775807) -> str:
    """A Postmark bounce webhook body, as in Postmark's documentation."""
    return json.dumps({
        "RecordType": record_type, "MessageStream": "outbound", "ID": event_id, "Type": type_,
        "TypeCode": 1, "Name": "Hard bounce", "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "ServerID": 23, "Description": "The server was unable to deliver your message.",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email, "From": "hello@example.com", "BouncedAt": "2026-11-26T16:33:54.9070259Z",
        "DumpAvailable": True, "Inactive": True, "CanActivate": True, "Subject": "Confirm your email address",
    })


@pytest.fixture
def webhook_secret(settings):
    settings.EMAIL_WEBHOOK_ESP = "postmark"  # as EMAIL_BACKEND=anymail.backends.postmark.EmailBackend sets it
    settings.WEBHOOK_SECRET = SECRET
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}


@pytest.fixture
def account(db, drive):
    """Signed up; workspace ready; the verification email went out."""
    account = account_register(name="Ada Lovelace", email="ada@example.com", company="Engines",
                               password=PASSWORD)
    drive()
    assert account_overview(account=account).state == "unverified"
    assert len(mail.outbox) == 1
    return account


def _post(client, body: str, secret: str | None = SECRET):
    headers = {"HTTP_AUTHORIZATION": _auth(secret)} if secret else {}
    return client.post(URL, body, content_type="application/json", **headers)


def _status(client) -> dict:
    client.post("/login/", {"email": "ada@example.com", "password": PASSWORD})
    return client.get("/setup/status.json").json()


@pytest.mark.parametrize(("record_type", "type_"), [
    ("Bounce", "HardBounce"),  # bounced
    ("Bounce", "BadEmailAddress"),  # rejected
    ("SpamComplaint", "SpamComplaint"),  # complained
])
def test_bounce_makes_the_address_undeliverable_once(client, webhook_secret, account, record_type, type_):
    body = _postmark(record_type, type_)
    assert _post(client, body).status_code == 200
    assert _post(client, body).status_code == 200  # Postmark retries; nothing happens twice

    assert EmailWebhookEvent.objects.count() == 1
    assert EmailWebhookEvent.objects.get().recipient == "a***@example.com"
    assert Event.objects.filter(account=account, to_state="bounced").count() == 1
    status = _status(client)
    assert status["state"] == "email_undeliverable"
    assert status["email"]["delivery"] == "bounced"
    assert "Our email to ada@example.com was refused" in status["message"]


def test_the_person_corrects_the_address_after_a_bounce(client, webhook_secret, account, drive):
    _post(client, _postmark())
    _status(client)
    page = client.get("/setup/").content.decode()
    assert "We can&#x27;t reach your email address" in page and 'action="/setup/email/"' in page

    client.post("/setup/email/", {"email": "ada@lovelace.example"})
    drive()
    assert mail.outbox[-1].to == ["ada@lovelace.example"]
    status = client.get("/setup/status.json").json()
    assert status["state"] == "unverified" and status["email"]["delivery"] == "sent"


def test_a_fresh_link_after_a_bounce_does_not_say_our_last_try_failed(client, webhook_secret, db, sandbox, drive,
                                                                      settings):
    """The server took the link but our wait for its answer timed out, so our retries
    counted it failed; then the address bounced it. The address refused it, not us:
    the fresh link to the corrected address blames nothing on our side."""
    settings.EMAIL_MAX_ATTEMPTS = 1
    account_register(name="Ada Lovelace", email="ada@example.com", company="Engines", password=PASSWORD)
    sandbox("email", "late")
    drive()
    assert len(mail.outbox) == 1
    _post(client, _postmark())
    assert "Our email to ada@example.com was refused" in _status(client)["message"]

    client.post("/setup/email/", {"email": "ada@lovelace.example"})

    status = client.get("/setup/status.json").json()
    assert status["email"]["delivery"] == "pending"
    assert "failed on our side" not in status["message"]
    assert "it usually arrives within a minute" in status["message"]


def test_wrong_or_missing_credentials_change_nothing(client, webhook_secret, account):
    assert _post(client, _postmark(), secret="hook:guess").status_code == 400
    assert _post(client, _postmark(), secret=None).status_code == 400
    assert EmailWebhookEvent.objects.count() == 0
    assert account_overview(account=user_by_email(email="ada@example.com")).state == "unverified"


@pytest.mark.parametrize("body", [
    "not json", "[]", '"ada@example.com"',
    _postmark().replace('"Email": "ada@example.com"', '"Email": 5'),
    _postmark().replace('"Email": "ada@example.com"', '"Email": ["ada@example.com"]'),
])
def test_a_garbled_body_with_the_right_credentials_is_refused_and_changes_nothing(
        client, webhook_secret, account, body):
    """400, not 500: Postmark would retry a 500 for days, and it can never be read."""
    assert _post(client, body).status_code == 400
    assert EmailWebhookEvent.objects.count() == 0
    assert account_overview(account=account).state == "unverified"


@pytest.mark.parametrize(("record_type", "type_"), [("Bounce", "Transient"), ("Delivery", "")])
def test_deferrals_and_deliveries_change_nothing(client, webhook_secret, account, record_type, type_):
    assert _post(client, _postmark(record_type, type_)).status_code == 200
    assert EmailWebhookEvent.objects.count() == 0
    assert account_overview(account=account).state == "unverified"


def test_a_bounce_for_an_address_we_do_not_know_is_recorded_and_harmless(client, webhook_secret, db):
    assert _post(client, _postmark(email="nobody@example.com")).status_code == 200
    event = EmailWebhookEvent.objects.get()
    assert event.account is None and event.recipient == "n***@example.com"


def test_deploy_check_wants_a_webhook_secret_with_an_esp(settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.WEBHOOK_SECRET = ""
    assert [w.id for w in webhook_secret_check(None)] == ["accounts.E001"]
    settings.WEBHOOK_SECRET = SECRET
    assert webhook_secret_check(None) == []


# --- Forged bounces: only our ESP's webhook answers, and only behind basic auth ----------------

def test_without_a_webhook_secret_no_tracking_webhook_answers(client, settings, account):
    """EMAIL_URL=smtp://… and no WEBHOOK_SECRET: an unauthenticated POST used to mark any
    address undeliverable."""
    settings.EMAIL_WEBHOOK_ESP, settings.WEBHOOK_SECRET = "", ""
    assert _post(client, _postmark(), secret=None).status_code == 404
    settings.EMAIL_WEBHOOK_ESP = "postmark"  # an ESP, but no secret: still nothing
    assert _post(client, _postmark(), secret=None).status_code == 404
    assert EmailWebhookEvent.objects.count() == 0
    assert account_overview(account=account).state == "unverified"


def test_only_the_configured_esps_webhook_answers(client, webhook_secret, account):
    auth = {"HTTP_AUTHORIZATION": _auth(SECRET)}
    for other in ("mailgun", "sendgrid", "amazon_ses", "brevo"):
        assert client.post(f"/anymail/{other}/tracking/", "{}", content_type="application/json",
                           **auth).status_code == 404
    assert client.post("/anymail/postmark/inbound/", "{}", content_type="application/json", **auth).status_code == 404
    assert _post(client, _postmark()).status_code == 200
    assert account_overview(account=account).state == "email_undeliverable"


@pytest.mark.django_db
def test_the_bounce_lookup_reads_the_address_index_not_the_whole_table():
    """What a bounce webhook marks is found through the index on ``to_address``. On
    PostgreSQL sequential scans are priced out for this transaction, so a missing
    index shows as a Seq Scan whatever the table's size; on SQLite the plan without
    it reads the due index for every sent email, i.e. nearly the whole table."""
    from django.db import connection

    from accounts.selectors import deliveries_sent_to

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
    plan = deliveries_sent_to(address="ada@example.com").explain()

    assert "email_to_address_idx" in plan, plan

def test_a_bounce_for_an_address_that_grows_when_lower_cased_is_recorded_masked(client, webhook_secret, db):
    """'İ' lower-cased is 'i' and a combining dot: the address was stored unmasked, and
    at 272 characters PostgreSQL refused it (a 500, retried by the ESP for days)."""
    assert _post(client, _postmark(email="İ" * 130 + "@example.com")).status_code == 200
    assert EmailWebhookEvent.objects.get().recipient == "i***@example.com"
