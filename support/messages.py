"""Every word the support app says: to the person (/help/, acknowledgements) and to
the support person (the console). One place, so copy can be read and reviewed
together; templates, services and tests read from here."""
from __future__ import annotations

import math

from django.conf import settings
from django.utils import formats, timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.messages import Message, in_words
from provisioning.durable import OUTAGE

# --- To the person ------------------------------------------------------------------
HELP_INTRO = _("Tell us what's wrong and a person on our team will reply by email within {reply_hours} hours. "
               "If you signed up, logging in with the password you chose always shows where your account stands.")
# Signed in, the account exists: saying it is saved is a fact.
HELP_INTRO_SIGNED_IN = _("Tell us what's wrong and a person on our team will reply by email within {reply_hours} "
                         "hours. Your account is saved, and your account details are attached for you.")
# Shown after /help/, identical for a registered and an unknown address (only the
# reference differs, and references are random: see support.models).
HELP_RECEIVED = Message(
    title=_("We've got your message"),
    happened=_("Thanks for writing. Your message has reached our support team."),
    next=_("A person will reply to {email} within {reply_hours} hours. You don't need to write again; "
           "if you do, mention your reference."),
)
ACK_BODY = _("Thanks for writing to us. A person on our team will read your message and reply within "
             "{reply_hours} hours; you don't need to write again.\n\n"
             "If you didn't write to us, you can ignore this email.")

# --- Signing in to the console ---------------------------------------------------------
CONSOLE_PAUSED = Message(
    title=_("Signing in is paused for a while"),
    happened=_("There were too many wrong sign-ins to the support console, for this account or from this "
               "network, so we paused signing in to keep customers' accounts safe. Nothing in the console "
               "changed."),
    next=_("You can try again {when}."),
    action=_("If you didn't make these attempts, tell whoever runs the console: someone may be guessing "
             "your password."),
)

# A wrong password at the console's first step. Django's own words say both fields
# may be case-sensitive; the email address is not (accounts.models.normalize_email).
CONSOLE_LOGIN_FAILED = _("That email address and password don't match a staff account. Check the password (it is "
                         "case-sensitive; the email address is not) and try again.")
SECOND_FACTOR_TITLE = _("Two-step sign-in")
SECOND_FACTOR_INTRO = _("Your password was right. Now enter the 6-digit code your authenticator app shows for "
                        "the support console, or one of your backup codes.")
SECOND_FACTOR_WRONG = _("That code didn't work. Codes from the app change every 30 seconds: enter the one it "
                        "shows now. A backup code works once. After several wrong codes you'll have to wait a "
                        "little longer before each try.")
SECOND_FACTOR_LOST = _("Lost your phone and your backup codes? Ask whoever runs the console for a one-time "
                       "code: they run manage.py addstatictoken with your email address.")
ENROL_TITLE = _("Set up two-step sign-in")
ENROL_INTRO = _("The console can act for any customer, so signing in needs your password and a code from "
                "your phone. Scan this QR code with an authenticator app (Google Authenticator, Microsoft "
                "Authenticator, 1Password, FreeOTP…), or type the key into it, then enter the 6-digit code it "
                "shows.")
ENROL_WRONG = _("That code didn't match. Check that the app shows the support console entry you just added, "
                "and enter the code it shows now.")
BACKUP_CODES_TITLE = _("Your backup codes")
BACKUP_CODES_INTRO = _("Two-step sign-in is on. If you ever lose your phone, each of these codes signs you in "
                       "once instead of the app. Keep them somewhere safe, away from your phone: they are "
                       "shown only now. Any backup codes you had before no longer work.")

# --- Times in the console ---------------------------------------------------------------


def console_time(moment) -> str:
    """A timestamp as every console page writes it: in the support team's time zone
    (TIME_ZONE) and the one DATETIME_FORMAT (config/formats: "5 Mar 2025, 14:03");
    "—" for none. Templates use it as the ``console_time`` filter."""
    if moment is None:
        return "—"
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def console_duration(start, end=None, *, depth: int = 2) -> str:
    """How long from ``start`` to ``end`` (now if None), as every console page says it:
    Django's ``timesince`` ("3 hours, 5 minutes"; ``depth`` units at most), except
    under a minute, which it would call "0 minutes" ("waiting 0 minutes" reads as no
    wait at all, or a broken clock). Templates use it as the ``console_duration``
    filter."""
    end = end or timezone.now()
    if (end - start).total_seconds() < 60:
        return str(_("less than a minute"))
    return timesince(start, end, depth=depth)


def time_zone_name() -> str:
    """The zone console times are in, by name ("Europe/Berlin"), for sentences that
    give a time to act by."""
    return timezone.get_current_timezone_name()


# --- The lifecycle vocabulary, as the console shows it --------------------------------
STATE_LABELS = {
    "setting_up": _("setting up"),
    "delayed": _("delayed"),
    "needs_support": _("needs support"),
    "email_undeliverable": _("email undeliverable"),
    "unverified": _("unverified"),
    "active": _("active"),
    "disabled": _("disabled"),
    None: _("no account"),
}

