"""The console's actions: one function per button (and the accounts list's bulk
retry), each one complete change that records who did what to whom as a
``ConsoleAction``, in the transaction that does the work.

Each takes the staff member (``actor``), the account acted on and its ticket: either
may be None (a message from an unknown address has no account; an account need not
have a ticket). A button takes the click's ``action_key``: the ConsoleAction keeps a
digest of it under a unique constraint, so a double click (or a resubmitted form)
does nothing twice. Each calls the same account and provisioning services the worker
and ``manage.py`` use. Callers check permissions.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from accounts.emails import email_queue
from accounts.models import EmailKind, User, normalize_email
from accounts.selectors import accounts_with_failed_steps
from accounts.services import (
    StaffAccount,
    account_change_email,
    account_close,
    account_mark_verified,
    account_reopen,
    account_resume,
    signin_code_issue,
    verification_send,
)
from provisioning.models import ProvisioningRequest
from provisioning.services import workspace_request_retry
from support import messages as words
from support.models import (
    TRANSITIONS,
    ConsoleAction,
    ConsoleActionKind,
    EventKind,
    Incident,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from support.selectors import reply_address, signin_code_of_click
from support.services import TicketError, ticket_transition


class NoAccount(TicketError):
    """The button acts on an account, and this ticket has none (an unmatched message)."""


class AddressUnchanged(TicketError):
    """"Correct the email address" with the address the account already has (the form
    starts with it): there is nothing to correct."""


class NoTicket(TicketError):
    """The button acts on a ticket, and the account has none open."""


class AccountClosed(TicketError):
    """The button would send to, set up or change a closed account (a page drawn
    before it was closed, or a crafted post): closing stopped all of that, and only
    Reopen brings it back."""


@dataclass(frozen=True)
class ActionResult:
    done: bool  # False: nothing changed (nothing to do, or the click was already handled)
    message: str
    code: str = ""  # a one-time sign-in code, for the console to show once
    repeated: bool = False  # this click had already been handled: nothing was recorded again


def console_actor(user: User) -> str:
    """How a staff member appears on the timelines that take words (the account's)."""
    return f"support ({user.email})"[:100]


def click_digest(action_key: str) -> str:
    return hashlib.sha256(action_key.encode()).hexdigest()


def _act(*, kind: str, actor: User, account: User | None, ticket: Ticket | None, action_key: str | None,
         run: Callable[[Ticket | None], ActionResult]) -> ActionResult:
    """Run one click: lock the ticket (if any), record the action under the click's
    digest, then do the work, all in one transaction: if the work raises, no trace of
    the click remains and it can be tried again. A click already recorded does
    nothing."""
    with transaction.atomic():
        locked = None
        if ticket is not None:
            locked = Ticket.objects.select_for_update(of=("self",)).select_related("account").get(pk=ticket.pk)
        try:
            with transaction.atomic():  # a savepoint: the repeated click leaves the transaction usable
                action = ConsoleAction.objects.create(
                    actor=actor, kind=kind, account=account, ticket=locked,
                    click=click_digest(action_key) if action_key else None)
        except IntegrityError:
            return ActionResult(False, str(words.ALREADY_HANDLED), repeated=True)
        result = run(locked)
        ConsoleAction.objects.filter(pk=action.pk).update(detail=result.message)
    return result


def _account(account: User | None, ticket: Ticket | None) -> User:
    if account is None:
        raise NoAccount(f"No account uses {ticket.email if ticket else 'this address'}, "
                        "so this button has nothing to act on.")
    return account


def _customer(account: User | None, ticket: Ticket | None) -> User:
    """The account, locked, if the console may change who controls it: its address,
    its verification, a code for it. Never a staff account (DESIGN principle 8: a
    console login must not take over a colleague's, e.g. by moving their address to
    its own and resetting the password). Read under the lock, so a colleague promoted
    after the page was drawn is refused too. Raises NoAccount or StaffAccount."""
    locked = User.objects.select_for_update().get(pk=_account(account, ticket).pk)
    if locked.is_staff or locked.is_superuser:
        raise StaffAccount(locked.email)
    return locked


def _open_customer(account: User | None, ticket: Ticket | None) -> User:
    """``_customer``, and open (``_open_account``): what sends to an address or changes it."""
    locked = _customer(account, ticket)
    if not locked.is_active:
        raise AccountClosed(str(words.ACCOUNT_CLOSED_REFUSED).format(address=locked.email))
    return locked


def _open_account(account: User | None, ticket: Ticket | None) -> User:
    """The account, locked, if it is open: read under the lock, so an account closed
    after the page was drawn is refused too. Raises NoAccount or AccountClosed."""
    locked = User.objects.select_for_update().get(pk=_account(account, ticket).pk)
    if not locked.is_active:
        raise AccountClosed(str(words.ACCOUNT_CLOSED_REFUSED).format(address=locked.email))
    return locked


def _ticket(ticket: Ticket | None) -> Ticket:
    if ticket is None:
        raise NoTicket("This account has no open ticket.")
    return ticket


def rerun_provisioning(*, actor: User, account: User | None, ticket: Ticket | None = None,
                       action_key: str) -> ActionResult:
    """Re-arm the account's workspace step now with fresh attempts (the same service
    as ``manage.py retry_setup``)."""
    def run(locked: Ticket | None) -> ActionResult:
        request = ProvisioningRequest.objects.filter(account=_open_account(account, ticket)).first()
        why = f"support ({locked.reference})" if locked else "support"
        if request and workspace_request_retry(request=request, actor=console_actor(actor), why=why):
            return ActionResult(True, str(words.RESULTS["rerun_done"]))
        return ActionResult(False, str(words.RESULTS["rerun_noop"]))
    return _act(kind=ConsoleActionKind.RERUN, actor=actor, account=account, ticket=ticket, action_key=action_key,
                run=run)


def resend_verification(*, actor: User, account: User | None, ticket: Ticket | None = None,
                        action_key: str) -> ActionResult:
    def run(locked: Ticket | None) -> ActionResult:
        person = _open_customer(account, ticket)
        if person.email_verified:
            return ActionResult(False, str(words.RESULTS["mark_verified_noop"]))
        verification_send(account=person, actor=console_actor(actor))
        return ActionResult(True, str(words.RESULTS["resend_done"]).format(address=person.email))
    return _act(kind=ConsoleActionKind.RESEND, actor=actor, account=account, ticket=ticket, action_key=action_key,
                run=run)


def correct_email(*, actor: User, account: User | None, ticket: Ticket | None = None, action_key: str,
                  email: str) -> ActionResult:
    """Raises accounts.services.EmailTaken, AlreadyVerified or StaffAccount, or
    AddressUnchanged for the address the account already has (nothing is recorded:
    "corrected" would not be true, and sending the link again is its own button)."""
    def run(locked: Ticket | None) -> ActionResult:
        person = _open_customer(account, ticket)
        if normalize_email(email) == person.email:
            raise AddressUnchanged(str(words.ADDRESS_UNCHANGED).format(address=person.email))
        changed = account_change_email(account=person, email=email, actor=console_actor(actor))
        return ActionResult(True, str(words.RESULTS["correct_email_done"]).format(address=changed.email))
    return _act(kind=ConsoleActionKind.CORRECT_EMAIL, actor=actor, account=account, ticket=ticket,
                action_key=action_key, run=run)


def mark_verified(*, actor: User, account: User | None, ticket: Ticket | None = None,
                  action_key: str) -> ActionResult:
    """Raises StaffAccount for a staff account (nothing is recorded)."""
    def run(locked: Ticket | None) -> ActionResult:
        person = _open_customer(account, ticket)
        if person.email_verified:
            return ActionResult(False, str(words.RESULTS["mark_verified_noop"]))
        where = f" ({locked.reference})" if locked else ""
        account_mark_verified(account=person, actor=console_actor(actor),
                              why=f"identity confirmed by phone{where}")
        return ActionResult(True, str(words.RESULTS["mark_verified_done"]).format(address=person.email))
    return _act(kind=ConsoleActionKind.MARK_VERIFIED, actor=actor, account=account, ticket=ticket,
                action_key=action_key, run=run)


def issue_signin_code(*, actor: User, account: User | None, ticket: Ticket | None = None,
                      action_key: str) -> ActionResult:
    """Issue a one-time sign-in code, shown once. A resubmitted click never issues a
    second and cannot show the first again (it is stored nowhere): it says one was
    issued, and a fresh click issues a fresh code.
    Raises accounts.services.StaffAccount for a staff account, CodeRefused for a
    closed one."""
    def run(locked: Ticket | None) -> ActionResult:
        code_row, code = signin_code_issue(account=_customer(account, ticket), actor=console_actor(actor),
                                           idempotency_key=action_key)
        return ActionResult(True, str(words.RESULTS["signin_code_done"]).format(
            until=words.console_time(code_row.expires_at), zone=words.time_zone_name()), code=code)
    result = _act(kind=ConsoleActionKind.SIGNIN_CODE, actor=actor, account=account, ticket=ticket,
                  action_key=action_key, run=run)
    if not result.repeated or account is None:
        return result
    code_row = signin_code_of_click(account=account, action_key=action_key)
    if code_row is None:
        return result
    if code_row.is_live:
        return ActionResult(False, str(words.RESULTS["signin_code_again"]), repeated=True)
    return ActionResult(False, str(words.RESULTS["signin_code_gone"]), repeated=True)


def reply(*, actor: User, account: User | None, ticket: Ticket | None, action_key: str, body: str,
          then: str = TicketStatus.WAITING_ON_CUSTOMER) -> ActionResult:
    """Send a reply through the outbox (the click's key makes the email idempotent
    too), signed by ``actor`` (``words.reply_signature``: whatever the body says, the
    email ends with their name), record it, and move the ticket to ``then`` (waiting
    on the customer, resolved, or left open)."""
    def run(locked: Ticket | None) -> ActionResult:
        locked = _ticket(locked)
        address = reply_address(locked)
        email_queue(account=locked.account, kind=EmailKind.SUPPORT, key=f"reply:{click_digest(action_key)}",
                    to_address=address, context={"body": body, "reference": locked.reference,
                                                 "signature": words.reply_signature(actor.name)})
        TicketEvent.objects.create(ticket=locked, kind=EventKind.REPLY, actor=console_actor(actor), text=body)
        if then != locked.status and then in TRANSITIONS[locked.status]:
            ticket_transition(locked, then, actor=console_actor(actor), why="after our reply")
        return ActionResult(True, str(words.RESULTS["reply_done"]).format(address=address))
    return _act(kind=ConsoleActionKind.REPLY, actor=actor, account=account, ticket=ticket, action_key=action_key,
                run=run)


def resolve(*, actor: User, account: User | None, ticket: Ticket | None, action_key: str) -> ActionResult:
    def run(locked: Ticket | None) -> ActionResult:
        locked = _ticket(locked)
        if locked.status == TicketStatus.RESOLVED:
            return ActionResult(False, str(words.RESULTS["resolve_noop"]))
        ticket_transition(locked, TicketStatus.RESOLVED, actor=console_actor(actor), why="resolved by support")
        return ActionResult(True, str(words.RESULTS["resolve_done"]))
    return _act(kind=ConsoleActionKind.RESOLVE, actor=actor, account=account, ticket=ticket, action_key=action_key,
                run=run)


def close_account(*, actor: User, account: User | None, ticket: Ticket | None = None, action_key: str,
                  reason: str) -> ActionResult:
    """Close the account (``accounts.services.account_close``: its ticket resolves on
    commit). Raises StaffAccount, or AccountStateError if it is closed already."""
    def run(locked: Ticket | None) -> ActionResult:
        account_close(account=_account(account, ticket), actor=console_actor(actor), reason=reason)
        return ActionResult(True, str(words.RESULTS["close_done"]))
    return _act(kind=ConsoleActionKind.CLOSE, actor=actor, account=account, ticket=ticket, action_key=action_key,
                run=run)


def reopen_account(*, actor: User, account: User | None, ticket: Ticket | None = None, action_key: str,
                   reason: str) -> ActionResult:
    def run(locked: Ticket | None) -> ActionResult:
        account_reopen(account=_account(account, ticket), actor=console_actor(actor), reason=reason)
        return ActionResult(True, str(words.RESULTS["reopen_done"]))
    return _act(kind=ConsoleActionKind.REOPEN, actor=actor, account=account, ticket=ticket, action_key=action_key,
                run=run)


def rerun_all(*, actor: User, incident: Incident, action_key: str) -> ActionResult:
    """The incident page's "Re-run all": re-arm every account's step stopped with the
    incident's refusal code (``accounts_with_failed_steps`` and ``account_resume``,
    as ``manage.py retry_setup --all-failed --code CODE``). One action, recorded
    once, whatever the count. An outage with no refusal code has nothing to re-run."""
    def run(locked: Ticket | None) -> ActionResult:
        code = incident.cause
        resumed = [account for account in (accounts_with_failed_steps(code=code) if code else [])
                   if account_resume(account=account, actor=console_actor(actor),
                                     why=f"re-run with every account refused with {code}")]
        if not resumed:
            return ActionResult(False, str(words.RESULTS["rerun_all_noop"]).format(code=code or "—"))
        return ActionResult(True, str(words.RESULTS["rerun_all_done"]).format(count=len(resumed), code=code))
    return _act(kind=ConsoleActionKind.RERUN_ALL, actor=actor, account=None, ticket=None, action_key=action_key,
                run=run)


def retry_setup(*, actor: User, account: User) -> list[str]:
    """The accounts list's bulk action: re-dispatch every stopped step of one account
    (``account_resume``). Recorded only when something was re-armed. Returns what
    was, in words."""
    with transaction.atomic():
        resumed = account_resume(account=account, actor=console_actor(actor), why="re-run from the console")
        if resumed:
            ConsoleAction.objects.create(actor=actor, kind=ConsoleActionKind.RETRY_SETUP, account=account,
                                         detail=", ".join(resumed))
    return resumed
