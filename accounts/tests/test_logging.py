"""Log lines: JSON with the request id and account id, emails and phones masked,
whoever writes them."""
from __future__ import annotations

import io
import json
import logging

import pytest

from accounts.logging import mask_pii
from accounts.services import account_register
from conftest import PASSWORD


@pytest.fixture
def log_lines():
    """What the configured console handler writes (its own filters and formatter),
    captured, with INFO lines let through."""
    root = logging.getLogger()
    [handler] = [h for h in root.handlers if h.name == "console"]  # from settings.LOGGING
    stream, level = io.StringIO(), root.level
    previous = handler.setStream(stream)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        handler.setStream(previous)
        root.setLevel(level)


def test_emails_and_phone_numbers_are_masked_in_every_line(log_lines):
    logging.getLogger("some.library").warning("signup for %s, phone %s; call (415) 555-0100",
                                              "Ada.Lovelace@Example.com", "+1 415 555 0100")
    [line] = log_lines()
    assert line["message"] == "signup for A***@Example.com, phone +1******0100; call 4*****0100"
    assert line["level"] == "WARNING" and line["logger"] == "some.library"
    assert set(line) >= {"time", "request_id", "account_id"}


def test_tracebacks_are_masked_too(log_lines):
    try:
        raise ValueError("no account for grace@example.org (+44 20 7946 0958)")
    except ValueError:
        logging.getLogger("accounts").exception("lookup failed")
    [line] = log_lines()
    assert "g***@example.org" in line["exception"] and "+4*******0958" in line["exception"]
    assert "grace@" not in json.dumps(line) and "7946" not in json.dumps(line)


def test_dates_times_and_ids_are_left_alone():
    text = "at 2026-11-26 07:57:00.123 step workspace-5-20261126075700123456 took 1700000000.5 ms"
    assert mask_pii(text) == text


@pytest.mark.django_db
def test_request_id_is_kept_echoed_and_on_the_request_line(client, log_lines):
    response = client.get("/login/", HTTP_X_REQUEST_ID="lb-7f3a.42")
    assert response["X-Request-ID"] == "lb-7f3a.42"
    [line] = [line for line in log_lines() if line["logger"] == "accounts.requests"]
    assert line["request_id"] == "lb-7f3a.42"
    assert line["message"].startswith("GET /login/ 200")
    assert line["account_id"] is None


@pytest.mark.django_db
def test_an_unsafe_request_id_is_replaced(client):
    for forged in ("a" * 101, "x\ny", "<script>", ""):
        rid = client.get("/login/", HTTP_X_REQUEST_ID=forged)["X-Request-ID"]
        assert rid != forged and len(rid) == 32


@pytest.mark.django_db
def test_account_id_is_on_lines_once_logged_in(client, log_lines):
    account = account_register(name="Ada", email="ada@example.com", company="Engines", password=PASSWORD)
    client.post("/login/", {"email": "ada@example.com", "password": PASSWORD})
    client.get("/setup/")
    requests = [line for line in log_lines() if line["logger"] == "accounts.requests"]
    assert [(line["message"].split(" ")[:3], line["account_id"]) for line in requests] == [
        (["POST", "/login/", "302"], account.pk),
        (["GET", "/setup/", "200"], account.pk),
    ]


@pytest.mark.django_db
def test_a_token_in_the_url_never_reaches_the_log(client, log_lines):
    client.get("/verify/MQ-abcdefghijklmnopqrstuvwxyz0123456789/")
    [line] = [line for line in log_lines() if line["logger"] == "accounts.requests"]
    assert "abcdefghij" not in line["message"]
    assert line["message"].startswith("GET /verify/<str:token>/ 302")
