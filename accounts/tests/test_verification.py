"""Email verification (`/verify/<token>/`), correcting a mistyped address
(`POST /setup/email/`) and sending the link again (`POST /setup/resend/`)."""
from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.utils.http import urlsafe_base64_encode

from accounts import messages as words
from accounts.models import EmailDelivery, EmailKind, User
from accounts.tests.factories import at_once, page_text, sent_to, sign_up, verification_link
from provisioning import durable
from provisioning.durable import StepStatus
from provisioning.models import Event

pytestmark = pytest.mark.django_db

ADDRESS = "ada@example.com"
BAD_LINK = str(words.VERIFY_LINK_BAD.title)


@pytest.fixture
def ada(drive):
    """Ada, signed up and logged in; her workspace is ready and her link was sent."""
    client, account = sign_up(email=ADDRESS)
    drive()
    return client, account


def verified(account: User) -> bool:
    account.refresh_from_db()
    return account.email_verified


def explains_bad_link(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302 and response["Location"] == "/verify/"
    page = client.get("/verify/")
    assert page.status_code == 200
    text = page_text(page)
    assert BAD_LINK in text and str(words.VERIFY_LINK_BAD.next) in text


def open_verifications(account: User) -> int:
    return EmailDelivery.objects.filter(account=account, kind=EmailKind.VERIFICATION,
                                        status__in=[StepStatus.PENDING, StepStatus.RUNNING]).count()


# --- The link ------------------------------------------------------------------------


def test_the_link_from_the_email_verifies_and_leaves_no_token_in_the_address_bar(ada):
    client, account = ada
    link = verification_link(ADDRESS)
    [message] = sent_to(ADDRESS, subject="Confirm")
    [(html, _)] = message.alternatives
    assert link in html  # the HTML part carries the same link

    response = client.post(link)

    assert response.status_code == 302
    assert response["Location"] == "/"  # the workspace is ready: into the app
    token = link.split("/")[2]
    assert token not in response["Location"]
    assert verified(account)
    assert Event.objects.filter(account=account, subject="email", to_state="verified").count() == 1
    assert str(words.VERIFIED) in page_text(client.get(response["Location"]))


def test_opening_the_link_shows_a_confirm_button_and_changes_nothing(ada):
    """Mail scanners open every link: only the button on the page confirms."""
    _, account = ada
    link = verification_link(ADDRESS)

    for _ in range(3):  # a scanner, a preview, the person
        page = Client().get(link)
        assert page.status_code == 200
        assert str(words.VERIFY_CONFIRM.title) in page_text(page)
        assert re.search(r'<form method="post" action="">.*<button[^>]*type="submit"', page.content.decode(), re.S)

    assert not verified(account)
    assert not Event.objects.filter(account=account, to_state="verified").exists()
    assert Client().post(link).status_code == 302 and verified(account)


def test_the_link_works_without_being_logged_in(ada):
    _, account = ada

    response = Client().post(verification_link(ADDRESS))

    assert response.status_code == 302 and response["Location"] == "/login/"
    assert verified(account)


def test_a_link_confirmed_while_logged_in_to_another_account_says_whose_address_it_was(ada, drive):
    _, account = ada
    grace, other = sign_up(email="grace@example.com")
    drive()

    response = grace.post(verification_link(ADDRESS), follow=True)

    assert verified(account) and not verified(other)
    text = page_text(response)
    assert response.redirect_chain[-1][0] in ("/", "/setup/")  # Grace's own page: she is still logged in
    assert str(words.VERIFIED_OTHER_ACCOUNT).format(address=ADDRESS) in text
    assert str(words.VERIFIED) not in text  # "your email address" would be Grace's, still unconfirmed


def test_a_used_link_explains_itself_and_the_account_stays_verified(ada):
    client, account = ada
    link = verification_link(ADDRESS)
    client.post(link)
    verified_at = User.objects.get(pk=account.pk).email_verified_at

    explains_bad_link(Client(), link)  # opened elsewhere, signed out

    assert verified(account) and account.email_verified_at == verified_at
    assert Event.objects.filter(account=account, to_state="verified").count() == 1


def test_a_confirmed_person_opening_their_used_link_is_told_they_are_confirmed(ada):
    client, account = ada
    link = verification_link(ADDRESS)
    client.post(link)

    for response in (client.get(link), client.post(link)):
        assert response.status_code == 302 and response["Location"] == "/verify/done/"
    text = page_text(client.get("/verify/done/"))
    assert str(words.VERIFY_ALREADY_DONE.title) in text and ADDRESS in text
    assert BAD_LINK not in text and "Send me a fresh link" not in text


def test_an_expired_link_explains_itself(ada, settings):
    client, account = ada
    settings.EMAIL_VERIFICATION_TIMEOUT = -1

    explains_bad_link(client, verification_link(ADDRESS))

    assert not verified(account)


def test_a_link_of_the_default_lifetime_still_works(ada, settings):
    client, account = ada
    settings.EMAIL_VERIFICATION_TIMEOUT = 3 * 24 * 3600

    client.post(verification_link(ADDRESS))

    assert verified(account)


def tampered(link: str) -> list[str]:
    token = link.split("/")[2]
    uid, _, rest = token.partition(".")
    stamp, _, digest = rest.partition("-")
    flipped = digest[:-1] + ("a" if digest[-1] != "a" else "b")
    return [
        f"/verify/{uid}.{stamp}-{flipped}/",  # one character of the signature
        f"/verify/{uid}.{int(stamp, 36) + 1:x}-{digest}/",  # another time stamp
        f"/verify/{urlsafe_base64_encode(b'999999')}.{rest}/",  # another account
        f"/verify/{uid}.{rest}-extra/",
        f"/verify/{uid}/",
        f"/verify/{uid}./",
    ]


def test_a_tampered_link_explains_itself(ada):
    client, account = ada
    for path in tampered(verification_link(ADDRESS)):
        explains_bad_link(client, path)
    assert not verified(account)


GARBAGE = [
    "garbage", ".", "..", "-", "a.b-c", "MQ.zzzzzzzzzzzzzzzzzzzz-abc", "MQ.-", "%00", "%ff%fe",
    "%C3%A9t%C3%A9.x-y", "Zm9v.x-y", "LTE.x-y",  # "foo", "-1"
    urlsafe_base64_encode(b"99999999999999999999999999") + ".abc-def",  # beyond any integer column
    urlsafe_base64_encode(b"0") + ".abc-def", "MQ." + "a" * 2000,
]


@pytest.mark.parametrize("token", GARBAGE)
def test_garbage_tokens_explain_themselves_and_never_fail(client, token):
    explains_bad_link(client, f"/verify/{token}/")


# --- Correcting the address --------------------------------------------------------------


def test_correcting_the_address_kills_the_old_link_and_sends_a_fresh_one(ada, drive):
    client, account = ada
    old_link = verification_link(ADDRESS)

    response = client.post("/setup/email/", {"email": "Ada.Lovelace@Example.com"}, follow=True)

    assert response.redirect_chain == [("/setup/", 302)]
    assert [str(m) for m in response.context["messages"]] == [
        str(words.EMAIL_CHANGED_SENDING.text).format(address="ada.lovelace@example.com")]
    account.refresh_from_db()
    assert account.email == "ada.lovelace@example.com"
    explains_bad_link(client, old_link)
    drive()
    new_link = verification_link("ada.lovelace@example.com")
    client.post(new_link)
    assert verified(account)


def answers(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_correcting_the_address_says_the_fresh_link_is_on_its_way_until_it_is_sent(ada, drive):
    client, account = ada
    new = "ada.lovelace@example.com"

    response = client.post("/setup/email/", {"email": new}, follow=True)

    # The fresh link is owed (queued), not sent: the answer says it is on its way.
    [fresh] = EmailDelivery.objects.filter(account=account, to_address=new)
    assert fresh.status == StepStatus.PENDING and sent_to(new) == []
    assert answers(response) == [str(words.EMAIL_CHANGED_SENDING.text).format(address=new)]
    assert "sent a fresh" not in page_text(response) and "We've sent" not in page_text(response)
    drive()
    assert len(sent_to(new, subject="Confirm")) == 1
    assert f"We've sent a confirmation link to {new}." in page_text(client.get("/setup/"))


# Run as the web process runs: each request commits, and the sync queue sends the
# fresh link inline before the answer is chosen (as a quick worker would).
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode, answer", [("ok", words.EMAIL_CHANGED_SENT.text),
                                          ("timeout", words.EMAIL_CHANGED_TROUBLE)])
