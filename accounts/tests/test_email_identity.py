"""One mailbox, one account. However an address is typed (any case, an accent as one
character or as a letter and a combining mark, full-width letters from an input
method, the domain in its ASCII "xn--" form) it names the same account wherever an
address is looked up: signup, login, password reset, /help/, code sign-in, correcting
an address, the bounce webhook."""
from __future__ import annotations

import base64
import json
import string
import unicodedata
import uuid

import idna
import pytest
from django.core import mail
from django.test import Client
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import EmailDelivery, User, normalize_email
from accounts.services import signin_code_issue
from accounts.tests.factories import SignupFormFactory
from conftest import PASSWORD
from provisioning.durable import StepStatus
from support.models import Ticket

# One mailbox typed four ways: as one would, with the domain in its ASCII form, with
# the ü decomposed (u + U+0308, as macOS file names and some keyboards give it), and
# with a full-width "ａ" (a Japanese or Chinese input method).
MAILBOX = "ada@bücher.de"
SPELLINGS = ["ada@bücher.de", "ada@xn--bcher-kva.de", "ada@bu\u0308cher.de", "\uff41da@bücher.de"]

pytestmark = pytest.mark.django_db


def _fullwidth(ch: str) -> str:
    return chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch


@st.composite
def typings(draw) -> tuple[str, str]:
    """(an address, the same mailbox as someone might type it)."""
    local = draw(st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=12))
    label = draw(st.text(string.ascii_lowercase + "äöüéçñåø", min_size=1, max_size=12))
    domain = f"{label}.{draw(st.sampled_from(['de', 'com', 'example']))}"

    def retype(text: str) -> str:
        return "".join(draw(st.sampled_from([ch, ch.upper(), _fullwidth(ch)])) for ch in text)

    typed_domain = draw(st.sampled_from([
        retype(domain), unicodedata.normalize("NFD", retype(domain)), idna.encode(domain, uts46=True).decode()]))
    at = draw(st.sampled_from(["@", "\uff20"]))  # a full-width @ too
    padding = draw(st.sampled_from(["", " ", "\u3000"]))  # an ideographic space, too
    return f"{local}@{domain}", f"{padding}{retype(local)}{at}{typed_domain}{padding}"


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.emails(), typings().map(lambda pair: pair[1])))
@example("¸@0")  # NFKC turns U+00B8 into a space and a combining cedilla
@example("İ" * 130 + "@example.com")
def test_normalising_twice_changes_nothing(address):
    once = normalize_email(address)
    assert normalize_email(once) == once


@hypothesis_settings(max_examples=300, deadline=None)
@given(typings())
def test_every_way_of_typing_a_mailbox_normalises_alike(pair):
    address, typed = pair
    assert normalize_email(typed) == normalize_email(address)


def test_the_four_spellings_are_one_address_stored_as_people_read_it():
    assert {normalize_email(s) for s in SPELLINGS} == {MAILBOX}


# --- Through the site: one account, found every way ----------------------------------------

@pytest.fixture
def ada(drive) -> User:
    client = Client()
    assert client.post("/signup/", SignupFormFactory(email=SPELLINGS[0])).status_code == 302
    drive()
    return User.objects.get()


@hypothesis_settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spelling=st.sampled_from(SPELLINGS[1:]), other_password=st.booleans())
def test_signing_up_with_another_spelling_finds_the_same_account(ada, spelling, other_password):
    password = "another password, quite long" if other_password else PASSWORD
    client = Client()
    response = client.post("/signup/", SignupFormFactory(email=spelling, password=password))
    assert User.objects.count() == 1
    if other_password:
        assert response.status_code == 200 and "_auth_user_id" not in client.session  # taken
    else:
        assert response.status_code == 302 and int(client.session["_auth_user_id"]) == ada.pk  # welcome back


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_logging_in_with_any_spelling_opens_the_account(ada, spelling):
    client = Client()
    assert client.post("/login/", {"email": spelling, "password": PASSWORD}).status_code == 302
    assert int(client.session["_auth_user_id"]) == ada.pk


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_password_reset_with_any_spelling_reaches_the_account(ada, spelling, drive):
    mail.outbox.clear()
    assert Client().post("/password-reset/", {"email": spelling}).status_code == 302
    drive()
    [message] = [m for m in mail.outbox if "password" in m.subject.lower()]
    assert message.to == [MAILBOX]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_help_with_any_spelling_joins_the_accounts_ticket(ada, spelling):
    assert Client().post("/help/", {"email": spelling, "message": "Where is my workspace?"}).status_code == 200
    assert Ticket.objects.get().account == ada


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_sign_in_code_works_with_any_spelling(ada, spelling):
    _, code = signin_code_issue(account=ada, actor="support (test)", idempotency_key=uuid.uuid4().hex)
    client = Client()
    assert client.post("/login/code/", {"email": spelling, "code": code}).status_code == 302
    assert int(client.session["_auth_user_id"]) == ada.pk


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_another_account_cannot_correct_its_address_to_any_spelling(ada, spelling):
    client = Client()
    assert client.post("/signup/", SignupFormFactory(email="grace@example.com")).status_code == 302
    client.post("/setup/email/", {"email": spelling})
    assert User.objects.get(pk=int(client.session["_auth_user_id"])).email == "grace@example.com"
    assert User.objects.filter(email=MAILBOX).count() == 1


def test_a_bounce_reported_in_the_ascii_form_reaches_the_account(ada, settings):
    """Django sends to the ASCII form of the domain, so that is what ESPs report."""
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "hook:s3cret"}
    settings.WEBHOOK_SECRET, settings.EMAIL_WEBHOOK_ESP = "hook:s3cret", "postmark"  # the webhook answers
    body = json.dumps({"RecordType": "Bounce", "Type": "HardBounce", "ID": 7, "Email": "ada@xn--bcher-kva.de",
                       "BouncedAt": "2026-11-26T16:33:54Z", "Details": "smtp;550 5.1.1 no such user"})
    response = Client().post("/anymail/postmark/tracking/", body, content_type="application/json",
                             HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"hook:s3cret").decode())
    assert response.status_code == 200
    sent = EmailDelivery.objects.get(account=ada, status=StepStatus.SUCCEEDED)
    assert sent.bounced_at is not None