# --- What failed, in plain words (the queue and the ticket page) -------------------------
# A stopped step leads with why it stopped (provisioning.selectors.step_refused): the
# provider refused it (asked again unchanged, it answers the same: the console's own
# button runs it again once what it refused is fixed), or our retries ran out on errors.
FAILED_WORKSPACE = _("Retries ran out. Workspace setup stopped after {tries}: {detail}")
REFUSED_WORKSPACE = _("Provider refused it; retried unchanged it gets the same answer, so fix what it refused "
                      "(its answer follows), then Re-run provisioning. Workspace setup stopped after {tries}: "
                      "{detail}")
RETRYING_WORKSPACE = _("Workspace setup is retrying ({tries} so far): {detail}")
# Pending while its provider's circuit is open: held, as the ticket's "Next retry" says,
# until what ``held_until`` reads from what opened the circuit.
HELD_WORKSPACE = _("Workspace setup is held until {until} ({tries} so far): {detail}")
PENDING_WORKSPACE = _("Workspace is being set up")
FAILED_EMAIL = _("Confirmation email couldn't be sent after {tries}: {detail}")
REFUSED_EMAIL = _("Email provider refused it; sent again unchanged it gets the same answer, so fix what it "
                  "refused (its answer follows), then Resend verification. Confirmation email stopped after "
                  "{tries}: {detail}")
UNDELIVERABLE_EMAIL = _("Our email to this address was refused: {detail}")
RETRYING_EMAIL = _("Confirmation email not sent yet ({tries} so far): {detail}")
# Pending while the email provider's circuit is open, chosen as HELD_WORKSPACE is.
HELD_EMAIL = _("Confirmation email is held until {until} ({tries} so far): {detail}")
PENDING_EMAIL = _("Confirmation email not sent yet")
# A step still owed while its provider's incident is open waits on that incident.
WAITS_ON_INCIDENT = _("Waiting on the open {provider} outage (see Incidents)")
# Said only when every step is done: the workspace exists and no email is failing or owed.
NOTHING_FAILING = _("Nothing is failing now")
NO_ACCOUNT = _("No account uses this address")
# A closed account: closing cancelled what was owed and nothing runs for it, so no
# step's failure (nor its "then Re-run provisioning", which a closed account refuses)
# is the thing to act on.
ACCOUNT_CLOSED_FAILURE = _("Account closed: nothing is set up or sent for it any more. Reopen account brings it "
                           "back, with what stopped re-run.")

# When a pending step runs next (the account and ticket pages): read from the circuit
# and the step's own time, so a time already past is never "in under a minute".
NEXT_RETRY_HELD = _("held until {until} (its circuit is open)")
NEXT_RETRY_DUE = _("due now")
# A not-urgent email (the apology) is not sent while the person's other emails are owed
# (accounts.emails._owed_first): it has no time of its own until they are sent or give up.
NEXT_RETRY_AFTER_OTHERS = _("after the person's other emails")


# What a step held behind its provider's open circuit waits for, by what opened the
# circuit (provisioning.models.BreakerOpening, read while it is open): an outage of
# the provider's passes when it recovers; a refusal of ours (REFUSED_OURS) only once we
# fix what it refused; the same refusal for many accounts once the provider accepts
# our requests again (a probe that passes closes the circuit).
HELD_UNTIL = {
    "outage": _("the provider recovers"),
    "credentials": _("we fix our credentials, which the provider refused"),
    "refused_us": _("we fix how we reach the provider, which refused us"),
    "refused_alike": _("the provider accepts our requests again (it gave many accounts the same refusal)"),
}
# A step's last error when its turn came while the circuit was open (durable.OUTAGE):
# no call was made. Said in place of the stored detail, which older rows hold as
# "the provider is having an outage" whatever opened the circuit.
HELD_DETAIL = _("Its turn came while the provider's circuit was open, so no call was made.")


def held_until(opened_by: str) -> str:
    """What a step behind an open circuit waits for, from what opened it (an
    outage: it stopped answering or kept failing; or nothing recorded): "held until
    ...", "goes through once ..."."""
    return str(HELD_UNTIL.get(opened_by, HELD_UNTIL["outage"]))


def step_error(code: str, detail: str) -> str:
    """A step's last error as the console says it: its stored detail, except for a
    turn held behind the open circuit (``HELD_DETAIL``)."""
    return str(HELD_DETAIL) if code == OUTAGE else detail


def next_retry(*, next_attempt_at, held_by: str | None, now) -> str:
    """A pending step's next try: held behind its provider's open circuit
    (``held_by``: what opened it; None while it is closed), due now (its time has
    come or passed), or when, in words."""
    if held_by is not None:
        return str(NEXT_RETRY_HELD).format(until=held_until(held_by))
    if next_attempt_at is None or next_attempt_at <= now:
        return str(NEXT_RETRY_DUE)
    return in_words(next_attempt_at, now=now)


def provider_now(*, failing: bool, refused_code: str = "") -> str:
    """The workspace provider as a ticket says it: a closed circuit means it answers,
    not that its answers are yes; ``refused_code`` is this account's last answer when
    that was a refusal for good, so a re-run is not offered as if it would now pass."""
    if failing:
        return ""
    text = str(_("answering (circuit closed)"))
    if refused_code:
        text += str(_("; its last answer to this account was a refusal ({error})")).format(
            error=error_words(refused_code))
    return text


def tries(n: int) -> str:
    return ngettext("%(n)d try", "%(n)d tries", n) % {"n": n}


def other_emails_in_trouble(n: int) -> str:
    """Emails besides the confirmation link still owed, whose last try failed with an
    error of its own."""
    return ngettext("%(n)d other email to them not sent yet: its last try failed",
                    "%(n)d other emails to them not sent yet: their last try failed", n) % {"n": n}


