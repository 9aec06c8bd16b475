"""What ``manage.py check --deploy`` refuses, run as production runs it (a subprocess
with the environment only): an ESP without the webhook's secret, and no
DJANGO_SECRET_KEY."""
from __future__ import annotations

import subprocess

from config.tests.served import PYTHON, ROOT, manage, production_env

POSTMARK = {"EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend", "ANYMAIL_POSTMARK_SERVER_TOKEN": "x"}


def test_an_esp_without_a_webhook_secret_fails_check_deploy(tmp_path):
    done = manage(production_env(static_root=tmp_path, **POSTMARK), "check", "--deploy")
    assert done.returncode != 0
    assert "accounts.E001" in done.stdout + done.stderr


def test_an_esp_with_a_webhook_secret_passes(tmp_path):
    env = production_env(static_root=tmp_path, WEBHOOK_SECRET="anymail:a-long-random-secret", **POSTMARK)
    done = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr


def _without_secret_key(tmp_path, **overrides) -> dict[str, str]:
    env = production_env(static_root=tmp_path, **overrides)
    del env["DJANGO_SECRET_KEY"]
    return env


def test_production_without_a_secret_key_refuses_to_start(tmp_path):
    """Each host writing its own .secret_key would disagree on every signature: the
    web server refuses to start and check --deploy fails; nothing is written."""
    key_file = ROOT / ".secret_key"
    before = key_file.stat().st_mtime_ns if key_file.exists() else None
    env = _without_secret_key(tmp_path)
    served = subprocess.run([PYTHON, "-c", "import config.wsgi"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert served.returncode != 0
    assert "ImproperlyConfigured" in served.stderr and "DJANGO_SECRET_KEY is not set" in served.stderr
    deploy = manage(env, "check", "--deploy")
    assert deploy.returncode != 0
    assert "accounts.E002" in deploy.stdout + deploy.stderr
    assert (key_file.stat().st_mtime_ns if key_file.exists() else None) == before


def test_commands_that_sign_nothing_run_without_a_secret_key(tmp_path):
    """A fresh clone with no environment can still check its models and migrations."""
    env = _without_secret_key(tmp_path)
    for args in (("check",), ("makemigrations", "--check", "--dry-run")):
        done = manage(env, *args)
        assert done.returncode == 0, (args, done.stdout + done.stderr)


def test_a_local_checkout_keeps_its_own_key_with_debug_on(tmp_path):
    done = manage(_without_secret_key(tmp_path, DJANGO_DEBUG="1"), "check")
    assert done.returncode == 0, done.stderr


def test_previous_keys_are_read_for_rotation(tmp_path):
    env = production_env(static_root=tmp_path, DJANGO_SECRET_KEY_FALLBACKS="old-key-one,old-key-two")
    done = manage(env, "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY_FALLBACKS)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['old-key-one', 'old-key-two']"