def test_correcting_the_address_answers_where_the_fresh_link_stands(sandbox, settings, mode, answer):
    settings.EMAIL_MAX_ATTEMPTS = 10
    new = "ada.lovelace@example.com"
    client, account = sign_up(email=ADDRESS)
    sandbox("email", mode)

    response = client.post("/setup/email/", {"email": new}, follow=True)

    [fresh] = EmailDelivery.objects.filter(account=account, to_address=new)
    page = page_text(response)
    assert answers(response) == [str(answer).format(address=new)]
    if mode == "ok":
        assert fresh.status == StepStatus.SUCCEEDED and len(sent_to(new, subject="Confirm")) == 1
        assert f"We've sent a confirmation link to {new}." in page
    else:
        assert fresh.status == StepStatus.PENDING and fresh.last_error_code and sent_to(new) == []
        assert "sent a fresh" not in page and "We've sent" not in page
        assert client.get("/setup/status.json").json()["said"]["email"].startswith("we're having trouble")


def test_correcting_to_the_same_address_does_not_say_it_changed(sandbox, drive):
    sandbox("email", "error")
    client, account = sign_up(email=ADDRESS)
    drive(max_passes=1)

    response = client.post("/setup/email/", {"email": "Ada@Example.com"}, follow=True)

    # The link still owed goes there: nothing fresh was queued, and the answer says so.
    assert answers(response) == [str(words.EMAIL_UNCHANGED_HELD_UP.text).format(address=ADDRESS)]
    assert "changed your address" not in page_text(response)
    assert EmailDelivery.objects.filter(account=account).count() == 1


