"""System checks for the step engine's timing: two workers must never run one step
at once. A worker holds a step under a lease of STEP_LEASE_SECONDS; when the lease
runs out, the reconciler hands the step to another worker. So the lease must
outlast everything a live worker can still be doing: waiting for its pacing slot
(PACING_MAX_WAIT_SECONDS), then the call, until django-q2 kills the task at its
timeout. And django-q2 must not hand a still-running task out again (its ``retry``
must exceed its ``timeout``). ``manage.py check`` (and every ``runserver``,
``migrate`` and ``qcluster``) refuses a configuration that breaks either."""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register


@register()
def step_lease_check(app_configs, **kwargs) -> list[Error]:
    errors: list[Error] = []
    lease = settings.STEP_LEASE_SECONDS
    pacing = settings.PACING_MAX_WAIT_SECONDS
    task_timeout = settings.Q_CLUSTER.get("timeout")
    retry = settings.Q_CLUSTER.get("retry")
    calls = max(settings.PROVISIONING_TIMEOUT, settings.EMAIL_TIMEOUT or 0)
    if not task_timeout:
        errors.append(Error(
            'Q_CLUSTER["timeout"] is not set: a task could hold a step longer than any lease.',
            hint="Set a task timeout below STEP_LEASE_SECONDS - PACING_MAX_WAIT_SECONDS.",
            id="provisioning.E001"))
    elif lease <= task_timeout + pacing:
        errors.append(Error(
            f"STEP_LEASE_SECONDS ({lease}) does not outlast the task timeout ({task_timeout}) plus "
            f"PACING_MAX_WAIT_SECONDS ({pacing:g}): a second worker could take over a step its first "
            "worker is still calling the provider for.",
            hint=f"Raise STEP_LEASE_SECONDS above {task_timeout + pacing:g}, or lower the others.",
            id="provisioning.E002"))
    if lease <= pacing + calls:
        errors.append(Error(
            f"STEP_LEASE_SECONDS ({lease}) does not outlast PACING_MAX_WAIT_SECONDS ({pacing:g}) plus the "
            f"longest provider call (PROVISIONING_TIMEOUT / EMAIL_TIMEOUT, {calls:g}).",
            hint=f"Raise STEP_LEASE_SECONDS above {pacing + calls:g}.",
            id="provisioning.E003"))
    if task_timeout and (retry is None or retry <= task_timeout):
        errors.append(Error(
            f'Q_CLUSTER["retry"] ({retry}) must exceed Q_CLUSTER["timeout"] ({task_timeout}): otherwise '
            "django-q2 hands a task that is still running to a second worker.",
            hint=f'Set Q_CLUSTER["retry"] above {task_timeout}.',
            id="provisioning.E004"))
    return errors
