"""The fake provider and the fake SMTP server behave as their docstrings promise.

Plain pytest tests: no database, no Django settings, real sockets.
"""

from __future__ import annotations

import http.client
import json
import smtplib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from typing import Any

import pytest

from accounts.tests.fake_smtp import FakeSMTP
from provisioning.tests.fake_provider import FakeProvider

BODY = {"account_id": "acc_1", "company": "Acme", "owner_email": "ada@example.com"}


class Response:
    def __init__(
        self, status: int, headers: http.client.HTTPMessage, body: Any
    ) -> None:
        self.status, self.headers, self.json = status, headers, body


def post(
    provider: FakeProvider,
    key: str | None = "key-1",
    body: bytes | None = None,
    *,
    method: str = "POST",
    path: str = "/workspaces",
    timeout: float = 5.0,
) -> Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    conn = http.client.HTTPConnection("127.0.0.1", provider.port, timeout=timeout)
    try:
        data = json.dumps(BODY).encode() if body is None else body
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return Response(response.status, response.headers, json.loads(response.read()))
    finally:
        conn.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


# -- FakeProvider -----------------------------------------------------------------


def test_ok_is_idempotent_per_key(provider: FakeProvider) -> None:
    assert provider.url == f"http://127.0.0.1:{provider.port}"
    first, repeat, other = (
        post(provider, "k1"),
        post(provider, "k1"),
        post(provider, "k2"),
    )

    assert (first.status, repeat.status, other.status) == (201, 200, 201)
    assert first.json["id"].startswith("ws_")
    assert repeat.json["id"] == first.json["id"] != other.json["id"]
    assert provider.workspaces == {"k1": first.json["id"], "k2": other.json["id"]}
    assert provider.created_count == 2
    record = provider.requests[0]
    assert (record["method"], record["path"], record["idempotency_key"]) == (
        "POST",
        "/workspaces",
        "k1",
    )
    assert (record["json"], record["status"]) == (BODY, 201)


@pytest.mark.parametrize(
    ("mode", "status", "body"),
    [
        ("error", 503, {"error": "unavailable"}),
        ("reject", 422, {"error": "invalid company"}),
        ("rate_limited", 429, {"error": "rate limited"}),
    ],
)
def test_failing_modes(
    provider: FakeProvider, mode: Any, status: int, body: Any
) -> None:
    provider.mode = mode
    response = post(provider)
    assert (response.status, response.json) == (status, body)
    assert provider.created_count == 0
    if status == 429:
        assert response.headers["Retry-After"] == "7"


def test_conflict_returns_the_existing_or_a_new_id(provider: FakeProvider) -> None:
    created = post(provider, "k1").json["id"]
    provider.mode = "conflict"
    assert (post(provider, "k1").status, post(provider, "k1").json) == (
        409,
        {"id": created},
    )
    fresh = post(provider, "k2")
    assert fresh.status == 409
    assert provider.workspaces["k2"] == fresh.json["id"]


def test_hang_records_the_workspace_before_the_client_times_out() -> None:
    with FakeProvider("hang", hang_seconds=3) as provider:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            post(provider, "k1", timeout=0.3)
        assert time.monotonic() - started < 2
        created = provider.workspaces["k1"]
        provider.mode = "ok"
        retry = post(provider, "k1")
        assert (retry.status, retry.json) == (200, {"id": created})
        assert provider.created_count == 1
        started = time.monotonic()
    assert time.monotonic() - started < 1  # stopping wakes the hanging request


def test_fail_times_then_mode(provider: FakeProvider) -> None:
    provider.fail_times(2)
    provider.retry_after = 3
    assert [post(provider).status for _ in range(3)] == [503, 503, 201]
    provider.fail_times(1, status=429)
    limited = post(provider)
    assert (limited.status, limited.headers["Retry-After"]) == (429, "3")
    assert post(provider).status == 200
    provider.retry_after = None
    provider.fail_times(1, status=429)
    limited = post(provider)
    assert (limited.status, "Retry-After" in limited.headers) == (429, False)


def test_bad_requests() -> None:
    with FakeProvider() as provider:
        assert post(provider, key=None).status == 400
        assert post(provider, body=b"{not json").status == 400
        assert post(provider, body=b"[1, 2]").status == 400
        assert post(provider, path="/other").status == 404
        assert post(provider, method="GET").status == 405
        provider.fail_times(1)
        assert post(provider, key=None).status == 400  # does not consume the failure
        assert post(provider).status == 503
        assert provider.created_count == 0


