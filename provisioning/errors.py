"""The one family of provider errors. Each backend classifies every answer at its own
boundary into one of four verdicts (DESIGN "Retry policy", README "Decisions"):

- **done**: the call returns normally;
- **retry later**: ``TransientError`` (timeouts, connection errors, 5xx; a 429 is
  ``RateLimited``, the provider pacing us);
- **refused for this person**: ``PermanentError`` (this request, as it stands);
- **refused for us**: ``SystemicError`` (our credentials, our configuration, our
  relay). An outage of ours: it opens the provider's breaker at once, so it becomes
  one incident, and it never counts against a person or marks their address.

Everything above the backends reads only these."""
from __future__ import annotations


class ProviderError(Exception):
    """A provider call did not succeed. ``code`` is short and stable (for filters and
    the support console); ``detail`` is a readable sentence for people."""

    def __init__(self, code: str, detail: str = "", *, retry_after: float | None = None):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail or code
        self.retry_after = retry_after


class TransientError(ProviderError):
    """Worth retrying: timeouts, connection errors, 5xx, 429 (with Retry-After)."""


class RateLimited(TransientError):
    """The provider asked us to slow down (HTTP 429, with its Retry-After): pacing,
    not a failure. It counts against nobody until it has lasted too long
    (provisioning.durable._record_rate_limited)."""


class SystemicError(TransientError):
    """Refused for us: the provider refused our credentials (HTTP 401/403/407, SMTP
    530/535), our relay or sending policy (SMTP 5.7.x), or cannot be reached as we
    configured it (HTTP 404, a malformed URL, an unknown backend). Every call fails
    alike until we fix it; the step waits behind the open circuit as in an outage,
    and its attempts do not count.

    ``credentials``: the backend read the refusal as one of our credentials (or of
    what they are allowed), so the cure is to check them; otherwise it is our
    configuration, relay or sending policy. The breaker keeps which it was
    (``BreakerOpening``), and the console's to-do follows it."""

    def __init__(self, code: str, detail: str = "", *, retry_after: float | None = None,
                 credentials: bool = False):
        super().__init__(code, detail, retry_after=retry_after)
        self.credentials = credentials


class PermanentError(ProviderError):
    """Retrying cannot help: the provider refused the request as it stands.

    ``personal``: the refusal is about the person's own data (an address that does
    not exist), so the same refusal for several people is expected and is never read
    as a fault of ours. Any other refusal repeated for BREAKER_FAILURE_THRESHOLD
    distinct accounts within BREAKER_WINDOW_SECONDS is systemic (provisioning.breaker)."""

    def __init__(self, code: str, detail: str = "", *, retry_after: float | None = None,
                 personal: bool = False):
        super().__init__(code, detail, retry_after=retry_after)
        self.personal = personal
