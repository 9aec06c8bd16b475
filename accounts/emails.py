"""Transactional emails as durable steps: queued in the transaction that owes them,
rendered and sent by a worker, retried with backoff.

Errors are classified here, at the boundary of Django's email backends (DESIGN:
django-anymail does not classify them). We accept at-least-once delivery: a timeout
after the provider accepted a message can send it twice on retry.
"""
from __future__ import annotations

import hashlib
import smtplib
from collections.abc import Callable, Iterable

from anymail.exceptions import AnymailError, AnymailInvalidAddress, AnymailRecipientsRefused
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.messages import EMAIL_SUBJECTS, lifetime_words
from accounts.models import EmailDelivery, EmailKind, User
from accounts.tokens import make_email_change_token, make_verification_token
from provisioning import durable
from provisioning.durable import StepKind, StepStatus
from provisioning.errors import PermanentError, ProviderError, SystemicError, TransientError
from provisioning.services import dispatch_on_commit, event_record, queued_on_creation
from provisioning.signals import announce_on_commit, step_exhausted

KIND = "email"
# The code for "this address cannot receive mail": the account becomes
# email_undeliverable and the person can correct the address.
RECIPIENT_REJECTED = "recipient_rejected"
# The code for "this email is no longer wanted" (the address changed or was
# confirmed first): it never speaks for the account. The engine's own code.
CANCELLED = durable.CANCELLED


def _idempotency_key(kind: str, key: str) -> str:
    idempotency_key = f"{kind}:{key}"
    if len(idempotency_key) > EmailDelivery._meta.get_field("idempotency_key").max_length:
        # Keys can hold an address of up to 254 characters; a digest keeps them
        # stable and within the column (PostgreSQL refuses longer values).
        idempotency_key = f"{kind}:{hashlib.sha256(key.encode()).hexdigest()}"
    return idempotency_key


# Emails that can wait while another kind has a backlog of setup work, 15 minutes at
# most (``durable.setup_under_way``, ``durable.NOT_URGENT_HOLD``):
# the apology after a wait. After an outage, each workspace made ready owes one; sent
# beside the workspaces, they took the workers' time and the provider's pace from the
# people still waiting (bench/heal_time.py). They also wait, however long, for their
# person's other emails still owed (``_owed_first``).
NOT_URGENT = (EmailKind.ALL_SET,)


def _owed_first(account) -> QuerySet[EmailDelivery]:
    """The account's emails still owed (queued, backing off or being sent), the
    not-urgent ones aside: a not-urgent email waits for them to be sent or to give up.
    Sent first, the apology arrived before the verification link or /help/
    acknowledgement still backing off after an outage: sorry for the wait, about an
    email not there yet (its words also tell which emails went out after a wait:
    ``_apology``). Backed by the index on the account's foreign key."""
    return EmailDelivery.objects.filter(account=account, status__in=[StepStatus.PENDING, StepStatus.RUNNING]
                                        ).exclude(kind__in=NOT_URGENT)


def email_queue(*, account, kind: str, key: str, to_address: str | None = None,
                context: dict | None = None, new_account: bool = False) -> EmailDelivery:
    """Owe an email. ``key`` makes it idempotent: queuing the same key twice returns
    the first delivery. Call inside the transaction that decides to send it. It is
    handed to the queue when that commits, unless it is not urgent (NOT_URGENT) and
    the account still owes another email (``_owed_first``): then the
    dispatcher sends it once that email is sent or gave up; or another kind has a
    backlog of setup work: then the dispatcher sends it after that work, or once it
    has waited ``durable.NOT_URGENT_HOLD``. ``new_account``: that
    transaction created the account, so no email can be owed to it yet and the key
    is not checked for a clash (keys begin with the account's id, which no other
    account has had)."""
    idempotency_key = _idempotency_key(kind, key)
    fields = {"idempotency_key": idempotency_key, "account": account, "kind": kind,
              "context": context or {}, "to_address": to_address or account.email}
    held = kind in NOT_URGENT and (_owed_first(account).exists()
                                   or durable.setup_under_way(besides=durable.kind_named(KIND)))
    marked = {}
    if new_account:
        marked = {} if held else queued_on_creation()
        delivery = EmailDelivery.objects.create(**fields, **marked)
    else:
        # Insert first, look up only on a clash: nearly every key is new (most carry
        # a timestamp), so this saves the lookup get_or_create makes first.
        try:
            with transaction.atomic():  # a savepoint: a clash leaves the caller's transaction usable
                delivery = EmailDelivery.objects.create(**fields)
        except IntegrityError:
            queued = EmailDelivery.objects.filter(idempotency_key=idempotency_key).first()
            if queued is None:  # some other constraint refused it
                raise
            return queued
    if held:
        return delivery  # the dispatcher sends it once what it waits for is done
    dispatch_on_commit(KIND, delivery.pk, marked=bool(marked))
    return delivery


