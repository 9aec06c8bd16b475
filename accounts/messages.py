"""Every user-facing word about an account's state and our failures, in one place.

Each entry says what happened, owns it when it is on us, says what happens next
and when, and what (if anything) the person can do (DESIGN principle 4). Templates,
the status JSON, emails and tests all read from here; read them aloud when editing.

Words about one account are chosen from its ``Facts`` (derived once, in
``accounts.selectors.account_overview``) by ``say``, and only there. A sentence that
claims something names the fact that backs it (``Claim``): asked to speak without
that fact, it refuses (``FalseClaim``), so a page cannot render "we've sent" for an
email no server accepted, a time the schedule does not back, or "our support team
has it" without a ticket.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext


@dataclass(frozen=True)
class Message:
    title: str
    happened: str
    next: str
    action: str = ""

    def sentence(self, **values) -> str:
        """The one-sentence form (status JSON, banners): what happened + what next."""
        return " ".join(str(part).format(**values) for part in (self.happened, self.next) if part)


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
    STOPPED = "stopped"  # our retries ran out
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
                             "minute."), lambda f: f.email == EmailFact.SENDING)
EMAIL_TROUBLE = Claim("email trouble", _(
    "We're having trouble sending your confirmation email to {address}. That's on our side, not your "
    "address, and we're retrying on our own: next try {when}."),
    lambda f: f.email == EmailFact.RETRYING and f.email_next is not None and f.email_next > f.now)
EMAIL_LATE = Claim("email late", _(
    "Sending your confirmation email to {address} is taking longer than it should. That's on our side; "
    "it will go out on its own, and this page shows when it has."),
    lambda f: f.email in (EmailFact.LATE, EmailFact.RETRYING))
UNDER_A_MINUTE = Claim("under a minute", _("This usually takes under a minute; this page updates by itself."),
                       lambda f: f.workspace_on_time)
NEXT_TRY = Claim("next try", _("Next try {when}."), lambda f: f.next_try_scheduled)
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
WORKSPACE_STOPPED = _("Our automatic retries couldn't finish setting up your workspace. That's on us.")
EMAIL_STOPPED = _("Our automatic retries couldn't send your confirmation email to {address}. That's on us.")
EMAIL_OUTAGE = _("The service we use to send email is having an outage right now; it is not anything you did. "
                 "We'll send your confirmation link to {address} as soon as it recovers.")
EMAIL_REFUSED = _("Our email to {address} was refused.")
EMAIL_REFUSED_NEXT = _("If the address has a typo, correct it below and we'll send a fresh link straight away. "
                       "Everything else keeps working in the meantime.")
EMAIL_NONE = _("No confirmation link is on its way to {address} yet: ask for one below.")
NOTHING_TO_DO_FOR_WORKSPACE = _("There's nothing you need to do for your workspace; you can close this page and "
                                "log in any time to check.")
USE_IT_MEANWHILE = _("You can use your workspace in the meantime.")
WRITE_TO_SUPPORT = _("Write to us below and our support team will answer within {reply_hours} hours.")
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
    "failed_ticket": _("stopped: passed to our support team"),
}
EMAIL_WORDS = {
    EmailFact.VERIFIED: _("confirmed"),
    EmailFact.SENT: _("confirmation link sent"),
    EmailFact.SENDING: _("sending the confirmation link"),
    EmailFact.RETRYING: _("we're having trouble sending it; next try {when}"),
    EmailFact.LATE: _("sending it is taking longer than it should"),
    EmailFact.HELD: _("waiting for our email service to recover"),
    EmailFact.UNDELIVERABLE: _("we couldn't deliver to this address"),
    EmailFact.STOPPED: _("we couldn't send it: our retries ran out"),
    EmailFact.NONE: _("no link on its way yet"),
}

# A link a server accepted this recently is not offered again yet: a second after a
# healthy signup, "send it again" and "correct your address" would only confuse.
RESEND_OFFER_AFTER = timedelta(minutes=2)
_TROUBLE = (EmailFact.RETRYING, EmailFact.LATE, EmailFact.HELD, EmailFact.STOPPED, EmailFact.NONE)


@dataclass(frozen=True)
class Said:
    """Everything one page or the status JSON says about an account."""

    title: str
    message: str  # the status JSON's "message"; the lede of /setup/
    workspace: str  # the workspace line
    tries: str  # "2 tries so far", or ""
    email: str  # the email line
    banner: str  # the home page's email banner ("" once confirmed)
    offer_resend: bool
    offer_correct: bool

    def as_json(self) -> dict:
        return {"title": self.title, "workspace": self.workspace, "tries": self.tries, "email": self.email,
                "offer": {"resend": self.offer_resend, "correct_email": self.offer_correct}}


def _join(*parts) -> str:
    return " ".join(str(part) for part in parts if part)


def email_sentence(f: Facts) -> str:
    """Where the confirmation email stands, in one or two sentences."""
    address = f.address
    if f.email == EmailFact.SENT:
        return _join(SENT.say(f, address=address), WHY_CONFIRM, DIDNT_GET_IT if offer_resend(f) else "")
    if f.email == EmailFact.SENDING:
        return _join(SENDING.say(f, address=address), WHY_CONFIRM)
    if f.email == EmailFact.RETRYING and f.email_next is not None and f.email_next > f.now:
        return _join(EMAIL_TROUBLE.say(f, address=address, when=in_words(f.email_next, now=f.now)), USE_IT_MEANWHILE)
    if f.email in (EmailFact.RETRYING, EmailFact.LATE):
        return _join(EMAIL_LATE.say(f, address=address), USE_IT_MEANWHILE)
    if f.email == EmailFact.HELD:
        return _join(str(EMAIL_OUTAGE).format(address=address), USE_IT_MEANWHILE)
    if f.email == EmailFact.UNDELIVERABLE:
        return _join(str(EMAIL_REFUSED).format(address=address), EMAIL_REFUSED_NEXT)
    if f.email == EmailFact.STOPPED:
        return _join(str(EMAIL_STOPPED).format(address=address), _support(f), USE_IT_MEANWHILE)
    if f.email == EmailFact.NONE:
        return str(EMAIL_NONE).format(address=address)
    return ""


def _support(f: Facts) -> str:
    if f.ticket:
        return SUPPORT_HAS_IT.say(f, reply_hours=f.reply_hours, reference=f.ticket)
    return str(WRITE_TO_SUPPORT).format(reply_hours=f.reply_hours)


def offer_resend(f: Facts) -> bool:
    """"Send the link again" only once it can help: after trouble, or a while after
    a server accepted the last link. Not for a refused address (correct it instead)."""
    if f.verified or f.email in (EmailFact.UNDELIVERABLE, EmailFact.SENDING, EmailFact.HELD):
        return False
    if f.email == EmailFact.SENT:
        return bool(f.email_failures) or f.email_sent_at is None or f.now - f.email_sent_at >= RESEND_OFFER_AFTER
    return f.email in _TROUBLE


def offer_correct(f: Facts) -> bool:
    """"Correct your address" after the first failure or after a delay, never while
    the first link is on time."""
    if f.verified:
        return False
    return f.email in (EmailFact.UNDELIVERABLE, *_TROUBLE) or bool(f.email_failures) or offer_resend(f)


def _title_and_message(f: Facts) -> tuple[str, str]:
    state = f.state
    if state == "disabled":
        return TITLES["disabled"], str(CLOSED)
    if state == "active":
        return TITLES["active"], str(ALL_DONE)
    if f.workspace == "pending":
        if f.outage:
            return TITLES["outage"], _join(WORKSPACE_OUTAGE, NOTHING_TO_DO_FOR_WORKSPACE)
        if f.workspace_on_time:
            return TITLES["setting_up"], _join(WORKSPACE_CREATING, UNDER_A_MINUTE.say(f))
        if f.next_try_scheduled:
            when = in_words(f.workspace_next, now=f.now)
            title = TITLES["delayed" if state == "delayed" else "setting_up"]
            return title, _join(WORKSPACE_RETRYING, NEXT_TRY.say(f, when=when), NOTHING_TO_DO_FOR_WORKSPACE)
        return TITLES["delayed"], _join(WORKSPACE_LATE, NOTHING_TO_DO_FOR_WORKSPACE)
    if f.workspace == "failed":
        title = TITLES["needs_support" if f.ticket else "retries_ran_out"]
        return title, _join(WORKSPACE_STOPPED, _support(f), STILL_LOG_IN)
    # The workspace is ready: what is left is the email.
    if f.email == EmailFact.STOPPED:
        return TITLES["needs_support" if f.ticket else "retries_ran_out"], _join(WORKSPACE_READY, email_sentence(f))
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
        workspace = WORKSPACE_WORDS["failed_ticket" if f.ticket else "failed"]
    elif f.workspace == "pending" and not f.workspace_on_time and not f.next_try_scheduled:
        workspace = WORKSPACE_WORDS["late"]
    else:
        workspace = WORKSPACE_WORDS[f.workspace]
    attempts = f.workspace_attempts
    tries = (ngettext("%(n)d try so far", "%(n)d tries so far", attempts) % {"n": attempts}
             if f.workspace == "pending" and attempts else "")
    email = str(EMAIL_WORDS[f.email]).format(when=in_words(f.email_next, now=f.now))
    banner = "" if f.verified else email_sentence(f)
    return Said(title=str(title), message=message, workspace=str(workspace), tries=tries, email=email,
                banner=banner, offer_resend=offer_resend(f), offer_correct=offer_correct(f))


def resend_answer(f: Facts) -> str:
    """What "send the link again" answers, from the facts just after it. Never points
    at the person's spam folder unless a server accepted the link."""
    if f.email == EmailFact.SENT:
        return str(RESENT_SENT).format(address=f.address)
    if f.email == EmailFact.SENDING:
        return str(RESENT_SENDING).format(address=f.address)
    return str(RESENT_TROUBLE).format(address=f.address)


