"""The person's journeys in a real browser: Debian's Chromium driven by Playwright,
against the app served by pytest-django's ``live_server`` (a real HTTP server in a
thread of this process, on the test database).

Nothing is faked below the browser: failures are injected through the sandbox
providers, the reconciler is driven by calling it (it is what the worker runs), and
emails are read from ``mail.outbox``, where the healthy sandbox email backend
delivers in tests (the server thread shares this process, so the outbox too).

Screenshots of each screen are taken on every run; they are written to
``docs/screenshots/`` only with ``SAVE_SCREENSHOTS=1`` (so a test run never dirties
the checkout), otherwise to a temporary directory.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from django.core import mail
from django.db.backends.signals import connection_created
from playwright.sync_api import Browser, Page, expect, sync_playwright

from accounts import messages as words
from conftest import PASSWORD
from provisioning.reconciler import reconcile

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
REPO_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# The status page polls every 2 s; leave room for a slow CI machine.
LIVE_UPDATE_TIMEOUT_MS = 15_000

MISTYPED = "ada@exmaple.com"
CORRECTED = "ada@example.com"


@pytest.fixture
def browser(live_server, settings, monkeypatch):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("BROWSER_TESTS_REQUIRED") == "1":  # set by .ci/run
            pytest.fail("Chromium not installed (the CI requires the browser tests): apt-get install -y chromium")
        pytest.skip("Chromium not installed: apt-get install -y chromium")
    # Playwright's sync API keeps an asyncio loop in this thread, and Django refuses
    # ORM calls while a loop is running. The tests call the ORM only between browser
    # steps, never from a coroutine, so the documented escape hatch is safe here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # setup_test_environment() swaps EMAIL_BACKEND for locmem, which would bypass the
    # sandbox; the healthy sandbox still delivers to locmem (mail.outbox).
    settings.EMAIL_BACKEND = "accounts.email_backends.SandboxEmailBackend"
    settings.SITE_URL = live_server.url  # links in emails point at the live server
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    # While Playwright's loop is running, Django keeps this thread's connections in
    # per-context storage, so the ORM calls the test makes can open connections that
    # Django's own teardown never sees; PostgreSQL then refuses to drop the test
    # database ("being accessed by other users"). Close them ourselves.
    opened = []

    def remember(sender, connection, **kwargs):
        if threading.current_thread() is threading.main_thread():
            opened.append(connection)
    connection_created.connect(remember, weak=False)
    yield chromium
    chromium.close()
    playwright.stop()
    connection_created.disconnect(remember)
    for connection in opened:
        if not (connection.vendor == "sqlite" and connection.is_in_memory_db()):
            connection.close()


@pytest.fixture
def shot(tmp_path):
    """shot(page, "name"): a full-page screenshot of the screen as it is now."""
    folder = REPO_SCREENSHOTS if os.environ.get("SAVE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True, animations="disabled")
        return path
    return take


def _new_page(browser: Browser, form_factor: dict = DESKTOP) -> Page:
    page = browser.new_context(**form_factor).new_page()
    page.set_default_timeout(10_000)
    return page


def _fill_signup(page: Page, *, email: str, password: str = PASSWORD) -> None:
    page.get_by_label("Your name").fill("Ada Lovelace")
    page.get_by_label("Work email").fill(email)
    page.get_by_label("Phone").fill("+1 415 555 0100")
    page.get_by_label("Company").fill("Analytical Engines")
    page.get_by_label("Password").fill(password)


def _verification_links(address: str) -> list[str]:
    found = []
    for message in mail.outbox:
        if message.to == [address] and message.subject == str(words.EMAIL_SUBJECTS["verification"]):
            found += re.findall(r"https?://\S+/verify/\S+/", message.body)
    return found


def test_person_signs_up_during_an_outage_and_finds_their_way_in(browser, live_server, sandbox, shot):
    sandbox("provisioning", "error")
    sandbox("email", "error")

    # Signs up (with a typo in the address) while both providers are failing.
    page = _new_page(browser)
    refused = []  # what the Content-Security-Policy blocked, as Chromium reports it
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.goto(live_server.url + "/signup/")
    shot(page, "signup")
    _fill_signup(page, email=MISTYPED)
    page.get_by_role("button", name="Create account").click()

    # The status page answers the doubt first: the account is saved.
    expect(page).to_have_url(live_server.url + "/setup/")
    expect(page.locator("#status")).to_contain_text("Your account is saved.")
    expect(page.locator("#status-title")).to_have_text(str(words.TITLES["setting_up"]))
    expect(page.locator("#workspace-words")).to_have_text(str(words.WORKSPACE_WORDS["pending"]))
    expect(page.locator("#ready-action")).to_be_hidden()
    shot(page, "setup-setting-up")

    # The page updates by itself, without a reload, as the worker keeps failing...
    page.evaluate("window.__marker = 1")
    reconcile()
    reconcile()
    expect(page.locator("#status-title")).to_have_text(
        str(words.TITLES["delayed"]), timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(page.locator("#status-message")).to_contain_text("on our side")
    expect(page.locator("#workspace-meta")).to_contain_text("3")
    shot(page, "setup-delayed")

    # ...login works for the partial account, on a phone too...
    phone = _new_page(browser, PHONE)
    phone.goto(live_server.url + "/login/")
    phone.get_by_label("Email").fill(MISTYPED)
    phone.get_by_label("Password").fill(PASSWORD)
    shot(phone, "login-phone")
    phone.get_by_role("button", name="Log in").click()
    expect(phone).to_have_url(live_server.url + "/setup/")
    expect(phone.locator("#status-title")).to_have_text(str(words.TITLES["delayed"]))
    shot(phone, "setup-delayed-phone")

    # ...and the sandbox heals: the next pass creates the workspace and the page turns ready.
    sandbox("provisioning", "ok")
    sandbox("email", "ok")
    reconcile()
    expect(page.locator("#status-title")).to_have_text(
        str(words.TITLES["unverified"]), timeout=LIVE_UPDATE_TIMEOUT_MS)
    expect(page.locator("#workspace-words")).to_have_text(str(words.WORKSPACE_WORDS["ready"]))
    expect(page.locator("#email-words")).to_have_text(str(words.EMAIL_WORDS["sent"]))
    expect(page.get_by_role("link", name="Open my workspace")).to_be_visible()
    assert page.evaluate("window.__marker") == 1, "the status page reloaded instead of updating in place"
    assert not refused, refused  # the status page's script runs under the strict policy, untouched
    shot(page, "setup-ready")
    assert len(_verification_links(MISTYPED)) == 1

    # Signing up again: another password is told the address is taken (and never let in)...
    again = _new_page(browser)
    again.goto(live_server.url + "/signup/")
    _fill_signup(again, email=MISTYPED, password="another horse battery staple")
    again.get_by_role("button", name="Create account").click()
    expect(again.get_by_role("heading", level=1)).to_have_text(str(words.SIGNUP_TAKEN.title))
    shot(again, "signup-taken")
    # ...the right password is welcomed back, logged in, to where things stand.
    again.goto(live_server.url + "/signup/")
    _fill_signup(again, email=MISTYPED)
    again.get_by_role("button", name="Create account").click()
    expect(again).to_have_url(live_server.url + "/setup/")
    expect(again.locator(".notices")).to_contain_text(str(words.WELCOME_BACK))
    expect(again.locator("#status-title")).to_have_text(str(words.TITLES["unverified"]))
    shot(again, "signup-welcome-back")

    # Corrects the mistyped address from the status page; a fresh link goes to the new one.
    again.get_by_label("Correct email address").fill(CORRECTED)
    again.get_by_role("button", name="Correct my email address").click()
    expect(again.locator(".notices")).to_contain_text(str(words.EMAIL_CHANGED_SENT.text).format(address=CORRECTED))
    expect(again.locator(".address")).to_have_text(CORRECTED)
    shot(again, "setup-email-corrected")
    [link] = _verification_links(CORRECTED)

    # The link sent to the mistyped address no longer works...
    [old_link] = _verification_links(MISTYPED)
    again.goto(old_link)
    expect(again.get_by_role("heading", level=1)).to_have_text(str(words.VERIFY_LINK_BAD.title))
    shot(again, "verify-link-expired")

    # ...the new one shows a confirm button (opening a link changes nothing: mail
    # scanners open them all), and pressing it brings the person home, all set.
    again.goto(link)
    expect(again.get_by_role("heading", level=1)).to_have_text(str(words.VERIFY_CONFIRM.title))
    again.get_by_role("button", name="Confirm my email address").click()
    expect(again).to_have_url(live_server.url + "/")
    expect(again.locator(".notices")).to_contain_text(str(words.VERIFIED))
    expect(again.get_by_role("heading", level=1)).to_have_text("Analytical Engines")
    expect(again.locator("main")).to_contain_text("Your workspace is ready.")
    expect(again.get_by_text("Please confirm your email address.")).to_have_count(0)
    assert "/verify/" not in again.url  # the token does not stay in the address bar
    shot(again, "home")


def _focused(page: Page) -> dict:
    return page.evaluate("""() => {
        const el = document.activeElement;
        return {tag: el.tagName.toLowerCase(), name: el.getAttribute("name"), type: el.type || "",
                text: (el.textContent || "").trim()};
    }""")


def _tab_to(page: Page, field: str, *, max_tabs: int = 15) -> None:
    for _ in range(max_tabs):
        page.keyboard.press("Tab")
        if _focused(page)["name"] == field:
            return
    raise AssertionError(f"Tab never reached the {field!r} field")


SIGNUP_FIELDS = ["name", "email", "phone", "company", "password"]


def test_signup_form_works_with_the_keyboard_alone(browser, live_server, shot):
    page = _new_page(browser)
    page.goto(live_server.url + "/signup/")

    # Every input has a visible label tied to it, which is also its accessible name.
    inputs = page.locator("main form input:not([type=hidden])")
    assert inputs.count() == len(SIGNUP_FIELDS)
    for i in range(inputs.count()):
        control = inputs.nth(i)
        control_id = control.get_attribute("id")
        label = page.locator(f'label[for="{control_id}"]')
        expect(label).to_have_count(1)
        expect(label).to_be_visible()
        expect(control).to_have_accessible_name(re.compile(re.escape(label.inner_text().rstrip(":"))))

    # First try, with mistakes: Tab from the top of the page into the form, then Tab
    # through the fields in order, typing, and Enter to submit. No mouse.
    typed = {"name": "Ada Lovelace", "email": "ada@", "phone": "+1 415 555 0100",
             "company": "Analytical Engines", "password": "short"}
    _tab_to(page, "name")
    for field in SIGNUP_FIELDS:
        assert _focused(page)["name"] == field, f"Tab order skipped to {_focused(page)} before {field!r}"
        page.keyboard.type(typed[field])
        if field != SIGNUP_FIELDS[-1]:
            page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = _focused(page)
    assert (focused["tag"], focused["type"], focused["text"]) == ("button", "submit", "Create account")
    page.keyboard.press("Enter")

    # Errors are tied to their fields: aria-invalid, and aria-describedby naming the
    # error list that holds the message.
    expect(page.get_by_role("alert")).to_contain_text("Nothing has been saved yet")
    for field in ("email", "password"):
        control = page.locator(f'main form [name="{field}"]')
        expect(control).to_have_attribute("aria-invalid", "true")
        described_by = (control.get_attribute("aria-describedby") or "").split()
        errors = [page.locator(f"#{ref}") for ref in described_by
                  if page.locator(f"#{ref}.errorlist").count()]
        assert len(errors) == 1, f"{field}: aria-describedby {described_by} names no error list"
        expect(errors[0]).to_be_visible()
        expect(control).to_have_accessible_description(re.compile(re.escape(errors[0].inner_text().strip())))
    for field in ("name", "phone", "company"):
        expect(page.locator(f'main form [name="{field}"]')).not_to_have_attribute("aria-invalid", "true")
    shot(page, "signup-errors")

    # Fix them with the keyboard alone: focus the field, select what's there, retype.
    for field, value in (("email", "ada@example.com"), ("password", PASSWORD)):
        _tab_to(page, field, max_tabs=25)
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type(value)
    page.keyboard.press("Enter")  # Enter in a field submits the form

    expect(page).to_have_url(live_server.url + "/setup/")
    expect(page.locator("#status")).to_contain_text("Your account is saved.")


def test_signup_and_errors_read_well_on_a_phone(browser, live_server, shot):
    page = _new_page(browser, PHONE)
    page.goto(live_server.url + "/signup/")
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "signup-phone")
    page.get_by_label("Work email").fill("ada@")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "signup-errors-phone")



# --- Every person-facing page: axe-core, desktop and phone -----------------------------------

def _axe_clean(page: Page, name: str) -> None:
    """axe-core (the copy shipped in the axe-playwright-python package: nothing is
    fetched at run time) finds no violation on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.violations_count == 0, f"{name}: {results.generate_report()}"


