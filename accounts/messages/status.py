"""Words about one account, chosen from its facts: the status page, its JSON, the
home page's banner, the resend answer and the apology email read them here.

``Facts`` (built only by ``accounts.selectors.account_overview``) is what the
database holds now; ``say`` chooses every sentence from it. A sentence that claims
something names the fact that backs it (``Claim``): asked to speak without that
fact, it refuses (``FalseClaim``), so no page can render "we've sent" for an email
no server accepted, a time the schedule does not back, or "our support team has
it" without a ticket (accounts/tests/test_truth_table.py).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.messages.when import in_words

# --- Facts: what the database holds about one account --------------------------------------

class EmailFact:
    """Where the confirmation email to the current address stands, as words may tell it."""

    VERIFIED = "verified"  # the address is confirmed
    SENT = "sent"  # a mail server or ESP accepted it
    SENDING = "sending"  # first try still to come or running, on time
    RETRYING = "retrying"  # at least one try failed; the next one is scheduled
    LATE = "late"  # due, and no worker has picked it up in time
    HELD = "held"  # waiting behind our email provider's outage
    UNDELIVERABLE = "undeliverable"  # the address refused it, or it bounced
    STOPPED = "stopped"  # we stopped sending it: our retries ran out, or the provider refused it (email_refused)
    NONE = "none"  # no confirmation email is owed to this address


@dataclass(frozen=True)
class Facts:
    """One account as the database holds it now. Built only by
    ``accounts.selectors.account_overview``; every sentence below reads only these."""

    state: str
    address: str
    verified: bool
    workspace: str  # pending | ready | failed
    workspace_attempts: int  # tries made, the one running included
    workspace_failures: int  # tries that failed (a try still running has not)
    workspace_next: datetime | None  # the scheduled next try, while pending
    workspace_overdue: bool  # due, and no worker picked it up within a reconcile interval
    outage: str  # the provider whose open outage this account waits on, or ""
    email: str  # an EmailFact
    email_failures: int
    email_next: datetime | None
    email_sent_at: datetime | None  # when a server accepted the latest link
    ticket: str | None  # the open ticket's reference
    reply_hours: int
    now: datetime
    # The stopped workspace step was refused by the provider (a permanent error: not
    # retried on our own, though support can re-run it once the cause is fixed), not
    # run out of retries (provisioning.selectors.step_refused).
    workspace_refused: bool = False
    # The stopped confirmation email was refused by the email provider (a permanent
    # refusal of the message, not of the address): it was not retried, so no retries
    # ran out (provisioning.selectors.step_refused).
    email_refused: bool = False
    # The open outage is ours, not the provider's: it refused our own credentials or
    # configuration, or gave many accounts the same refusal (the circuit was opened by
    # ``credentials``, ``refused_us`` or ``refused_alike``: provisioning.models.OPENINGS_OURS).
    outage_ours: bool = False
    # The confirmation email is held (EmailFact.HELD) behind an email circuit that is
    # ours in the same sense. Told apart from ``outage_ours``: the email can be held
    # while the workspace is still being set up, when ``outage`` is not the email's.
    email_held_ours: bool = False
    # The providers whose incident is open now (the support console's dashboard and
    # queue show it), read only while the account waits on a problem of ours (``outage_ours``,
    # ``email_held_ours``): what backs "our support team can see the problem".
    incidents: frozenset = frozenset()
    # The link is on its way on time, but the account's previous one was tried and
    # never sent: "usually arrives within a minute" would not be what just happened.
    email_after_failure: bool = False
    # The workspace step hit an error or was held behind its provider's open circuit
    # (its last error is kept): once it is made, the person is owed the "you're all set"
    # email (accounts.receivers.on_workspace_ready: ``waited``).
    workspace_waited: bool = False

    @property
    def workspace_on_time(self) -> bool:
        return (self.workspace == "pending" and not self.workspace_failures and not self.workspace_overdue
                and not self.outage)

    @property
    def next_try_scheduled(self) -> bool:
        return (self.workspace == "pending" and self.workspace_next is not None and not self.workspace_overdue
                and not self.outage)


class FalseClaim(AssertionError):
    """A sentence was asked for without the fact that backs it: a bug, never shown."""


@dataclass(frozen=True)
class Claim:
    """A sentence that claims something, with the test of the facts that back it."""

    name: str
    text: str
    backed: Callable[[Facts], bool]

    def say(self, facts: Facts, **values) -> str:
        if not self.backed(facts):
            raise FalseClaim(f"{self.name} is not backed by {facts}")
        return str(self.text).format(**values)


def _sent(f: Facts) -> bool:
    return f.email in (EmailFact.SENT, EmailFact.VERIFIED)


# The claims a page, the JSON or an email may make about one account. Each names the
# fact it needs; ``say`` below is the only caller.
SENT = Claim("sent", _("We've sent a confirmation link to {address}."), _sent)
SENDING = Claim("sending", _("We're sending a confirmation link to {address}; it usually arrives within a "
                             "minute."), lambda f: f.email == EmailFact.SENDING and not f.email_after_failure)
SENDING_AFTER_FAILURE = Claim("sending after a failure", _(
    "We're sending a confirmation link to {address}. Our last try to send you one failed on our side, so this one "
    "may take longer than usual; we keep retrying on our own."),
    lambda f: f.email == EmailFact.SENDING and f.email_after_failure)
EMAIL_TROUBLE = Claim("email trouble", _(
    "We're having trouble sending your confirmation email to {address}. That's on our side, and we're "
    "retrying on our own: next try {when}."),
    lambda f: f.email == EmailFact.RETRYING and f.email_next is not None)
EMAIL_LATE = Claim("email late", _(
    "Sending your confirmation email to {address} is taking longer than it should. That's on our side; "
    "it will go out on its own, and this page shows when it has."),
    lambda f: f.email in (EmailFact.LATE, EmailFact.RETRYING))
UNDER_A_MINUTE = Claim("under a minute", _("This usually takes under a minute; this page updates by itself."),
                       lambda f: f.workspace_on_time)
NEXT_TRY = Claim("next try", _("Next try {when}."), lambda f: f.next_try_scheduled)
# Why a workspace step stopped: only one of these is true of a stopped step.
RETRIES_RAN_OUT = Claim("retries ran out", _(
    "Our automatic retries couldn't finish setting up your workspace. That's on us."),
    lambda f: f.workspace == "failed" and not f.workspace_refused)
WORKSPACE_REFUSED = Claim("workspace refused", _(
    "The service we use to create workspaces refused our request to set up yours, so we've stopped sending it on "
    "our own. That's on us, not anything you did."),
    lambda f: f.workspace == "failed" and f.workspace_refused)
# What can still happen to a refused step, said after who has it (``_support``): support
# re-runs it from the console once the cause is fixed ("Re-run provisioning now", or
# ``account_resume``), so no sentence may say asking again is useless.
WORKSPACE_REFUSED_NEXT = Claim("workspace can be re-run", _(
    "They can start setting it up again once the cause is fixed."),
    lambda f: f.workspace == "failed" and f.workspace_refused)
# Why a confirmation email stopped: only one of these is true of a stopped email.
EMAIL_STOPPED = Claim("email retries ran out", _(
    "Our automatic retries couldn't send your confirmation email to {address}. That's on us."),
    lambda f: f.email == EmailFact.STOPPED and not f.email_refused)
EMAIL_PROVIDER_REFUSED = Claim("email refused by the provider", _(
    "The service we use to send email refused our confirmation email to {address}, so we've stopped sending it "
    "on our own. That's on us, not anything you did."),
    lambda f: f.email == EmailFact.STOPPED and f.email_refused)
# Who knows about a problem of ours that holds the account: the open incident, shown on
# the support console's dashboard and queue. No row says anyone is fixing it yet, only that it is there.
TEAM_SEES_OUR_OUTAGE = Claim("our team sees the outage", _("Our support team can see the problem."),
                             lambda f: f.outage_ours and f.outage in f.incidents)
TEAM_SEES_OUR_EMAIL_HOLD = Claim("our team sees the email hold", TEAM_SEES_OUR_OUTAGE.text,
                                 lambda f: f.email_held_ours and "email" in f.incidents)
SUPPORT_HAS_IT = Claim("support has it", _(
    "It has been passed to our support team, who answer within {reply_hours} hours (reference {reference})."),
    lambda f: bool(f.ticket))


# --- Words for one account, chosen from its facts -----------------------------------------

TITLES = {
    "setting_up": _("Setting up your workspace"),
    "delayed": _("Your workspace is taking longer than it should"),
    "outage": _("Your workspace is waiting on a problem on our side"),
    "email_outage": _("Your confirmation email is waiting on a problem on our side"),
    "email_delayed": _("Your confirmation email is taking longer than it should"),
    "needs_support": _("Passed to our support team"),
    "retries_ran_out": _("Our automatic retries ran out"),
    "refused": _("Setting up your workspace stopped"),
    "email_refused": _("Sending your confirmation email stopped"),
    "email_undeliverable": _("We can't reach your email address"),
    "unverified": _("Please confirm your email address"),
    "active": _("You're all set"),
    "disabled": _("This account is closed"),
}

WORKSPACE_READY = _("Your workspace is ready.")
WORKSPACE_CREATING = _("We're creating your workspace.")
WORKSPACE_RETRYING = _("Setting up your workspace hit a problem on our side, and we're retrying on our own.")
WORKSPACE_LATE = _("Setting up your workspace is taking longer than it should. That's on our side; it carries on "
                   "by itself, and this page updates when it's done.")
WORKSPACE_OUTAGE = _("A service we use to create workspaces is having an outage that affects everyone signing up "
                     "right now; it is not anything you did. We'll finish your workspace as soon as it recovers.")
WORKSPACE_OUR_OUTAGE = _("Creating workspaces is stopped by a problem on our side; it is not anything you did. "
                         "We'll set up your workspace as soon as it's fixed.")
EMAIL_OUTAGE = _("The service we use to send email is having an outage right now; it is not anything you did. "
                 "We'll send your confirmation link to {address} as soon as it recovers.")
EMAIL_OUR_OUTAGE = _("Sending email is stopped by a problem on our side; it is not anything you did. We'll send "
                     "your confirmation link to {address} as soon as it's fixed.")
EMAIL_REFUSED = _("Our email to {address} was refused.")
EMAIL_REFUSED_NEXT = _("If the address has a typo, correct it below and we'll send a fresh link straight away. "
                       "Everything else keeps working in the meantime.")
EMAIL_NONE = _("No confirmation link is on its way to {address} yet: ask for one below.")
NOTHING_TO_DO_FOR_WORKSPACE = _("There's nothing you need to do for your workspace; you can close this page and "
                                "log in any time to check.")
USE_IT_MEANWHILE = _("You can use your workspace in the meantime.")
# Who has a stopped step when no ticket does: the person writes to us. Each place says
# where, from what is really there: /setup/ has its "Need a hand?" card below the
# message, the home page's banner carries its own link (``Said.banner_help``), and an
# email gives the address of /help/ (``apology``'s ``help_url``).
WRITE_TO_SUPPORT = _("Write to us below and our support team will answer within {reply_hours} hours.")
WRITE_TO_SUPPORT_BANNER = _("Write to us with the link just below and our support team will answer within "
                            "{reply_hours} hours.")
WRITE_TO_SUPPORT_EMAIL = _("Write to us at {help_url} and our support team will answer within {reply_hours} hours.")
WRITE_TO_SUPPORT_WHERE = {"page": WRITE_TO_SUPPORT, "banner": WRITE_TO_SUPPORT_BANNER, "email": WRITE_TO_SUPPORT_EMAIL}
STILL_LOG_IN = _("You can still log in any time, and you don't need to sign up again.")
WHY_CONFIRM = _("Confirming lets you invite colleagues and receive billing emails.")
DIDNT_GET_IT = _("Didn't get it? Check your spam folder, or we can send it again.")
ALL_DONE = _("Your workspace is ready and your email address is confirmed.")
CLOSED = _("This account has been closed. If you think that's a mistake, contact us and we'll look into it.")

# How each fact reads on the status page's lines.
WORKSPACE_WORDS = {
    "pending": _("being created"),
    "late": _("being created, later than it should"),
    "ready": _("ready"),
    "failed": _("stopped: our automatic retries ran out"),
    "refused": _("stopped: the service that creates workspaces refused it"),
    "failed_ticket": _("stopped: passed to our support team"),
}
EMAIL_WORDS = {
    EmailFact.VERIFIED: _("confirmed"),
    EmailFact.SENT: _("confirmation link sent"),
    EmailFact.SENDING: _("sending the confirmation link"),
    EmailFact.RETRYING: _("we're having trouble sending it; next try {when}"),
    EmailFact.LATE: _("sending it is taking longer than it should"),
    EmailFact.HELD: _("waiting for our email service to recover"),
    "held_ours": _("waiting on a problem on our side"),
    EmailFact.UNDELIVERABLE: _("we couldn't deliver to this address"),
    EmailFact.STOPPED: _("we couldn't send it: our retries ran out"),
    "refused": _("we stopped sending it: the service we use to send email refused it"),
    EmailFact.NONE: _("no link on its way yet"),
}

# A link a server accepted this recently is not offered again yet: a second after a
# healthy signup, "send it again" would only confuse. Correcting the address waits for
# nothing: a person who sees a typo in it must be able to fix it at once (DESIGN
# principle 3), so it is offered whenever the address is unconfirmed.
RESEND_OFFER_AFTER = timedelta(minutes=2)
# States with nothing left to wait for: /setup/ stops updating (static/js/status.js
# stops polling when the status JSON says so: said.updating).
SETTLED = ("active", "disabled")

# The resend form's words, by where the link stands when it is offered (``offer_resend``):
# "didn't get it? send it again" only once a server accepted a link.
RESEND_WORDS = {
    EmailFact.SENT: (_("Didn't get the confirmation link?"), _("Send the link again")),
    EmailFact.STOPPED: (_("We can try sending it once more now."), _("Try sending the link again")),
    EmailFact.NONE: ("", _("Send me a confirmation link")),  # the email line already says none is on its way
}


@dataclass(frozen=True)
class Said:
    """Everything one page or the status JSON says about an account."""

    title: str
    message: str  # the status JSON's "message"; the lede of /setup/
    workspace: str  # the workspace line
    tries: str  # "2 tries so far", or ""
    email: str  # the email line
    banner: str  # the home page's email banner ("" once confirmed)
    banner_help: bool  # the banner asks the person to write to us: it shows the link to /help/
    offer_resend: bool
    offer_correct: bool
    offer_call: bool
    # Something is still in progress, so the page keeps updating by itself (and says
    # so); settled (active, disabled), there is nothing left to wait for.
    updating: bool
    resend_prompt: str  # the resend form's words ("" while it is not offered)
    resend_button: str

    def as_json(self) -> dict:
        return {"title": self.title, "workspace": self.workspace, "tries": self.tries, "email": self.email,
                "offer": {"resend": self.offer_resend, "correct_email": self.offer_correct,
                          "call": self.offer_call},
                "resend": {"prompt": self.resend_prompt, "button": self.resend_button},
                "updating": self.updating}


def _when(moment: datetime | None, f: Facts) -> str:
    """A scheduled try in words. One already due (and not overdue: a worker picks it
    up within a reconcile interval) is "soon", never a number of seconds."""
    return in_words(moment if moment is not None and moment > f.now else None, now=f.now)


def _join(*parts) -> str:
    return " ".join(str(part) for part in parts if part)


def email_sentence(f: Facts, *, where: str = "page") -> str:
    """Where the confirmation email stands, in one or two sentences, for ``where`` it
    is said (``WRITE_TO_SUPPORT_WHERE``: the status page and its JSON, or the home
    page's banner)."""
    address = f.address
    if f.email == EmailFact.SENT:
        return _join(SENT.say(f, address=address), WHY_CONFIRM, DIDNT_GET_IT if offer_resend(f) else "")
    if f.email == EmailFact.SENDING:
        sending = SENDING_AFTER_FAILURE if f.email_after_failure else SENDING
        return _join(sending.say(f, address=address), WHY_CONFIRM)
    if f.email == EmailFact.RETRYING and f.email_next is not None:
        return _join(EMAIL_TROUBLE.say(f, address=address, when=_when(f.email_next, f)), USE_IT_MEANWHILE)
    if f.email in (EmailFact.RETRYING, EmailFact.LATE):
        return _join(EMAIL_LATE.say(f, address=address), USE_IT_MEANWHILE)
    if f.email == EmailFact.HELD:
        if f.email_held_ours:
            seen = TEAM_SEES_OUR_EMAIL_HOLD.say(f) if "email" in f.incidents else ""
            return _join(str(EMAIL_OUR_OUTAGE).format(address=address), seen, USE_IT_MEANWHILE)
        return _join(str(EMAIL_OUTAGE).format(address=address), USE_IT_MEANWHILE)
    if f.email == EmailFact.UNDELIVERABLE:
        return _join(str(EMAIL_REFUSED).format(address=address), EMAIL_REFUSED_NEXT)
    if f.email == EmailFact.STOPPED:
        stopped = EMAIL_PROVIDER_REFUSED if f.email_refused else EMAIL_STOPPED
        return _join(stopped.say(f, address=address), _support(f, where=where), USE_IT_MEANWHILE)
    if f.email == EmailFact.NONE:
        return str(EMAIL_NONE).format(address=address)
    return ""


def _workspace_stopped(f: Facts, *, where: str = "page", help_url: str = "") -> str:
    """Why the workspace step stopped (refused by the provider, or out of retries),
    who has it, and for a refusal what can still happen."""
    support = _support(f, where=where, help_url=help_url)
    if f.workspace_refused:
        return _join(WORKSPACE_REFUSED.say(f), support, WORKSPACE_REFUSED_NEXT.say(f))
    return _join(RETRIES_RAN_OUT.say(f), support)


def _support(f: Facts, *, where: str = "page", help_url: str = "") -> str:
    """Who has a stopped step: the ticket's team, or the person writes to us, told
    where they can (``WRITE_TO_SUPPORT_WHERE``)."""
    if f.ticket:
        return SUPPORT_HAS_IT.say(f, reply_hours=f.reply_hours, reference=f.ticket)
    return str(WRITE_TO_SUPPORT_WHERE[where]).format(reply_hours=f.reply_hours, help_url=help_url)


def offer_call(f: Facts) -> bool:
    """Offer "Call me" where email may not be a way back: support has the account,
    our email to the address is refused, or the confirmation email waits on an
    email outage (DESIGN principle 3)."""
    if f.state in ("needs_support", "email_undeliverable"):
        return True
    return f.state == "delayed" and bool(f.outage) and f.workspace == "ready"


def offer_resend(f: Facts) -> bool:
    """"Send the link again" only where it helps and its words are true: a while after
    a server accepted the last link (at once if it took failures to get there), or
    when nothing is on its way (our retries stopped, or no link is owed). Not while
    the link is on its way or we're still retrying it on our own: nothing was sent,
    so "didn't get it?" would not be true, and the page says we're on it. Not for a
    refused address either: correcting it is what helps."""
    if f.verified:
        return False
    if f.email == EmailFact.SENT:
        return bool(f.email_failures) or f.email_sent_at is None or f.now - f.email_sent_at >= RESEND_OFFER_AFTER
    return f.email in (EmailFact.STOPPED, EmailFact.NONE)


def offer_correct(f: Facts) -> bool:
    """"Correct your address" whenever it is unconfirmed, from the first moment: a
    typo is best fixed before the link goes to the wrong inbox."""
    return not f.verified


def _email_words_key(f: Facts) -> str:
    """The email line's entry: by where the link stands, and for a stopped or held
    one, why (refused by the provider; held by a problem of ours)."""
    if f.email == EmailFact.STOPPED and f.email_refused:
        return "refused"
    if f.email == EmailFact.HELD and f.email_held_ours:
        return "held_ours"
    return f.email


def _title_and_message(f: Facts) -> tuple[str, str]:
    state = f.state
    if state == "disabled":
        return TITLES["disabled"], str(CLOSED)
    if state == "active":
        return TITLES["active"], str(ALL_DONE)
    if f.workspace == "pending":
        if f.outage:
            if f.outage_ours:
                seen = TEAM_SEES_OUR_OUTAGE.say(f) if f.outage in f.incidents else ""
                return TITLES["outage"], _join(WORKSPACE_OUR_OUTAGE, seen, NOTHING_TO_DO_FOR_WORKSPACE)
            return TITLES["outage"], _join(WORKSPACE_OUTAGE, NOTHING_TO_DO_FOR_WORKSPACE)
        if f.workspace_on_time:
            return TITLES["setting_up"], _join(WORKSPACE_CREATING, UNDER_A_MINUTE.say(f))
        if f.next_try_scheduled:
            when = _when(f.workspace_next, f)
            title = TITLES["delayed" if state == "delayed" else "setting_up"]
            return title, _join(WORKSPACE_RETRYING, NEXT_TRY.say(f, when=when), NOTHING_TO_DO_FOR_WORKSPACE)
        return TITLES["delayed"], _join(WORKSPACE_LATE, NOTHING_TO_DO_FOR_WORKSPACE)
    if f.workspace == "failed":
        title = TITLES["needs_support" if f.ticket else "refused" if f.workspace_refused else "retries_ran_out"]
        return title, _join(_workspace_stopped(f), STILL_LOG_IN)
    # The workspace is ready: what is left is the email.
    if f.email == EmailFact.STOPPED:
        title = TITLES["needs_support" if f.ticket else "email_refused" if f.email_refused else "retries_ran_out"]
        return title, _join(WORKSPACE_READY, email_sentence(f))
    if f.email == EmailFact.UNDELIVERABLE:
        return TITLES["email_undeliverable"], email_sentence(f)
    if f.email == EmailFact.HELD:
        return TITLES["email_outage"], _join(WORKSPACE_READY, email_sentence(f))
    if f.email in (EmailFact.RETRYING, EmailFact.LATE):
        return TITLES["email_delayed"], _join(WORKSPACE_READY, email_sentence(f))
    return TITLES["unverified"], _join(WORKSPACE_READY, email_sentence(f))


def say(f: Facts) -> Said:
    """The words for one account: the only place they are chosen."""
    title, message = _title_and_message(f)
    if f.workspace == "failed":
        workspace = WORKSPACE_WORDS["failed_ticket" if f.ticket else "refused" if f.workspace_refused else "failed"]
    elif f.workspace == "pending" and not f.workspace_on_time and not f.next_try_scheduled:
        workspace = WORKSPACE_WORDS["late"]
    else:
        workspace = WORKSPACE_WORDS[f.workspace]
    attempts = f.workspace_attempts
    tries = (ngettext("%(n)d try so far", "%(n)d tries so far", attempts) % {"n": attempts}
             if f.workspace == "pending" and attempts else "")
    email = str(EMAIL_WORDS[_email_words_key(f)]).format(when=_when(f.email_next, f))
    banner = "" if f.verified else email_sentence(f, where="banner")
    resend = offer_resend(f)
    prompt, button = RESEND_WORDS[f.email] if resend else ("", "")
    return Said(title=str(title), message=message, workspace=str(workspace), tries=tries, email=email,
                banner=banner, banner_help=bool(banner) and f.email == EmailFact.STOPPED and not f.ticket,
                offer_resend=resend, offer_correct=offer_correct(f),
                offer_call=offer_call(f), updating=f.state not in SETTLED, resend_prompt=str(prompt),
                resend_button=str(button))


def resend_answer(f: Facts) -> str:
    """What "send the link again" answers (and correcting the address to the one it
    already is, when no link was on its way: a fresh one is queued), from the facts
    just after it. Never points at the person's spam folder unless a server accepted
    the link; blames our side only while the link is still owed to a problem of ours."""
    if f.email == EmailFact.SENT:
        return str(RESENT_SENT).format(address=f.address)
    if f.email == EmailFact.SENDING:
        return str(RESENT_SENDING).format(address=f.address)
    if f.email in (EmailFact.RETRYING, EmailFact.LATE, EmailFact.HELD):
        return str(RESENT_TROUBLE).format(address=f.address)
    # Refused at once, stopped, or no longer owed: the page says which.
    return str(RESENT_SEE_PAGE).format(address=f.address)


def email_unchanged_answer(f: Facts) -> str:
    """What correcting the address to the one it already is answers while a link to
    it was on its way (``accounts.services.LinkOnItsWay``): nothing changed and
    nothing more was sent, so no "fresh" link; where the one on its way stands, from
    the facts just after."""
    if f.email == EmailFact.SENT:
        return EMAIL_UNCHANGED_SENT.say(f, address=f.address)
    if f.email == EmailFact.SENDING:
        return EMAIL_UNCHANGED_SENDING.say(f, address=f.address)
    if f.email in (EmailFact.RETRYING, EmailFact.LATE, EmailFact.HELD):
        return EMAIL_UNCHANGED_HELD_UP.say(f, address=f.address)
    return str(EMAIL_UNCHANGED).format(address=f.address)


def email_changed_answer(f: Facts) -> str:
    """What correcting the address answers, from the facts just after the change:
    "sent" only once a server accepted the fresh link, "on its way" while it is being
    sent, our trouble while sending email is having it."""
    if f.email == EmailFact.SENT:
        return EMAIL_CHANGED_SENT.say(f, address=f.address)
    if f.email == EmailFact.SENDING:
        return EMAIL_CHANGED_SENDING.say(f, address=f.address)
    if f.email in (EmailFact.RETRYING, EmailFact.LATE, EmailFact.HELD):
        return str(EMAIL_CHANGED_TROUBLE).format(address=f.address)
    return str(EMAIL_CHANGED).format(address=f.address)


# The apology after a wait ("all_set" email): each sentence only for what happened to
# this person, told from the facts when the email is written.
APOLOGY_WORKSPACE_READY = _("Your workspace is ready. Setting it up took longer than it should have because of a "
                            "problem on our side.")
APOLOGY_WORKSPACE_NOT_READY = _("Your workspace isn't ready yet; log in any time to see where it stands.")
APOLOGY_EMAIL_SENT = {
    "verification": _("Your confirmation email was held up by a problem on our side; it has gone out now."),
    "password_reset": _("The password link you asked for was held up by a problem on our side; it has gone out "
                        "now. If you no longer need it, you can ignore it."),
    "": _("An email we owed you was held up by a problem on our side; it has gone out now."),
}
APOLOGY_NOTHING_SPECIFIC = _("A problem on our side held things up for a while. Log in any time to see where your "
                             "account stands.")
APOLOGY_SORRY = _("Sorry for the wait, and thanks for your patience.")


def apology(f: Facts, *, workspace_waited: bool, emails_sent_after_waiting: list[str], help_url: str) -> str:
    """The apology's body, from what happened to this person: their workspace waited
    and is ready (or is not), or emails of theirs waited and a server has since
    accepted them. Where it asks them to write to us, it gives ``help_url`` (/help/):
    nothing in an email is "below"."""
    parts = []
    if workspace_waited or f.workspace != "ready":
        if f.workspace == "ready":
            parts.append(APOLOGY_WORKSPACE_READY)
        elif f.workspace == "failed":
            parts.append(_workspace_stopped(f, where="email", help_url=help_url))
        else:
            parts.append(APOLOGY_WORKSPACE_NOT_READY)
    for kind in dict.fromkeys(emails_sent_after_waiting):
        parts.append(APOLOGY_EMAIL_SENT.get(kind, APOLOGY_EMAIL_SENT[""]))
    return _join(*(parts or [APOLOGY_NOTHING_SPECIFIC]), APOLOGY_SORRY)


RESENT_SENT = _("We've sent a fresh confirmation link to {address}. If it isn't in your inbox in a few minutes, "
                "check your spam folder.")
RESENT_SENDING = _("We're sending a fresh confirmation link to {address}.")
RESENT_TROUBLE = _("We'll send a fresh confirmation link to {address} as soon as we can: sending email is having "
                   "trouble on our side right now. This page shows when it has gone.")
RESENT_SEE_PAGE = _("We tried to send a fresh confirmation link to {address}; this page shows how that went.")
# Correcting the address to the one it already is, while a link to it is on its way:
# nothing changes and nothing more is sent (``email_unchanged_answer``).
EMAIL_UNCHANGED_SENT = Claim("unchanged, link sent", _(
    "Your address is already {address}, so nothing changed: we've sent your confirmation link there. If it isn't "
    "in your inbox in a few minutes, check your spam folder, or ask for it again on this page."),
    lambda f: f.email == EmailFact.SENT)
EMAIL_UNCHANGED_SENDING = Claim("unchanged, link on its way", _(
    "Your address is already {address}, so nothing changed: the confirmation link on its way goes there, and we "
    "haven't sent another. This page shows when it has been sent; if it hasn't reached you a few minutes after "
    "that, you can ask for it again on this page."),
    lambda f: f.email == EmailFact.SENDING)
EMAIL_UNCHANGED_HELD_UP = Claim("unchanged, link held up", _(
    "Your address is already {address}, so nothing changed: the confirmation link on its way goes there, and we "
    "haven't sent another. Sending it is held up on our side; it will go out on its own, and this page shows when "
    "it has."),
    lambda f: f.email in (EmailFact.RETRYING, EmailFact.LATE, EmailFact.HELD))
EMAIL_UNCHANGED = _("Your address is already {address}, so nothing changed. This page shows where the "
                    "confirmation link to it stands.")
EMAIL_CHANGED_SENT = Claim("changed and sent", _(
    "Thanks: we've changed your address to {address} and sent a fresh confirmation link there. Links sent to the "
    "old address no longer work."), _sent)
EMAIL_CHANGED_SENDING = Claim("changed, link on its way", _(
    "Thanks: we've changed your address to {address}, and a fresh confirmation link is on its way there; this "
    "page shows when it has been sent. Links sent to the old address no longer work."),
    lambda f: f.email == EmailFact.SENDING)
EMAIL_CHANGED_TROUBLE = _("Thanks: we've changed your address to {address}. We'll send a fresh confirmation link "
                          "there as soon as we can: sending email is having trouble on our side right now, and this "
                          "page shows when it has gone. Links sent to the old address no longer work.")
# Where the fresh link stands otherwise (refused at once, or no longer owed), the page says.
EMAIL_CHANGED = _("Thanks: we've changed your address to {address}, and links sent to the old address no longer "
                  "work. This page shows where the confirmation link to it stands.")