RESENT_SENT = _("We've sent a fresh confirmation link to {address}. If it isn't in your inbox in a few minutes, "
                "check your spam folder.")
RESENT_SENDING = _("We're sending a fresh confirmation link to {address}.")
RESENT_TROUBLE = _("We'll send a fresh confirmation link to {address} as soon as we can: sending email is having "
                   "trouble on our side right now. This page shows when it has gone.")


# Answers to things people do.
LOGIN_FAILED = _("That email and password don't match an account we can open. Check them and try "
                 "again, or reset your password. If you just signed up, your account is saved: "
                 "use the password you chose.")
WELCOME_BACK = _("Welcome back: your account was already saved. Here is where things stand; "
                 "we've picked up any step that hadn't finished.")
SIGNUP_TAKEN = Message(
    title=_("This address already has an account"),
    happened=_("An account already uses this email address."),
    next=_("If it's yours, log in with your password, or reset it if you've forgotten it. If setup "
           "wasn't finished, logging in shows where it stands. We've let the address's owner know."),
)
SIGNUP_STRICT = Message(
    title=_("Check your email"),
    happened=_("Thanks. We've sent a confirmation to {address}."),
    next=_("You can also log in now with the password you chose."),
)
EMAIL_CHANGED = _("Thanks: we've changed your address to {address} and sent a fresh confirmation "
                  "link there. Links sent to the old address no longer work.")
