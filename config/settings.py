"""Settings, read once from the environment (django-environ).

With no environment at all the project works on a laptop: an SQLite file, the
sandbox providers (healthy), emails printed to the console, the django-q2 queue on
the database. Every variable is listed in the README; DESIGN.md names the contract.
"""
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- Core -----------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
def _local_secret_key() -> str:
    """A per-checkout key kept in a git-ignored file, so a fresh clone works with no
    environment and web and worker still sign with the same key. Local work only
    (DJANGO_DEBUG=1): hosts of one deployment must share one key, or each refuses the
    others' sessions, links and queued tasks."""
    from django.core.management.utils import get_random_secret_key

    path = BASE_DIR / ".secret_key"
    if not path.exists():
        path.write_text(get_random_secret_key())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = _local_secret_key()
# Without DJANGO_SECRET_KEY and with debug off the key stays empty, and nothing is
# written: commands that sign nothing (check, makemigrations, migrate) still run, while
# the web server refuses to start (config.startup), `check --deploy` fails
# (accounts.E002) and Django refuses anything that would sign with an empty key.
# Rotation: the previous keys, comma-separated, still accepted for sessions, links and
# signed cookies (never used to sign anything new). Drop them once their links expire.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
# Only trust X-Forwarded-For behind a proxy we run (see accounts.ratelimit).
TRUST_X_FORWARDED_FOR = env.bool("TRUST_X_FORWARDED_FOR", default=False)

INSTALLED_APPS = [
    # Django's admin, with the support console (support.console) as its site.
    "support.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # "a minute ago" on the person's pages
    "django_q",
    # The console's second factor (support.second_factor): authenticator apps (TOTP)
    # and one-time backup codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "anymail",
    "phonenumber_field",
    "provisioning",
    "accounts",
    "support",
]

MIDDLEWARE = [
    # First, so every log line and every answer (even a refusal) carries a request id.
    "accounts.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything that reads the session: a 503 page in our voice when our own
    # database is down.
    "accounts.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): signed in with a second factor in this session.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy (CONTENT_SECURITY_POLICY below) and Permissions-Policy.
    "csp.middleware.CSPMiddleware",
    "accounts.middleware.PermissionsPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.support_contact",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker write at once: take the write lock at BEGIN instead of failing
    # half-way with "database is locked", and wait for it.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
# Persistent connections only where the number of threads is bounded. Django keeps a
# connection per thread, and runserver answers each request on a new thread: with a
# max age every request left a connection open behind it (a scan held 95 of
# PostgreSQL's 100). So none by default, and the servers with a fixed number of
# threads ask for a minute: gunicorn's sync workers (config/gunicorn.py) and qcluster's
# workers (the Procfiles). There it pays: django-q2's ORM broker calls
# close_old_connections() before every enqueue, which with CONN_MAX_AGE=0 reconnects
# once per task, twice per signup and once per step in a dispatcher pass
# (bench/dispatcher_plan.py: a pass enqueuing 200 steps took 5.1 s instead of 0.9 s).
# DATABASE_URL's ?conn_max_age= wins over CONN_MAX_AGE. Health checks replace a
# connection the database has dropped.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT compilation: our queries are short, and the planner's cost estimate for
    # the console's counts over every account (a CASE with subqueries per row) crosses
    # jit_above_cost, so PostgreSQL spent longer compiling than running them (the
    # dashboard with 100,000 accounts: 0.75 s with JIT, 0.28 s without;
    # bench/console_pages.py). DATABASE_URL's ?options= overrides (e.g. behind a
    # pooler that refuses startup options).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
# A connection pool per process (Django 5.2 with psycopg_pool), on PostgreSQL when
# DATABASE_POOL_MAX_SIZE is set: each process holds at most that many connections,
# reused across requests and tasks, so the sum over every web and worker process can
# be sized under PostgreSQL's max_connections (docs/production.md). A pool and
# persistent connections exclude each other: with a pool, CONN_MAX_AGE is 0 (the
# connection goes back to the pool at the end of each request, not closed).
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=0)
if DATABASE_POOL_MAX_SIZE and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=1),
        "max_size": DATABASE_POOL_MAX_SIZE,
        # Seconds a request waits for a free connection before failing (503 page).
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Identity ---------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
     "OPTIONS": {"user_attributes": ("email", "name", "company")}},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# auth.E003 wants USERNAME_FIELD unique=True; ours is unique case-insensitively through
