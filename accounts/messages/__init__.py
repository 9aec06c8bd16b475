"""Every user-facing word about an account's state and our failures, in one place.

Each entry says what happened, owns it when it is on us, says what happens next
and when, and what (if anything) the person can do (DESIGN principle 4). Templates,
the status JSON, emails and tests all read from here; read them aloud when editing.

Words about one account are chosen from its facts in ``accounts.messages.status``
(re-exported here), and only there.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Message:
    title: str
    happened: str
    next: str
    action: str = ""

    def sentence(self, **values) -> str:
        """The one-sentence form (status JSON, banners): what happened + what next."""
        return " ".join(str(part).format(**values) for part in (self.happened, self.next) if part)


# Answers to things people do.
LOGIN_FAILED = _("That email and password don't match an account we can open. Check them and try "
                 "again, or reset your password. If you just signed up, your account is saved: "
                 "use the password you chose.")
LOGGED_OUT = _("You're logged out. Log in again any time with your email address and password.")
WELCOME_BACK = _("Welcome back: your account was already saved. Here is where things stand; "
                 "we've picked up any step that hadn't finished.")
# The owner's notice is owed, not yet sent, when this page answers (and none is owed if
# one went within the hour): "we've let them know" would claim a delivery we can't see.
SIGNUP_TAKEN = Message(
    title=_("This address already has an account"),
    happened=_("An account already uses this email address."),
    next=_("If it's yours, log in with your password, or reset it if you've forgotten it. If setup "
           "wasn't finished, logging in shows where it stands. We email the address's owner about attempts like "
           "this one (at most once an hour)."),
)
# Strict mode: one answer for every signup (new address, taken, right password or not),
# so it must be true in each: when it renders, the link to a new address is owed, not
# yet sent (nor may it go soon, in an email outage); the owner's notice is at most
# hourly, so a second try within the hour sends nothing; a right password, or an
# address already confirmed, may send nothing at all. It never says "sent".
SIGNUP_STRICT = Message(
    title=_("Thanks for signing up"),
    happened=_("If {address} is new to us, your account is saved and we're sending a link there to confirm "
               "the address. If it already has an account, we email its owner when someone signs up with it "
               "using another password (at most once an hour)."),
    next=_("Either way, you can log in with the address and its password. If you're new, the page you land on "
           "shows where the email stands and lets you correct a mistyped address. If nothing arrives, check "
           "your spam folder, reset your password, or write to us."),
)
# What correcting the address answers is chosen from where the fresh link stands:
# ``email_changed_answer`` (accounts.messages.status).
# Correcting the address to one another account uses. Unlike SIGNUP_TAKEN, nobody is
# emailed here, so the words must not say the owner was told.
EMAIL_TAKEN = _("Another account already uses this address, so we can't move yours to it. Check it "
                "for typos; if that other account is yours, log in to it instead, or contact us and "
                "we'll sort it out. Your current address still works.")
EMAIL_ALREADY_VERIFIED = _("Your address is already confirmed, so there is nothing to change here. "
                           "Contact us if you need to move your account to a new address.")
VERIFIED = _("Thanks, your email address is confirmed.")
# A link confirmed in a browser logged in to another account: that person lands on
# their own page, where "your address" would name the wrong account.
VERIFIED_OTHER_ACCOUNT = _("Thanks, {address} is confirmed. It belongs to another account than the one you're "
                           "logged in to here: to use that account, log out, then log in with {address}.")
# A used link opened by the person it confirmed, signed in: nothing failed.
VERIFY_ALREADY_DONE = Message(
    title=_("Your address is already confirmed"),
    happened=_("{address} is confirmed, so this link has nothing left to do."),
    next=_("Everything that needs a confirmed address works for you now."),
)
CODE_LOGIN_FAILED = _("That code doesn't work with this email address. A code works once, for {lifetime}, "
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
    next=_("It usually arrives within a minute and works for {lifetime}. Nothing changes until you "
           "use it; your current password keeps working in the meantime."),
    action=_("No email after a few minutes? Check your spam folder and the spelling of the "
             "address, or contact us and a person will help you get in."),
)
RESET_ADDRESS_UNKNOWN = _("the address you entered")
# A link that no longer works tells nothing of why: used (the password may just have
# been changed through it), expired, or overtaken. So it says neither "your password
# is unchanged" nor "changed": both ways on are offered.
PASSWORD_RESET_LINK_BAD = Message(
    title=_("This password link no longer works"),
    happened=_("This link has been used or has expired: a password link works once, for a few hours, and "
               "stops working once the account's password or address changes."),
    next=_("If you've just chosen a new password with it, log in with that one. Otherwise ask for a fresh "
           "link below; it takes a minute."),
    action=_("Send me a fresh link"),
)
# The same link opened while logged in: no "log in with that one" to someone who is.
PASSWORD_RESET_LINK_BAD_LOGGED_IN = Message(
    title=PASSWORD_RESET_LINK_BAD.title,
    happened=PASSWORD_RESET_LINK_BAD.happened,
    next=_("You're logged in. If you want to change your password again, ask for a fresh link below; it takes a "
           "minute."),
    action=PASSWORD_RESET_LINK_BAD.action,
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
    # Paused per client (its own failures for the address, or all its logins): every
    # browser here waits, one that logged in before too; a reset link still logs in.
    "login": _("Your password wasn't checked this time and nothing changed on any account. If you've forgotten "
               "your password, you can still reset it: the link logs you in."),
    # Paused by the address's failures from everywhere: only browsers that never logged
    # in to it wait (accounts.ratelimit.failures_pause).
    "login_new_browser": _("Your password wasn't checked this time and nothing changed on any account. A browser "
                           "you've logged in with before can still log in."),
    "password_reset": _("No new link was sent this time, and no password was changed."),
    "resend": _("No new link was sent this time; your account and address are unchanged."),
    "change_email": _("Your address was not changed this time; it is still the one on your setup page."),
    "help": _("Your message has not been sent yet. It is still in the form below, so you can send it "
              "{when} without typing it again."),
    # The pause comes after more wrong tries than a code survives (SIGNIN_CODE_MAX_TRIES
    # < RATE_LIMITS' failures): "it wasn't used up" would promise a dead code works.
    "login_code": _("Your code wasn't checked this time, so this try didn't count against it. A code stops working "
                    "after a few wrong tries, though: if yours was typed wrong several times, ask us for a fresh one."),
    "callback": _("Your request for a call was not sent this time, and nothing was saved."),
}

EMAIL_SUBJECTS = {
    "verification": _("Confirm your email address"),
    "signup_attempt": _("Someone — perhaps you — tried to sign up with your email address"),
    "all_set": _("Sorry for the wait"),
    "password_reset": _("Reset your password"),
    "support": _("A message from our support team"),
    # Sent by itself when someone writes to /help/: no person wrote it.
    "acknowledgement": _("We've got your message"),
    "abandon_warning": _("Is this your account? It will be removed in a week"),
}



# --- Password reset while the email provider is down (the breaker is open) -----------------
# The reset-sent page must not promise "within a minute" while we know email is late.
PASSWORD_RESET_SENT_DELAYED = Message(
    title=_("Your link is on its way, but late"),
    happened=_("If an account uses {address}, a link to choose a new password is waiting to go to it."),
    next=_("Sending email is delayed on our side right now: the service we use to send it is having a problem, "
           "not anything you did. We keep trying on our own and the link goes out as soon as it recovers; it "
           "works for {lifetime} from then. Nothing changes until you use it; your current password keeps working."),
    action=_("Need to get in sooner? Log in with your password if you know it, or ask us to call you."),
)
# The same while the circuit is open on a problem of ours (the provider refused our
# credentials, our relay, or many of our emails alike: accounts.selectors.email_outage):
# the provider is not what is down.
PASSWORD_RESET_SENT_DELAYED_OURS = Message(
    title=_("Your link is waiting on a problem on our side"),
    happened=PASSWORD_RESET_SENT_DELAYED.happened,
    next=_("Sending email is stopped by a problem on our side; it is not anything you did. The link goes out as "
           "soon as it's fixed, and works for {lifetime} from then. Nothing changes until you use it; your current "
           "password keeps working."),
    action=PASSWORD_RESET_SENT_DELAYED.action,
)
# Said after it only while the email incident is open (the support console's dashboard
# and queue show it: accounts.selectors.open_incidents); no row says anyone is fixing it yet.
PASSWORD_RESET_TEAM_SEES_IT = _("Our support team can see the problem.")

# --- Changing the address in strict mode (accounts.flows.email_change) -------------------
# One answer whether or not another account uses the new address: in both cases an
# email goes to it (the link, or a notice to its owner) and the account is unchanged.
EMAIL_CHANGE_SENT = _("We're sending an email to {new}. Open it to finish changing your address; until then "
                      "your account keeps {old}.")
EMAIL_CHANGE_CONFIRM = Message(
    title=_("Move your account to this address"),
    happened=_("This link moves your account from {old} to {new}, and confirms {new}."),
    next=_("Press the button to make the change. Nothing changes until you do."),
    action=_("Move my account to this address"),
)
EMAIL_CHANGE_DONE = _("Done: your account now uses {address}, and because the link reached you there, the "
                      "address is confirmed. Links sent to the old address no longer work.")
# The change link confirmed in a browser logged in to another account (as VERIFIED_OTHER_ACCOUNT).
EMAIL_CHANGE_DONE_OTHER_ACCOUNT = _("Done: {address} is confirmed, and the account that asked to move to it now "
                                   "uses it. That's another account than the one you're logged in to here: to use "
                                   "that account, log out, then log in with {address}.")
# The address was free when asked for, and another account took it before the link was used.
EMAIL_CHANGE_TAKEN_SINCE = _("Another account started using {new} after you asked, so we couldn't move yours to it. "
                             "Your account keeps {old}; you can ask for a different address on your setup page.")
EMAIL_CHANGE_LINK_BAD = Message(
    title=_("This link no longer works"),
    happened=_("This link to change your address has expired, was already used, or your address changed since "
               "it was sent. Your account's address is as your setup page shows."),
    next=_("Log in and ask for the change again from your setup page if you still need it."),
)
# Kept with this journey's other words; the subjects of every other email are above.
EMAIL_SUBJECTS.update({
    "email_change": _("Finish moving your account to this address"),
    "email_change_taken": _("Someone — perhaps you — asked to move an account to your email address"),
})

# The words chosen from one account's facts, and times in words: defined beside this
# catalogue, read through it.
from accounts.messages.status import *  # noqa: E402,F403
from accounts.messages.status import _join  # noqa: E402,F401
from accounts.messages.when import in_seconds_words, in_words, lifetime_words  # noqa: E402,F401