def email_queue_bulk(*, accounts: Iterable[User], kind: str, key: Callable[[User], str]) -> None:
    """Owe one email of ``kind`` to each account, at its address, in one statement:
    idempotent like ``email_queue`` (the same ``key(account)`` never makes a second
    email, whichever of the two queued it first). Nothing is handed to the queue
    here: the emails are due at once, and the reconciler's dispatcher feeds them to
    the workers at the provider's pace, one interval of work at a time, so that
    thousands owed at once (an incident's apologies) neither flood the queue ahead
    of everyone else's emails nor hold the task that owes them. Call inside the
    transaction that decides to send them."""
    EmailDelivery.objects.bulk_create(
        [EmailDelivery(account=account, kind=kind, to_address=account.email, context={},
                       idempotency_key=_idempotency_key(kind, key(account))) for account in accounts],
        ignore_conflicts=True)


# Refused for us, whatever the recipient: 530 (authentication required) and 535
# (our credentials refused), and any 5.7.x, RFC 3463's "security or policy status"
# (554 5.7.1 relay access denied, our sending policy or reputation). The first two
# are about our credentials; a 5.7.x otherwise is our relay or sending policy.
SMTP_CREDENTIALS = frozenset({530, 535})


def _smtp_refused_for_us(code: int, message: bytes | str) -> bool:
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    return code in SMTP_CREDENTIALS or (code >= 500 and text.lstrip().startswith("5.7."))


def _smtp_text(message: bytes | str) -> str:
    return (message.decode(errors="replace") if isinstance(message, bytes) else str(message))[:200]


def classify(error: Exception) -> ProviderError:
    """The verdict for an error of Django's email backends (DESIGN "Email
    classification"). Refused for us (an outage of ours, never the person's address):
    our credentials, relay or configuration (SMTP 530/535/5.7.x, ESP 401/403, a
    backend that cannot be loaded or is misconfigured). Refused for this person: their
    address (``personal``: never grouped as ours), or another 4xx/5xx refusal of the
    message. Retry later: timeouts, connection errors, 429, 5xx answers of an ESP,
    SMTP 4xx. Anything else is re-raised: the engine counts it as an unexpected error."""
    if isinstance(error, (AnymailRecipientsRefused, AnymailInvalidAddress)):
        return PermanentError(RECIPIENT_REJECTED, "The address was refused by the email provider.", personal=True)
    if isinstance(error, (ImproperlyConfigured, ImportError)):  # Anymail's configuration errors are the first
        return SystemicError("misconfigured", f"The email backend is misconfigured ({type(error).__name__}).")
    if isinstance(error, AnymailError):
        status = getattr(error, "status_code", None)
        if status is None or status == 429 or status >= 500:
            return TransientError("esp_unavailable", f"The email provider failed ({status or 'no answer'}).")
        if status in (401, 403):
            return SystemicError(f"esp_{status}", f"The email provider refused our credentials (HTTP {status}).",
                                 credentials=True)
        return PermanentError(f"esp_{status}", f"The email provider refused the message (HTTP {status}).")
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        refusals = list(error.recipients.values())
        ours = [(code, message) for code, message in refusals if _smtp_refused_for_us(code, message)]
        if ours:
            code, message = ours[0]
            return SystemicError(f"smtp_{code}", f"The mail server refused to relay our mail ({code} "
                                                 f"{_smtp_text(message)}).", credentials=code in SMTP_CREDENTIALS)
        codes = [code for code, _ in refusals]
        if codes and all(code >= 500 for code in codes):
            return PermanentError(RECIPIENT_REJECTED, f"The mail server refused the address ({codes[0]}).",
                                  personal=True)
        return TransientError("smtp_4xx", f"The mail server asked us to try later ({codes[0] if codes else '4xx'}).")
    if isinstance(error, smtplib.SMTPResponseException):
        if 400 <= error.smtp_code < 500:
            return TransientError("smtp_4xx", f"The mail server asked us to try later ({error.smtp_code}).")
        if _smtp_refused_for_us(error.smtp_code, error.smtp_error) or isinstance(error, smtplib.SMTPSenderRefused):
            return SystemicError(f"smtp_{error.smtp_code}", f"The mail server refused us ({error.smtp_code} "
                                                            f"{_smtp_text(error.smtp_error)}).",
                                 credentials=error.smtp_code in SMTP_CREDENTIALS)
        return PermanentError("smtp_5xx", f"The mail server refused the message ({error.smtp_code}).")
    if isinstance(error, smtplib.SMTPNotSupportedError):  # e.g. EMAIL_USE_TLS against a server without it
        return SystemicError("misconfigured", "The mail server does not support what our settings ask of it.")
    if isinstance(error, (smtplib.SMTPException, OSError)):  # timeouts, disconnects, refused
        return TransientError("timeout" if isinstance(error, TimeoutError) else "connection",
                              "The mail server did not answer in time."
                              if isinstance(error, TimeoutError) else "Could not reach the mail server.")
    raise error


