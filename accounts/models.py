"""Identity: the person's account and the emails we owe them."""
from __future__ import annotations

import unicodedata

import idna
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from django.utils import timezone
from phonenumber_field.modelfields import PhoneNumberField

from provisioning.durable import HIT_AN_ERROR, Step, StepStatus


def normalize_email(address: str) -> str:
    """The one form of an address we store and look up, so one mailbox is one account
    however it was typed. Idempotent; never raises (it also reads what ESPs report).

    - Unicode NFKC, on the whole address: full-width letters from an input method
      ("ａda"), ligatures and the like become the letters they stand for, and an
      accent typed as a letter plus a combining mark becomes one character. On the
      domain this is what IDNA does anyway; on the local part it is our choice: no
      mail system hands out two mailboxes that differ only by such a variant, while
      people do type them by accident.
    - Lower case, with Python's Unicode-aware ``str.lower`` (SQLite's LOWER() is
      ASCII-only, so we never rely on the database to fold case). NFKC again after,
      because lower-casing can undo it, then surrounding spaces (NFKC turns some
      characters into one) are stripped.
    - The domain in its Unicode form, through IDNA (UTS #46): "xn--bcher-kva.de" and
      "bücher.de" are one domain. Unicode rather than ASCII because it is what the
      person typed and reads back on every page and email we show them; Django
      encodes the domain to ASCII itself when it sends, and a bounce reporting the
      ASCII form comes back through this function. An ASCII domain without an
      "xn--" label is left as it is: nothing to decode, and no IDNA rule (hyphens,
      label lengths) can turn it into a different string.

    Rows stored before this existed were lower-cased with ``str.lower``; migrations
    accounts 0011 and support 0010 bring them to this form, except where two accounts
    (or two open tickets without one) would end up with one address: those keep theirs
    and are logged for support."""
    address = unicodedata.normalize("NFKC", address)
    address = unicodedata.normalize("NFKC", address.lower()).strip()
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    return f"{local}@{_unicode_domain(domain)}"


def _unicode_domain(domain: str) -> str:
    if domain.isascii() and "xn--" not in domain:
        return domain
    try:
        return idna.decode(idna.encode(domain, uts46=True))
    except (idna.IDNAError, UnicodeError, ValueError):
        return domain  # not a valid IDNA name: the form refuses it, a lookup finds nothing


def email_is(address: str) -> Q:
    """The account stored under ``address`` (already normalized), found through the
    unique index on LOWER(email) rather than by reading every account: the
    lower-case comparison finds the candidates from the index (a row equal to the
    address is equal in lower case too), the plain one keeps the match exact. A bare
    ``email = %s`` has no index to use; PostgreSQL scanned the whole table for it on
    every signup and login."""
    return Q(Exact(Lower("email"), Lower(Value(address)))) & Q(email=address)


class UserManager(BaseUserManager):
    def get_by_natural_key(self, email: str):
        return self.get(email_is(normalize_email(email)))

    def create_user(self, email: str, password: str | None = None, **fields):
        user = self.model(email=normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        fields.setdefault("name", "Support")
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """An account. A row is not an account (DESIGN principle 1): its lifecycle state
    is derived from its workspace and email facts by ``accounts.selectors``."""

    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=150)
    phone = PhoneNumberField(blank=True)
    company = models.CharField(max_length=150)
    email_verified_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)  # False = disabled by staff
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]
        # The console's accounts list, newest first, reads 50 rows from this index
        # instead of sorting every account (bench/console_pages.py).
        indexes = [models.Index(fields=["date_joined", "id"], name="user_joined_idx"),
                   # Whether an account with a troubled verification email is still
                   # unconfirmed, answered from the index (accounts.state_counts).
                   models.Index(fields=["id"], condition=Q(email_verified_at__isnull=True),
                                name="user_unconfirmed_idx")]

    def __str__(self) -> str:
        return self.email

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    def get_full_name(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        return self.name.split(" ")[0] if self.name else self.email


class EmailKind(models.TextChoices):
    VERIFICATION = "verification", "Verify your address"
    SIGNUP_ATTEMPT = "signup_attempt", "Someone tried to sign up with your address"
    ALL_SET = "all_set", "You're all set"
    PASSWORD_RESET = "password_reset", "Password reset"
    SUPPORT = "support", "Message from support"  # a reply a support person wrote
    # Sent by itself when someone writes to /help/: nobody in support wrote it.
    ACKNOWLEDGEMENT = "acknowledgement", "We let them know we got their message (automatic)"
    ABANDON_WARNING = "abandon_warning", "Unused account will be removed"
    EMAIL_CHANGE = "email_change", "Link to move the account to this address"
    EMAIL_CHANGE_TAKEN = "email_change_taken", "Someone asked to move another account to your address"


# A verification email that is not simply sent: still owed or running, stopped, or
# bounced. Cancelled ones (accounts.emails.CANCELLED) never speak for an address
# (accounts.selectors.verification_emails).
VERIFICATION_UNSETTLED = (Q(kind=EmailKind.VERIFICATION)
                          & (Q(status__in=[StepStatus.PENDING, StepStatus.RUNNING, StepStatus.FAILED])
                             | Q(bounced_at__isnull=False))
                          & ~Q(last_error_code="cancelled"))


class EmailDelivery(Step):
    """A durable, retried email: written in the transaction that owes it, delivered
    by a worker. The body is rendered at send time, so a verification link is always
    minted for the address the account has then."""

    account = models.ForeignKey(User, on_delete=models.CASCADE, related_name="email_deliveries",
                                null=True, blank=True)
    kind = models.CharField(max_length=32, choices=EmailKind.choices)
    to_address = models.EmailField(max_length=254)
    context = models.JSONField(default=dict, blank=True)
    # Set by bounce/complaint webhooks: the address itself cannot be reached.
    bounced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "email deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="email_due_idx"),
            # The verification emails that can decide an account's state is something
            # other than "active" or "unverified" (accounts.state_counts): a handful
            # in flight, however many accounts there are.
            models.Index(fields=["account"], condition=VERIFICATION_UNSETTLED, name="verification_unsettled_idx"),
            # Bounce webhooks find the emails sent to an address (accounts.selectors.
            # deliveries_sent_to): without it, each webhook read the whole table.
            models.Index(fields=["to_address"], name="email_to_address_idx"),
            # The emails that hit an error, by status and last change: an email
            # incident's figures (provisioning.selectors.outage_counts).
            models.Index(fields=["status", "updated_at"], name="email_errored_idx", condition=HIT_AN_ERROR),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to account {self.account_id}: {self.status}"


class EmailWebhookEvent(models.Model):
    """A bounce, rejection or complaint an email provider reported through its
    tracking webhook, kept once per provider event id: providers retry a webhook
    until it answers 2xx, so the same event can arrive several times and must be
    acted on once. The address is kept masked: this is a record, not a contact."""

    esp = models.CharField(max_length=32)
    event_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=32)  # anymail's normalised type
    recipient = models.CharField(max_length=254)  # masked: a***@example.com
    account = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="email_webhook_events")
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["esp", "event_id"], name="email_webhook_event_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.esp} {self.event_type} for {self.recipient}"