def other_emails_held(n: int, *, circuit_open: bool) -> str:
    """Emails besides the confirmation link still owed, whose last try was held behind
    the email provider's open circuit (no call made): held now while it is open (an
    outage of the provider's or of ours, such as our credentials refused), as the
    ticket's "Next retry" says; once it has closed, that outage is over."""
    if circuit_open:
        return ngettext("%(n)d other email to them held behind the email outage (its circuit is open)",
                        "%(n)d other emails to them held behind the email outage (its circuit is open)",
                        n) % {"n": n}
    return ngettext("%(n)d other email to them not sent yet: its last try was held by an email outage that has "
                    "since ended",
                    "%(n)d other emails to them not sent yet: their last try was held by an email outage that "
                    "has since ended", n) % {"n": n}


# --- Timeline lines ------------------------------------------------------------------
OPENED = _("Ticket opened: {reason}")
DIAGNOSTICS = _("Automation ran out of retries on the {what} after {tries} ({counted} counted towards the "
                "limit). Last error: {code} — {detail}")
DIAGNOSTICS_REFUSED = _("The provider refused the {what}, so automation stopped after {tries} ({counted} "
                        "counted towards the limit): retried unchanged it gets the same answer. Fix what it "
                        "refused, then press {button} on this ticket. Refusal: {code} — {detail}")
STEP_NAMES = {"workspace": _("workspace"), "email": _("confirmation email")}
# The console button that runs a stopped step again (BUTTONS below), by step.
STEP_BUTTONS = {"workspace": "rerun", "email": "resend"}
READY_RESOLVED = _("The workspace is ready: resolved automatically. The person gets the \"you're all set\" email.")
HEALED_RESOLVED = _("The account has healed (it is {state} now): resolved automatically.")
READY_KEPT_OPEN_MESSAGE = _("The workspace is ready and the person gets the \"you're all set\" email, but "
                            "they wrote to us since our last reply: read it, then resolve.")
READY_KEPT_OPEN_STATE = _("The workspace is ready, but the account still needs you: it is {state}.")
OUR_EMAIL_FAILED = _("Our email to {address} could not be delivered ({code}): they may not have our reply.")
OUR_ACK_FAILED = _("Our automatic acknowledgement to {address} could not be delivered ({code}): they may not "
                   "know we got their message.")
CLOSED_RESOLVED = _("The account was closed ({reason}): resolved, nothing more will be done for it.")
ALREADY_HANDLED = _("That click was already handled; nothing was done twice.")

# --- Console buttons: what each does, shown on its confirmation page ---------------------------
BUTTONS = {
    "rerun": (_("Re-run provisioning now"),
              _("Creates the workspace again right now, with a fresh set of automatic retries. Safe to "
                "repeat: the provider never creates a second workspace.")),
    "resend": (_("Resend verification"),
               _("Sends the confirmation link to the account's address again (an email still waiting is "
                 "sent now instead of adding another).")),
    "correct_email": (_("Correct the email address"),
                      _("Changes the account's address while it is unverified. Links sent to the old address "
                        "stop working and the new address gets a fresh confirmation link.")),
    "mark_verified": (_("Mark email verified — identity confirmed by phone"),
                      _("Only after you have called the number on the account and confirmed who they are. "
                        "Marks the address confirmed without the link.")),
    "signin_code": (_("Issue a one-time sign-in code"),
                    _("Shows an 8-digit code once, to read out over the phone. The person enters it with their "
                      "email address at /login/code/. It works once, for {minutes} minutes, and replaces any "
                      "earlier code.")),
    "reply": (_("Reply"),
              _("Sends your reply by email through the outbox (retried if the email provider is slow) and "
                "records it on the ticket.")),
    "resolve": (_("Resolve"),
                _("Closes the ticket. If the person writes again, a new ticket opens. While they wait for a "
                  "call, record the call first: once we have called and nobody answered, resolving closes "
                  "their call-back request too, and they can ask again.")),
    "close": (_("Close account"),
              _("Closes the account for good, for spam or at the person's request: logging in then fails like "
                "any wrong password, their sessions end, nothing more is sent or set up for them, any "
                "call-back they asked for is cancelled, and their ticket is resolved. Reopen lets them log in "
                "again and re-runs what was stopped; a cancelled call-back stays cancelled, and they can ask "
                "again.")),
    "reopen": (_("Reopen account"),
               _("The person can log in again, and every step that was stopped when the account was closed "
                 "runs again with fresh retries.")),
    "rerun_all": (_("Re-run all refused alike"),
                  _("Re-arms, with fresh retries, every account's step that stopped with this incident's refusal "
                    "({code}), the same as manage.py retry_setup --all-failed --code {code}. Only once what was "
                    "refused is fixed: while the provider still refuses, they wait behind the open circuit.")),
    "record_call": (_("Record a call"),
                    _("Records that you called: you, now, the number, how it went and a note, on the ticket's "
                      "timeline. \"Reached them\" or \"Wrong number\" closes their call-back request; \"No "
                      "answer\" leaves it at the top of the queue.")),
}
# A console action refused because the account is a staff member's (support.actions).
# Instead of "What they see" on a staff account's page: no lifecycle of a customer's
# applies (no workspace step, no setup page), so no customer's sentence is true of it.
STAFF_ACCOUNT_SEES = _("This is a staff account: it signs in to this console, and has no workspace or setup page "
                       "of a customer's, so there is no customer's sentence to show.")
