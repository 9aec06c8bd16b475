"""Test data for accounts. Accounts are made through the real signup page, never by
forcing rows, so every test starts from a state a person could have reached."""
from __future__ import annotations

import html
import re

import factory
from django.core import mail
from django.test import Client

from accounts.models import User

PASSWORD = "correct horse battery staple"
VERIFY_LINK = re.compile(r"https?://[^/\s\"]+(/verify/[^/\s\"]+/)")


class SignupFormFactory(factory.DictFactory):
    """The signup form as a person fills it in (field names are the DESIGN contract)."""

    name = "Grace Hopper"
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    phone = "+1 415 555 0100"
    company = factory.Sequence(lambda n: f"Company {n}")
    password = PASSWORD


def sign_up(client: Client | None = None, **fields) -> tuple[Client, User]:
    """Sign up through ``/signup/``; returns the logged-in client and the account."""
    client = client or Client()
    data = SignupFormFactory(**fields)
    response = client.post("/signup/", data)
    assert response.status_code == 302, page_text(response)
    return client, User.objects.get(email=data["email"].lower())


def page_text(response) -> str:
    """The page as a person reads it: HTML entities decoded."""
    return html.unescape(response.content.decode())


def sent_to(address: str, *, subject: str = "") -> list:
    """Messages in ``mail.outbox`` (where the healthy sandbox delivers in tests)."""
    return [m for m in mail.outbox if address in m.to and m.subject.startswith(subject)]


def verification_link(address: str) -> str:
    """The path of the link in the latest verification email sent to ``address``."""
    messages = sent_to(address, subject="Confirm")
    assert messages, f"no verification email to {address}"
    match = VERIFY_LINK.search(messages[-1].body)
    assert match, messages[-1].body
    return match.group(1)


def at_once(*calls):
    """Run the calls in threads released together; returns their results in order.
    Each thread closes its own database connection when done."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list = []

    def run(i, call):
        try:
            barrier.wait(timeout=10)
            results[i] = call()
        except BaseException as error:  # reported to the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results
