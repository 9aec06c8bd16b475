"""A stuck person asks for a call from their status page, in Chromium, and the support
person finds it at the top of the queue with the number one tap away. Fixtures and
the console login are those of the other browser journeys."""
from __future__ import annotations

import pytest
from django.conf import settings
from playwright.sync_api import expect

from accounts import messages as words
from accounts.tests.test_browser import (  # noqa: F401  (browser and shot are fixtures)
    LIVE_UPDATE_TIMEOUT_MS,
    _fill_signup,
    _new_page,
    browser,
    shot,
)
from provisioning.reconciler import reconcile
from support.models import CallbackRequest, Ticket
from support.services import contact_message_receive
from support.tests.conftest import signed_in_to_console
from support.tests.test_browser import _support_login

pytestmark = pytest.mark.browser


def test_a_stuck_person_asks_for_a_call_and_it_tops_the_queue(browser, live_server, sandbox, shot):  # noqa: F811
    # Someone wrote earlier: without the call-back, their ticket would come first.
    contact_message_receive(email="earlier@elsewhere.example", message="Is anyone there?")
    sandbox("provisioning", "reject")  # the provider refuses this workspace for good

    person = _new_page(browser)
    person.goto(live_server.url + "/signup/")
    _fill_signup(person, email="ada@example.com")
    person.get_by_role("button", name="Create account").click()
    expect(person).to_have_url(live_server.url + "/setup/")
    reconcile()  # the worker: the refusal stops the step, and a ticket opens
    expect(person.locator("#status-title")).to_have_text(
        str(words.TITLES["needs_support"]), timeout=LIVE_UPDATE_TIMEOUT_MS)

    # The page that was open when the person got stuck offers the call by itself.
    offer = person.locator("#callback")
    expect(offer).to_be_visible(timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(offer).to_contain_text("+1 415-555-0100")  # the number on file
    shot(person, "setup-call-me")
    offer.get_by_role("button", name="Call me").click()

    expect(person).to_have_url(live_server.url + "/help/call/")
    expect(person.locator("h1")).to_have_text("We'll call you")
    expect(person.locator("#promise")).to_contain_text("a person will call within 4 hours")
    ticket = Ticket.objects.get(account__email="ada@example.com")
    expect(person.locator("#reference")).to_have_text(ticket.reference)
    assert str(CallbackRequest.objects.get(ticket=ticket).phone) == "+14155550100"

    # The support person, signed in to the console with both factors (the sign-in
    # itself is walked in test_browser.py).
    session = signed_in_to_console(_support_login()).cookies[settings.SESSION_COOKIE_NAME].value
    console = _new_page(browser)
    console.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session,
                                  "url": live_server.url}])
    console.goto(live_server.url + "/admin/support/ticket/")
    rows = console.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(ticket.reference)
    expect(rows.first.locator('a[href="tel:+14155550100"]')).to_be_visible()
    expect(rows.nth(1)).to_contain_text("earlier@elsewhere.example")
    shot(console, "console-queue-callback")
