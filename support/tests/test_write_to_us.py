"""Where a person with a stopped step and no ticket is asked to write to us, the words
say where, from what is really there: /setup/ has its "Need a hand?" card below the
message; the home page's banner has a link just below it; an email gives /help/'s
address (nothing in an email is "below")."""
from __future__ import annotations

import html
import re

import pytest
from django.core import mail
from django.test import Client

from accounts import messages as words
from accounts.emails import email_queue
from accounts.models import EmailKind
from support.models import Ticket
from support.services import ticket_resolve

BELOW = "Write to us below"


def page(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def resolve_the_ticket() -> None:
    """Support resolved the ticket automation opened, with the step still stopped."""
    ticket_resolve(ticket=Ticket.objects.get(), actor="sam@support.example", why="called them")


@pytest.mark.django_db
def test_the_home_banner_asks_to_write_to_us_with_a_link_that_is_there(register, sandbox, drive, settings):
    sandbox("email", "refuse_message")  # the confirmation email refused for good; the workspace is made
    account = register()
    drive()
    resolve_the_ticket()
    person = Client()
    person.force_login(account)

    home = page(person, "/")

    banner = re.search(r'<div class="banner"[^>]*id="email-banner">(.*?)</div>', home, re.S).group(1)
    write = str(words.WRITE_TO_SUPPORT_BANNER).format(reply_hours=settings.SUPPORT_REPLY_HOURS)
    assert write in banner and BELOW not in home
    # "the link just below" comes right after the banner's words, and it goes to /help/.
    after = banner.split(write, 1)[1]
    assert re.match(r'[^<]*</p>\s*<p><a href="/help/" id="banner-help">', after)
    assert page(person, "/help/")
    # /setup/ still says "below": its "Need a hand?" card is there, after the message.
    setup = page(person, "/setup/")
    assert setup.index(BELOW) < setup.index('id="need-a-hand"')


@pytest.mark.django_db
def test_the_apology_after_a_stopped_workspace_gives_the_address_to_write_to(stranded, drive, settings,
                                                                             committed):
    account = stranded()  # the workspace provider refused it; a ticket opened
    resolve_the_ticket()
    with committed():
        email_queue(account=account, kind=EmailKind.ALL_SET, key="after-the-outage")  # as an incident's close does
    drive()

    [sorry] = [m for m in mail.outbox if m.subject == str(words.EMAIL_SUBJECTS["all_set"])]
    help_url = settings.SITE_URL + "/help/"
    write = str(words.WRITE_TO_SUPPORT_EMAIL).format(help_url=help_url, reply_hours=settings.SUPPORT_REPLY_HOURS)
    assert write in sorry.body and BELOW not in sorry.body
    assert f'<a href="{help_url}"' in sorry.alternatives[0][0]
    assert Client().get("/help/").status_code == 200