def test_the_same_address_while_its_link_is_on_its_way_sends_nothing_more_and_says_so(drive):
    client, account = sign_up(email=ADDRESS)  # the link is owed, not yet sent

    first = client.post("/setup/email/", {"email": "Ada@Example.com"}, follow=True)
    client.post("/setup/email/", {"email": ADDRESS})

    said = str(words.EMAIL_UNCHANGED_SENDING.text).format(address=ADDRESS)
    assert answers(first) == [said]
    assert "fresh" not in said and "changed your address" not in page_text(first)
    assert EmailDelivery.objects.filter(account=account).count() == 1
    drive()
    assert len(sent_to(ADDRESS, subject="Confirm")) == 1


def test_the_same_address_after_its_link_was_sent_sends_one_fresh_link(ada, drive):
    client, account = ada
    mail.outbox.clear()

    first = client.post("/setup/email/", {"email": ADDRESS}, follow=True)
    second = client.post("/setup/email/", {"email": ADDRESS}, follow=True)  # a double click

    assert answers(first) == [str(words.RESENT_SENDING).format(address=ADDRESS)]  # a fresh one is queued
    # The second finds that fresh link on its way: it queues nothing, nor says it does.
    assert answers(second) == [str(words.EMAIL_UNCHANGED_SENDING.text).format(address=ADDRESS)]
    assert open_verifications(account) == 1
    drive()
    assert len(sent_to(ADDRESS, subject="Confirm")) == 1


def test_the_same_address_after_our_retries_ran_out_sends_a_fresh_link_and_owns_the_last_one(
        sandbox, drive, settings):
    settings.EMAIL_MAX_ATTEMPTS = 1
    sandbox("email", "timeout")
    client, account = sign_up(email=ADDRESS)
    drive()

    response = client.post("/setup/email/", {"email": ADDRESS}, follow=True)

    assert answers(response) == [str(words.RESENT_SENDING).format(address=ADDRESS)]
    assert open_verifications(account) == 1
    assert "Our last try to send you one failed on our side" in page_text(response)


def test_the_same_address_after_it_was_refused_sends_a_fresh_link_and_blames_nothing_on_us(sandbox, drive):
    sandbox("email", "reject")
    client, account = sign_up(email=ADDRESS)
    drive()
    sandbox("email", "ok")  # say the person's mailbox was set up since

    response = client.post("/setup/email/", {"email": ADDRESS}, follow=True)

    assert answers(response) == [str(words.RESENT_SENDING).format(address=ADDRESS)]
    page = page_text(response)
    assert "on our side" not in page
    assert f"We're sending a confirmation link to {ADDRESS}; it usually arrives within a minute" in page


