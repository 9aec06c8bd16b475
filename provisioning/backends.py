"""Workspace providers behind one narrow interface, chosen by PROVISIONING_BACKEND.

Each backend takes a stable idempotency key and classifies every answer at this
boundary into one of the four verdicts of ``provisioning.errors`` (done, retry
later, refused for this person, refused for us); nothing above sees HTTP codes.
"""
from __future__ import annotations

import hashlib
import math
import netrc  # noqa: F401  (requests imports it on its first call: see below)
from dataclasses import dataclass
from urllib.parse import quote

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from provisioning.errors import PermanentError, ProviderError, RateLimited, SystemicError, TransientError
from provisioning.models import SandboxMode, SandboxWorkspace, Workspace
from provisioning.sandbox import sandbox_outcome

# netrc is imported above because requests imports it on its first call: a fresh
# worker process would read it from disk between taking its pacing lane and sending
# its first call (provisioning.pacing), the slowest moment to do it.


@dataclass(frozen=True)
class WorkspaceOrder:
    account_id: str
    company: str
    owner_email: str
    idempotency_key: str


@dataclass(frozen=True)
class WorkspaceRemoval:
    external_id: str  # the provider's id of the workspace
    idempotency_key: str


class LocalBackend:
    """The workspace lives in our own database: nothing to call, never fails. The
    service records the Workspace row when the step succeeds."""

    def create_workspace(self, order: WorkspaceOrder) -> str:
        return "local-" + hashlib.sha256(order.idempotency_key.encode()).hexdigest()[:16]

    def delete_workspace(self, removal: WorkspaceRemoval) -> str:
        return "removed"  # the Workspace row is deleted when the step succeeds


class HttpBackend:
    """The DESIGN's HTTP provider API: POST {PROVISIONING_URL}/workspaces."""

    def __init__(self, url: str | None = None, timeout: float | None = None):
        self.url = (url or settings.PROVISIONING_URL).rstrip("/")
        self.timeout = timeout if timeout is not None else settings.PROVISIONING_TIMEOUT
        if not self.url:
            raise SystemicError("misconfigured", "PROVISIONING_URL is not set.")

    def create_workspace(self, order: WorkspaceOrder) -> str:
        try:
            response = requests.post(
                f"{self.url}/workspaces",
                json={"account_id": order.account_id, "company": order.company,
                      "owner_email": order.owner_email},
                headers={"Idempotency-Key": order.idempotency_key},
                timeout=self.timeout,
            )
        except requests.Timeout:
            raise TransientError("timeout", f"The provider did not answer within {self.timeout:g} s.")
        except requests.ConnectionError:
            raise TransientError("connection", "Could not connect to the provider.")
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema):
            # Unclassified, this would escape the step and leave it running for ever.
            raise SystemicError("misconfigured", f"PROVISIONING_URL is not a valid URL: {self.url!r}.")
        except requests.RequestException as error:  # e.g. the answer broke off half-way
            raise TransientError("connection", f"The request to the provider failed ({type(error).__name__}).")
        if response.status_code in (200, 201, 409):
            return _workspace_id(response)
        raise refusal(response.status_code, body=response.text[:200],
                      retry_after=_retry_after(response.headers.get("Retry-After")))

    def delete_workspace(self, removal: WorkspaceRemoval) -> str:
        """DELETE {PROVISIONING_URL}/workspaces/{id}: 204 removed, 404 already gone
        (a repeat after a lost answer); both are success. Other answers are
        classified as for a creation (``refusal``)."""
        try:
            response = requests.delete(f"{self.url}/workspaces/{quote(removal.external_id, safe='')}",
                                       headers={"Idempotency-Key": removal.idempotency_key}, timeout=self.timeout)
        except requests.Timeout:
            raise TransientError("timeout", f"The provider did not answer within {self.timeout:g} s.")
        except requests.RequestException as error:
            raise TransientError("connection", f"The request to the provider failed ({type(error).__name__}).")
        if response.status_code in (200, 202, 204, 404):
            return "already gone" if response.status_code == 404 else "removed"
        raise refusal(response.status_code, body=response.text[:200],
                      retry_after=_retry_after(response.headers.get("Retry-After")))


# Our credentials (401, 407 at our proxy) or what they are allowed (403) are wrong,
# or our configuration (404: PROVISIONING_URL points at the wrong place): every
# account would get the same answer, so it is refused for us, never for the person.
CREDENTIALS_REFUSED = frozenset({401, 403, 407})
REFUSED_FOR_US = CREDENTIALS_REFUSED | {404}


