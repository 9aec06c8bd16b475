"""Writes about accounts. Each function is one complete state change: atomic, writes
a timeline event, and queues its emails and steps to run on commit."""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import codes
from accounts.emails import email_queue
from accounts.logging import mask_email
from accounts.models import (
    EmailDelivery,
    EmailKind,
    EmailWebhookEvent,
    SignInCode,
    User,
    email_is,
    normalize_email,
)
from accounts.selectors import (
    State,
    account_overview,
    deliveries_sent_to,
    latest_verification,
    verification_link_account,
)
from accounts.signals import account_closed
from provisioning import durable
from provisioning.durable import StepStatus
from provisioning.models import ProvisioningRequest
from provisioning.removal import workspace_removal_cancel
from provisioning.services import (
    dispatch_on_commit,
    event_record,
    provisioning_request_create,
    steps_enqueued_together,
    workspace_request_retry,
)

logger = logging.getLogger(__name__)


class AccountError(Exception):
    """Base of the few things account services refuse to do."""


class EmailTaken(AccountError):
    """Another account already uses this address."""


class AlreadyVerified(AccountError):
    """The address is confirmed; it can no longer be corrected from the status page."""


class LinkOnItsWay(AccountError):
    """Correcting the address to the one the account already has, while a confirmation
    link to it is on its way: nothing changes and nothing more is sent (the link on
    its way goes there), so a double click sends one email."""


class StaffAccount(AccountError):
    """Console actions never close or change a staff account: whoever holds a console
    login must not be able to act on a colleague's."""


class AccountStateError(AccountError):
    """The account is not in the state this transition starts from."""

    def __init__(self, account: User, found: str, to: str):
        super().__init__(f"{account.email} is {found}; it cannot be {to}")
        self.found = found


class BeingRemoved(AccountError):
    """The account is an abandoned signup whose workspace the provider is removing,
    or has removed: reopening it would leave it without one."""


class CodeRefused(AccountError):
    """No sign-in code for this account: it is closed, or it is a staff account (a code
    handed out over the phone must never open the support console)."""


def account_register(*, name: str, email: str, company: str, password: str,
                     phone: str = "") -> User:
    """Create the account and, in the same transaction, the durable records of the
    work still owed: its workspace and its verification email, both enqueued in one
    write once it commits. Nothing waits on a provider. Raises EmailTaken if the
    address is registered (also when a simultaneous signup wins the race to the
    unique constraint).

    The account's ``last_login`` is saved as its signup, and the returned instance
    says so (``login_saved``): logging it in at once (the signup view) then writes
    no ``last_login`` of its own (``accounts.receivers.record_last_login``)."""
    user = User(email=normalize_email(email), name=name, company=company, phone=phone)
    user.last_login = user.date_joined
    user.login_saved = True
    user.set_password(password)  # Argon2 before the transaction: keep it short
    try:
        with transaction.atomic(), steps_enqueued_together():
            user.save()
            provisioning_request_create(account=user)
            _queue_verification(user, new_account=True)
            event_record(account_id=user.pk, subject="account", to_state="registered",
                         why="signed up", actor="the person")
    except IntegrityError:
        raise EmailTaken(email)
    return user


def _queue_verification(account: User, *, new_account: bool = False) -> EmailDelivery:
    return email_queue(account=account, kind=EmailKind.VERIFICATION,
                       key=f"{account.pk}:{account.email}:{timezone.now().timestamp()}", new_account=new_account)


def account_resume(*, account: User, actor: str = "the person", why: str = "signed up again") -> list[str]:
    """Signing up again with the right password, or someone re-running the setup for
    the person: re-dispatch every step that had stopped. ``why`` goes on the
    timeline, in the words of whoever did it. Idempotent. Returns what was re-armed,
    in words. A closed account has nothing re-run (closing stopped it; reopening,
    which opens the account first, re-runs it)."""
    resumed = []
    if not account.is_active:
        return resumed
    request = ProvisioningRequest.objects.filter(account=account).first()
    if request and request.status in (StepStatus.FAILED, StepStatus.PENDING):
        if workspace_request_retry(request=request, actor=actor, why=why):
            resumed.append("workspace")
    if not account.email_verified:
        delivery = latest_verification(account)
        if delivery is None or delivery.status in (StepStatus.FAILED, StepStatus.PENDING):
            verification_send(account=account, actor=actor)
            resumed.append("verification email")
    return resumed