def test_rate_limit_is_a_sliding_window() -> None:
    clock = FakeClock()
    with FakeProvider(rate_limit_per_second=2, clock=clock) as provider:
        statuses = [post(provider, f"k{i}").status for i in range(3)]
        assert statuses == [201, 201, 429]
        assert provider.requests[-1]["status"] == 429
        clock.now += 0.99
        limited = post(provider, "k9")
        assert (limited.status, limited.headers["Retry-After"]) == (429, "1")
        clock.now += 0.02  # the first two are now more than a second old
        assert post(provider, "k3").status == 201
        assert provider.max_requests_in_any_second() == 4
        assert provider.max_requests_in_any_second(statuses={200, 201}) == 2


def test_max_requests_in_any_second() -> None:
    clock = FakeClock()
    with FakeProvider(clock=clock) as provider:
        assert provider.max_requests_in_any_second() == 0
        for offset in (0.0, 0.1, 0.5, 0.99, 1.2, 2.5):
            clock.now = 100.0 + offset
            post(provider, f"k{offset}")
        assert provider.max_requests_in_any_second() == 4
        provider.reset()
        assert (provider.requests, provider.workspaces) == ([], {})
        assert provider.max_requests_in_any_second() == 0


def test_hundreds_of_concurrent_requests(provider: FakeProvider) -> None:
    keys = [f"k{i % 100}" for i in range(300)]
    with ThreadPoolExecutor(max_workers=100) as pool:
        responses = list(pool.map(lambda key: post(provider, key), keys))

    assert sorted({r.status for r in responses}) == [200, 201]
    assert sum(r.status == 201 for r in responses) == 100
    assert provider.created_count == 100
    for key, response in zip(keys, responses, strict=True):
        assert response.json["id"] == provider.workspaces[key]
    assert len(provider.requests) == 300


# -- FakeSMTP ---------------------------------------------------------------------


def make_message(to: str = "ada@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "noreply@example.com"
    message["To"] = to
    message["Subject"] = "Verify your address"
    message.set_content("Hello Ada")
    return message


def test_smtp_ok_delivers() -> None:
    with (
        FakeSMTP() as server,
        smtplib.SMTP(server.host, server.port, timeout=5) as client,
    ):
        client.send_message(make_message())
        [received] = server.wait_for_messages(1)
        assert received["Subject"] == "Verify your address"
        assert received.get_content().strip() == "Hello Ada"
        assert server.messages == [received]
        [envelope] = server.envelopes
        assert envelope.mail_from == "noreply@example.com"
        assert envelope.rcpt_tos == ("ada@example.com",)
        server.reset()
        assert server.messages == []


@pytest.mark.parametrize(("mode", "code"), [("tempfail", 451), ("reject", 550)])
def test_smtp_recipient_refused(mode: Any, code: int) -> None:
    with (
        FakeSMTP(mode) as server,
        smtplib.SMTP(server.host, server.port, timeout=5) as client,
    ):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.send_message(make_message())
        assert refused.value.recipients["ada@example.com"][0] == code
        assert server.messages == []


def test_smtp_hang_times_out_the_client_but_keeps_the_message() -> None:
    with FakeSMTP("hang", hang_seconds=1.5) as server:
        client = smtplib.SMTP(server.host, server.port, timeout=0.5)
        started = time.monotonic()
        # smtplib wraps a read timeout as SMTPServerDisconnected("... timed out").
        with pytest.raises(
            (TimeoutError, smtplib.SMTPServerDisconnected), match="timed out"
        ):
            client.send_message(make_message())
        assert time.monotonic() - started < 1.4
        client.close()
        assert len(server.messages) == 1


def test_smtp_disconnect() -> None:
    with FakeSMTP("disconnect") as server:
        client = smtplib.SMTP(server.host, server.port, timeout=5)
        client.ehlo()
        code, _ = client.mail("noreply@example.com")
        assert code == 421
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()  # the server closed the connection
        server.mode = "ok"
        with smtplib.SMTP(server.host, server.port, timeout=5) as again:
            again.send_message(make_message())
        assert len(server.messages) == 1


@pytest.mark.parametrize("fake", [FakeProvider(), FakeSMTP()], ids=["http", "smtp"])
def test_modes_are_validated_and_port_needs_start(
    fake: FakeProvider | FakeSMTP,
) -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        fake.mode = "nope"  # type: ignore[assignment]
    with pytest.raises(RuntimeError):
        _ = fake.port
