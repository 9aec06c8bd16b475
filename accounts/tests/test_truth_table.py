"""The truth table (issue 9): every sentence a person sees is a fact the database holds,
in every combination of faults.

Each case builds one state through the real pages, services, step engine and
sandbox providers: a workspace step (pending, running, failing with a next try,
failed, succeeded) × an email step (pending, timing out, refused, succeeded,
bounced) × a provider incident (open, closed) × a ticket (open, resolved) × the
worker (alive, or stale: ten minutes pass with no worker, by travelling in time).
Then it renders what the person reads — /setup/, /setup/status.json, the home page,
the apology email and /help/'s answer (to the person and to a stranger) — and
asserts that no forbidden claim appears. Each claim is named below with the facts
that alone allow it; the oracle reads the case, not the code under test.

Of the 200 combinations, the cases run are a covering subset (57): every value of
any three faults together, and every combination of the facts each claim is judged
on (so each claim is met both where it may speak and where it must not, for every
reason it must not). ``TRUTH_TABLE_FULL=1`` runs all 200.

A second, property-based test feeds arbitrary facts to the word chooser itself
(``accounts.messages.say``): it never asks a claim to speak without its fact.
"""
from __future__ import annotations

import html
import itertools
import json
import os
import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts import messages as words
from accounts.emails import email_queue, render
from accounts.messages import EmailFact, Facts
from accounts.models import EmailDelivery, EmailKind, User
from accounts.services import email_mark_bounced
from accounts.tests.factories import sign_up
from provisioning import durable
from provisioning.models import ProvisioningRequest
from provisioning.sandbox import sandbox_set
from support.models import UNRESOLVED, Ticket
from support.services import ticket_resolve

pytestmark = pytest.mark.django_db

ADDRESS = "ada@example.com"
STRANGER = "nobody@elsewhere.example"

WORKSPACE = ("pending", "running", "failing", "failed", "succeeded")
EMAIL = ("pending", "timing_out", "refused", "succeeded", "bounced")
INCIDENT = ("closed", "open")
TICKET = ("open", "resolved")
WORKER = ("alive", "stale")

# --- The claims, each with the only facts that allow it ----------------------------------
# "Sent" means a mail server accepted the link and nothing since says it never arrived.
CLAIM_SENT = ("We've sent a confirmation link", "confirmation link sent", "We sent a link")
# Only after a server accepted the link is the person's spam folder a place to look.
CLAIM_SPAM = ("spam folder",)
# A time is promised only while the schedule backs it: nothing failed, nothing overdue,
# no outage in the way.
CLAIM_UNDER_A_MINUTE = ("usually takes under a minute",)
CLAIM_ARRIVES_SOON = ("usually arrives within a minute",)
# A scheduled next try is not a promise once the worker has missed it.
CLAIM_NEXT_TRY = ("Next try", "next try")
# No sentence says a person has something before a person has seen it.
CLAIM_PERSON_HAS_IT = ("person is on it", "now has it", "on our team has it")
# Passed to support only when a ticket exists (and is open).
CLAIM_SUPPORT_HAS_IT = ("passed to our support team",)
CLAIM_WORKSPACE_READY = ("Your workspace is ready",)
# Told to someone who did not sign in: nothing about an account of theirs.
CLAIM_ACCOUNT_SAVED = ("account is saved",)
# The outage wording on /help/, only for an account really waiting on that outage.
CLAIM_WAITING_ON_OUTAGE = ("your account is waiting on it",)
# Never above a form that asks the person to do something.
CLAIM_NOTHING_TO_DO = ("You don't need to do anything",)
CLAIM_EMAIL_GONE_OUT = ("Your confirmation email was held up by a problem on our side; it has gone out now",)
SAVED = "Your account is saved"


