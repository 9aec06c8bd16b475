"""The one family of provider errors. Each backend classifies what went wrong at its
own boundary (DESIGN "Retry policy"); everything above only sees these two."""
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


class PermanentError(ProviderError):
    """Retrying cannot help: the provider refused the request as it stands."""
