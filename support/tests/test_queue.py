"""The queue (ticket list), the dashboard and the accounts list: in priority order,
searchable, filterable, and a fixed number of queries whatever the number of rows."""
from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from support.models import Priority, Ticket
from support.services import contact_message_receive


def text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def tickets(stranded, sandbox, register, committed):
    """Make n tickets: half stranded accounts, a quarter of them having written too,
    the rest messages from unknown addresses."""
    def make(n: int) -> None:
        start = Ticket.objects.count()
        for i in range(n):
            if i % 2:
                with committed():
                    contact_message_receive(email=f"stranger{start + i}@elsewhere.example", message=f"Hello {i}")
            else:
                account = stranded(email=f"person{start + i}@example.com", phone=f"+1 415 555 {1000 + i:04d}")
                if i % 4 == 0:
                    with committed():
                        contact_message_receive(email=account.email, message=f"Still waiting {i}")
        assert Ticket.objects.count() == start + n
    return make


def queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def test_the_queue_costs_the_same_queries_for_5_and_50_tickets(tickets, console, django_assert_max_num_queries):
    tickets(5)
    few = queries(console, "/admin/support/ticket/")
    tickets(45)
    many = queries(console, "/admin/support/ticket/")
    assert few == many
    # One loads the session's second-factor device, one reads the reconcile heartbeat
    # (no recent pass means no worker: pending steps read as delayed).
    with django_assert_max_num_queries(10):
        response = console.get("/admin/support/ticket/")
    assert text(response).count('class="field-ticket"') == 50


def test_the_dashboard_and_the_accounts_list_cost_the_same_queries_for_5_and_50(tickets, console):
    tickets(5)
    dashboard, accounts = queries(console, "/admin/"), queries(console, "/admin/accounts/user/")
    tickets(45)
    assert (queries(console, "/admin/"), queries(console, "/admin/accounts/user/")) == (dashboard, accounts)


def test_the_queue_shows_each_row_in_plain_words(tickets, console):
    tickets(2)
    page = text(console.get("/admin/support/ticket/"))
    for words in ("Ada Lovelace", "person0@example.com", "Analytical Engines", "needs support",
                  "Workspace setup stopped after 1 try: The provider refused the request (HTTP 422).",
                  "workspace 1", "Still waiting 0", "unknown address", "stranger1@elsewhere.example",
                  "No account uses this address", "Hello 1"):
        assert words in page, words


def test_the_queue_puts_people_who_wrote_first_then_the_longest_waiting(tickets, console):
    tickets(4)  # person0 (wrote), stranger1 (wrote), person2 (exhausted only), stranger3 (wrote)
    Ticket.objects.filter(email="stranger3@elsewhere.example").update(
        waiting_since=timezone.now() - timedelta(hours=5))
    page = console.get("/admin/support/ticket/").content.decode()
    order = [page.index(address) for address in ("stranger3@", "person0@", "stranger1@", "person2@")]
    assert order == sorted(order)
    assert Ticket.objects.get(account__email="person2@example.com").priority == Priority.AUTOMATION_EXHAUSTED


@pytest.mark.parametrize("term, found, not_found", [
    ("person2@example.com", "person2@", "person0@"),
    ("analytical", "person0@", "stranger1@"),
    ("(415) 555-1002", "person2@", "person0@"),
    ("stranger3", "stranger3@", "person0@"),
])
def test_search_by_email_company_phone_and_reference(tickets, console, term, found, not_found):
    tickets(4)
    page = console.get("/admin/support/ticket/", {"q": term}).content.decode()
    assert found in page and not_found not in page


def test_search_by_reference(tickets, console):
    tickets(3)
    ticket = Ticket.objects.get(email="stranger1@elsewhere.example")
    page = console.get("/admin/support/ticket/", {"q": ticket.reference}).content.decode()
    assert "stranger1@" in page and "person0@" not in page


def test_filters_by_lifecycle_state_and_by_status(tickets, console):
    tickets(4)
    stuck = console.get("/admin/support/ticket/", {"state": "needs_support"}).content.decode()
    assert "person0@" in stuck and "stranger1@" not in stuck
    unmatched = console.get("/admin/support/ticket/", {"state": "none"}).content.decode()
    assert "stranger1@" in unmatched and "person0@" not in unmatched
    from support.services import ticket_resolve

    ticket_resolve(ticket=Ticket.objects.get(email="stranger1@elsewhere.example"), actor="test")
    assert "stranger1@" not in console.get("/admin/support/ticket/").content.decode()
    assert "stranger1@" in console.get("/admin/support/ticket/", {"queue": "resolved"}).content.decode()