# UniqueConstraint(Lower("email")) on accounts.User, which is stricter.
SILENCED_SYSTEM_CHECKS = ["auth.E003"]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/setup/"
# Verification links live this long (seconds); 3 days by default.
EMAIL_VERIFICATION_TIMEOUT = env.int("EMAIL_VERIFICATION_TIMEOUT", default=3 * 24 * 3600)
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3 * 3600)
# Strict mode: every signup gets the same answer, at the cost of one more step.
SIGNUP_PREVENT_ENUMERATION = env.bool("SIGNUP_PREVENT_ENUMERATION", default=False)
# One-time sign-in codes that support reads out over the phone (accounts.codes): how
# long one lives (seconds) and how many wrong tries kill it.
SIGNIN_CODE_TIMEOUT = env.int("SIGNIN_CODE_TIMEOUT", default=15 * 60)
SIGNIN_CODE_MAX_TRIES = env.int("SIGNIN_CODE_MAX_TRIES", default=5)
PHONENUMBER_DEFAULT_REGION = env.str("PHONENUMBER_DEFAULT_REGION", default="US")

# The name authenticator apps show next to the console's codes.
OTP_TOTP_ISSUER = "Support console"

# --- Email ----------------------------------------------------------------------
# Precedence: an explicit EMAIL_BACKEND (an ESP through django-anymail), then EMAIL_URL
# (SMTP), then the sandbox backend, which prints healthy mail to the console.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# Where links in emails point (no trailing slash).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Signup <hello@example.com>")
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND", default=vars().get("EMAIL_BACKEND", "accounts.email_backends.SandboxEmailBackend")
)
# Where the sandbox email backend delivers when it is healthy.
SANDBOX_EMAIL_DELIVER_TO = env.str(
    "SANDBOX_EMAIL_DELIVER_TO", default="django.core.mail.backends.console.EmailBackend"
)
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in env.ENVIRON.items()
    if key.startswith("ANYMAIL_")
}
# Basic-auth secret for Anymail's tracking webhooks (user:password).
WEBHOOK_SECRET = env.str("WEBHOOK_SECRET", default="")
if WEBHOOK_SECRET:
    ANYMAIL["WEBHOOK_SECRET"] = WEBHOOK_SECRET
# The one ESP whose tracking webhook answers (/anymail/<esp>/tracking/, only while
# WEBHOOK_SECRET is set; accounts.webhooks): the one EMAIL_BACKEND sends through,
# e.g. "postmark" for anymail.backends.postmark.EmailBackend. SMTP has none.
EMAIL_WEBHOOK_ESP = (EMAIL_BACKEND.split(".")[2] if EMAIL_BACKEND.startswith("anymail.backends.")
                     and EMAIL_BACKEND.count(".") >= 3 else "")

# --- Provisioning -----------------------------------------------------------------
PROVISIONING_BACKEND = env.str("PROVISIONING_BACKEND", default="sandbox")
PROVISIONING_URL = env.str("PROVISIONING_URL", default="")
PROVISIONING_TIMEOUT = env.float("PROVISIONING_TIMEOUT", default=10.0)

# --- Retries (DESIGN "Retry policy") ------------------------------------------------
RETRY_BASE_SECONDS = env.float("RETRY_BASE_SECONDS", default=30.0)
RETRY_MAX_SECONDS = env.float("RETRY_MAX_SECONDS", default=30 * 60.0)
PROVISIONING_MAX_ATTEMPTS = env.int("PROVISIONING_MAX_ATTEMPTS", default=8)
EMAIL_MAX_ATTEMPTS = env.int("EMAIL_MAX_ATTEMPTS", default=6)
# After this many failed attempts a pending step is shown as "delayed".
DELAYED_AFTER_ATTEMPTS = env.int("DELAYED_AFTER_ATTEMPTS", default=3)
# A claimed step's lease: a worker killed mid-call frees the step after this long.
STEP_LEASE_SECONDS = env.int("STEP_LEASE_SECONDS", default=120)
# How often due retries are dispatched and stuck work rescued; the scheduler's
# ~30 s tick is the floor.
RECONCILE_EVERY_SECONDS = env.int("RECONCILE_EVERY_SECONDS", default=60)