# Correcting the address to one another account uses. Unlike SIGNUP_TAKEN, nobody is
# emailed here, so the words must not say the owner was told.
EMAIL_TAKEN = _("Another account already uses this address, so we can't move yours to it. Check it "
                "for typos; if that other account is yours, log in to it instead, or contact us and "
                "we'll sort it out. Your current address still works.")
EMAIL_ALREADY_VERIFIED = _("Your address is already confirmed, so there is nothing to change here. "
                           "Contact us if you need to move your account to a new address.")
VERIFIED = _("Thanks, your email address is confirmed.")
# A used link opened by the person it confirmed, signed in: nothing failed.
VERIFY_ALREADY_DONE = Message(
    title=_("Your address is already confirmed"),
    happened=_("{address} is confirmed, so this link has nothing left to do."),
    next=_("Everything that needs a confirmed address works for you now."),
)
CODE_LOGIN_FAILED = _("That code doesn't work with this email address. A code works once, for {minutes} minutes, "
                      "and stops after a few wrong tries. Check both and try again, or reach us as below and "
                      "we'll read you a fresh one. You can always log in with your password too.")
CODE_LOGIN_OK = _("You're signed in. Here is where your account stands.")
VERIFY_CONFIRM = Message(
    title=_("Confirm your email address"),
    happened=_("This link confirms that {address} is yours."),
    next=_("Press the button to confirm it. Nothing changes until you do."),
)
VERIFY_LINK_BAD = Message(
    title=_("This link no longer works"),
    happened=_("This confirmation link has expired, was already used, or was replaced by a newer one."),
    next=_("Log in and we'll send you a fresh link from your setup page. If your address is already "
           "confirmed, there's nothing more to do."),
)