# A button that sends, sets up or changes something, pressed for a closed account
# (support.actions.AccountClosed): closing stopped all of it.
ACCOUNT_CLOSED_REFUSED = _("{address} is closed, so nothing was done: a closed account gets no emails, no setup and "
                           "no changes. If it should come back, use Reopen account first.")
STAFF_ACCOUNT_REFUSED = _("This is a staff account: the console never changes a staff member's address, "
                          "verification or sign-in, nor closes it. Nothing was changed. A superuser can change "
                          "staff access on the account page.")

# "Correct the email address" pressed with the address the account already has.
ADDRESS_UNCHANGED = _("{address} is already this account's address, so there is nothing to correct and nothing "
                      "was changed. To send the confirmation link again, use Resend verification.")

RESULTS = {
    "rerun_all_done": _("Re-armed {count} accounts' steps stopped with {code}: they run now, with fresh retries."),
    "rerun_all_noop": _("Nothing to re-run: no step is stopped with {code}."),
    "rerun_done": _("Provisioning re-armed: the workspace step runs now, with fresh retries."),
    "rerun_noop": _("Nothing to re-run: the workspace step is running or already done."),
    "resend_done": _("Verification email queued to {address}."),
    "correct_email_done": _("Address corrected to {address}; a fresh confirmation link is on its way."),
    "mark_verified_done": _("Address {address} marked verified (identity confirmed by phone)."),
    "mark_verified_noop": _("The address was already verified."),
    "signin_code_done": _("One-time sign-in code issued; it works until {until} ({zone} time)."),
    "signin_code_again": _("That click already issued a code, still unused. It was shown once and is kept "
                           "nowhere, so it can't be shown again: if they don't have it, issue a new one (the "
                           "earlier code then stops working)."),
    "signin_code_gone": _("That click already issued a code, which has since been used or replaced. "
                          "Issue a new one if they still need it."),
    "reply_done": _("Reply queued to {address}."),
    "resolve_done": _("Ticket resolved."),
    "resolve_noop": _("The ticket was already resolved."),
    "close_done": _("Account closed: logging in now fails, and nothing more is done for it."),
    "reopen_done": _("Account reopened: the person can log in, and stopped steps run again."),
    "call_recorded": _("Call to {phone} recorded: {outcome}."),
}

# --- Replies: signed by the person who sent them -----------------------------------------------
REPLY_SIGNATURE = _("{name}\nAcme Workspaces support")
# A staff account without a name: signed by the team, never with a guess from the address.
REPLY_SIGNATURE_TEAM = _("The Acme Workspaces support team")


def reply_signature(staff_name: str) -> str:
    """How a reply is signed: the staff member's first name and the team, or the team
    alone when the staff account has no name."""
    first = staff_name.split()[0] if staff_name and staff_name.strip() else ""
    return str(REPLY_SIGNATURE).format(name=first) if first else str(REPLY_SIGNATURE_TEAM)


# --- Suggested replies, per lifecycle state (editable before sending) ------------------------
SUGGESTED_REPLIES = {
    # No time is promised here: the reply is read later, when the schedule may no longer back it.
    "setting_up": _("Thanks for your patience. Your account is saved and your workspace is being set up. You "
                    "can log in any time at {login_url} to see where it stands, and we'll email you if "
                    "anything needs you."),
    # Said only when the account's facts are not at hand: whether we retry, or a
    # circuit holds it, and whether an email will follow are then unknown
    # (DELAYED_REPLIES below says them when they are).
    "delayed": _("Sorry for the wait. Your account is saved; setting up your workspace is taking longer than it "
                 "should, and that's on our side, not anything you did. You don't need to do anything: you can "
                 "log in any time at {login_url} to see where it stands."),
    # Delayed with the workspace ready: only the confirmation email waits, behind the
    # email provider's open circuit (accounts.selectors.with_lifecycle_state).
    "delayed_email": _("Sorry for the wait. Your workspace is ready; it's your confirmation email to {email} that "
                       "is held up on our side. It goes out by itself once sending email works again, and you don't "
                       "need to do anything. You can use your workspace in the meantime: log in at {login_url}."),
    # Said only when the account's facts are not at hand: what stopped is then unknown
    # (NEEDS_SUPPORT_REPLIES below says it when they are).
    "needs_support": _("Sorry: part of setting up your account stopped on our side, and that's on us, not "
                       "anything you did. Your account is saved and you can log in any time at {login_url} to see "
                       "where it stands; I'll write again once it's sorted."),
    "email_undeliverable": _("Our emails to {email} are being refused, so your confirmation link never reached "
                             "you. If the address has a typo, log in at {login_url} and correct it on your setup "
                             "page, or reply with the right address and I'll change it for you."),
    # "Sent" only where a server accepted it: the reply cannot know, so it points to the setup page.
    "unverified": _("Your workspace is ready. To finish, please confirm your email address with the link for "
                    "{email}. If it hasn't arrived, log in at {login_url}: your setup page says whether it went "
                    "out and lets you send it again."),
    "active": _("Everything on your account is set up: your workspace is ready and your address is confirmed. "
                "Log in at {login_url}. If something still isn't right, reply and tell me what you see."),
    "disabled": _("This account is closed. If you think that's a mistake, reply with a little more detail and "
                  "I'll look into it."),
    None: _("Thanks for writing. I couldn't find an account under {email}. If you signed up with another "
            "address, reply with it and I'll look it up; or sign up at {signup_url}, it takes a minute."),
}

