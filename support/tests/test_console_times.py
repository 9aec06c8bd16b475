"""Times in the console: every timestamp on every console page in one format
("5 Mar 2025, 14:03"), in the support team's time zone (TIME_ZONE), and the
sign-in code's expiry read out in that zone, by name. Tested with a zone half an
hour off UTC, so a time left in UTC, or cut to UTC hours, cannot pass."""
from __future__ import annotations

import html
import re
import uuid
from datetime import UTC

import pytest
from django.utils import formats, timezone

from accounts.models import EmailDelivery, User
from provisioning import breaker
from support import messages as words
from support.models import ContactMessage, Incident, Ticket, TicketEvent
from support.tests.test_callback import logged_in

ZONE = "Asia/Kolkata"  # UTC+05:30
MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
ONE_FORMAT = re.compile(rf"\b\d{{1,2}} {MONTH} \d{{4}}, \d{{2}}:\d{{2}}\b")
# Anything else that writes a time of day or a date: a clock (with seconds, a.m./p.m.,
# Django's "noon"), an ISO date, or a month before the day ("Mar 5").
OTHER_FORMATS = re.compile(rf"\d{{1,2}}:\d{{2}}|\d{{4}}-\d{{2}}-\d{{2}}|\b[ap]\.m\.|\bnoon\b|\bmidnight\b|"
                           rf"\b{MONTH}\.? \d{{1,2}}\b|\bUTC\b")


@pytest.fixture(autouse=True)
def support_team_zone(settings):
    settings.TIME_ZONE = ZONE


def local(moment) -> str:
    """What the console should say: the one format, in ZONE."""
    return formats.date_format(moment.astimezone(timezone.get_current_timezone()), "j M Y, H:i")


def in_utc(moment) -> str:
    return formats.date_format(moment.astimezone(UTC), "j M Y, H:i")


def shown(response) -> str:
    """What a person reads on the page: its text and its tooltips. Not the chart
    (hours of the day, tested on their own) nor machine-readable attributes."""
    assert response.status_code == 200
    page = re.sub(r"<svg.*?</svg>|<script.*?</script>|<style.*?</style>", " ",
                  response.content.decode(), flags=re.S)
    tooltips = " ".join(re.findall(r'title="([^"]*)"', page))
    text = html.unescape(re.sub(r"<[^>]+>", " ", page) + " " + tooltips)
    return re.sub(r"https?://\S+", " ", text)  # a host:port is not a time


def assert_one_format(name: str, text: str) -> None:
    leftover = OTHER_FORMATS.findall(ONE_FORMAT.sub("", text))
    assert not leftover, f"{name}: {leftover}"


@pytest.fixture
def console_times(stranded, register, sandbox, drive, committed, client):
    """A ticket with a message and a call-back request, a timeline, an email refused
    for a second account, and an incident."""
    ada = stranded()
    with committed():
        logged_in(ada).post("/help/", {"email": ada.email, "message": "Still nothing?"})
        logged_in(ada).post("/help/call/", {"phone": "", "note": "Mornings are best"})
    sandbox("email", "reject")
    refused = register(email="refused@example.com")
    drive()
    with committed():
        breaker.trip("provisioning", cause="http_422", why="the same refusal for many accounts")
    return {"ada": ada, "ticket": Ticket.objects.get(account=ada), "refused": Ticket.objects.get(account=refused),
            "incident": Incident.objects.get()}


def test_every_console_page_writes_times_in_one_format_in_the_teams_zone(console_times, console):
    ada, ticket, incident = console_times["ada"], console_times["ticket"], console_times["incident"]
    message = ContactMessage.objects.filter(ticket=ticket).latest("created_at")
    event = TicketEvent.objects.filter(ticket=ticket).latest("created_at")
    callback = ticket.callbacks.get()
    trouble = EmailDelivery.objects.get(account=console_times["refused"].account)
    expected = {  # page: the moments it must show, written locally
        "/admin/": [],
        "/admin/support/ticket/": [ticket.waiting_since],
        f"/admin/support/ticket/{ticket.pk}/change/": [ada.date_joined, message.created_at, event.created_at,
                                                        callback.promised_by],
        f"/admin/support/ticket/{console_times['refused'].pk}/do/reply/": [trouble.created_at],
        "/admin/accounts/user/": [ada.date_joined],
        f"/admin/accounts/user/{ada.pk}/change/": [ada.date_joined, ticket.created_at, event.created_at],
        "/admin/support/incident/": [incident.started_at],
        f"/admin/support/incident/{incident.pk}/change/": [incident.started_at,
                                                           incident.events.latest("created_at").created_at],
        f"/admin/support/ticket/{ticket.pk}/history/": [],
    }
    for path, moments in expected.items():
        text = shown(console.get(path))
        assert_one_format(path, text)
        for moment in moments:
            assert local(moment) in text, (path, local(moment))
            assert in_utc(moment) not in text, (path, in_utc(moment))


def test_the_dashboard_chart_counts_signups_in_the_teams_hours(console_times, console):
    ada = console_times["ada"]
    page = console.get("/admin/").content.decode()
    hour = f"{timezone.localtime(ada.date_joined):%H}:00"
    assert re.search(rf"<title>{hour}: [1-9]\d* signups, [1-9]\d* partial</title>", page), hour


def test_the_sign_in_codes_expiry_is_read_out_in_the_teams_zone(console_times, console):
    ticket = console_times["ticket"]
    done = console.post(f"/admin/support/ticket/{ticket.pk}/do/signin_code/", {"action_key": uuid.uuid4().hex})

    code = ticket.account.signin_codes.get()
    text = shown(done)
    assert f"it works until {local(code.expires_at)} ({ZONE} time)" in text
    assert_one_format("the code page", text)


def test_no_console_sentence_names_utc():
    for name, value in vars(words).items():
        entries = value.values() if isinstance(value, dict) else [value]
        for entry in entries:
            for part in (entry if isinstance(entry, tuple) else [entry]):
                assert "UTC" not in str(part), name


def test_the_one_format_is_defined_once_for_django_pages_too(db):
    """Django's own admin pages (lists, history) write DATETIME_FORMAT: the same."""
    moment = User.objects.create_user("x@example.com", "pw 123456 pw", name="X", company="Y").date_joined
    assert formats.localize(timezone.template_localtime(moment)) == words.console_time(moment) == local(moment)