# The setting each link's checker reads: the verification and address-change tokens
# (accounts.tokens) and Django's reset token.
_LINK_LIFETIMES = {
    EmailKind.VERIFICATION: "EMAIL_VERIFICATION_TIMEOUT",
    EmailKind.EMAIL_CHANGE: "EMAIL_VERIFICATION_TIMEOUT",
    EmailKind.PASSWORD_RESET: "PASSWORD_RESET_TIMEOUT",
}


def render(delivery: EmailDelivery) -> EmailMultiAlternatives:
    """The message for a delivery, rendered now (links are minted at send time)."""
    account = delivery.account
    context = {"account": account, "site_url": settings.SITE_URL, **delivery.context}
    if delivery.kind == EmailKind.VERIFICATION:
        token = make_verification_token(account)
        context["verify_url"] = settings.SITE_URL + reverse("accounts:verify", args=[token])
    if delivery.kind == EmailKind.PASSWORD_RESET:
        # Django's token covers the password, last login and address: it dies once
        # used, at the next login, or when the address changes.
        uid = urlsafe_base64_encode(force_bytes(account.pk))
        context["reset_url"] = settings.SITE_URL + reverse(
            "accounts:password_reset_confirm", args=[uid, default_token_generator.make_token(account)])
    if delivery.kind == EmailKind.ALL_SET:
        context["apology"] = _apology(account)
    if delivery.kind == EmailKind.EMAIL_CHANGE:
        token = make_email_change_token(account_id=account.pk, old=delivery.context["old"], new=delivery.to_address)
        context["confirm_url"] = settings.SITE_URL + reverse("accounts:setup_email_confirm", args=[token])
        context["new"] = delivery.to_address
    context.setdefault("login_url", settings.SITE_URL + reverse("accounts:login"))
    # How long the link in it works, from the setting that enforces it.
    if lifetime := _LINK_LIFETIMES.get(delivery.kind):
        context["link_lifetime"] = lifetime_words(getattr(settings, lifetime))
    text = render_to_string(f"emails/{delivery.kind}.txt", context)
    html = render_to_string(f"emails/{delivery.kind}.html", context)
    message = EmailMultiAlternatives(
        subject=str(EMAIL_SUBJECTS[delivery.kind]), body=text, to=[delivery.to_address],
        headers={"X-Idempotency-Key": delivery.idempotency_key},
    )
    message.attach_alternative(html, "text/html")
    return message