def _locked_customer(account: User, reason: str, doing: str) -> tuple[User, str]:
    """Lock a customer's account for a staff transition that must say why. Call inside
    a transaction. Raises AccountError without a reason, StaffAccount for staff."""
    reason = reason.strip()
    if not reason:
        raise AccountError(f"{doing} an account needs a reason.")
    locked = User.objects.select_for_update().get(pk=account.pk)
    if locked.is_staff or locked.is_superuser:
        raise StaffAccount(locked.email)
    return locked, reason


def account_close(*, account: User, actor: str, reason: str) -> User:
    """Close an account (the ``disabled`` state): the person then gets the generic
    login failure, their sessions end (Django's backend refuses an inactive user on
    every request) and nothing more is done for them: steps still owed are
    cancelled, any live sign-in code is revoked, and on commit ``account_closed``
    lets support resolve the account's ticket. ``reason`` is required; it goes on
    the timeline. Raises StaffAccount for a staff account and AccountStateError if it
    is already closed. The caller checks permissions."""
    with transaction.atomic():
        locked, reason = _locked_customer(account, reason, "Closing")
        if not locked.is_active:
            raise AccountStateError(locked, State.DISABLED, "closed")
        was = account_overview(account=locked).state
        User.objects.filter(pk=locked.pk).update(is_active=False)
        locked.is_active = False
        why = "account closed"
        owed = [StepStatus.PENDING, StepStatus.RUNNING]
        for step in (*ProvisioningRequest.objects.filter(account=locked, status__in=owed),
                     *EmailDelivery.objects.filter(account=locked, status__in=owed)):
            durable.step_cancel(step, why=why)
        SignInCode.objects.filter(account=locked, used_at__isnull=True, revoked_at__isnull=True).update(
            revoked_at=timezone.now())
        event_record(account_id=locked.pk, subject="account", from_state=was, to_state=State.DISABLED,
                     why=reason, actor=actor)
        pk = locked.pk
        transaction.on_commit(lambda: account_closed.send(sender=User, account_id=pk, actor=actor, reason=reason),
                              robust=True)
    account.is_active = False
    return locked


def account_reopen(*, account: User, actor: str, reason: str) -> User:
    """Reopen a closed account: the person can log in again and every step that was
    stopped runs again (``account_resume``). A workspace removal not yet begun (an
    abandoned signup being purged) is stopped, so the account keeps its workspace.
    ``reason`` is required. Raises AccountStateError if the account is not closed,
    BeingRemoved while the provider is removing its workspace or once it has."""
    with transaction.atomic():
        locked, reason = _locked_customer(account, reason, "Reopening")
        if locked.is_active:
            raise AccountStateError(locked, account_overview(account=locked).state, "reopened")
        removal = workspace_removal_cancel(account_id=locked.pk, actor=actor, why="account reopened")
        if removal == StepStatus.RUNNING:
            raise BeingRemoved(_("The workspace of %(email)s is being removed at the provider right now (an "
                                 "abandoned signup). Try again in a few minutes: if the provider has not removed "
                                 "it by then, the removal is stopped and the account reopens with its "
                                 "workspace.") % {"email": locked.email})
        if removal == StepStatus.SUCCEEDED:
            raise BeingRemoved(_("%(email)s was an abandoned signup and its workspace has been removed at "
                                 "the provider, so it can't be reopened. The person can sign up again with "
                                 "the same address and gets a new workspace.") % {"email": locked.email})
        User.objects.filter(pk=locked.pk).update(is_active=True)
        locked.is_active = True
        event_record(account_id=locked.pk, subject="account", from_state=State.DISABLED, to_state="reopened",
                     why=reason, actor=actor)
        account_resume(account=locked, actor=actor, why="account reopened")
    account.is_active = True
    return locked