def refusal(status: int, *, body: str = "", retry_after: float | None = None) -> ProviderError:
    """The verdict for an HTTP status that is not a success (DESIGN's provider API)."""
    if status == 429:
        return RateLimited("rate_limited", "The provider asked us to slow down.", retry_after=retry_after)
    if status >= 500:
        return TransientError(f"http_{status}", f"The provider failed with HTTP {status}.")
    if status in CREDENTIALS_REFUSED:
        return SystemicError(f"http_{status}", f"The provider refused our credentials (HTTP {status}).",
                             credentials=True)
    if status in REFUSED_FOR_US:
        return SystemicError(f"http_{status}", f"The provider has nothing at the address we call (HTTP {status}): "
                                               f"check PROVISIONING_URL.")
    detail = f"The provider refused the request (HTTP {status})" + (f": {body}" if body else ".")
    return PermanentError(f"http_{status}", detail)

def _workspace_id(response: requests.Response) -> str:
    """The id in a success answer, checked here rather than trusted: a non-empty
    string of printable characters that fits ``Workspace.external_id``. Anything
    else breaks the contract; it is transient (the same answer for many accounts
    opens the breaker, as an outage) and never reaches the database, where a value
    too long would fail the step after the workspace was created."""
    try:
        value = response.json()["id"]
    except (ValueError, KeyError, TypeError):
        value = None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    limit = Workspace._meta.get_field("external_id").max_length
    if not isinstance(value, str) or not value.strip() or len(value) > limit or not value.isprintable():
        raise TransientError("bad_response", f"HTTP {response.status_code} without a valid workspace id "
                                             f"(a non-empty string of at most {limit} characters).")
    return value


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, capped at RETRY_MAX_SECONDS so a hostile or broken value
    cannot park a step for ever; the HTTP-date form is rare for 429 and read as absent."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), settings.RETRY_MAX_SECONDS)


class SandboxBackend:
    """A local provider whose failure modes are switched at run time
    (``manage.py sandbox``). It keeps what it "created" by idempotency key, so a
    retry after a lost answer returns the same workspace, like the real API. Its
    failures are HTTP statuses, classified as the HTTP backend's are."""

    STATUSES = {SandboxMode.ERROR: 503, SandboxMode.REJECT: 422, SandboxMode.REFUSE_MESSAGE: 422,
                SandboxMode.UNAUTHORIZED: 401, SandboxMode.RELAY_DENIED: 403}

    def create_workspace(self, order: WorkspaceOrder) -> str:
        outcome = self._outcome()
        external_id, created = self._create(order.idempotency_key)
        if outcome == SandboxMode.LATE and created:
            # "Late": creating took too long, so the answer was lost, but the work is
            # done. A repeat with the same key finds it and answers at once, as the
            # real API does; timing that out too would make "late" a plain outage.
            raise TransientError("timeout", "The provider did not answer in time.")
        return external_id

    def delete_workspace(self, removal: WorkspaceRemoval) -> str:
        """Delete what the sandbox "created", in the same failure modes; deleting
        what is already gone succeeds, like a 404 from the real API."""
        outcome = self._outcome()
        removed, _ = SandboxWorkspace.objects.filter(external_id=removal.external_id).delete()
        if outcome == SandboxMode.LATE and removed:
            raise TransientError("timeout", "The provider did not answer in time.")  # done, answer lost
        return "removed" if removed else "already gone"

    def _outcome(self) -> str:
        """Count a call; raise what its failure mode makes of it (classified as the
        HTTP backend classifies that status), else return the mode ("ok" or "late")
        for the caller to act on."""
        outcome = sandbox_outcome("provisioning")
        if outcome == SandboxMode.TIMEOUT:
            raise TransientError("timeout", "The provider did not answer in time.")
        if outcome in self.STATUSES:
            raise refusal(self.STATUSES[outcome])
        return outcome

    def _create(self, key: str) -> tuple[str, bool]:
        try:
            with transaction.atomic():
                created = SandboxWorkspace.objects.create(
                    idempotency_key=key, external_id="sbx-" + hashlib.sha256(key.encode()).hexdigest()[:12])
                return created.external_id, True
        except IntegrityError:
            SandboxWorkspace.objects.filter(idempotency_key=key).update(calls=F("calls") + 1)
            return SandboxWorkspace.objects.get(idempotency_key=key).external_id, False


BACKENDS = {"local": LocalBackend, "http": HttpBackend, "sandbox": SandboxBackend}


def get_backend():
    try:
        return BACKENDS[settings.PROVISIONING_BACKEND]()
    except KeyError:
        raise SystemicError("misconfigured",
                             f"PROVISIONING_BACKEND must be one of {', '.join(BACKENDS)}.")
