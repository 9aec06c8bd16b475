"""A way back that is not email: a stuck person asks us to call (from /setup/ or from
/help/, logged in or out), the request lands on their one ticket at the top of the
queue with the number one tap away, and support records each call on the timeline."""
from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from accounts.models import User
from support.models import (
    Call,
    CallbackRequest,
    CallbackStatus,
    CallOutcome,
    EventKind,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from support.services import contact_message_receive
from support.tests.conftest import signed_in_to_console

ON_FILE = "+14155550100"  # conftest's signup_data phone, as stored


def text(response) -> str:
    return html.unescape(response.content.decode())


def logged_in(account: User) -> Client:
    client = Client()
    client.force_login(account)
    return client


@pytest.fixture
def stuck(stranded) -> tuple[User, Client]:
    """A person whose setup needs support, on their status page."""
    account = stranded()
    return account, logged_in(account)


# --- The person asks ----------------------------------------------------------------------

def test_a_stuck_person_is_offered_a_call_on_their_status_page_and_gets_one_on_the_number_on_file(stuck):
    account, person = stuck
    setup = text(person.get("/setup/"))
    assert "Talk to a person" in setup and 'action="/help/call/"' in setup
    assert "We'll call the number you gave when you signed up, +1 415-555-0100" in setup

    answer = person.post("/help/call/", {"phone": "", "note": "Mornings are best"})

    assert answer.status_code == 200
    page = text(answer)
    ticket = Ticket.objects.get(account=account)
    assert ticket.reference in page
    assert "You asked us to call you at +1 415-555-0100: a person will call within 4 hours." in page
    [callback] = CallbackRequest.objects.all()
    assert (callback.ticket, str(callback.phone), callback.signed_in, callback.note) == (
        ticket, ON_FILE, True, "Mornings are best")
    assert callback.promised_by - callback.requested_at == timedelta(hours=4)
    assert ticket.events.filter(kind=EventKind.CALLBACK, text__contains=ON_FILE).exists()
    # The status page now says what was promised, from the stored request.
    assert "a person will call within 4 hours" in text(person.get("/setup/"))


def test_a_typed_number_is_validated_like_signups_and_used(stuck):
    account, person = stuck
    refused = person.post("/help/call/", {"phone": "call me maybe"})
    assert refused.status_code == 400
    assert "We couldn't read that phone number" in text(refused)
    assert not CallbackRequest.objects.exists()

    assert person.post("/help/call/", {"phone": "+44 20 7946 0958"}).status_code == 200
    assert str(CallbackRequest.objects.get().phone) == "+442079460958"


def test_asking_again_updates_the_number_and_keeps_the_first_promise(stuck):
    account, person = stuck
    person.post("/help/call/", {"phone": ""})
    first = CallbackRequest.objects.get()
    person.post("/help/call/", {"phone": "+44 20 7946 0958"})

    again = CallbackRequest.objects.get()
    assert again.pk == first.pk and str(again.phone) == "+442079460958"
    assert again.promised_by == first.promised_by
    assert Ticket.objects.filter(account=account).count() == 1


def test_a_broken_promise_is_owned_not_repeated(stuck):
    account, person = stuck
    person.post("/help/call/", {"phone": ""})
    CallbackRequest.objects.update(requested_at=timezone.now() - timedelta(hours=5),
                                   promised_by=timezone.now() - timedelta(hours=1))

    page = text(person.get("/setup/"))

    assert "we said we would within 4 hours. We haven't yet, and that's on us" in page
    assert "a person will call within" not in page


def test_no_call_offer_while_nothing_is_wrong(register):
    account = register()
    person = logged_in(account)
    page = text(person.get("/setup/"))
    # Present for the page's script to reveal should the person get stuck, but hidden.
    assert '<section class="card" id="callback" aria-labelledby="callback-title" hidden>' in page
    assert person.get("/setup/status.json").json()["said"]["offer"]["call"] is False


def test_an_undeliverable_address_is_offered_a_call(register, sandbox, drive):
    sandbox("email", "reject")  # the recipient's server refuses the address
    account = register()
    drive()
    page = text(logged_in(account).get("/setup/"))
    assert 'data-state="email_undeliverable"' in page and 'action="/help/call/"' in page
    assert '<section class="card" id="callback" aria-labelledby="callback-title">' in page  # shown
    assert logged_in(account).get("/setup/status.json").json()["said"]["offer"]["call"] is True


def test_help_offers_a_call_logged_out_and_answers_alike_for_any_address(db, register):
    account = register()
    page = text(Client().get("/help/"))
    assert 'action="/help/call/"' in page and 'name="email"' in page.split('id="callback"')[1]

    known = Client().post("/help/call/", {"email": account.email, "phone": "+1 212 555 0142"})
    unknown = Client().post("/help/call/", {"email": "stranger@elsewhere.example", "phone": "+1 212 555 0142"})

    assert known.status_code == unknown.status_code == 200
    refs = [t.reference for t in (Ticket.objects.get(account=account), Ticket.objects.get(account__isnull=True))]
    assert text(known).replace(refs[0], "REF") == text(unknown).replace(refs[1], "REF")
    on_account = CallbackRequest.objects.get(ticket__account=account)
    assert not on_account.signed_in and str(on_account.phone) == "+12125550142"
    assert CallbackRequest.objects.get(ticket__account__isnull=True).email == "stranger@elsewhere.example"


def test_logged_out_the_phone_is_required(db):
    refused = Client().post("/help/call/", {"email": "someone@example.com", "phone": ""})
    assert refused.status_code == 400
    assert "Please enter a number we can call" in text(refused)
    assert not Ticket.objects.exists()


def test_support_phone_is_published_where_the_page_says_call_us(stuck, settings):
    account, person = stuck
    settings.SUPPORT_PHONE = "+1 800 555 0199"
    assert 'href="tel:+18005550199"' in text(person.get("/setup/"))
    assert 'href="tel:+18005550199"' in text(person.post("/help/call/", {"phone": ""}))
    settings.SUPPORT_PHONE = ""
    assert "tel:" not in text(person.get("/setup/"))


def test_the_code_sign_in_page_says_how_to_reach_us_for_a_fresh_code(db, settings):
    settings.SUPPORT_PHONE = ""
    page = text(Client().get("/login/code/"))
    assert 'href="/help/call/">Ask us to call you</a>' in page and "tel:" not in page
    settings.SUPPORT_PHONE = "+1 800 555 0199"
    assert 'Call us on <a href="tel:+18005550199">+1 800 555 0199</a>' in text(Client().get("/login/code/"))


def test_asking_for_calls_is_rate_limited_and_keeps_what_was_typed(db, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "callback": {"per_ip": (100, 3600), "per_email": (1, 3600)}}
    data = {"email": "someone@example.com", "phone": "+1 212 555 0142", "note": "after 5pm"}
    assert Client().post("/help/call/", data).status_code == 200

    limited = Client().post("/help/call/", data)

    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    page = text(limited)
    assert "asking for a call" in page and "Your request for a call was not sent this time" in page
    assert 'value="+1 212 555 0142"' in page and "after 5pm</textarea>" in page
    assert CallbackRequest.objects.count() == 1


def test_a_waiting_call_keeps_the_ticket_open_when_the_account_heals(stuck, sandbox, console, drive, committed):
    account, person = stuck
    person.post("/help/call/", {"phone": ""})
    ticket = Ticket.objects.get(account=account)
    sandbox("provisioning", "ok")
    with committed():
        console.post(f"/admin/support/ticket/{ticket.pk}/do/rerun/", {"action_key": uuid.uuid4().hex})
    drive()

    ticket.refresh_from_db()
    assert account.workspace is not None
    assert ticket.status == TicketStatus.OPEN  # they asked for a call: a person decides
    # The call is kept, and the ticket says why it stayed open (not "they wrote to us").
    assert CallbackRequest.objects.get().status == CallbackStatus.REQUESTED
    said = ("The workspace is ready, but they asked us to call +1 415-555-0100 and that call-back still waits, so "
            "the ticket stays open: call them and record the call, then resolve.")
    assert list(ticket.events.filter(kind=EventKind.NOTE).values_list("text", flat=True))[-1:] == [said]
    page = text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    assert said in page and "They asked us to call" in page and "they wrote to us" not in page


def test_the_sweep_keeps_a_waiting_call_when_the_account_heals_and_says_so_once(stuck, sandbox):
    """The ready announcement was lost (a worker died after creating the workspace):
    the sweep's backstop keeps the call too, and says so on the ticket once, however
    often it runs."""
    from accounts.services import account_resume
    from provisioning.durable import step_run
    from provisioning.models import ProvisioningRequest
    from support.services import ticket_sweep

    account, person = stuck
    person.post("/help/call/", {"phone": ""})
    sandbox("provisioning", "ok")
    account_resume(account=account)
    assert step_run("workspace", ProvisioningRequest.objects.get(account=account).pk) == "succeeded"

    assert ticket_sweep() == {"opened": 0, "resolved": 0}
    assert ticket_sweep() == {"opened": 0, "resolved": 0}

    ticket = Ticket.objects.get(account=account)
    assert ticket.status == TicketStatus.OPEN
    assert CallbackRequest.objects.get().status == CallbackStatus.REQUESTED
    assert ticket.events.filter(kind=EventKind.NOTE, text__startswith="The workspace is ready, but they asked us "
                                "to call +1 415-555-0100").count() == 1


# --- The queue ----------------------------------------------------------------------------

def test_a_call_back_request_sorts_to_the_top_of_the_queue_with_the_number_as_a_link(
        stranded, register, console, committed):
    older = stranded(email="older@example.com")  # automation gave up first: waiting longest
    with committed():
        contact_message_receive(email="writer@elsewhere.example", message="Hello?")  # the person wrote
    caller = register(email="caller@example.com", phone="+1 646 555 0123")
    Client().post("/help/call/", {"email": caller.email, "phone": "+1 646 555 0123"})

    page = text(console.get("/admin/support/ticket/"))

    rows = re.findall(r'<tr>.*?</tr>', page, flags=re.S)[1:]
    assert "caller@example.com" in rows[0]
    assert 'href="tel:+16465550123"' in rows[0] and "Call back" in rows[0]
    assert "older@example.com" in page and "tel:" not in "".join(rows[1:])
    assert Ticket.objects.get(account=older).status == TicketStatus.OPEN


# --- Support records the call -------------------------------------------------------------

def record(console, ticket: Ticket, outcome: str, note: str = "", key: str | None = None):
    return console.post(f"/admin/support/ticket/{ticket.pk}/do/record_call/",
                        {"action_key": key or uuid.uuid4().hex, "outcome": outcome, "note": note})


def test_support_records_calls_on_the_timeline_and_no_answer_keeps_the_request_on_top(
        stuck, console, support_user):
    account, person = stuck
    person.post("/help/call/", {"phone": ""})
    ticket = Ticket.objects.get(account=account)
    confirm = text(console.get(f"/admin/support/ticket/{ticket.pk}/do/record_call/"))
    assert "Record a call" in confirm and 'href="tel:+14155550100"' in confirm

    key = uuid.uuid4().hex
    assert record(console, ticket, CallOutcome.NO_ANSWER, "voicemail", key=key).status_code == 302
    assert record(console, ticket, CallOutcome.NO_ANSWER, "voicemail", key=key).status_code == 302  # double click

    [call] = Call.objects.all()
    assert (call.staff, str(call.phone), call.outcome, call.note) == (support_user, ON_FILE, "no_answer", "voicemail")
    assert CallbackRequest.objects.get().status == CallbackStatus.REQUESTED
    assert 'href="tel:+14155550100"' in text(console.get("/admin/support/ticket/"))

    assert record(console, ticket, CallOutcome.REACHED, "workspace re-run together").status_code == 302
    assert CallbackRequest.objects.get().status == CallbackStatus.REACHED
    assert Call.objects.filter(staff=support_user).count() == 2
    timeline = text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    assert "Called +14155550100: Reached them. Note: workspace re-run together" in timeline
    assert "Called +14155550100: No answer. Note: voicemail" in timeline
    assert TicketEvent.objects.filter(kind=EventKind.CALL, actor=f"support ({support_user.email})").count() == 2
    # Nobody is waiting for a call any more: no call-back link in the queue.
    assert "Call back" not in text(console.get("/admin/support/ticket/"))


def test_a_wrong_number_closes_the_request_and_the_person_can_ask_again(stuck, console):
    account, person = stuck
    person.post("/help/call/", {"phone": "+44 20 7946 0958"})
    ticket = Ticket.objects.get(account=account)
    record(console, ticket, CallOutcome.WRONG_NUMBER)
    assert CallbackRequest.objects.get().status == CallbackStatus.WRONG_NUMBER
    assert str(Call.objects.get().phone) == "+442079460958"

    person.post("/help/call/", {"phone": ""})
    assert CallbackRequest.objects.filter(status=CallbackStatus.REQUESTED).count() == 1


def test_recording_a_call_needs_its_own_permission(stuck, db):
    account, person = stuck
    person.post("/help/call/", {"phone": ""})
    ticket = Ticket.objects.get(account=account)
    user = User.objects.create_user("res@support.example", "pw pw pw pw 1", name="Res", company="A", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_ticket", "resolve"]))
    client = signed_in_to_console(user)

    assert "Record a call" not in text(client.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    assert record(client, ticket, CallOutcome.REACHED).status_code == 403
    assert not Call.objects.exists()
    assert CallbackRequest.objects.get().status == CallbackStatus.REQUESTED

    user.user_permissions.add(Permission.objects.get(codename="record_call"))
    client = signed_in_to_console(User.objects.get(pk=user.pk))
    assert record(client, ticket, CallOutcome.REACHED).status_code == 302
    assert Call.objects.get().staff == user


# --- Resolving while a call-back waits ------------------------------------------------------

def resolve(console, ticket: Ticket):
    return console.post(f"/admin/support/ticket/{ticket.pk}/do/resolve/", {"action_key": uuid.uuid4().hex})


def test_resolve_is_refused_while_a_call_back_waits_and_nobody_has_called(stuck, console):
    """A promise to call must not vanish with the ticket: Resolve (or a reply that
    resolves) says to record the call first, and changes nothing."""
    account, person = stuck
    person.post("/help/call/", {"phone": ""})
    ticket = Ticket.objects.get(account=account)

    refused = resolve(console, ticket)

    assert refused.status_code == 400
    assert ("Nothing was done: they asked us to call +1 415-555-0100 and no call to them is recorded yet, so the "
            "ticket can't be resolved. Call them and record it with \"Record a call\" (Reached them / No answer / "
            "Wrong number), then resolve.") in text(refused)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    assert CallbackRequest.objects.get().status == CallbackStatus.REQUESTED
    assert not ticket.events.filter(kind=EventKind.STATUS, to_status=TicketStatus.RESOLVED).exists()
    page = text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    assert "They asked us to call" in page and "promised by" in page
    assert 'href="tel:+14155550100"' in text(console.get("/admin/support/ticket/"))

    replied = console.post(f"/admin/support/ticket/{ticket.pk}/do/reply/", {
        "action_key": uuid.uuid4().hex, "body": "We'll sort it out.", "then": TicketStatus.RESOLVED})
    assert replied.status_code == 400 and "no call to them is recorded yet" in text(replied)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN and not ticket.events.filter(kind=EventKind.REPLY).exists()

    # Once the call is made and recorded, Resolve works.
    record(console, ticket, CallOutcome.REACHED, "all sorted")
    assert resolve(console, ticket).status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED
    assert CallbackRequest.objects.get().status == CallbackStatus.REACHED


def test_resolving_after_calls_nobody_answered_closes_the_request_and_says_so(stuck, console):
    """"No answer" leaves the request waiting; resolving is then how support stops
    trying: the request closes as unanswered, with a line on the timeline, and the
    person can ask again."""
    account, person = stuck
    person.post("/help/call/", {"phone": ""})
    ticket = Ticket.objects.get(account=account)
    record(console, ticket, CallOutcome.NO_ANSWER, "voicemail")
    record(console, ticket, CallOutcome.NO_ANSWER, "voicemail again")

    assert resolve(console, ticket).status_code == 302

    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RESOLVED
    callback = CallbackRequest.objects.get()
    assert callback.status == CallbackStatus.UNANSWERED and callback.closed_at is not None
    said = ("Call-back request to +1 415-555-0100 closed as the ticket was resolved: we called 2 times, and nobody "
            "answered. It no longer waits in the queue; the person can ask for a call again.")
    assert ticket.events.filter(kind=EventKind.NOTE, text=said).count() == 1
    page = text(console.get(f"/admin/support/ticket/{ticket.pk}/change/"))
    assert said in page and "They asked us to call" not in page and "promised by" not in page
    for queue in ({}, {"queue": "resolved"}):
        assert "Call back" not in text(console.get("/admin/support/ticket/", queue))
    # The person is offered a call again, with a fresh promise.
    assert 'action="/help/call/"' in text(person.get("/setup/"))
    assert "a person will call within 4 hours" in text(person.post("/help/call/", {"phone": ""}))