# When something on our side fails before a page can answer (error pages). These
# render without the database or the request: plain values only.
UNAVAILABLE = Message(
    title=_("We can't take requests for a minute"),
    happened=_("Part of our system isn't answering right now. That's on us, not anything you did. "
               "Nothing you just sent was saved, and accounts that already exist are safe."),
    next=_("Please try again in a minute; it usually comes back quickly. If you were signing up, "
           "you'll need to fill in the form once more."),
    action=_("If it still doesn't work, email us at {support_email} and we'll help you directly."),
)
NOT_FOUND = Message(
    title=_("We can't find that page"),
    happened=_("The address may have a typo, or the page has moved."),
    next=_("If you were signing up or checking on your account, one of these will get you there."),
)
BAD_REQUEST = Message(
    title=_("We couldn't read what your browser sent"),
    happened=_("The form arrived in a shape we can't read (for example in an old text encoding), "
               "so nothing in it was saved or changed."),
    next=_("Please go back, reload the page and send it again."),
    action=_("If it keeps happening, email us at {support_email} and we'll help you directly."),
)
SERVER_ERROR = Message(
    title=_("Something broke on our side"),
    happened=_("That's our fault, not yours, and it has been recorded so we can fix it."),
    next=_("If you were signing up, log in with the email and password you chose to see whether "
           "your account was saved; if it wasn't, signing up again is safe."),
    action=_("Still stuck? Email us at {support_email}."),
)

PASSWORD_RESET_SENT = Message(
    title=_("Check your email"),
    happened=_("If an account uses {address}, we've sent it a link to choose a new password."),
    next=_("It usually arrives within a minute and works for 3 hours. Nothing changes until you "
           "use it; your current password keeps working in the meantime."),
    action=_("No email after a few minutes? Check your spam folder and the spelling of the "
             "address, or contact us and a person will help you get in."),
)
RESET_ADDRESS_UNKNOWN = _("the address you entered")
PASSWORD_RESET_LINK_BAD = Message(
    title=_("This password link no longer works"),
    happened=_("This link has expired, was already used, or was replaced when your password "
               "changed. Your password is unchanged."),
    next=_("Ask for a fresh link below; it takes a minute."),
    action=_("Send me a fresh link"),
)
PASSWORD_RESET_DONE = _("Your new password is saved and you're logged in. It works from now on; "
                        "the old one no longer does.")
PASSWORD_RESET_DONE_VERIFIED = _("Your new password is saved and you're logged in. Because the link "
                                 "reached you, your email address is confirmed too.")

