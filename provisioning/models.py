"""Workspaces, the durable requests that create them, the account timeline, the
circuit breakers and the sandbox providers' switches."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from provisioning.durable import HIT_AN_ERROR, Step, StepStatus


class Workspace(models.Model):
    """A person's workspace, recorded once the provider has created it."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                 related_name="workspace")
    external_id = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class ProvisioningRequest(Step):
    """The durable record that a workspace is owed to this account (one per account)."""

    account = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                   related_name="provisioning_request")

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="prov_due_idx"),
            # The accounts whose workspace is not there yet or stopped, read by the
            # dashboard's counts (accounts.state_counts) without touching the rows.
            models.Index(fields=["account"], name="prov_unfinished_idx", condition=models.Q(
                status__in=[StepStatus.PENDING, StepStatus.RUNNING, StepStatus.FAILED])),
            # The steps that hit an error, by status and last change: an incident's
            # figures read the ones open or done since it began (provisioning.
            # selectors.outage_counts), not every step.
            models.Index(fields=["status", "updated_at"], name="prov_errored_idx", condition=HIT_AN_ERROR),
        ]

    def __str__(self) -> str:
        return f"workspace for account {self.account_id}: {self.status}"


class Event(models.Model):
    """One line of an account's timeline: who moved what from which state to which,
    and why. Written by services of every app; read by the status command and the
    support console. It lives here, in the lowest layer, so every app can write it."""

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="events", null=True, blank=True)
    subject = models.CharField(max_length=32)  # "account", "workspace", "email", "ticket", ...
    actor = models.CharField(max_length=100, default="system")
    from_state = models.CharField(max_length=32, blank=True)
    to_state = models.CharField(max_length=32, blank=True)
    why = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.subject} {self.from_state}→{self.to_state}"


class BreakerState(models.TextChoices):
    CLOSED = "closed", "Closed"  # calls flow
    OPEN = "open", "Open"  # outage: calls held, one probe every BREAKER_PROBE_SECONDS


class BreakerOpening(models.TextChoices):
    """What opened a circuit, in the words the console's incident uses."""

    NO_ANSWER = "no_answer", "Stopped answering"  # timeouts, connection errors
    FAILING = "failing", "Kept failing"  # other transient failures (5xx, SMTP 4xx, ...)
    CREDENTIALS = "credentials", "Refused our credentials"  # a SystemicError about our credentials
    REFUSED_US = "refused_us", "Refused us"  # our configuration, relay or sending policy (another SystemicError)
    REFUSED_ALIKE = "refused_alike", "Refused many alike"  # one refusal repeated for many accounts


# The openings that are a refusal of us, whatever any one person sent: our fault.
REFUSED_OURS = frozenset({BreakerOpening.CREDENTIALS, BreakerOpening.REFUSED_US})
# The openings the person is told are on our side, never that the provider is down:
# a refusal of us, or the same refusal for many accounts (a change in what we send or
# at the provider, which the console's incident calls "ours, not theirs").
OPENINGS_OURS = REFUSED_OURS | {BreakerOpening.REFUSED_ALIKE}
# The transient codes that mean no answer came at all (the backends' own codes).
NO_ANSWER_CODES = frozenset({"timeout", "connection"})


class Breaker(models.Model):
    """A provider's circuit, shared by every web and worker process through the
    database."""

    provider = models.CharField(max_length=32, primary_key=True)
    state = models.CharField(max_length=8, choices=BreakerState.choices, default=BreakerState.CLOSED)
    opened_at = models.DateTimeField(null=True, blank=True)
    # When the circuit last let a call through (opening counts): the next probe is
    # due BREAKER_PROBE_SECONDS later, read from settings at the time of asking.
    probed_at = models.DateTimeField(null=True, blank=True)
    # Why it is open: "" when many accounts failed transiently, else the code of the
    # refusal that is ours (a SystemicError, or one refusal repeated for many accounts).
    cause = models.CharField(max_length=64, blank=True)
    # What opened it last, and the code of that failure (kept once it closes): the
    # incident's opening line says what happened, not a guess. A probe refused for us
    # for another reason while it is open replaces both, and the cause: that refusal
    # is what holds it open now (provisioning.breaker.refused_us).
    opened_by = models.CharField(max_length=16, choices=BreakerOpening.choices, blank=True)
    failure = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.provider}: {self.state}"