# --- Circuit breaker and pacing ---------------------------------------------------
BREAKER_FAILURE_THRESHOLD = env.int("BREAKER_FAILURE_THRESHOLD", default=5)
BREAKER_WINDOW_SECONDS = env.int("BREAKER_WINDOW_SECONDS", default=300)
BREAKER_PROBE_SECONDS = env.int("BREAKER_PROBE_SECONDS", default=60)
PROVIDER_RATE_PER_SECOND = env.float("PROVIDER_RATE_PER_SECOND", default=5.0)
# A worker waits at most this long for its paced slot; further away, the step is
# left for a later pass instead of holding the worker.
PACING_MAX_WAIT_SECONDS = env.float("PACING_MAX_WAIT_SECONDS", default=10.0)
# How much longer than one second two calls on one pacing lane are kept apart: it must
# cover how much later one call can reach the provider's clock, after leaving, than
# another does (provisioning.pacing). 10 ms is measured with the provider on the same
# machine: the closest two calls on one lane came was 1.011 s with a margin of 15 ms,
# so 4 ms of it was used (docs/benchmarks.md). Across a network, measure it there.
PACING_MARGIN_SECONDS = env.float("PACING_MARGIN_SECONDS", default=0.010)

# --- Support ----------------------------------------------------------------------
SUPPORT_REPLY_HOURS = env.int("SUPPORT_REPLY_HOURS", default=4)
# Where people can write when the site itself cannot answer (error pages, 503).
SUPPORT_EMAIL = env.str("SUPPORT_EMAIL", default="support@example.com")
# A number people can call, published wherever a page says "call us" (the 429 page,
# the call-back form). Empty (the default): no page offers a number.
SUPPORT_PHONE = env.str("SUPPORT_PHONE", default="")
# After an incident closes, its "sorry for the wait" emails are queued this many
# accounts per transaction, and a task does at most this many batches, starting none
# once this many seconds have passed, before handing over to the next one: it must
# stay well inside Q_CLUSTER's 90 s timeout however slow the database is that day
# (bench/incident_close.py).
INCIDENT_APOLOGY_BATCH = env.int("INCIDENT_APOLOGY_BATCH", default=500)
INCIDENT_APOLOGY_BATCHES_PER_TASK = env.int("INCIDENT_APOLOGY_BATCHES_PER_TASK", default=20)
INCIDENT_APOLOGY_SECONDS_PER_TASK = env.float("INCIDENT_APOLOGY_SECONDS_PER_TASK", default=30.0)

# --- Abandoned signups (accounts.flows.purge) ------------------------------------------
# Accounts never verified and never used are removed after this many days, so a
# mistyped or squatted address goes back to its owner; the address gets a warning
# ABANDONED_SIGNUP_WARNING_DAYS before.
ABANDONED_SIGNUP_DAYS = env.int("ABANDONED_SIGNUP_DAYS", default=30)
ABANDONED_SIGNUP_WARNING_DAYS = env.int("ABANDONED_SIGNUP_WARNING_DAYS", default=7)

# --- Rate limits (accounts.ratelimit) -------------------------------------------------
# Per action, per client address ("per_ip") and per email address ("per_email"):
# (requests, window in seconds), in fixed windows; only POSTs count. Counted in Redis
# when REDIS_URL is set, otherwise in the database; both hold across processes. Views
# opt in with @rate_limited("<action>"); set an action to {} to switch it off.
# Signing in (login, login_code) counts failures per address instead, so posting
# someone's address never locks them out: "failures_per_email_and_ip" always applies,
# "failures_per_email" (the bound on guessing from many clients) only to browsers
# that never signed in to the address (see accounts.ratelimit).
RATE_LIMITS = {
    # Per client address: an office behind one NAT signs a whole team up within the
    # hour, so 100, not 10. A signup costs one Argon2 hash (~100 ms of CPU, DESIGN),
    # so 100 an hour from one address is at most ~10 s of CPU; flooding one address's
    # owner with "someone tried to sign up" emails is what per_email stops.
    "signup": {"per_ip": (100, 3600), "per_email": (10, 3600)},
    "login": {"per_ip": (30, 900), "failures_per_email_and_ip": (10, 900), "failures_per_email": (50, 900)},
    "password_reset": {"per_ip": (10, 3600), "per_email": (3, 3600)},
    "resend": {"per_ip": (10, 3600), "per_email": (5, 3600)},
    "change_email": {"per_ip": (10, 3600), "per_email": (5, 3600)},
    "help": {"per_ip": (10, 3600), "per_email": (5, 3600)},
    # Asking us to call (/help/call/): each request puts a number at the top of the
    # queue, so fewer than messages; asking again only updates the number.
    "callback": {"per_ip": (5, 3600), "per_email": (3, 3600)},
    "login_code": {"per_ip": (20, 900), "failures_per_email_and_ip": (10, 900), "failures_per_email": (30, 900)},
    # The support console's sign-in (support.console): whoever gets in can act for any
    # customer, so fewer tries than the person's own login.
    "console_login": {"per_ip": (20, 900), "failures_per_email_and_ip": (5, 900), "failures_per_email": (20, 900)},
    # Its second step (a code from the app or a backup code), on top of django-otp's
    # own slow-down after each wrong code.
    "console_second_factor": {"per_ip": (20, 900), "per_email": (10, 900)},
}