# "Delayed" while the workspace is not made yet, by what holds it (accounts.messages.Facts,
# as the person's page tells it): retried by us (the circuit is closed), late (no worker
# has picked it up in time), or held behind the workspace provider's open circuit, where
# only its probe calls: an outage of the provider's, or a problem of ours
# (OPENINGS_OURS). Then DELAYED_EMAIL_AFTER only when "you're all set" will follow: the
# step hit an error or was held (accounts.receivers.on_workspace_ready; an incident's
# apology goes to the same people, once) and the address is not known to refuse mail;
# else DELAYED_LOG_IN.
DELAYED_REPLIES = {
    "retrying": _("Sorry for the wait. Your account is saved; setting up your workspace hit a problem on our side, "
                  "and we're retrying automatically. You don't need to do anything."),
    "late": _("Sorry for the wait. Your account is saved; setting up your workspace is taking longer than it "
              "should. That's on our side, and it carries on by itself: you don't need to do anything."),
    "held": _("Sorry for the wait. Your account is saved; a service we use to create workspaces is having an "
              "outage, so setting up your workspace waits until it recovers, then goes on by itself. You don't "
              "need to do anything."),
    "held_ours": _("Sorry for the wait. Your account is saved; creating workspaces is stopped by a problem on our "
                   "side, not anything you did, so setting up your workspace waits until it's fixed, then goes on "
                   "by itself. You don't need to do anything."),
}
DELAYED_EMAIL_AFTER = _("Once it's ready we'll email you to say so, and you can log in any time at {login_url} to "
                        "check.")
DELAYED_LOG_IN = _("You can log in any time at {login_url} to see where it stands.")

# "Needs support", by what stopped (accounts.messages.Facts: the workspace first, as the
# person's page tells it) and why: the provider refused it, or our retries ran out. The
# reply is suggested while the step is still stopped (once support re-runs it the
# account is setting up again, and that state's reply is suggested), so it says what
# support does next, never that it was done. A workspace made ready after a failure
# brings the "you're all set" email by itself (accounts.receivers.on_workspace_ready).
NEEDS_SUPPORT_REPLIES = {
    "workspace_refused": _("Sorry: setting up your workspace stopped because the service we use to create "
                           "workspaces refused our request. That's on us, not anything you did. Once the cause is "
                           "fixed I'll start it again, and you'll get an email as soon as your workspace is ready. "
                           "Your account is saved and you can log in any time at {login_url} to see where it "
                           "stands."),
    "workspace_retries": _("Sorry: setting up your workspace hit a problem on our side that our automatic retries "
                           "couldn't get past. I'll start it again by hand, and you'll get an email as soon as your "
                           "workspace is ready. Your account is saved and you can log in any time at {login_url} "
                           "to see where it stands."),
    "email_refused": _("Sorry: your confirmation email to {email} didn't go out, because the service we use to "
                       "send email refused it. That's on us, not anything you did. Once the cause is fixed I'll "
                       "send you a fresh link; your setup page at {login_url} shows when it has gone out. Your "
                       "workspace is ready, and you can use it in the meantime."),
    "email_retries": _("Sorry: our automatic retries couldn't send your confirmation email to {email}. That's on "
                       "us, not anything you did. I'll send you a fresh link by hand; your setup page at "
                       "{login_url} shows when it has gone out. Your workspace is ready, and you can use it in "
                       "the meantime."),
}

# --- Outages (incidents) ------------------------------------------------------------------
# What the outage is about, in the person's words and in the console's.
OUTAGE_WHAT = {
    "provisioning": _("setting up new workspaces"),
    "email": _("sending emails (such as confirmation links)"),
}
# After /help/ while an incident is open. To a signed-in person whose account really
# waits on that outage (accounts.messages.Facts: its step is held behind it):
HELP_DURING_INCIDENT = _("We know about it: {what} is having a problem on our side right now, and your account is "
                         "waiting on it along with everyone who signed up recently. Your message is attached to it. "
                         "Your account is saved, and what is waiting will go through by itself once it's fixed; "
                         "we'll email you when it's done.")
# To everyone else, the same whatever the address typed (so it reveals nothing about
# anyone): the outage is a fact, a claim about their account is not.
HELP_INCIDENT_NOTICE = _("Right now {what} is having a problem on our side, and we know about it. If you were "
                         "signing up, log in with the password you chose to see where your account stands.")
# To a signed-in person whose account does not wait on it: they are logged in already,
# so no "log in to see"; where their account stands is on their setup page.
HELP_INCIDENT_NOTICE_SIGNED_IN = _("Right now {what} is having a problem on our side, and we know about it. Your "
                                   "setup page shows where your account stands.")
