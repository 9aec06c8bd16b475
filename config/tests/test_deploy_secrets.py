"""What ``manage.py check --deploy`` refuses, run as production runs it (a subprocess
with the environment only): an ESP without the webhook's secret, and no
DJANGO_SECRET_KEY."""
from __future__ import annotations

from config.tests.served import manage, production_env

POSTMARK = {"EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend", "ANYMAIL_POSTMARK_SERVER_TOKEN": "x"}


def test_an_esp_without_a_webhook_secret_fails_check_deploy(tmp_path):
    done = manage(production_env(static_root=tmp_path, **POSTMARK), "check", "--deploy")
    assert done.returncode != 0
    assert "accounts.E001" in done.stdout + done.stderr


def test_an_esp_with_a_webhook_secret_passes(tmp_path):
    env = production_env(static_root=tmp_path, WEBHOOK_SECRET="anymail:a-long-random-secret", **POSTMARK)
    done = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
