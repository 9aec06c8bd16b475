"""TIME_ZONE comes from the environment (the support team's zone), UTC by default,
read as production reads it (a subprocess with the environment only)."""
from __future__ import annotations

from config.tests.served import manage, production_env

PRINT = ("from django.conf import settings; from django.utils import timezone; "
         "print(settings.TIME_ZONE, timezone.get_current_timezone_name())")


def test_time_zone_is_read_from_the_environment(tmp_path):
    done = manage(production_env(static_root=tmp_path, TIME_ZONE="Europe/Paris"), "shell", "-c", PRINT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "Europe/Paris Europe/Paris"


def test_time_zone_defaults_to_utc(tmp_path):
    done = manage(production_env(static_root=tmp_path), "shell", "-c", PRINT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "UTC UTC"