# --- Metrics (config.metrics) ---------------------------------------------------------
# /metrics answers a scrape that sends "Authorization: Bearer <METRICS_TOKEN>"; with
# no token set, only a staff member signed in to the console can read it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# --- Queue and cache ----------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "signup",
    "workers": env.int("Q_WORKERS", default=2),
    # A task's hard time limit; the provider timeouts are far below it.
    "timeout": 90,
    # ORM broker: a task whose worker died is handed out again after this long.
    "retry": 120,
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    # Successful tasks are not stored: the durable rows and their timeline are the
    # record of what ran. Stored, django-q2 prunes them in each cluster's monitor for
    # every task by locking and loading all that are kept (save_limit rows): with
    # 1,000 kept, 16 ms of CPU and 7 queries per task, a third of a workspace step's
    # CPU, behind a lock every cluster's monitor takes in turn
    # (bench/worker_scaleout.py). Failed tasks are still stored.
    "save_limit": -1,
    "orm": "default",
}
if REDIS_URL:
    Q_CLUSTER.pop("orm")
    # Give up connecting after a few seconds rather than hanging a worker (or /healthz)
    # on an unreachable Redis; an explicit value in the URL wins.
    Q_CLUSTER["redis"] = (REDIS_URL if "socket_connect_timeout=" in REDIS_URL else
                          REDIS_URL + ("&" if "?" in REDIS_URL else "?") + "socket_connect_timeout=5")
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Parts of pages that read the same for everyone (the empty signup form: its fields
# cost more to render than the rest of the page), in each process's memory, never in
# Redis: a restart empties it, so a deploy never serves the markup of the last one.
CACHES["pages"] = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "pages"}

# --- Internationalisation ---------------------------------------------------------
LANGUAGE_CODE = "en-us"
# The support team's time zone: console times are shown in it (stored in UTC).
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# One way to write a timestamp in the console, per language (config/formats/en:
# "5 Mar 2025, 14:03"); Django's own locale formats fill in the rest.
FORMAT_MODULE_PATH = ["config.formats"]

# --- Static files -----------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where `collectstatic` gathers files for WhiteNoise to serve (hashed names, compressed).
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Sessions ----------------------------------------------------------------------
# In the database (django_session), as Django's default: logout deletes the row, so a
# session ends everywhere, with no cache to lose or keep in step. accounts.sessions
# writes a new login once instead of three times (signup logs everyone in).
SESSION_ENGINE = "accounts.sessions"

# --- Security (production defaults; DEBUG relaxes the HTTPS-only ones) ---------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Only our own scripts, styles and requests: no inline script anywhere (the status
# page reads its words from a JSON script tag, which is data, not code), no plugins,
# no framing, forms post only to us. The console (Django's admin) runs under the same
# policy: its scripts are files too; the one inline <style> of a list without
# actions is cosmetic and is left blocked. Django's debug error pages are exempt.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
    },
}
# Browser features no page of ours uses (accounts.middleware.PermissionsPolicyMiddleware).
PERMISSIONS_POLICY = ("accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
                      "magnetometer=(), microphone=(), payment=(), usb=()")
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Load balancers probe over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- Logging: one line per event; PII masked by accounts.logging ----------------------
# LOG_FORMAT=json (the default without DEBUG): one JSON object per line with time,
# level, logger, message, request_id and account_id. LOG_FORMAT=plain: the same as
# text, for a terminal. Emails and phone numbers are masked in both.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "accounts.logging.RequestContextFilter"},
        "mask_pii": {"()": "accounts.logging.MaskPIIFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "accounts.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT,
                             "filters": ["request_context", "mask_pii"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django-q": {"level": "WARNING"}},
}
