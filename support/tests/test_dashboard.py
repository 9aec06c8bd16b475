"""The dashboard ("Today") counts accounts by lifecycle state with the same queries
whatever their number, and its numbers are the ones the lifecycle state's one
definition gives (accounts.state_counts; its scale is bench/dashboard_scale.py)."""
from __future__ import annotations

import re
from collections import Counter

from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from accounts.selectors import State, with_lifecycle_state

TILE = re.compile(r'href="/admin/accounts/user/\?state=(\w+)&amp;is_staff__exact=0"><span class="n">(\d+)</span>')


def dashboard(console) -> tuple[int, dict[str, int]]:
    """(queries, the number on each state's tile)."""
    with CaptureQueriesContext(connection) as captured:
        response = console.get("/admin/")
    assert response.status_code == 200
    return len(captured), {state: int(n) for state, n in TILE.findall(response.content.decode())}


def by_definition() -> dict[str, int]:
    states = Counter(with_lifecycle_state(User.objects.filter(is_staff=False)).values_list(
        "lifecycle_state", flat=True))
    return {state: states[state] for state in State.ALL}


def test_the_dashboard_costs_the_same_queries_for_5_and_50_accounts_in_mixed_states(mixed_accounts, console):
    mixed_accounts(5)
    few, tiles = dashboard(console)
    assert tiles == by_definition() and sum(tiles.values()) == 5
    mixed_accounts(45)
    many, tiles = dashboard(console)
    assert many == few
    assert tiles == by_definition() and sum(tiles.values()) == 50
    assert all(tiles[state] for state in State.ALL)  # every state is on it


def test_the_signups_chart_counts_the_partial_ones_as_the_states_say(mixed_accounts, console):
    mixed_accounts(13)
    partial = sum(by_definition()[state] for state in (State.SETTING_UP, State.DELAYED, State.NEEDS_SUPPORT,
                                                        State.EMAIL_UNDELIVERABLE))
    page = console.get("/admin/").content.decode()
    assert f"Signups per hour over the last 24 hours: 13 in all, {partial} still partial." in page


def test_a_staff_member_who_cannot_open_the_queue_gets_no_link_into_it(stranded, bare_staff_console, console):
    """Staff without the Support group's permissions see the day's figures, but no link
    leads them to a ticket or the queue they would be refused (a 404 or a 403 page)."""
    ticket = stranded().tickets.get()

    page = bare_staff_console.get("/admin/").content.decode()

    assert ticket.reference in page  # the headline still names the oldest wait
    assert f"/admin/support/ticket/{ticket.pk}/change/" not in page
    assert "/admin/support/ticket/" not in page
    # A member of the Support group keeps every link.
    support_page = console.get("/admin/").content.decode()
    assert f"/admin/support/ticket/{ticket.pk}/change/" in support_page
    assert "/admin/support/ticket/?queue=open&amp;priority__exact=" in support_page


def test_each_state_tile_opens_a_list_of_as_many_accounts_as_it_counts(register, console, support_user):
    """The tiles count customers; staff accounts (the support person's own among them)
    have no setup and are not counted, so the list a tile opens leaves them out too:
    "1 unverified" never opens a list of three."""
    register()  # one customer, unverified once set up
    User.objects.create_user("colleague@support.example", "a colleague password 1", name="Col League",
                             company="Acme Workspaces", is_staff=True)
    page = console.get("/admin/").content.decode()
    tiles = re.findall(r'<li class="tile state-(\w+)"><a href="([^"]+)"><span class="n">(\d+)</span>', page)
    assert tiles

    for state, href, n in tiles:
        listed = console.get(href.replace("&amp;", "&")).content.decode()
        rows = len(re.findall(r'<tr[^>]*>\s*<td class="action-checkbox">', listed))
        assert rows == int(n), (state, rows, n)