def test_every_person_facing_page_passes_axe_on_desktop_and_phone(browser, live_server, sandbox, shot):
    desktop, phone = _new_page(browser), _new_page(browser, PHONE)

    def check(name: str, path: str | None = None) -> None:
        for page, suffix in ((desktop, ""), (phone, "-phone")):
            if path is not None:
                page.goto(live_server.url + path)
            _axe_clean(page, name + suffix)
            shot(page, name + suffix)

    for name, path in (("signup", "/signup/"), ("login", "/login/"), ("login-code", "/login/code/"),
                       ("help", "/help/"), ("password-reset", "/password-reset/"),
                       ("verify-link-expired", "/verify/")):
        check(name, path)

    # Signs up while both providers fail: email times out, workspaces error.
    sandbox("provisioning", "error")
    sandbox("email", "timeout")
    desktop.goto(live_server.url + "/signup/")
    _fill_signup(desktop, email=CORRECTED)
    desktop.get_by_role("button", name="Create account").click()
    expect(desktop).to_have_url(live_server.url + "/setup/")
    phone.goto(live_server.url + "/login/")
    phone.get_by_label("Email").fill(CORRECTED)
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Log in").click()
    expect(phone).to_have_url(live_server.url + "/setup/")
    # The first tries ran as the signup committed, and failed: no "under a minute", and
    # the email line owns the delay.
    check("setup-setting-up", "/setup/")
    reconcile()
    desktop.goto(live_server.url + "/setup/")
    expect(desktop.locator("#status-message")).not_to_contain_text("under a minute")
    expect(desktop.locator("#email-words")).to_contain_text("trouble sending")
    check("setup-retrying", "/setup/")

    reconcile()
    reconcile()
    check("setup-delayed", "/setup/")

    sandbox("provisioning", "ok")
    reconcile()  # the workspace is ready; the email still times out
    desktop.goto(live_server.url + "/setup/")
    expect(desktop.locator("#status-message")).not_to_contain_text("We've sent")
    check("setup-email-trouble", "/setup/")
    check("home-email-trouble", "/")
    expect(desktop.locator("#email-banner")).to_contain_text("trouble sending")

    sandbox("email", "ok")
    reconcile()
    check("setup-ready", "/setup/")
    check("home-unverified", "/")

    desktop.get_by_role("link", name="Help").first.click()
    desktop.get_by_label("How can we help?").fill("Just checking in.")
    desktop.get_by_role("button", name="Send to our team").click()
    _axe_clean(desktop, "help-sent")
    shot(desktop, "help-sent")

    [link] = _verification_links(CORRECTED)
    desktop.goto(link)
    _axe_clean(desktop, "verify-confirm")
    desktop.get_by_role("button", name="Confirm my email address").click()
    expect(desktop).to_have_url(live_server.url + "/")
    check("home")
    desktop.goto(link)  # the used link, opened again while signed in and confirmed
    expect(desktop.get_by_role("heading", level=1)).to_have_text(str(words.VERIFY_ALREADY_DONE.title))
    _axe_clean(desktop, "verify-already-confirmed")
    shot(desktop, "verify-already-confirmed")

    anonymous = _new_page(browser)
    anonymous.goto(live_server.url + "/password-reset/")
    anonymous.get_by_label("Email").fill(CORRECTED)
    anonymous.get_by_role("button").last.click()
    expect(anonymous).to_have_url(live_server.url + "/password-reset/sent/")
    _axe_clean(anonymous, "password-reset-sent")
    shot(anonymous, "password-reset-sent")