# Rate limits: what was paused, in the words of the person who did it. The title
# carries the wait itself, so the page never says "a moment" above "51 minutes".
RATE_LIMITED = Message(
    title=_("Paused: please try again {when}"),
    happened=_("We've paused {what} from here for a while: there were many attempts in a short time, and "
               "pausing keeps accounts safe."),
    next=_("You can try again {when}."),
    action=_("Stuck, or think this is a mistake? Email us at {support_email} and a person will "
             "answer within {reply_hours} hours."),
)
# With SUPPORT_PHONE set, the page says "call us" and gives the number.
RATE_LIMITED_ACTION_PHONE = _("Need us sooner? Call us on {support_phone}, or email us at {support_email} and a "
                              "person will answer within {reply_hours} hours.")
RATE_LIMITED_WHAT = {
    "": _("this form"),
    "signup": _("signing up"),
    "login": _("logging in"),
    "password_reset": _("sending password links"),
    "resend": _("sending confirmation links"),
    "change_email": _("changing the email address"),
    "help": _("sending messages to our team"),
    "login_code": _("signing in with a code"),
    "callback": _("asking for a call"),
}
# What the paused request did and did not keep: each is a fact of what the refused
# request wrote (nothing) and of what the page keeps (only /help/ keeps the form).
RATE_LIMITED_KEPT = {
    "": _("Nothing from this attempt was sent or saved, and what you typed was not kept: you'll need to "
          "fill in the form again. Anything you saved before is still there."),
    "signup": _("No account was made from this attempt, and what you typed was not kept: you'll need to fill "
                "in the form again. If you signed up before, that account is still saved."),
    "login": _("Your password wasn't checked this time and nothing changed on any account. A browser you've "
               "logged in with before can still log in."),
    "password_reset": _("No new link was sent this time, and no password was changed."),
    "resend": _("No new link was sent this time; your account and address are unchanged."),
    "change_email": _("Your address was not changed this time; it is still the one on your setup page."),
    "help": _("Your message has not been sent yet. It is still in the form below, so you can send it "
              "{when} without typing it again."),
    "login_code": _("Your code wasn't checked this time, so it wasn't used up."),
    "callback": _("Your request for a call was not sent this time, and nothing was saved."),
}

EMAIL_SUBJECTS = {
    "verification": _("Confirm your email address"),
    "signup_attempt": _("Someone — perhaps you — tried to sign up with your email address"),
    "all_set": _("You're all set — sorry for the wait"),
    "password_reset": _("Reset your password"),
    "support": _("A message from our support team"),
    "abandon_warning": _("Is this your account? It will be removed in a week"),
}

def in_seconds_words(seconds: float) -> str:
    """A wait in seconds as a person says it: "in about 5 minutes"."""
    return in_words(timezone.now() + timedelta(seconds=seconds))


def in_words(when: datetime | None, *, now: datetime | None = None) -> str:
    """A future time as a person says it: "in about two minutes"."""
    if when is None:
        return str(_("soon"))
    seconds = (when - (now or timezone.now())).total_seconds()
    if seconds < 60:
        return str(_("in under a minute"))
    minutes = round(seconds / 60)
    if minutes < 60:
        return ngettext("in about %(n)d minute", "in about %(n)d minutes", minutes) % {"n": minutes}
    hours = round(minutes / 60)
    return ngettext("in about %(n)d hour", "in about %(n)d hours", hours) % {"n": hours}


# --- Password reset while the email provider is down (the breaker is open) -----------------
# The reset-sent page must not promise "within a minute" while we know email is late.
PASSWORD_RESET_SENT_DELAYED = Message(
    title=_("Your link is on its way, but late"),
    happened=_("If an account uses {address}, a link to choose a new password is waiting to go to it."),
    next=_("Sending email is delayed on our side right now: the service we use to send it is having a problem, "
           "not anything you did. We keep trying on our own and the link goes out as soon as it recovers; it "
           "works for 3 hours from then. Nothing changes until you use it; your current password keeps working."),
    action=_("Need to get in sooner? Log in with your password if you know it, or ask us to call you."),
)
