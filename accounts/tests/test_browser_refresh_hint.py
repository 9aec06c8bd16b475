"""/setup/ in a real browser: once the account settles while the page is open, the
page stops updating itself, and stops saying it does."""
from __future__ import annotations

import pytest
from django.test import Client
from playwright.sync_api import expect

from accounts import messages as words
from accounts.tests.factories import verification_link
from accounts.tests.test_browser import (  # the browser suite's Chromium fixture (or a stated skip) and helpers
    LIVE_UPDATE_TIMEOUT_MS,
    _fill_signup,
    _new_page,
    browser,  # noqa: F401
)
from provisioning.reconciler import reconcile

pytestmark = pytest.mark.browser

ADDRESS = "ada@example.com"


def test_the_refresh_hint_goes_once_the_account_is_all_set_while_the_page_is_open(browser, live_server):  # noqa: F811
    page = _new_page(browser)
    page.goto(live_server.url + "/signup/")
    _fill_signup(page, email=ADDRESS)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(live_server.url + "/setup/")
    reconcile()  # the workspace is created and the confirmation link goes out
    expect(page.locator("#status-title")).to_have_text(
        str(words.TITLES["unverified"]), timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(page.locator("#refresh-hint")).to_be_visible()  # waiting for the address to be confirmed

    Client().post(verification_link(ADDRESS))  # confirmed from the email, elsewhere

    expect(page.locator("#status-title")).to_have_text(str(words.TITLES["active"]), timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(page.locator("#refresh-hint")).to_be_hidden()