# Run as the web process runs: the sync queue tries the fresh link inline, and the
# address refuses it again before the answer is chosen.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path, data", [("/setup/email/", {"email": ADDRESS}), ("/setup/resend/", {})])
def test_a_fresh_link_refused_at_once_is_not_called_our_trouble(sandbox, path, data):
    sandbox("email", "reject")
    client, account = sign_up(email=ADDRESS)

    response = client.post(path, data, follow=True)

    assert EmailDelivery.objects.filter(account=account).count() == 2
    assert answers(response) == [str(words.RESENT_SEE_PAGE).format(address=ADDRESS)]
    assert "on our side" not in " ".join(answers(response))
    assert f"Our email to {ADDRESS} was refused" in page_text(response)


def test_correcting_the_address_cancels_emails_still_owed_to_the_old_one(sandbox, drive):
    sandbox("email", "error")  # the first link keeps failing, so it is still owed
    client, account = sign_up(email=ADDRESS)
    drive(max_passes=2)
    [old] = EmailDelivery.objects.filter(account=account)
    assert old.status == StepStatus.PENDING

    client.post("/setup/email/", {"email": "ada.lovelace@example.com"})
    sandbox("email", "ok")
    drive()

    old.refresh_from_db()
    assert old.status == StepStatus.FAILED and old.last_error_code == "cancelled"
    assert sent_to(ADDRESS) == []  # nothing more goes to the mistyped address
    assert len(sent_to("ada.lovelace@example.com", subject="Confirm")) == 1
    assert client.get("/setup/status.json").json()["email"] == {
        "address": "ada.lovelace@example.com", "verified": False, "delivery": "sent"}


def test_correcting_an_undeliverable_address_heals_the_account(sandbox, drive):
    sandbox("email", "reject")
    client, account = sign_up(email="ada@exmaple.com")
    drive()
    assert client.get("/setup/status.json").json()["state"] == "email_undeliverable"
    sandbox("email", "ok")

    client.post("/setup/email/", {"email": ADDRESS})
    drive()

    assert client.get("/setup/status.json").json()["state"] == "unverified"
    client.post(verification_link(ADDRESS))
    assert client.get("/setup/status.json").json()["state"] == "active"


def test_correcting_is_refused_once_verified(ada):
    client, account = ada
    client.post(verification_link(ADDRESS))
    deliveries = EmailDelivery.objects.count()

    response = client.post("/setup/email/", {"email": "someone.else@example.com"}, follow=True)

    assert str(words.EMAIL_ALREADY_VERIFIED) in page_text(response)
    account.refresh_from_db()
    assert account.email == ADDRESS and account.email_verified
    assert EmailDelivery.objects.count() == deliveries


def test_correcting_to_an_address_of_another_account_is_refused_clearly(sandbox, drive):
    sign_up(email="bob@example.com")
    sandbox("email", "error")
    client, account = sign_up(email=ADDRESS)
    drive(max_passes=1)
    deliveries = list(EmailDelivery.objects.values_list("pk", "status", "to_address"))
    events = Event.objects.count()

    response = client.post("/setup/email/", {"email": "Bob@Example.com"})

    assert response.status_code == 400
    errors = response.context["email_form"].errors["email"]
    assert errors == [str(words.EMAIL_TAKEN)]
    assert str(words.EMAIL_TAKEN) in page_text(response)
    account.refresh_from_db()
    assert account.email == ADDRESS
    # Nothing was written: the pending link to Ada's address is not cancelled.
    assert list(EmailDelivery.objects.values_list("pk", "status", "to_address")) == deliveries
    assert Event.objects.count() == events


def test_a_bad_corrected_address_gets_a_message_and_changes_nothing(ada):
    client, account = ada

    response = client.post("/setup/email/", {"email": "ada-at-example"})

    assert response.status_code == 400
    assert "That doesn't look like an email address" in page_text(response)
    account.refresh_from_db()
    assert account.email == ADDRESS


# --- Sending it again ------------------------------------------------------------------