# On the ticket's timeline: what /help/ answered, word for word.
HELP_TOLD = _("/help/ answered: {answer}")
# The incident's first timeline line: what the provider did, from what opened its
# circuit (provisioning.models.BreakerOpening: the backend that classified the answer
# said whether our credentials were refused) and the code of that failure.
INCIDENT_OPENINGS = {
    "no_answer": _("The {provider} stopped answering ({error}): its circuit breaker opened."),
    "failing": _("The {provider} kept failing ({error}): its circuit breaker opened."),
    "credentials": _("The {provider} refused our credentials ({error}): its circuit breaker opened at once."),
    "refused_us": _("The {provider} refused us ({error}): our configuration, relay or sending policy. Its circuit "
                    "breaker opened at once."),
    "refused_alike": _("The {provider} gave many accounts the same refusal ({error}): its circuit breaker "
                       "opened."),
}
INCIDENT_OPENED_NEXT = _("Affected signups wait without using up their retries; nobody gets a ticket of their "
                         "own.")
ERROR_WORDS = {"timeout": _("timed out"), "connection": _("could not connect"),
               "misconfigured": _("our settings are wrong"), "smtp_4xx": _("SMTP 4xx: try later"),
               "bad_response": _("answers without a workspace id"), "rate_limited": _("HTTP 429, for too long")}


def error_words(code: str) -> str:
    """A failure's code as the console says it: "HTTP 503", "SMTP 535", "timed out"."""
    if code in ERROR_WORDS:
        return str(ERROR_WORDS[code])
    protocol, _sep, number = code.partition("_")
    if number.isdigit() and protocol in ("http", "esp", "smtp"):
        return f"{'SMTP' if protocol == 'smtp' else 'HTTP'} {number}"
    return code or str(_("no code recorded"))


def _opening_key(opened_by: str) -> str:
    return opened_by if opened_by in INCIDENT_OPENINGS else "failing"


def incident_opening(*, provider: str, opened_by: str, code: str) -> str:
    """The incident's opening line: what the provider did, never a guess (a 503 is
    not "stopped answering")."""
    return " ".join((str(INCIDENT_OPENINGS[_opening_key(opened_by)]).format(
        provider=provider, error=error_words(code)), str(INCIDENT_OPENED_NEXT)))


# The timeline line when a refusal of ours holds the circuit open instead of what
# opened it (its probe refused our credentials during an outage): the to-do changes.
INCIDENT_NEW_CAUSE = {
    "credentials": _("The {provider} now refuses our credentials ({error}): that is what holds its circuit open "
                     "now, and it does not pass by itself."),
    "refused_us": _("The {provider} now refuses us ({error}): our configuration, relay or sending policy. That is "
                    "what holds its circuit open now, and it does not pass by itself."),
    "refused_alike": _("The {provider} now gives many accounts the same refusal ({error}): that is what holds its "
                       "circuit open now."),
}


def incident_new_cause(*, provider: str, opened_by: str, code: str) -> str:
    return str(INCIDENT_NEW_CAUSE.get(opened_by, INCIDENT_NEW_CAUSE["refused_us"])).format(
        provider=provider, error=error_words(code))


# On the incident's page, when its cause is a refusal: while the circuit is open,
# once it has closed and what it held drains, and once the incident closed.
INCIDENT_CAUSE = {
    "credentials": _("The provider refused our credentials ({error}). That is about us, not any one person: every "
                     "account's call is refused alike until it is fixed, so every signup waits behind the open "
                     "circuit."),
    "refused_us": _("The provider refused us ({error}): our configuration, relay or sending policy. That is about "
                    "us, not any one person: every account's call is refused alike until it is fixed, so every "
                    "signup waits behind the open circuit."),
    "refused_alike": _("The same refusal ({error}) came back for {threshold} or more accounts within {window} "
                       "seconds: ours, not theirs."),
}
INCIDENT_CAUSE_RECOVERED = {
    "credentials": _("The provider refused our credentials ({error}), and has accepted them again since."),
    "refused_us": _("The provider refused us ({error}): our configuration, relay or sending policy. It has "
                    "accepted us again since."),
}
INCIDENT_CAUSE_CLOSED = {
    "credentials": _("The provider refused our credentials ({error}); the incident lasted from {started} to "
                     "{ended}."),
    "refused_us": _("The provider refused us ({error}): our configuration, relay or sending policy; the incident "
                    "lasted from {started} to {ended}."),
}


def _steps_stopped(n: int, code: str) -> str:
    """Accounts whose step stopped with the incident's refusal (failed for good): they
    do not drain with the others, and the incident closes without them."""
    return ngettext("%(n)d account's step stopped with this refusal (%(error)s) stays stopped: re-run it once "
                    "what was refused is fixed (Re-run all on the incident's page, or manage.py retry_setup "
                    "--all-failed --code %(code)s).",
                    "%(n)d accounts' steps stopped with this refusal (%(error)s) stay stopped: re-run them once "
                    "what was refused is fixed (Re-run all on the incident's page, or manage.py retry_setup "
                    "--all-failed --code %(code)s).", n) % {"n": n, "error": error_words(code), "code": code}