def test_the_dashboard_says_what_needs_a_human(tickets, console):
    tickets(4)
    page = text(console.get("/admin/"))
    assert "4 tickets need you" in page
    assert "Oldest wait:" in page
    chart = page[page.index('<svg class="chart"'):]
    chart = chart[:chart.index("</svg>")]
    assert "<script" not in chart and "http" not in chart.replace("http://www.w3.org/2000/svg", "")
    assert "Signups per hour over the last 24 hours: 2 in all, 2 still partial." in page
    assert 'href="/admin/accounts/user/?state=needs_support&is_staff__exact=0"><span class="n">2</span>' in page


def test_the_dashboard_is_calm_when_nothing_needs_anyone(db, console):
    assert "Nothing needs you right now" in text(console.get("/admin/"))


def test_the_accounts_list_shows_and_filters_lifecycle_states(tickets, register, console):
    tickets(2)
    register(email="fine@example.com")  # the sandbox still refuses: needs support too
    page = text(console.get("/admin/accounts/user/", {"state": "needs_support"}))
    assert "person0@example.com" in page and "needs support" in page and "SUP-" in page
    assert "person0@example.com" not in console.get("/admin/accounts/user/", {"state": "active"}).content.decode()


def test_retry_setup_asks_first_then_retries_the_selected_accounts(tickets, console, sandbox, drive, committed):
    from accounts.models import User
    from support.models import ConsoleAction, ConsoleActionKind

    tickets(4)
    account = User.objects.get(email="person2@example.com")  # automation gave up; the person never wrote
    form = {"action": "retry_setup", "_selected_action": [account.pk]}
    asked = console.post("/admin/accounts/user/", form)
    assert asked.status_code == 200 and "Retry setup?" in text(asked)
    assert not ConsoleAction.objects.exists()

    sandbox("provisioning", "ok")
    with committed():
        done = console.post("/admin/accounts/user/", {**form, "post": "yes"})
    drive()
    assert done.status_code == 302
    account.refresh_from_db()
    assert hasattr(account, "workspace")
    assert list(ConsoleAction.objects.values_list("account", "kind")) == [(account.pk, ConsoleActionKind.RETRY_SETUP)]
    assert Ticket.objects.get(account=account).status == "resolved"


def test_retry_setup_needs_the_permission(tickets, bare_staff_console, db):
    from django.contrib.auth.models import Permission

    from accounts.models import User

    tickets(2)
    staff = User.objects.get(email="intern@support.example")
    staff.user_permissions.add(Permission.objects.get(codename="view_user"))
    account = User.objects.get(email="person0@example.com")
    page = bare_staff_console.get("/admin/accounts/user/").content.decode()
    assert "retry_setup" not in page
    response = bare_staff_console.post("/admin/accounts/user/", {"action": "retry_setup", "post": "yes",
                                                                 "_selected_action": [account.pk]})
    assert response.status_code in (200, 302)
    account.refresh_from_db()
    assert not hasattr(account, "workspace")
    assert account.provisioning_request.status == "failed"


def read(response) -> str:
    """The page's words as one line: tags out, every run of spaces one space."""
    return " ".join(re.sub(r"<[^>]+>", " ", text(response)).split())


def test_a_ticket_under_a_minute_old_is_waiting_less_than_a_minute_not_0_minutes(db, console, committed):
    with committed():
        contact_message_receive(email="stranger@elsewhere.example", message="Hello")
    ticket = Ticket.objects.get()

    dashboard = read(console.get("/admin/"))
    queue = read(console.get("/admin/support/ticket/"))
    page = read(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))

    assert f"{ticket.reference} , waiting less than a minute." in dashboard
    assert "waiting: less than a minute" in queue
    assert "waiting less than a minute" in page
    for shown in (dashboard, queue, page):
        assert "0 minutes" not in shown

    Ticket.objects.filter(pk=ticket.pk).update(waiting_since=timezone.now() - timedelta(minutes=3, seconds=5))
    assert "waiting: 3 minutes" in read(console.get("/admin/support/ticket/"))