class BreakerFailure(models.Model):
    """A transient failure (``code`` "") or a refusal (its code) seen for one
    account; the breaker counts distinct accounts per code in a sliding window so
    one person's retries cannot open it."""

    provider = models.CharField(max_length=32)
    account_key = models.CharField(max_length=64)
    code = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["provider", "at"], name="breaker_failure_idx")]

    def __str__(self) -> str:
        return f"{self.provider} failure for {self.account_key} at {self.at:%H:%M:%S}"


class SandboxMode(models.TextChoices):
    OK = "ok", "Healthy"
    TIMEOUT = "timeout", "Times out"
    ERROR = "error", "Temporary failure (5xx / 4xx SMTP)"
    FLAKY = "flaky", "Fails N times, then succeeds"
    LATE = "late", "Succeeds, but the answer times out"
    REJECT = "reject", "Rejects permanently"
    UNAUTHORIZED = "unauthorized", "Refuses our credentials (HTTP 401 / SMTP 535)"
    RELAY_DENIED = "relay_denied", "Refuses us (HTTP 403 / SMTP 554 5.7.1 relay denied)"
    # Refuses the message itself, for good, not the address it goes to (SMTP 554
    # 5.6.0): refused for the person but not about their address, so never retried
    # and never marked undeliverable. The workspace provider has no address to tell
    # apart: for it this is "reject" (HTTP 422).
    REFUSE_MESSAGE = "refuse_message", "Refuses the message itself (HTTP 422 / SMTP 554 5.6.0)"


class SandboxSwitch(models.Model):
    """The failure mode of one sandbox provider ("provisioning" or "email"). Kept in
    the database so web and worker processes see the same switch."""

    provider = models.CharField(max_length=32, primary_key=True)
    mode = models.CharField(max_length=16, choices=SandboxMode.choices, default=SandboxMode.OK)
    failures_left = models.PositiveIntegerField(default=0)  # for "flaky"
    calls = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.provider}: {self.mode}"


class SandboxWorkspace(models.Model):
    """What the sandbox provider has "created", by idempotency key: a repeat with the
    same key returns the same id, like the real API."""

    idempotency_key = models.CharField(max_length=100, unique=True)
    external_id = models.CharField(max_length=100)
    calls = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.idempotency_key} → {self.external_id}"


class Pace(models.Model):
    """The next free call slot for a provider (see provisioning.pacing)."""

    provider = models.CharField(max_length=32, primary_key=True)
    next_slot_at = models.DateTimeField()
    # How many slots were handed out: slot n leaves on lane n modulo the lanes.
    slots_taken = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.provider}: next slot {self.next_slot_at:%H:%M:%S.%f}"


class PaceLane(models.Model):
    """When the last call on one of a provider's lanes left, on the database's clock
    (see provisioning.pacing)."""

    provider = models.CharField(max_length=32)
    lane = models.PositiveIntegerField()
    departed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "lane"], name="pace_lane_unique")]

    def __str__(self) -> str:
        return f"{self.provider} lane {self.lane}: left {self.departed_at:%H:%M:%S.%f}"


class Heartbeat(models.Model):
    """When a periodic job last completed (``reconcile``: the dispatcher's pass, run
    by a django-q2 worker). ``/healthz`` reads it: a queue that answers is no use if
    no worker consumes it."""

    name = models.CharField(max_length=32, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"


class DeprovisionRequest(Step):
    """The durable record that a workspace is to be removed at the provider (an
    abandoned signup being purged, accounts.flows.purge). The account is deleted
    only once this step has succeeded; the row outlives it (``account`` becomes
    null) as the record that the provider's workspace is gone."""

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="workspace_removals")
    # The provider's id of the workspace (Workspace.external_id when the removal began).
    external_id = models.CharField(max_length=100)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="deprov_due_idx")]

    def __str__(self) -> str:
        return f"remove workspace {self.external_id}: {self.status}"