def incident_cause(*, opened_by: str, code: str, refused: int = 0, held: int = 0, circuit_open: bool = True,
                   steps_stopped: int = 0, affected: int = 0, started=None, ended=None) -> str:
    """What the incident's refusal means. For a refusal of us while its circuit is
    open: how many accounts the provider actually refused with it (``refused``:
    their step's last answer was that refusal) and how many more wait behind the
    circuit without it (``held``). Once the circuit closed: that the provider
    accepts us again, and how many it refused. Once the incident closed (``ended``):
    what it was, in the past tense, with the accounts that waited (``affected``)
    and the steps it stopped that still are (``steps_stopped``)."""
    key = opened_by if opened_by in INCIDENT_CAUSE else "refused_alike"
    error = error_words(code)
    if ended is not None:
        if key in INCIDENT_CAUSE_CLOSED:
            text = " ".join((str(INCIDENT_CAUSE_CLOSED[key]).format(
                error=error, started=console_time(started), ended=console_time(ended)),
                ngettext("%(n)d account waited.", "%(n)d accounts waited.", affected) % {"n": affected}))
        else:
            text = str(INCIDENT_CAUSE[key]).format(error=error, threshold=settings.BREAKER_FAILURE_THRESHOLD,
                                                   window=settings.BREAKER_WINDOW_SECONDS)
        return " ".join((text, _steps_stopped(steps_stopped, code))) if steps_stopped else text
    if key == "refused_alike":
        return str(INCIDENT_CAUSE[key]).format(error=error, threshold=settings.BREAKER_FAILURE_THRESHOLD,
                                               window=settings.BREAKER_WINDOW_SECONDS)
    if not circuit_open:
        return " ".join((str(INCIDENT_CAUSE_RECOVERED[key]).format(error=error), ngettext(
            "%(n)d account was refused.", "%(n)d accounts were refused.", refused) % {"n": refused}))
    counts = ngettext("%(n)d account refused so far", "%(n)d accounts refused so far", refused) % {"n": refused}
    if held:
        counts += ngettext("; %(n)d more waits behind the circuit.", "; %(n)d more wait behind the circuit.",
                           held) % {"n": held}
    else:
        counts += "."
    return " ".join((str(INCIDENT_CAUSE[key]).format(error=error), counts))


# The banner on every console page (and the incident's page) while an incident is
# open: what the circuit holds now, and how many wait.
def incident_state(*, what: str, provider: str, stopped: bool, waiting: int) -> str:
    """Stopped (the circuit is open) or recovered and catching up (closed, the
    backlog draining): never "stopped" once the provider answers again."""
    what = what[:1].upper() + what[1:]
    if stopped and waiting:
        return ngettext("%(what)s is stopped: %(n)d signup is waiting on it.",
                        "%(what)s is stopped: %(n)d signups are waiting on it.", waiting) % {
            "what": what, "n": waiting}
    if stopped:
        return str(_("{what} is stopped; no signup is waiting on it right now.")).format(what=what)
    if waiting:
        return ngettext("The %(provider)s has recovered and is catching up: %(n)d signup still waits.",
                        "The %(provider)s has recovered and is catching up: %(n)d signups still wait.",
                        waiting) % {"provider": provider, "n": waiting}
    return str(_("The {provider} has recovered and no signup waits on it any more: the incident closes by itself "
                 "at the next check.")).format(provider=provider)


# What support does about an open incident, by what holds its circuit open
# (BreakerOpening): an outage passes by itself, a refusal of ours does not.
INCIDENT_NOTHING_TO_DO = {
    True: _("Nothing to do: they wait without using up their retries, nobody gets a ticket of their own, and "
            "everything drains by itself when the provider recovers; the incident then closes and each person "
            "gets one apology."),
    False: _("Nothing to do: what waits goes through by itself; the incident then closes and each person gets "
             "one apology."),
}
INCIDENT_TO_DO = {
    # A refusal of our credentials does not pass by itself: someone fixes them.
    "credentials": _("To do: check the provider's credentials in the environment (the {settings} settings, see "
                     "README); the held signups then drain by themselves, the incident closes and each person "
                     "gets one apology."),
    "refused_us": _("To do: this does not pass by itself. Check how we reach the provider (the {settings} "
                    "settings, see README) and, for a mail server, whether it lets us relay and send from our "
                    "address; once that is fixed, the held signups drain by themselves, the incident closes and "
                    "each person gets one apology."),
    "refused_alike": _("To do: find out why the provider gives every account the same refusal ({error}), a change "
                       "at the provider's or in what we send, and have it fixed. Until the provider accepts again, "
                       "every signup waits behind the open circuit; then what waits drains by itself, the incident "
                       "closes and each person gets one apology."),
}
INCIDENT_DRAINS_TO_DO = _("To do: {stopped} What waits goes through by itself; the incident then closes and each "
                          "person gets one apology.")
CREDENTIALS_SETTINGS = {"provisioning": "PROVISIONING_*", "email": "EMAIL_URL or ANYMAIL_*"}


def incident_to_do(*, stopped: bool, opened_by: str, code: str, provider: str, steps_stopped: int = 0) -> str:
    """What support does about an open incident. Circuit open (``stopped``): nothing
    for an outage, which drains by itself; for a refusal of ours, have what it
    refused fixed (our credentials; how we reach it; what many accounts were refused
    alike). Once it closed: nothing, what waits drains. Either way, steps the
    refusal stopped for good (``steps_stopped``) need a re-run, once it is fixed."""
    key = _opening_key(opened_by)
    if stopped and key in INCIDENT_TO_DO:
        text = str(INCIDENT_TO_DO[key]).format(settings=CREDENTIALS_SETTINGS.get(provider, provider.upper()),
                                               error=error_words(code))
    elif not stopped and steps_stopped:
        return str(INCIDENT_DRAINS_TO_DO).format(stopped=_steps_stopped(steps_stopped, code))
    else:
        text = str(INCIDENT_NOTHING_TO_DO[stopped])
    return " ".join((text, _steps_stopped(steps_stopped, code))) if steps_stopped else text


