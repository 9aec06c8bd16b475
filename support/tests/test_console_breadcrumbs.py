"""Breadcrumbs, one scheme on every console page: ``Today › …``, never Django's
"Home ›". Every page a member of the Support group can reach is fetched over HTTP:
those linked from Today, crawled (so a page linked later is covered without
editing this test), and those reached through a form or typed in (a button's
outcome, password change, history, an app's page, every sign-in step)."""
from __future__ import annotations

import html
import re
import uuid

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import resolve
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.services import account_close
from provisioning import breaker
from support.models import Incident, Ticket
from support.tests.conftest import signed_in_to_console, support_group
from support.tests.test_console_security import app_code, console_limits, password_only

NAV = re.compile(r'<nav aria-label="Breadcrumbs">(.*?)</nav>', re.S)
PASSWORD = "a support password 1"

# Linked from Today, directly or through the pages it links to.
LINKED = {"admin:index", "admin:support_ticket_changelist", "admin:support_ticket_change",
          "admin:support_ticket_button", "admin:accounts_user_changelist", "admin:accounts_user_change",
          "admin:accounts_user_button", "admin:support_incident_changelist", "admin:support_incident_change",
          "admin:support_incident_rerun_all", "admin:password_change"}


def crumbs(response) -> list[str]:
    """The page's breadcrumbs as words, one entry per crumb; exactly one trail."""
    trails = NAV.findall(response.content.decode())
    assert len(trails) == 1, f"{len(trails)} breadcrumb trails"
    return [part.strip() for part in html.unescape(re.sub(r"<[^>]+>", "", trails[0])).split("›")]


def assert_console_crumbs(name: str, response, status: int = 200) -> list[str]:
    assert response.status_code == status, f"{name}: HTTP {response.status_code}"
    trail = crumbs(response)
    assert trail[0] == "Today", f"{name}: {' › '.join(trail)}"
    assert "Home" not in " ".join(trail), f"{name}: {' › '.join(trail)}"
    return trail


def crawl(client: Client, start: str = "/admin/") -> dict[str, object]:
    """Every console page reachable by following links from ``start`` (each path
    once, whatever its query string; "view on site" leaves the console)."""
    pages, seen, queue = {}, set(), [start]
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        response = client.get(path)
        if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
            continue
        pages[path] = response
        for link in re.findall(r'href="(/admin/[^"#]*)"', response.content.decode()):
            link = html.unescape(link).split("?")[0]
            if link not in seen and not link.startswith("/admin/r/"):
                queue.append(link)
    return pages


@pytest.fixture
def console_world(stranded, register, committed, client):
    """A ticket with an account, one from an unknown address, a closed account, and
    an incident with a refusal of ours (so its "Re-run all" button shows)."""
    ada = stranded()
    closed = register(email="closed@example.com")
    account_close(account=closed, actor="support (test)", reason="spam signup")
    with committed():
        client.post("/help/", {"email": "nobody@elsewhere.example", "message": "Where is my account?"})
        breaker.trip("provisioning", cause="http_422", why="the same refusal for many accounts")
    return {"ada": ada, "ticket": Ticket.objects.get(account=ada), "incident": Incident.objects.get()}


def test_every_page_linked_from_today_starts_its_breadcrumbs_with_today(console_world, console):
    pages = crawl(console)

    reached = {resolve(path.split("?")[0]).view_name for path in pages}
    assert LINKED <= reached, f"not reached: {LINKED - reached}"
    for path, response in pages.items():
        assert_console_crumbs(path, response)


