"""The support person's journey in a real browser: Debian's Chromium driven by
Playwright against ``live_server``, with the same launch, skip and screenshot rules
as the person's journey (``accounts/tests/test_browser.py``, whose fixtures this
module reuses).

Two browser contexts share the run: the person, who keeps their status page open,
and the support person in the console. The failure is injected through the sandbox
provisioning provider; the reconciler is called where the worker would run it.
"""
from __future__ import annotations

import base64
import re

import pytest
from django_otp.oath import totp
from playwright.sync_api import expect

from accounts import messages as words
from accounts.models import User
from accounts.tests.test_browser import (  # noqa: F401  (browser and shot are fixtures)
    LIVE_UPDATE_TIMEOUT_MS,
    PHONE,
    _fill_signup,
    _new_page,
    browser,
    shot,
)
from provisioning.models import Workspace
from provisioning.reconciler import reconcile
from support import messages as support_words
from support.models import Ticket, TicketStatus
from support.tests.conftest import support_group

pytestmark = pytest.mark.browser

SUPPORT_EMAIL = "sam@support.example"
SUPPORT_PASSWORD = "a support password 1"


def _support_login() -> User:
    """A staff member in the Support group: what ``manage.py ensure_support_login``
    makes, exactly the support person's permissions (not a superuser)."""
    user = User.objects.create_user(SUPPORT_EMAIL, SUPPORT_PASSWORD, name="Sam Support",
                                    company="Acme Workspaces", is_staff=True)
    user.groups.add(support_group())
    return user


def test_support_reruns_provisioning_and_the_person_sees_it_ready(browser, live_server, sandbox, shot):  # noqa: F811
    sandbox("provisioning", "reject")  # the provider refuses this workspace for good

    # The person signs up and keeps their status page open.
    person = _new_page(browser)
    person.goto(live_server.url + "/signup/")
    _fill_signup(person, email="ada@example.com")
    person.get_by_role("button", name="Create account").click()
    expect(person).to_have_url(live_server.url + "/setup/")
    reconcile()  # the worker: a permanent refusal fails at once, and a ticket opens
    expect(person.locator("#status-title")).to_have_text(
        str(words.TITLES["needs_support"]), timeout=LIVE_UPDATE_TIMEOUT_MS)
    [ticket] = Ticket.objects.all()
    assert ticket.status == TicketStatus.OPEN
    expect(person.locator("#status")).to_contain_text(ticket.reference)
    person.evaluate("window.__marker = 1")

    # The support person logs in to the console: the dashboard says one ticket needs them.
    _support_login()
    console = _new_page(browser)
    console.goto(live_server.url + "/admin/")
    console.locator("#id_username").fill(SUPPORT_EMAIL)
    console.locator("#id_password").fill(SUPPORT_PASSWORD)
    console.get_by_role("button", name="Log in").click()
    # First sign-in: set up the second factor. The page shows a QR code and the key;
    # the "app" here computes its code from the key shown, as a phone would.
    expect(console).to_have_url(re.compile(r"/admin/second-factor/"))
    expect(console.locator(".enrol-qr svg")).to_be_visible()
    shot(console, "console-second-factor-enrol")
    secret = console.locator("#totp-secret").inner_text().replace(" ", "")
    console.locator("#id_otp_token").fill(f"{totp(base64.b32decode(secret)):06d}")
    console.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(console.locator("#backup-codes li")).to_have_count(10)
    shot(console, "console-backup-codes")
    console.get_by_role("link", name="I've kept them: go to the console").click()
    expect(console).to_have_url(live_server.url + "/admin/")
    expect(console.locator(".headline h1")).to_have_text("1 ticket needs you")
    shot(console, "console-dashboard")

    # The queue lists the ticket, saying what is failing.
    console.get_by_role("link", name="Open the queue").click()
    expect(console).to_have_url(re.compile(r"/admin/support/ticket/"))
    row = console.locator("#result_list tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(ticket.reference)
    expect(row).to_contain_text("Workspace setup stopped")
    shot(console, "console-queue")

    # The ticket page: who, what failed, what they see, and the buttons.
    row.get_by_role("link", name=ticket.reference).click()
    expect(console).to_have_url(live_server.url + f"/admin/support/ticket/{ticket.pk}/change/")
    expect(console.locator(".ticket-head")).to_contain_text("Workspace setup stopped after 1 try")
    expect(console.locator("main, #content-main").first).to_contain_text("Ada Lovelace")
    shot(console, "console-ticket")
    phone = _new_page(browser, PHONE)
    phone.context.add_cookies(console.context.cookies())
    phone.goto(console.url)
    expect(phone.locator(".ticket-head")).to_contain_text(ticket.reference)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["viewport"]["width"] + 1
    shot(phone, "console-ticket-phone")

    # Whatever refused it is fixed; support re-runs provisioning, confirming first.
    sandbox("provisioning", "ok")
    rerun = str(support_words.BUTTONS["rerun"][0])
    console.get_by_role("link", name=rerun).click()
    expect(console).to_have_url(live_server.url + f"/admin/support/ticket/{ticket.pk}/do/rerun/")
    assert not Workspace.objects.exists(), "the confirmation page must not run anything"
    shot(console, "console-confirm-rerun")
    console.get_by_role("button", name=rerun).click()

    # The step runs (tasks run inline on commit); the ticket resolves by itself...
    expect(console).to_have_url(live_server.url + f"/admin/support/ticket/{ticket.pk}/change/")
    expect(console.locator(".messagelist")).to_contain_text(str(support_words.RESULTS["rerun_done"]))
    reconcile()  # the worker's next pass: anything the click left due runs now
    console.reload()
    expect(console.locator(".ticket-head .badge").first).to_have_text("Resolved")
    expect(console.locator(".ticket-head")).to_contain_text("resolved automatically")
    shot(console, "console-ticket-resolved")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED and ticket.resolved_automatically
    assert Workspace.objects.filter(owner__email="ada@example.com").count() == 1

    # ...and the person's page, never reloaded, turns ready.
    expect(person.locator("#status-title")).to_have_text(
        str(words.TITLES["unverified"]), timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(person.locator("#workspace-words")).to_have_text(str(words.WORKSPACE_WORDS["ready"]))
    expect(person.get_by_role("link", name="Open my workspace")).to_be_visible()
    assert person.evaluate("window.__marker") == 1, "the status page reloaded instead of updating in place"
