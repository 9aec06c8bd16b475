"""The system check on the engine's timing (issue 10, fault 10): a configuration in
which two workers could run one step at once is refused."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from provisioning.checks import step_lease_check


@pytest.fixture
def timing(settings):
    def set(*, lease=120, pacing=10, timeout=90, retry=120, call=10):
        settings.STEP_LEASE_SECONDS, settings.PACING_MAX_WAIT_SECONDS = lease, pacing
        settings.PROVISIONING_TIMEOUT = settings.EMAIL_TIMEOUT = call
        settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": timeout, "retry": retry}
        return [error.id for error in step_lease_check(None)]
    return set


def test_the_default_timing_passes(timing):
    assert timing() == []


@pytest.mark.parametrize("lease", [100, 60])
def test_a_lease_that_does_not_outlast_the_task_timeout_and_pacing_is_refused(timing, lease):
    assert timing(lease=lease) == ["provisioning.E002"]


def test_a_lease_shorter_than_pacing_and_the_call_is_refused(timing):
    assert "provisioning.E003" in timing(lease=30, pacing=10, call=25, timeout=15, retry=20)


def test_no_task_timeout_is_refused(timing):
    assert timing(timeout=None) == ["provisioning.E001"]


@pytest.mark.parametrize("retry", [90, 60, None])
def test_a_retry_that_does_not_exceed_the_task_timeout_is_refused(timing, retry):
    assert timing(retry=retry) == ["provisioning.E004"]


def test_manage_py_check_refuses_it(timing):
    timing(lease=90)
    with pytest.raises(SystemCheckError, match="provisioning.E002"):
        call_command("check")