def test_the_sections_and_pages_read_today_queue_and_so_on(console_world, console):
    ticket, incident, ada = console_world["ticket"], console_world["incident"], console_world["ada"]
    assert crumbs(console.get("/admin/")) == ["Today"]
    assert crumbs(console.get("/admin/support/ticket/")) == ["Today", "Queue"]
    assert crumbs(console.get(f"/admin/support/ticket/{ticket.pk}/change/")) == ["Today", "Queue", ticket.reference]
    assert crumbs(console.get(f"/admin/support/ticket/{ticket.pk}/do/reply/")) == [
        "Today", "Queue", ticket.reference, "Reply"]
    assert crumbs(console.get("/admin/accounts/user/")) == ["Today", "Accounts"]
    assert crumbs(console.get(f"/admin/accounts/user/{ada.pk}/change/")) == ["Today", "Accounts", ada.email]
    assert crumbs(console.get("/admin/support/incident/"))[:2] == ["Today", "Incidents"]
    assert crumbs(console.get(f"/admin/support/incident/{incident.pk}/change/"))[:2] == ["Today", "Incidents"]
    # Links lead back up the trail.
    page = console.get(f"/admin/support/ticket/{ticket.pk}/do/reply/").content.decode()
    trail = NAV.search(page).group(1)
    for link in ("/admin/", "/admin/support/ticket/", f"/admin/support/ticket/{ticket.pk}/change/"):
        assert f'href="{link}"' in trail


def test_pages_reached_through_a_form_or_typed_in_start_with_today_too(console_world, console, support_user):
    ticket, ada, incident = console_world["ticket"], console_world["ada"], console_world["incident"]
    for path in ("/admin/support/", "/admin/accounts/", "/admin/second-factor/",
                 f"/admin/support/ticket/{ticket.pk}/history/", f"/admin/accounts/user/{ada.pk}/history/",
                 f"/admin/support/incident/{incident.pk}/history/"):
        assert_console_crumbs(path, console.get(path))

    code = console.post(f"/admin/support/ticket/{ticket.pk}/do/signin_code/", {"action_key": uuid.uuid4().hex})
    assert assert_console_crumbs("the code page", code)[-1] == "Code"
    refused = console.post(f"/admin/accounts/user/{ada.pk}/do/correct_email/",
                           {"action_key": uuid.uuid4().hex, "email": "not an address"})
    assert_console_crumbs("a confirmation page with an error", refused, status=400)
    retry = console.post("/admin/accounts/user/", {"action": "retry_setup", "_selected_action": [ada.pk]})
    assert assert_console_crumbs("retry setup", retry)[:2] == ["Today", "Accounts"]

    changed = console.post("/admin/password_change/", {
        "old_password": PASSWORD, "new_password1": "a new support password 2",
        "new_password2": "a new support password 2"}, follow=True)
    assert assert_console_crumbs("password changed", changed)[-1] == "Password change successful"
    assert_console_crumbs("log out?", console.get("/admin/logout/"))
    assert_console_crumbs("logged out", console.post("/admin/logout/", follow=True))


def test_every_sign_in_step_starts_with_today(settings, support_user):
    assert_console_crumbs("sign in", Client().get("/admin/login/"))

    first_time = password_only(support_user)
    enrol = first_time.get("/admin/second-factor/?next=/admin/")
    assert_console_crumbs("set up the app", enrol)
    device = TOTPDevice.objects.get(user=support_user, confirmed=False)
    codes = first_time.post("/admin/second-factor/?next=/admin/", {"otp_token": app_code(device)})
    assert_console_crumbs("backup codes", codes)

    second = password_only(support_user)
    assert_console_crumbs("second factor", second.get("/admin/login/"))
    assert_console_crumbs("wrong code", second.post("/admin/login/", {"otp_token": "not a code"}), status=400)

    console_limits(settings, failures=(1, 900))
    paused = Client()
    paused.post("/admin/login/", {"username": support_user.email, "password": "wrong password"})
    assert_console_crumbs("sign-in paused", paused.post("/admin/login/", {
        "username": support_user.email, "password": "wrong password"}), status=429)


def test_a_superusers_pages_follow_the_same_scheme(console_world, db):
    """Django's own pages for the other models (groups, devices, tasks) use it too."""
    root = User.objects.create_superuser("root@support.example", PASSWORD, name="Ro Ot", company="Acme")
    support_group()
    pages = crawl(signed_in_to_console(root))

    assert f"/admin/auth/group/{Group.objects.get(name='Support').pk}/change/" in pages
    for path, response in pages.items():
        assert_console_crumbs(path, response)
