"""Console actions are typed audit rows (Zulip's RealmAuditLog is the model): the
staff member by key, the action by kind, the account and ticket by key, written by
the actions the buttons call. "What did this staff member do, and to whom" is one
query, and each action shows on the ticket's timeline under the staff member's name."""
from __future__ import annotations

import html
import uuid

import pytest

from accounts.models import User
from support import actions
from support.models import ConsoleAction, ConsoleActionKind, Ticket
from support.selectors import console_actions
from support.tests.conftest import signed_in_to_console, support_group


@pytest.fixture
def colleague(db) -> User:
    user = User.objects.create_user("lee@support.example", "a support password 2", name="Lee Colleague",
                                    company="Acme Workspaces", is_staff=True)
    user.groups.add(support_group())
    return user


def press(user: User, ticket: Ticket, name: str, **data):
    client = signed_in_to_console(user)
    return client.post(f"/admin/support/ticket/{ticket.pk}/do/{name}/", {"action_key": uuid.uuid4().hex, **data})


def test_what_a_staff_member_did_and_to_whom_is_one_query(stranded, support_user, colleague,
                                                         django_assert_num_queries):
    stranded(email="ada@example.com")
    stranded(email="grace@example.com")
    ada, grace = Ticket.objects.select_related("account").order_by("account__email")
    press(support_user, ada, "resend")
    press(colleague, grace, "resolve")
    press(support_user, grace, "mark_verified", confirmed="on")

    with django_assert_num_queries(1):
        done = [(a.get_kind_display(), a.account.email, a.ticket.reference, a.actor.name)
                for a in console_actions(actor=support_user)]

    assert done == [("marked the email verified", "grace@example.com", grace.reference, "Sam Support"),
                    ("resent the verification email", "ada@example.com", ada.reference, "Sam Support")]
    assert console_actions(actor=colleague).get().kind == ConsoleActionKind.RESOLVE


def test_the_action_writes_the_row_not_the_admin_view(stranded, support_user):
    """Any interface that calls the action is audited alike."""
    stranded()
    ticket = Ticket.objects.select_related("account").get()
    actions.resolve(actor=support_user, account=ticket.account, ticket=ticket, action_key=uuid.uuid4().hex)
    row = ConsoleAction.objects.get()
    assert (row.actor, row.kind, row.account, row.ticket) == (support_user, "resolve", ticket.account, ticket)
    assert row.detail == "Ticket resolved."


def test_a_refused_action_leaves_no_row(stranded, support_user, register):
    register(email="taken@example.com")
    stranded(email="ada@example.com")
    ticket = Ticket.objects.get()
    assert press(support_user, ticket, "correct_email", email="taken@example.com").status_code == 400
    assert not ConsoleAction.objects.exists()


def test_the_click_key_is_kept_only_as_a_digest(stranded, support_user):
    stranded()
    ticket = Ticket.objects.get()
    key = uuid.uuid4().hex
    client = signed_in_to_console(support_user)
    client.post(f"/admin/support/ticket/{ticket.pk}/do/resolve/", {"action_key": key})
    row = ConsoleAction.objects.get()
    assert row.click and key not in row.click


def test_the_ticket_timeline_names_the_staff_member(stranded, console):
    stranded()
    ticket = Ticket.objects.get()
    console.post(f"/admin/support/ticket/{ticket.pk}/do/resend/", {"action_key": uuid.uuid4().hex})
    page = html.unescape(console.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode())
    assert "Sam Support" in page and "resent the verification email" in page