def test_resend_double_click_while_a_link_is_owed_keeps_one_open_delivery(sandbox, drive):
    sandbox("email", "error")
    client, account = sign_up(email=ADDRESS)
    drive(max_passes=1)

    first = client.post("/setup/resend/", follow=True)
    client.post("/setup/resend/")

    # Email is failing: the answer owns it and does not send the person to their spam folder.
    assert str(words.RESENT_TROUBLE).format(address=ADDRESS) in page_text(first)
    assert "spam" not in page_text(first)
    assert EmailDelivery.objects.filter(account=account).count() == 1
    assert open_verifications(account) == 1
    sandbox("email", "ok")
    drive()
    assert len(sent_to(ADDRESS, subject="Confirm")) == 1


def test_resend_double_click_after_delivery_sends_one_more_email(ada, drive):
    client, account = ada
    mail.outbox.clear()

    client.post("/setup/resend/")
    client.post("/setup/resend/")

    assert open_verifications(account) == 1
    assert EmailDelivery.objects.filter(account=account, kind=EmailKind.VERIFICATION).count() == 2
    drive()
    assert len(sent_to(ADDRESS, subject="Confirm")) == 1
    client.post(verification_link(ADDRESS))
    assert verified(account)


def test_resend_once_verified_sends_nothing(ada):
    client, account = ada
    client.post(verification_link(ADDRESS))
    count = EmailDelivery.objects.count()

    response = client.post("/setup/resend/", follow=True)

    assert str(words.VERIFIED) in page_text(response)
    assert EmailDelivery.objects.count() == count


@pytest.mark.parametrize("path", ["/setup/email/", "/setup/resend/"])
def test_get_on_the_post_routes_is_405(ada, path):
    client, _ = ada
    deliveries = EmailDelivery.objects.count()

    response = client.get(path)

    assert response.status_code == 405
    assert EmailDelivery.objects.count() == deliveries


@pytest.mark.parametrize("path", ["/setup/email/", "/setup/resend/"])
def test_the_post_routes_need_a_login(client, path):
    response = client.post(path, {"email": "x@example.com"})

    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not EmailDelivery.objects.exists()


# --- Links owed but no longer wanted ---------------------------------------------------


def test_a_link_owed_to_a_corrected_address_is_never_sent_even_if_retried(sandbox, drive):
    sandbox("email", "error")
    client, account = sign_up(email="ada@exmaple.com")
    drive(max_passes=1)
    [old] = EmailDelivery.objects.filter(account=account)
    client.post("/setup/email/", {"email": ADDRESS})
    # Someone re-arms the old delivery ("retry now" is open to every interface).
    assert durable.step_retry_now(old)
    sandbox("email", "ok")

    drive()

    # A link minted now would confirm the new address for whoever reads the old inbox.
    assert sent_to("ada@exmaple.com") == []
    old.refresh_from_db()
    assert old.status == StepStatus.FAILED and old.last_error_code == "cancelled"
    assert len(sent_to(ADDRESS, subject="Confirm")) == 1
    assert not verified(account)


def test_no_dead_link_is_sent_after_the_address_is_confirmed(ada, sandbox, drive):
    client, account = ada
    first_link = verification_link(ADDRESS)
    sandbox("email", "error")
    client.post("/setup/resend/")
    drive(max_passes=1)  # the second link is still owed
    client.post(first_link)
    assert verified(account)
    sandbox("email", "ok")

    drive()

    assert len(sent_to(ADDRESS, subject="Confirm")) == 1  # only the link that was used
    data = client.get("/setup/status.json").json()
    assert data["state"] == "active"
    assert data["email"] == {"address": ADDRESS, "verified": True, "delivery": "sent"}
    assert "recipient_rejected" not in {d.last_error_code for d in EmailDelivery.objects.all()}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_resend_clicked_twice_at_once_owes_one_link(sandbox, drive):
    client, account = sign_up(email=ADDRESS)
    cookies = client.cookies
    for _ in range(3):
        drive()
        before = EmailDelivery.objects.filter(account=account).count()
        sandbox("email", "error")  # the new link stays owed, so the second click must see it

        def click():
            person = Client()
            person.cookies = cookies
            return person.post("/setup/resend/").status_code

        assert at_once(click, click) == [302, 302]

        assert EmailDelivery.objects.filter(account=account).count() == before + 1
        assert open_verifications(account) == 1
        sandbox("email", "ok")