def signup_attempt_notify(*, account: User) -> EmailDelivery:
    """Tell the owner of an address that someone tried to sign up with it, at most
    once an hour (``_owner_notice``)."""
    return _owner_notice(account, EmailKind.SIGNUP_ATTEMPT)


def _owner_notice(account: User, kind: str) -> EmailDelivery:
    """Queue a notice of ``kind`` to the account's owner, at most once an hour: a notice
    queued within the last hour stands for every attempt in it. (A key per calendar
    hour would send two emails a minute apart across 10:59/11:00.)"""
    now = timezone.now()
    with transaction.atomic():
        # Lock the account so two attempts at once cannot both find no recent notice.
        User.objects.select_for_update().filter(pk=account.pk).first()
        recent = (EmailDelivery.objects.filter(account=account, kind=kind,
                                               created_at__gt=now - timedelta(hours=1))
                  .order_by("-created_at", "-pk").first())
        if recent is not None:
            return recent
        return email_queue(account=account, kind=kind, key=f"{account.pk}:{now.timestamp()}")


def email_change_link_send(*, account: User, email: str) -> EmailDelivery:
    """Strict mode: owe ``email`` (normalised, used by no account) a link that moves
    the account to it (``accounts.flows.email_change``). The account keeps its address
    until the link is confirmed. The link is minted when the email is rendered."""
    with transaction.atomic():
        delivery = email_queue(account=account, kind=EmailKind.EMAIL_CHANGE, to_address=email,
                               key=f"{account.pk}:{email}:{timezone.now().timestamp()}",
                               context={"old": account.email})
        _email_change_requested(account, email)
    return delivery


def email_change_taken_notify(*, owner: User, requester: User) -> EmailDelivery:
    """Strict mode: someone asked to move ``requester`` to the address ``owner`` uses.
    Nothing changes; the owner gets a notice (at most once an hour), and the
    requester's timeline reads exactly as when the address is free."""
    with transaction.atomic():
        delivery = _owner_notice(owner, EmailKind.EMAIL_CHANGE_TAKEN)
        event_record(account_id=owner.pk, subject="email", to_state="change_refused",
                     why="another account asked to move to this address; nothing changed", actor="the person")
        _email_change_requested(requester, owner.email)
    return delivery


def _email_change_requested(account: User, new: str) -> None:
    event_record(account_id=account.pk, subject="email", to_state="change_requested",
                 why=f"asked to move the account to {_mask(new)}; an email went to that address",
                 actor="the person")


def verification_send(*, account: User, actor: str = "the person") -> EmailDelivery:
    """Send the verification email (again). A delivery still waiting is brought
    forward instead of adding another, so a double click sends one email."""
    with transaction.atomic():
        # Lock the account: two clicks at once would both find no open delivery and
        # both queue one.
        User.objects.select_for_update().filter(pk=account.pk).first()
        delivery = latest_verification(account)
        if delivery is not None and delivery.is_open:
            if durable.step_retry_now(delivery):
                dispatch_on_commit("email", delivery.pk)
        else:
            delivery = _queue_verification(account)
        event_record(account_id=account.pk, subject="email", to_state="queued",
                     why="verification email requested", actor=actor)
    return delivery


def account_change_email(*, account: User, email: str, actor: str = "the person", proven: bool = False) -> User:
    """Correct a mistyped address while it is unverified. Links sent to the old
    address die (tokens cover the address), emails still owed to it are cancelled,
    and the new address gets a fresh link; with ``proven`` (a strict-mode change link
    that reached the new address was confirmed) it is marked verified instead. The
    address it already has gets a fresh link only when none is on its way (the last
    one was sent, refused, or stopped); while one is, nothing is written and
    LinkOnItsWay is raised. Raises AlreadyVerified or EmailTaken."""
    new = normalize_email(email)
    try:
        with transaction.atomic():
            locked = User.objects.select_for_update().get(pk=account.pk)
            if locked.email_verified:
                raise AlreadyVerified(locked.email)
            old = locked.email
            if new == old:
                delivery = latest_verification(locked)
                if delivery is not None and delivery.is_open:
                    raise LinkOnItsWay(old)
                _queue_verification(locked)
                return locked
            for delivery in EmailDelivery.objects.filter(account=locked, to_address=old,
                                                         status=StepStatus.PENDING):
                durable.step_cancel(delivery, why="the address was corrected")
            User.objects.filter(pk=locked.pk).update(email=new)
            locked.email = new
            event_record(account_id=locked.pk, subject="email", from_state=_mask(old),
                         to_state=_mask(new), why="address corrected", actor=actor)
            if proven:
                account_mark_verified(account=locked, actor=actor, why="address change link")
            else:
                _queue_verification(locked)
    except IntegrityError:
        raise EmailTaken(email)
    account.email = new
    return locked


