"""In Chromium: after an invalid submit, focus is on the error summary (so a screen
reader announces it and the keyboard starts there), and its links move focus to the
field they name."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.tests.test_browser import _new_page, browser  # noqa: F401  (browser is a fixture)

pytestmark = pytest.mark.browser


def test_focus_lands_on_the_error_summary_and_its_links_reach_the_fields(browser, live_server):  # noqa: F811
    page = _new_page(browser)
    page.goto(live_server.url + "/signup/")
    page.get_by_label("Work email").fill("ada@")
    page.get_by_role("button", name="Create account").click()

    summary = page.locator("[data-error-summary]")
    expect(summary).to_be_focused()
    assert page.title().startswith("Error: ")

    summary.get_by_role("link", name="Work email").click()
    expect(page.locator("#id_email")).to_be_focused()
