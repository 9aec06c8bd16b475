"""Settings for the test suite: the real database from DATABASE_URL (SQLite by default,
PostgreSQL in CI), tasks run inline, a fast hasher (tests about hashing opt back in)."""
import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")

from config.settings import *  # noqa: E402,F403

DEBUG = False
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405
EMAIL_BACKEND = "accounts.email_backends.SandboxEmailBackend"
SANDBOX_EMAIL_DELIVER_TO = "django.core.mail.backends.locmem.EmailBackend"
PROVISIONING_BACKEND = "sandbox"
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
# Retries become due at once; tests drive them with the reconciler.
RETRY_BASE_SECONDS = 0
CACHES = {**CACHES, "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}  # noqa: F405
# Rate limits count in the test database, rolled back after each test, even when the
# environment has a REDIS_URL; the Redis tests opt in with a settings override.
REDIS_URL = ""
# Still counted on every request, but high enough that a test about something else
# (signups during an outage) never trips them; rate-limit tests set their own.
RATE_LIMITS = {action: {scope: (10_000, 3600) for scope in rules}  # noqa: F405
               for action, rules in RATE_LIMITS.items()}  # noqa: F405
LOGGING = {**LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}  # noqa: F405
# Pacing is tested on its own; elsewhere it would only slow the suite down.
PROVIDER_RATE_PER_SECOND = 10_000