def _mask(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def email_verify(*, token: str) -> User | None:
    """Confirm the address a verification link was sent to (the confirm button on the
    link's page: a GET only shows that page, since mail scanners open every link).
    Returns the account, or None for a link that is malformed, expired, used or
    replaced. Single use: the token covers the verified flag, so it dies the moment
    it works."""
    with transaction.atomic():
        account = verification_link_account(token=token, lock=True)
        if account is None:
            return None
        return account_mark_verified(account=account, actor="the person", why="verification link")


def password_reset_send(*, account: User) -> EmailDelivery:
    """Owe a password reset email to the account's current address. The link is
    minted when the email is rendered (``accounts.emails.render``), so no reset token
    is ever stored. Requests within the same minute fold into one email."""
    minute = timezone.now().strftime("%Y%m%d%H%M")
    with transaction.atomic():
        delivery = email_queue(account=account, kind=EmailKind.PASSWORD_RESET,
                               key=f"{account.pk}:{minute}")
        event_record(account_id=account.pk, subject="password", to_state="reset_requested",
                     why="password reset link requested", actor="the person")
    return delivery


def account_password_reset(*, account: User, password: str) -> User:
    """Set a new password through a reset link the caller has checked, and confirm
    the address: the reset token covers the account's current address and is only
    ever sent to it (``accounts.emails``), so a token that still checks proves the
    person reads that inbox. Every other session ends (their auth hash covers the
    password). Returns the account, refreshed."""
    hashed = make_password(password)  # Argon2 before the transaction: keep it short
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=account.pk)
        User.objects.filter(pk=locked.pk).update(password=hashed)
        event_record(account_id=locked.pk, subject="password", to_state="reset",
                     why="new password set through a reset link", actor="the person")
        account_mark_verified(account=locked, actor="the person", why="password reset link")
    account.refresh_from_db()
    return account


def account_mark_verified(*, account: User, actor: str, why: str) -> User:
    """Mark the address verified (link clicked, or identity confirmed by support).
    Idempotent: an account already verified is returned unchanged."""
    with transaction.atomic():
        updated = User.objects.filter(pk=account.pk, email_verified_at__isnull=True).update(
            email_verified_at=timezone.now())
        account.refresh_from_db()
        if updated:
            event_record(account_id=account.pk, subject="email", from_state="unverified",
                         to_state="verified", why=why, actor=actor)
    return account


# What an email provider can report that means "this address does not take our mail"
# (anymail's normalised event types). Deferrals and soft failures are the provider's
# to retry; opens, clicks and deliveries change nothing.
UNDELIVERABLE_EVENTS = ("bounced", "rejected", "complained")


