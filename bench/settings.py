"""Settings for the benchmarks: production settings (Argon2, DEBUG off, whitenoise's
manifest storage, HTTPS-only cookies; the benches speak HTTP to gunicorn with
``X-Forwarded-Proto: https``, as a TLS-terminating proxy would), with two changes:

- rate limits, when the project declares them, are raised out of reach but still
  counted, so every signup pays for its counter and none is refused;
- logging quiet at WARNING (one line per request would be measured too).

``BENCH_Q_SAVE_LIMIT`` keeps that many successful task results, as a debugging aid
(``bench/heal_time.py --timeline`` reads the reconcile passes from them); production
keeps none, and keeping them costs every task (config/settings.py).
"""
import os

from config.settings import *  # noqa: F403

if os.environ.get("BENCH_Q_SAVE_LIMIT"):
    Q_CLUSTER = {**Q_CLUSTER, "save_limit": int(os.environ["BENCH_Q_SAVE_LIMIT"])}  # noqa: F405

if "RATE_LIMITS" in globals():
    RATE_LIMITS = {  # noqa: F405
        action: {scope: (10**9, seconds) for scope, (_limit, seconds) in rules.items()}
        for action, rules in RATE_LIMITS.items()  # noqa: F405
    }

LOGGING = {**LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}  # noqa: F405

# A bench that reads task timings from django-q2's result table keeps every result
# (BENCH_Q_SAVE_LIMIT=0: no limit): with the project's limit, the results of the tasks
# measured would be pruned by the thousands of email tasks that follow them.
Q_CLUSTER = {**Q_CLUSTER, "save_limit": int(os.environ.get("BENCH_Q_SAVE_LIMIT", Q_CLUSTER["save_limit"]))}  # noqa: F405

# bench/signup_overhead.py measures what a signup costs besides its hash: the MD5
# hasher, which costs next to nothing, in place of Argon2.
if os.environ.get("BENCH_FAST_HASHER"):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