def incident_recovered(*, provider: str, opened_by: str, code: str, waiting: int, affected: int,
                       drained: int) -> str:
    """The timeline's recovery line: for a refusal of our credentials, that they were
    accepted again (the provider itself never was down)."""
    if _opening_key(opened_by) == "credentials":
        head = str(_("The {provider} accepted our credentials again")).format(provider=provider)
    else:
        head = str(_("The {provider} recovered")).format(provider=provider)
    of = ngettext("%(waiting)d of the %(affected)d account affected", "%(waiting)d of the %(affected)d accounts "
                  "affected", affected) % {"waiting": waiting, "affected": affected}
    still = ngettext("still waits and drains now", "still wait and drain now", waiting)
    return str(_("{head}: {of} {still}; {drained} already went through.")).format(
        head=head, of=of, still=still, drained=drained)


INCIDENT_NAME = _("{provider} outage since {since}")


def incident_closed(*, started: str, ended: str, affected: int, drained: int) -> str:
    return " ".join((str(_("Backlog drained: closed. Started {started}, ended {ended};")).format(
        started=started, ended=ended), ngettext("%(n)d account affected,", "%(n)d accounts affected,",
                                                affected) % {"n": affected},
        str(_("{drained} drained. Each affected person gets one \"you're all set — sorry for the wait\" "
              "email.")).format(drained=drained)))


INCIDENT_MESSAGE = _("{email} wrote to /help/ during the incident (ticket {reference}) and was told about it.")
INCIDENT_TICKET_JOINED = _("{email} had a ticket ({reference}) for a refusal that then came back for many "
                           "accounts: it is ours, not theirs. Their setup waits for the provider with everyone "
                           "else's; the ticket was resolved automatically.")
TICKET_JOINED_INCIDENT = _("The same refusal came back for many accounts, so it is an incident of ours, not this "
                           "person's: resolved automatically. Their setup waits for the provider with everyone "
                           "else's (see Incidents).")
INCIDENT_STEP_EXHAUSTED = _("The {what} of {email} ran out of retries just as the circuit opened: re-armed to wait "
                            "for the recovery with everyone else (no ticket).")


# --- A way back that is not email: call-back requests (support.callbacks) -------------------
# To the person. Every promise is read from the stored request (``promised_by``), never
# recomputed, so each page says what the person was first told, and a promise that
# has passed is owned, not repeated.
CALLBACK_OFFER = _("Rather talk to a person? Leave a number and someone on our team will call you within "
                   "{reply_hours} hours.")
CALLBACK_OFFER_PHONE_ON_FILE = _("We'll call the number you gave when you signed up, {phone}, unless you type "
                                 "another one below.")
CALLBACK_SENT = Message(
    title=_("We'll call you"),
    happened=_("Your request for a call has reached our support team."),
    next="",  # the promise itself is read from the request (support.selectors.callback_promise)
)
CALLBACK_WAITING = _("You asked us to call you at {phone}: a person will call {when}.")
CALLBACK_LATE = _("You asked us to call you at {phone} {ago} ago, and we said we would within {hours} hours. We "
                  "haven't yet, and that's on us: your request is at the top of our queue.")

# To the support person.
CALLBACK_EVENT = _("Asked us to call {phone}. Note: {note}")
CALL_EVENT = _("Called {phone}: {outcome}. Note: {note}")
# Closing the account cancels a waiting call-back (support.callbacks.callbacks_cancel_account_closed).
CALLBACK_CANCELLED_CLOSED = _("Call-back request to {phone} cancelled because the account was closed: it no longer "
                              "waits in the queue. Reopening the account does not bring it back; the person can "
                              "ask for a call again.")
# Resolving while a call-back waits (support.callbacks.callback_settle_for_resolve): refused
# until a call is recorded; after calls nobody answered, the request closes with the ticket.
CALLBACK_RESOLVE_REFUSED = _("Nothing was done: they asked us to call {phone} and no call to them is recorded yet, "
                             "so the ticket can't be resolved. Call them and record it with \"{button}\" "
                             "({outcomes}), then resolve.")
CALLBACK_CLOSED_UNANSWERED = _("Call-back request to {phone} closed as the ticket was resolved: {calls}, and "
                               "nobody answered. It no longer waits in the queue; the person can ask for a call "
                               "again.")
# The account healed while a call-back waits: the call they asked for is kept (support.services).
READY_KEPT_OPEN_CALLBACK = _("The workspace is ready, but they asked us to call {phone} and that call-back still "
                             "waits, so the ticket stays open: call them and record the call, then resolve.")


def calls_made(n: int) -> str:
    return ngettext("we called once", "we called %(n)d times", n) % {"n": n}


CALL_NO_TICKET = _("A call is recorded on the person's ticket, and this account has none open.")
CALL_NO_NUMBER = _("There is no number to have called: no call-back request is waiting and the account has no "
                   "phone on file.")


def callback_when(promised_by, *, now) -> str:
    """What is left of a call-back's promise, in the person's words ("within 4 hours",
    "within the hour"); the caller checks the promise has not passed."""
    hours = math.ceil((promised_by - now).total_seconds() / 3600)
    if hours <= 1:
        return str(_("within the hour"))
    return ngettext("within %(n)d hour", "within %(n)d hours", hours) % {"n": hours}