def email_mark_bounced(*, esp: str, event_id: str | None, recipient: str | None, event_type: str,
                       occurred_at: datetime | None = None) -> EmailWebhookEvent | None:
    """An email provider reports that mail to ``recipient`` bounced, was rejected, or
    drew a complaint: the emails we sent there are marked bounced, so an unverified
    account at that address shows ``email_undeliverable`` and its owner can correct
    the address from the status page (the correct-email flow). Other event types are
    ignored.

    Idempotent by the provider's event id (one ``EmailWebhookEvent`` each; when the
    provider sends none, a digest of the event stands in): a retried webhook changes
    nothing. Returns the recorded event, or None when there was nothing to do."""
    if event_type not in UNDELIVERABLE_EVENTS or not recipient:
        return None
    address = normalize_email(recipient)
    if not event_id:
        event_id = "digest:" + hashlib.sha256(
            f"{event_type}:{address}:{occurred_at.isoformat() if occurred_at else ''}".encode()).hexdigest()
    account = User.objects.filter(email_is(address)).first()
    try:
        with transaction.atomic():
            event = EmailWebhookEvent.objects.create(
                esp=esp[:32], event_id=event_id[:200], event_type=event_type,
                # Truncated like the other fields: a reported address may be longer
                # than any we store.
                recipient=mask_email(address)[:254], account=account)
            marked = deliveries_sent_to(address=address).update(bounced_at=timezone.now())
            if account is not None and marked:
                event_record(account_id=account.pk, subject="email", from_state="sent",
                             to_state="bounced", why=f"{esp} reported the address {event_type}",
                             actor=f"{esp} webhook")
    except IntegrityError:
        return None  # this event was already processed
    logger.info("email %s reported by %s for %s (%d emails marked)", event_type, esp, address, marked)
    return event


def signin_code_issue(*, account: User, actor: str, idempotency_key: str) -> tuple[SignInCode, str]:
    """Issue a one-time sign-in code for support to read out over the phone, and return
    it with the plain code, which is stored nowhere (``accounts.codes``): the caller
    shows it once. It lives SIGNIN_CODE_TIMEOUT seconds and replaces any code still
    live for the account.

    Idempotent per ``idempotency_key`` (one console click, kept as a digest): issuing
    again with the same key returns the same code row and an empty code, creating
    nothing. Raises CodeRefused for a closed or staff account. The caller checks
    permissions."""
    if not account.is_active or account.is_staff or account.is_superuser:
        raise CodeRefused(account.pk)
    click = codes.click_digest(idempotency_key)
    now = timezone.now()
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=account.pk).first()  # one issuer at a time
        existing = SignInCode.objects.filter(idempotency_key=click, account=account).first()
        if existing is not None:
            return existing, ""
        SignInCode.objects.filter(account=account, used_at__isnull=True, revoked_at__isnull=True).update(
            revoked_at=now)
        code = codes.new_code()
        issued = SignInCode.objects.create(
            account=account, code_hash=codes.hash_code(account.pk, code), idempotency_key=click,
            issued_by=actor[:100], expires_at=now + timedelta(seconds=settings.SIGNIN_CODE_TIMEOUT))
        event_record(account_id=account.pk, subject="sign-in code", to_state="issued", actor=actor,
                     why=f"one-time sign-in code issued, valid {settings.SIGNIN_CODE_TIMEOUT // 60} minutes")
    return issued, code


def signin_code_redeem(*, email: str, code: str) -> User | None:
    """The account a live code opens, or None. Single use (a compare-and-set on
    ``used_at`` lets exactly one request through), constant-time comparison, and each
    wrong try counts: after SIGNIN_CODE_MAX_TRIES the code dies. An unknown address, a
    staff or closed account, no live code and a wrong code all return None alike.
    Does not log anyone in (the view does)."""
    account = User.objects.filter(email_is(normalize_email(email)), is_active=True, is_staff=False,
                                  is_superuser=False).first()
    if account is None:
        return None
    now = timezone.now()
    with transaction.atomic():
        live = (SignInCode.objects.select_for_update()
                .filter(account=account, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now)
                .order_by("-created_at", "-pk").first())
        if live is None:
            return None
        if not codes.code_matches(account.pk, code, live.code_hash):
            tries = live.failed_attempts + 1
            died = tries >= settings.SIGNIN_CODE_MAX_TRIES
            SignInCode.objects.filter(pk=live.pk).update(failed_attempts=tries, revoked_at=now if died else None)
            if died:
                event_record(account_id=account.pk, subject="sign-in code", from_state="issued",
                             to_state="revoked", why=f"{tries} wrong tries: the code no longer works")
            return None
        if not SignInCode.objects.filter(pk=live.pk, used_at__isnull=True).update(used_at=now):
            return None
        event_record(account_id=account.pk, subject="sign-in code", from_state="issued", to_state="used",
                     why="signed in with the one-time code from support", actor="the person")
    return account
