"""Announcements after commit: a receiver that raises is logged and the others still
run, and the work that was recorded stays recorded (the step is not re-run, the
task does not fail)."""
from __future__ import annotations

import pytest

from accounts.models import EmailDelivery, EmailKind
from provisioning.durable import StepStatus
from provisioning.signals import step_exhausted, workspace_ready
from support.models import Ticket


@pytest.fixture
def listeners():
    """``connect(signal)`` adds two receivers through the signal API, after the apps'
    own: the first always raises, the second records the account it heard about."""
    heard: list[int] = []
    connected = []

    def broken(**kwargs) -> None:
        raise RuntimeError("a receiver with a bug")

    def listening(*, account_id: int, **kwargs) -> None:
        heard.append(account_id)

    def connect(signal) -> None:
        signal.connect(broken, weak=False, dispatch_uid="tests.broken")
        signal.connect(listening, weak=False, dispatch_uid="tests.listening")
        connected.append(signal)

    yield connect, heard
    for signal in connected:
        signal.disconnect(dispatch_uid="tests.broken")
        signal.disconnect(dispatch_uid="tests.listening")


def _logged_failures(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "django.dispatch" and "a receiver with a bug" in r.getMessage()]


def test_a_failing_receiver_of_workspace_ready_does_not_stop_the_others(register, sandbox, drive, listeners, caplog):
    connect, heard = listeners
    connect(workspace_ready)
    sandbox("provisioning", "flaky", failures=1)  # the person waits once: an "all set" email is owed
    account, request = register()

    drive()

    request.refresh_from_db()
    assert request.status == StepStatus.SUCCEEDED and request.attempts == 2
    assert heard == [account.pk]  # connected after the broken one, still heard it
    assert EmailDelivery.objects.filter(account=account, kind=EmailKind.ALL_SET).count() == 1
    assert len(_logged_failures(caplog)) == 1


def test_a_failing_receiver_of_step_exhausted_does_not_stop_the_others(register, sandbox, drive, listeners, caplog):
    connect, heard = listeners
    connect(step_exhausted)
    sandbox("provisioning", "reject")
    account, request = register()

    drive()

    request.refresh_from_db()
    assert request.status == StepStatus.FAILED
    assert heard == [account.pk]
    assert Ticket.objects.filter(account=account).count() == 1  # support still escalated
    assert len(_logged_failures(caplog)) == 1
