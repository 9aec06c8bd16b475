"""What a serving process checks before it takes its first request."""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

NO_SECRET_KEY = (
    "DJANGO_SECRET_KEY is not set. In production set it to 50 or more random characters, the same "
    "on every host (python -c 'import secrets; print(secrets.token_urlsafe(50))'). On a laptop, set "
    "DJANGO_DEBUG=1 (make run does) and a per-checkout key is kept in .secret_key.")


def secret_key_missing() -> bool:
    """Django refuses to read an empty SECRET_KEY; here that refusal is the answer."""
    try:
        return not settings.SECRET_KEY
    except ImproperlyConfigured:
        return True


def refuse_without_secret_key() -> None:
    """A server with no shared key must not start: each host inventing its own would
    refuse the others' sessions, links and queued tasks. Management commands that sign
    nothing are left to run (settings leave the key empty rather than raising)."""
    if secret_key_missing():
        raise ImproperlyConfigured(NO_SECRET_KEY)
