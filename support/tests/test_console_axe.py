"""axe-core on every console page, at desktop and phone width: no serious or
critical violation. The pages are reached as the support person reaches them (the
password step, then the second factor, in a real browser), with a ticket and an
incident made by real failures injected through the sandbox providers."""
from __future__ import annotations

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, expect

from accounts.models import User
from accounts.tests.test_browser import (  # noqa: F401  (browser and shot are fixtures)
    PHONE,
    _new_page,
    browser,
    shot,
)
from provisioning.reconciler import reconcile
from support.models import Incident, Ticket
from support.tests.test_browser import SUPPORT_EMAIL, SUPPORT_PASSWORD, _support_login
from support.tests.test_console_security import app_code

pytestmark = pytest.mark.browser

SERIOUS = {"serious", "critical"}


def _serious_violations(page: Page, name: str) -> list[str]:
    """What axe-core (the copy shipped in axe-playwright-python: nothing fetched at
    run time) finds serious or critical on the page as it is now, named by page."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in SERIOUS]
    return [f"{name}: {v['id']} ({v['impact']}) at " + ", ".join(str(node["target"]) for node in v["nodes"][:5])
            for v in serious]


def _sign_up(signup_data: dict, email: str) -> None:
    assert Client().post("/signup/", {**signup_data, "email": email}).status_code == 302


def test_every_console_page_has_no_serious_axe_violation_on_desktop_and_phone(
        browser, live_server, sandbox, settings, signup_data, shot):  # noqa: F811
    # A ticket: the provider refuses one person's workspace for good.
    sandbox("provisioning", "reject")
    _sign_up(signup_data, "ada@example.com")
    reconcile()
    sandbox("provisioning", "ok")
    # An incident: the email provider is down for several people at once.
    settings.BREAKER_PROBE_SECONDS = 3600
    sandbox("email", "error")
    for n in range(settings.BREAKER_FAILURE_THRESHOLD + 1):
        _sign_up(signup_data, f"p{n}@example.com")
    for _ in range(3):
        reconcile()
    found: list[str] = []
    ticket, incident = Ticket.objects.first(), Incident.objects.first()
    assert ticket is not None and incident is not None
    account = User.objects.get(email="ada@example.com")

    staff = _support_login()
    device = TOTPDevice.objects.create(user=staff, name="Authenticator app", confirmed=True)
    desktop = _new_page(browser)
    desktop.goto(live_server.url + "/admin/")
    found += _serious_violations(desktop, "console sign-in")
    shot(desktop, "console-sign-in")
    desktop.locator("#id_username").fill(SUPPORT_EMAIL)
    desktop.locator("#id_password").fill(SUPPORT_PASSWORD)
    desktop.get_by_role("button", name="Log in").click()
    expect(desktop.locator("#id_otp_token")).to_be_visible()
    found += _serious_violations(desktop, "console second factor")
    shot(desktop, "console-second-factor")
    phone = _new_page(browser, PHONE)
    phone.context.add_cookies(desktop.context.cookies())
    phone.goto(desktop.url)
    found += _serious_violations(phone, "console second factor-phone")
    shot(phone, "console-second-factor-phone")
    desktop.locator("#id_otp_token").fill(app_code(device))
    desktop.locator("#id_otp_token").press("Enter")
    expect(desktop).to_have_url(live_server.url + "/admin/")
    phone.context.add_cookies(desktop.context.cookies())

    phone_sign_in = _new_page(browser, PHONE)
    phone_sign_in.goto(live_server.url + "/admin/login/")
    found += _serious_violations(phone_sign_in, "console sign-in-phone")
    shot(phone_sign_in, "console-sign-in-phone")

    pages = {  # name in a failure: (path, screenshot)
        "Today": ("/admin/", "console-dashboard-outage"),
        "Queue": ("/admin/support/ticket/", "console-queue-outage"),
        "ticket": (f"/admin/support/ticket/{ticket.pk}/change/", "console-ticket-outage"),
        "accounts list": ("/admin/accounts/user/", "console-accounts"),
        "accounts list, filtered": ("/admin/accounts/user/?is_staff__exact=0", "console-accounts-filtered"),
        "account": (f"/admin/accounts/user/{account.pk}/change/", "console-account"),
        "incidents list": ("/admin/support/incident/", "console-incidents"),
        "incident": (f"/admin/support/incident/{incident.pk}/change/", "console-incident"),
        "reply": (f"/admin/support/ticket/{ticket.pk}/do/reply/", "console-confirm-reply"),
        "password change": ("/admin/password_change/", "console-password-change"),
    }
    for name, (path, picture) in pages.items():
        for page, suffix in ((desktop, ""), (phone, "-phone")):
            response = page.goto(live_server.url + path)
            assert response is not None and response.status == 200, f"{name}{suffix}: {response and response.status}"
            found += _serious_violations(page, name + suffix)
            shot(page, picture + suffix)
    assert not found, "\n".join(found)