def _text(response) -> str:
    """What a person reads: the page without its tags, entities decoded."""
    body = response.content.decode()
    body = re.sub(r"<script.*?</script>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def _run(kind: str, step, *, mode: str, provider: str, on_commit) -> None:
    sandbox_set(provider=provider, mode=mode)
    with on_commit(execute=True):
        durable.step_run(kind, step.pk)


def _build(case: dict, on_commit, settings) -> tuple[Client, User]:
    """Build one state, as a person and our workers would have reached it."""
    settings.PROVISIONING_MAX_ATTEMPTS = 5
    settings.EMAIL_MAX_ATTEMPTS = 5
    settings.RETRY_BASE_SECONDS = 60  # a failed try has its next one in the future
    settings.BREAKER_FAILURE_THRESHOLD = 1000
    settings.BREAKER_PROBE_SECONDS = 3600
    client, account = sign_up(email=ADDRESS)
    request = ProvisioningRequest.objects.get(account=account)
    delivery = EmailDelivery.objects.get(account=account, kind=EmailKind.VERIFICATION)

    email = case["email"]
    if email == "timing_out":
        _run("email", delivery, mode="timeout", provider="email", on_commit=on_commit)
    elif email == "refused":
        _run("email", delivery, mode="reject", provider="email", on_commit=on_commit)
    elif email in ("succeeded", "bounced"):
        _run("email", delivery, mode="ok", provider="email", on_commit=on_commit)
    if email == "bounced":
        email_mark_bounced(esp="test", event_id="bounce-1", recipient=ADDRESS, event_type="bounced")

    workspace = case["workspace"]
    if workspace == "running":
        durable.claim(durable.kind_named("workspace"), request.pk)
    elif workspace == "failing":
        _run("workspace", request, mode="error", provider="provisioning", on_commit=on_commit)
    elif workspace == "failed":
        _run("workspace", request, mode="reject", provider="provisioning", on_commit=on_commit)
    elif workspace == "succeeded":
        _run("workspace", request, mode="ok", provider="provisioning", on_commit=on_commit)

    if case["incident"] == "open":
        # Another person's failure opens the circuit: the outage is everyone's.
        settings.BREAKER_FAILURE_THRESHOLD = 1
        _, bystander = sign_up(email="bystander@example.com")
        provider = case["outage_provider"]
        if provider == "provisioning":
            step, kind = ProvisioningRequest.objects.get(account=bystander), "workspace"
        else:
            step, kind = EmailDelivery.objects.get(account=bystander, kind=EmailKind.VERIFICATION), "email"
        _run(kind, step, mode="error", provider=provider, on_commit=on_commit)
    sandbox_set(provider="provisioning", mode="ok")
    sandbox_set(provider="email", mode="ok")
    return client, account


FAULTS = {"workspace": WORKSPACE, "email": EMAIL, "incident": INCIDENT, "ticket": TICKET, "worker": WORKER}


def _every_combination() -> list[dict]:
    cases = []
    for values in itertools.product(*FAULTS.values()):
        case = dict(zip(FAULTS, values, strict=True))
        # The outage that matters is the one in the person's way, if any.
        case["outage_provider"] = "provisioning" if case["workspace"] != "succeeded" else "email"
        cases.append(case)
    return cases


def _outage(case: dict) -> str:
    return case["outage_provider"] if case["incident"] == "open" else ""


# The facts the oracle (``_allowed``) judges each claim on. The pages may read more
# of a case than its claims' facts: the three-way cover is for that.
JUDGED_ON = {
    "email facts": lambda c: (c["email"],),
    "under_a_minute": lambda c: (c["workspace"], c["worker"], _outage(c)),
    "arrives_soon": lambda c: (c["email"], c["worker"], _outage(c)),
    "worker": lambda c: (c["worker"],),
    "ticket": lambda c: (c["ticket"],),
    "workspace": lambda c: (c["workspace"],),
    "waiting_on_outage": lambda c: (_outage(c), c["workspace"], c["email"]),
}


def _covers(case: dict) -> set[tuple]:
    """What a case stands for: its values of each three faults, and the facts each
    claim is judged on."""
    covered = {(faults, tuple(case[f] for f in faults)) for faults in itertools.combinations(FAULTS, 3)}
    return covered | {(claim, judged(case)) for claim, judged in JUDGED_ON.items()}


def _covering(cases: list[dict]) -> list[dict]:
    """A small subset standing for everything ``cases`` stand for: greedily, the case
    that stands for the most not yet covered, first in order on a tie (the subset is
    the same on every run)."""
    uncovered = set().union(*map(_covers, cases))
    chosen = []
    while uncovered:
        best = max(cases, key=lambda case: len(_covers(case) & uncovered))
        chosen.append(best)
        uncovered -= _covers(best)
    return chosen


def _cases() -> list:
    cases = _every_combination()
    if os.environ.get("TRUTH_TABLE_FULL") != "1":
        cases = _covering(cases)
    return [pytest.param(case, id="-".join(case[f] for f in FAULTS)) for case in cases]


def _allowed(case: dict) -> dict[str, bool]:
    """The oracle: which claims the facts of this case allow."""
    alive = case["worker"] == "alive"
    outage = case["outage_provider"] if case["incident"] == "open" else ""
    workspace_waiting = case["workspace"] in ("pending", "running", "failing")
    email_waiting = case["email"] in ("pending", "timing_out")
    return {
        "sent": case["email"] == "succeeded",
        "spam": case["email"] == "succeeded",
        "under_a_minute": case["workspace"] in ("pending", "running") and alive and outage != "provisioning",
        "arrives_soon": case["email"] == "pending" and alive and outage != "email",
        "next_try": alive,
        "support_has_it": case["ticket"] == "open",
        "workspace_ready": case["workspace"] == "succeeded",
        "waiting_on_outage": (outage == "provisioning" and workspace_waiting) or (outage == "email" and email_waiting),
        "email_gone_out": case["email"] in ("succeeded", "bounced"),
    }


def _absent(claim: tuple[str, ...], text: str, where: str, case: dict) -> None:
    for phrase in claim:
        assert phrase not in text, f"{where} says {phrase!r}, which the facts do not back: {case}"


@pytest.mark.parametrize("case", _cases())
def test_no_page_json_email_or_answer_claims_what_the_database_does_not_hold(
        case, settings, django_capture_on_commit_callbacks):
    client, account = _build(case, django_capture_on_commit_callbacks, settings)
    allowed = _allowed(case)
    later = timezone.now() + (timedelta(minutes=10) if case["worker"] == "stale" else timedelta(0))

    with time_machine.travel(later, tick=False):
        person_answer = _text(client.post("/help/", {"email": ADDRESS, "message": "Where is my workspace?"}))
        ticket = Ticket.objects.filter(account=account, status__in=UNRESOLVED).get()
        if case["ticket"] == "resolved":
            ticket_resolve(ticket=ticket, actor="support@example.com")
        stranger_answer = _text(Client().post("/help/", {"email": STRANGER, "message": "I can't sign up"}))
        setup = _text(client.get("/setup/"))
        status = client.get("/setup/status.json").json()
        home = client.get("/")
        home_text = _text(home) if home.status_code == 200 else ""
        apology = render(email_queue(account=account, kind=EmailKind.ALL_SET, key=f"truth-{account.pk}"))
        apology_text = apology.body

    json_text = status["message"] + " " + json.dumps(status["said"], ensure_ascii=False)
    person_pages = {"/setup/": setup, "status JSON": json_text, "home": home_text}
    everything = {**person_pages, "apology email": apology_text, "/help/ to the person": person_answer,
                  "/help/ to a stranger": stranger_answer}

    for where, text in everything.items():
        _absent(CLAIM_PERSON_HAS_IT, text, where, case)
        if not allowed["sent"]:
            _absent(CLAIM_SENT, text, where, case)
        if not allowed["spam"]:
            _absent(CLAIM_SPAM, text, where, case)
        if not allowed["workspace_ready"]:
            _absent(CLAIM_WORKSPACE_READY, text, where, case)
        if not allowed["support_has_it"]:
            _absent(CLAIM_SUPPORT_HAS_IT, text, where, case)
    for where, text in person_pages.items():
        if not allowed["under_a_minute"]:
            _absent(CLAIM_UNDER_A_MINUTE, text, where, case)
        if not allowed["arrives_soon"]:
            _absent(CLAIM_ARRIVES_SOON, text, where, case)
        if not allowed["next_try"]:
            _absent(CLAIM_NEXT_TRY, text, where, case)
        _absent(CLAIM_NOTHING_TO_DO, text, where, case)
        assert text.count(SAVED) <= 1, f"{where} says {SAVED!r} more than once: {case}"
    if not allowed["email_gone_out"]:
        _absent(CLAIM_EMAIL_GONE_OUT, apology_text, "apology email", case)

    _absent(CLAIM_ACCOUNT_SAVED, stranger_answer.lower(), "/help/ to a stranger", case)
    _absent(CLAIM_WAITING_ON_OUTAGE, stranger_answer, "/help/ to a stranger", case)
    if allowed["waiting_on_outage"]:  # and the one it is true for is told so
        assert CLAIM_WAITING_ON_OUTAGE[0] in person_answer, f"/help/ hid the outage from the person: {case}"
    else:
        _absent(CLAIM_WAITING_ON_OUTAGE, person_answer, "/help/ to the person", case)
    # Support sees what the person was told, on the ticket's timeline.
    assert ticket.events.filter(text__contains="Thanks for writing").exists()


def test_the_cases_run_meet_every_claim_where_it_may_speak_and_where_it_must_not():
    cases = [param.values[0] for param in _cases()]
    everything = _every_combination()
    assert set().union(*map(_covers, cases)) == set().union(*map(_covers, everything))
    for claim in _allowed(everything[0]):
        assert {_allowed(case)[claim] for case in cases} == {True, False}, claim


# --- The word chooser, over arbitrary facts ------------------------------------------------

STATES = ("setting_up", "delayed", "needs_support", "email_undeliverable", "unverified", "active", "disabled")
EMAIL_FACTS = tuple(v for k, v in vars(EmailFact).items() if k.isupper())
NOW = timezone.now()
moments = st.one_of(st.none(), st.integers(-3600, 3600).map(lambda s: NOW + timedelta(seconds=s)))


@st.composite
def facts(draw) -> Facts:
    workspace = draw(st.sampled_from(("pending", "ready", "failed")))
    email = draw(st.sampled_from(EMAIL_FACTS))
    return Facts(
        state=draw(st.sampled_from(STATES)), address=ADDRESS, verified=email == EmailFact.VERIFIED,
        workspace=workspace, workspace_attempts=draw(st.integers(0, 9)), workspace_failures=draw(st.integers(0, 9)),
        workspace_next=draw(moments), workspace_overdue=draw(st.booleans()),
        outage=draw(st.sampled_from(("", "provisioning", "email"))), email=email,
        email_failures=draw(st.integers(0, 9)), email_next=draw(moments), email_sent_at=draw(moments),
        ticket=draw(st.sampled_from((None, "SUP-123456"))), reply_hours=4, now=NOW,
        outage_ours=draw(st.booleans()), email_after_failure=draw(st.booleans()),
        workspace_refused=draw(st.booleans()), email_refused=draw(st.booleans()),
        email_held_ours=draw(st.booleans()))


@hypothesis_settings(max_examples=200, deadline=None)
@given(f=facts())
def test_the_words_never_ask_a_claim_to_speak_without_its_fact(f):
    said = words.say(f)  # raises FalseClaim if any sentence lacked its fact
    text = " ".join([said.title, said.message, said.workspace, said.tries, said.email, said.banner])

    _absent(CLAIM_PERSON_HAS_IT, text, "say()", f)
    if f.email != EmailFact.SENT:
        _absent(CLAIM_SENT, text, "say()", f)
        _absent(CLAIM_SPAM, text, "say()", f)
    if f.workspace_failures or f.workspace_overdue or f.outage or f.workspace != "pending":
        _absent(CLAIM_UNDER_A_MINUTE, text, "say()", f)
    if f.email != EmailFact.SENDING or f.email_after_failure:
        _absent(CLAIM_ARRIVES_SOON, text, "say()", f)
    if not f.ticket:
        _absent(CLAIM_SUPPORT_HAS_IT, text, "say()", f)
    if f.workspace_overdue:
        assert "Next try" not in said.message
    if said.offer_resend or said.offer_correct:
        _absent(CLAIM_NOTHING_TO_DO, text, "say()", f)
    assert words.resend_answer(f)
    changed = words.email_changed_answer(f)  # raises FalseClaim if "sent" lacked its fact
    unchanged = words.email_unchanged_answer(f)  # likewise
    # Nothing was queued when the address was already the account's and its link on its way.
    _absent(("fresh",), unchanged, "email_unchanged_answer()", f)
    if f.email != EmailFact.SENT:
        _absent(CLAIM_SPAM, words.resend_answer(f), "resend_answer()", f)
        _absent(CLAIM_SPAM + CLAIM_SENT + ("we've sent",), unchanged, "email_unchanged_answer()", f)
        _absent(("sent a fresh",), changed, "email_changed_answer()", f)
        _absent(("Didn't get",), said.resend_prompt, "the resend offer", f)
    if f.email not in (EmailFact.RETRYING, EmailFact.LATE, EmailFact.HELD):
        # Our trouble is told only while the link is still owed to a problem of ours.
        _absent(("on our side",), words.resend_answer(f), "resend_answer()", f)
        _absent(("on our side",), unchanged, "email_unchanged_answer()", f)
    if not f.verified:
        assert said.offer_correct  # a typo can always be corrected


def test_a_claim_refuses_to_speak_without_its_fact():
    f = Facts(state="unverified", address=ADDRESS, verified=False, workspace="ready", workspace_attempts=1,
              workspace_failures=0, workspace_next=None, workspace_overdue=False, outage="", email=EmailFact.RETRYING,
              email_failures=1, email_next=NOW, email_sent_at=None, ticket=None, reply_hours=4, now=NOW)
    with pytest.raises(words.FalseClaim):
        words.SENT.say(f, address=ADDRESS)
    with pytest.raises(words.FalseClaim):
        words.SUPPORT_HAS_IT.say(f, reply_hours=4, reference="SUP-1")