def _apology(account) -> str:
    """The apology's words, from the account's facts now (a late import: the
    selectors read this module's error codes)."""
    from accounts.messages import apology
    from accounts.selectors import account_overview, emails_sent_after_waiting

    overview = account_overview(account=account)
    return apology(overview.facts, workspace_waited=bool(overview.request and overview.request.last_error_code),
                   emails_sent_after_waiting=emails_sent_after_waiting(account=account),
                   help_url=settings.SITE_URL + reverse("support:help"))


def _refuse_unwanted_link(delivery: EmailDelivery) -> None:
    """A verification link is minted when it is sent, for the address the account has
    then. So never send one to an address the account no longer has: the link would
    confirm the corrected address for whoever reads the old inbox (a delivery to the
    old address can be re-armed by any "retry now"). Nor once the address is
    confirmed: the link would be dead on arrival."""
    account = delivery.account
    if account.email_verified:
        raise PermanentError(CANCELLED, "The address was confirmed before this link was sent.")
    if delivery.to_address != account.email:
        raise PermanentError(CANCELLED, "The address was corrected before this link was sent.")


def _refuse_unsafe_reset(delivery: EmailDelivery) -> None:
    """A reset link opens the account: it only ever goes to the address the account
    has now (not one corrected away while this email waited), and never for a
    closed account."""
    account = delivery.account
    if account is None or not account.is_active or delivery.to_address != account.email:
        raise PermanentError(CANCELLED, "The address changed or the account closed before the reset link was sent.")


def _refuse_overtaken_change(delivery: EmailDelivery) -> None:
    """A strict-mode change link is dead once the account's address changed or was
    confirmed after it was asked for (``email_change_link_account``): don't send it."""
    account = delivery.account
    if account is None or account.email_verified or account.email != delivery.context.get("old"):
        raise PermanentError(CANCELLED, "The address changed or was confirmed before this link was sent.")


def _perform(delivery: EmailDelivery) -> str:
    if delivery.kind == EmailKind.VERIFICATION:
        _refuse_unwanted_link(delivery)
    if delivery.kind == EmailKind.EMAIL_CHANGE:
        _refuse_overtaken_change(delivery)
    if delivery.kind == EmailKind.PASSWORD_RESET:
        _refuse_unsafe_reset(delivery)
    message = render(delivery)
    try:
        message.send(fail_silently=False)
    except Exception as error:  # classified; anything unknown is re-raised by classify
        raise classify(error) from error
    return "sent"


def _succeeded(delivery: EmailDelivery, result: str) -> None:
    event_record(account_id=delivery.account_id, subject="email", from_state=StepStatus.RUNNING,
                 to_state="sent", why=f"{delivery.kind} email sent after {delivery.attempts} attempt(s)")


def _failed(delivery: EmailDelivery) -> None:
    event_record(account_id=delivery.account_id, subject="email", from_state=StepStatus.RUNNING,
                 to_state=StepStatus.FAILED,
                 why=f"{delivery.kind} email: {delivery.last_error_code}: {delivery.last_error_detail}")
    # A strict-mode change email that never went out opens no ticket: a ticket on the
    # asking account for a free address, and none for a taken one (the notice is the
    # owner's), would tell which it was. The account is unchanged; asking again works.
    if delivery.last_error_code not in (RECIPIENT_REJECTED, CANCELLED) and delivery.kind not in (
            EmailKind.EMAIL_CHANGE, EmailKind.EMAIL_CHANGE_TAKEN):
        announce_on_commit(step_exhausted, sender=EmailDelivery, kind=KIND, step=delivery,
                           account_id=delivery.account_id)


def register_step_kind() -> None:
    durable.register(StepKind(
        name=KIND, model=EmailDelivery, perform=_perform,
        max_attempts=lambda: settings.EMAIL_MAX_ATTEMPTS,
        on_succeeded=_succeeded, on_failed=_failed, provider="email",
        setup=Q(kind=EmailKind.VERIFICATION),  # a reset link or a notice is not setup
        settled=Q(account__email_verified_at__isnull=False),  # confirmed by an earlier link
        not_urgent=Q(kind__in=NOT_URGENT),
        waits_for=Q(Exists(_owed_first(OuterRef("account")))),
    ))