class SignInCode(models.Model):
    """A one-time sign-in code that support reads out over the phone after confirming
    who the person is (DESIGN principle 3: recovery never depends on email alone).

    Only a password hash of the code is stored (``accounts.codes``). A code is live while it is
    unused, not revoked and not expired; it dies when used, when a newer code is
    issued for the account, or after SIGNIN_CODE_MAX_TRIES wrong tries."""

    account = models.ForeignKey(User, on_delete=models.CASCADE, related_name="signin_codes")
    code_hash = models.CharField(max_length=128)  # a password hash (accounts.codes.hash_code)
    # One click in the console issues one code, however often it is submitted.
    idempotency_key = models.CharField(max_length=100, unique=True)
    issued_by = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["account", "expires_at"], name="signin_code_live_idx")]

    def __str__(self) -> str:
        return f"sign-in code for account {self.account_id} issued {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_live(self) -> bool:
        return self.used_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class RateLimitCounter(models.Model):
    """How many requests one rate-limit key made in one fixed window, when there is no
    Redis (``accounts.ratelimit``). ``key`` is the action and an HMAC
    (``ratelimit.counter_key``), never an address in clear. Rows for past windows are
    swept as new ones appear."""

    key = models.CharField(max_length=100)
    window_start = models.BigIntegerField()  # Unix seconds, a multiple of the window
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "window_start"], name="ratelimit_key_window_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.key} @ {self.window_start}: {self.count}"


class StateFacts(models.Model):
    """What an account's lifecycle state is made of, clock and providers aside
    (``accounts.selectors.STATE_FACTS``, read from the rows by ``lifecycle_facts``)."""

    active = models.BooleanField()  # False = closed by staff
    unverified = models.BooleanField()  # the address is not confirmed
    # None is a fact here ("no step", "no email"), as the rows' joins give it: not "".
    ws_status = models.CharField(max_length=16, null=True)  # noqa: DJ001 (the workspace step's)
    ws_attempts = models.IntegerField(null=True)
    ws_error = models.BooleanField(null=True)  # the step's last try hit an error
    verdict = models.CharField(max_length=16, null=True)  # noqa: DJ001 (the latest verification email's)

    class Meta:
        abstract = True


class StateChange(models.Model):
    """An account whose state's facts may have changed since the state tally last
    counted it. Written by triggers on the account, workspace step and email tables
    (migration 0014), in the transaction of the change, whatever makes it; taken
    away by the fold that counts it again (``accounts.state_tally``). Insert-only
    until then, so writers never wait on one another for it."""

    account_id = models.BigIntegerField()  # no key: a deleted account is counted out too

    def __str__(self) -> str:
        return f"account {self.account_id} changed"


class AccountStateFacts(StateFacts):
    """The facts the state tally counted each customer (not staff) under, written by
    its fold alone (``accounts.state_tally``): what to take out of the tally when the
    account changes."""

    account_id = models.BigIntegerField(primary_key=True)
    quarter = models.BigIntegerField()  # when the account joined, in quarter hours since 1970 (UTC)

    def __str__(self) -> str:
        return f"account {self.account_id}'s state facts"


class StateTally(StateFacts):
    """How many customers have each combination of state facts: the lifecycle state
    counts read these few rows (``accounts.state_counts``). Written by the fold alone,
    in the transaction that writes the facts it sums."""

    n = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.n} accounts"


class StateTallyByQuarter(StateFacts):
    """The state tally by the quarter hour customers joined in, for the signups
    chart: quarter hours, so that the support person's hours (whatever the time
    zone's offset) are sums of whole rows."""

    quarter = models.BigIntegerField()  # in quarter hours since 1970 (UTC)
    n = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["quarter"], name="tally_quarter_idx")]

    def __str__(self) -> str:
        return f"{self.n} accounts in quarter {self.quarter}"
